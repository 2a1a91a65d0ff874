/**
 * The entry module of a handler Worker isolate (`pool.ts` starts it): loads
 * the handler registry, runs one {@link HandlerJob} at a time with
 * `runHandlerJob`, and posts back its log lines and its result. Nothing a
 * handler does here reaches the accepting process: a synchronous loop stalls
 * only this isolate, an unhandled rejection or a throw from a timer is
 * contained and logged, and `Deno.exit` is reported before it ends the
 * isolate, so that the pool records it as the attempt's error.
 *
 * It is never imported by the server itself (it has top-level effects); it
 * holds no secret, no KV and no listener: the job is all it gets.
 *
 * @module
 */

import type { DispatchResult, HandlerRegistry } from "../dispatch.ts";
import {
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LogLevel,
} from "../ops/log.ts";
import { createTracer } from "../ops/tracing.ts";
import { createDeadlines } from "../_util/deadline.ts";
import { describeError } from "../_util/errors.ts";
import { type HandlerJob, LOAD_STEP, runHandlerJob } from "./run.ts";
import type {
  GitHubCall,
  GitHubCallResult,
  GitHubHost,
} from "../github/client.ts";

/** Messages from the pool to an isolate. */
export type ToIsolate =
  | {
    type: "run";
    id: number;
    module: string;
    /** Lines below this level are dropped here, not posted. */
    level: LogLevel;
    /** Whether an App is configured (`ctx.github.app` exists). */
    hasApp: boolean;
    job: HandlerJob;
  }
  | { type: "abort"; id: number; reason: string }
  | { type: "github-result"; call: number; result: GitHubCallResult };

/** Messages from an isolate to the pool. */
export type FromIsolate =
  | {
    type: "log";
    id: number | null;
    level: LogLevel;
    msg: string;
    fields: LogFields;
    /** The span the line was written in, as a W3C `traceparent`. */
    trace?: string | undefined;
  }
  | { type: "result"; id: number; result: DispatchResult }
  | { type: "exit"; id: number | null; code: number }
  | { type: "closed"; id: number | null }
  /** A `ctx.github` call, performed by the server with its credentials. */
  | {
    type: "github";
    id: number;
    call: number;
    request: GitHubCall;
    deadline: number;
    /** The span of the handler making the call, as a W3C `traceparent`. */
    trace?: string | undefined;
  }
  | { type: "github-abort"; id: number; call: number }
  /** An installation was deleted or suspended. */
  | { type: "forget"; id: number; installation: number };

/** The parts of a Worker's global scope this module uses. */
interface WorkerScope {
  postMessage(message: FromIsolate): void;
  onmessage: ((event: MessageEvent<ToIsolate>) => void) | null;
  addEventListener(
    type: "unhandledrejection" | "error",
    listener: (event: Event) => void,
  ): void;
}

const scope = globalThis as unknown as WorkerScope;

/** What this isolate changes as it runs jobs, in one place. */
const state: {
  /** The job running now, for log lines that come from no handler. */
  current: { id: number; controller: AbortController } | null;
  /** The handlers, loaded with the first job. */
  registry: Promise<HandlerRegistry> | null;
  /** `ctx.github` calls waiting for the server's answer. */
  calls: Map<number, (result: GitHubCallResult) => void>;
  nextCall: number;
} = { current: null, registry: null, calls: new Map(), nextCall: 1 };
const deadlines = createDeadlines();
const tracer = createTracer();

/**
 * Posts a log line, with the span it was written in (the pool prints it in
 * that span, so its logger adds the ids); fields that cannot be cloned are
 * sent as text.
 */
function post(
  id: number | null,
  level: LogLevel,
  msg: string,
  fields: LogFields,
) {
  const trace = tracer.active();
  try {
    scope.postMessage({ type: "log", id, level, msg, fields, trace });
  } catch {
    const text = Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [k, String(v)]),
    );
    scope.postMessage({ type: "log", id, level, msg, fields: text, trace });
  }
}

/**
 * A logger whose lines of `min` and above go to the pool, tagged with the
 * job's id.
 */
function jobLogger(id: number, min: LogLevel, bound: LogFields): Logger {
  const floor = LOG_LEVELS.indexOf(min);
  const line = (level: LogLevel) =>
    LOG_LEVELS.indexOf(level) < floor
      ? () => {}
      : (msg: string, fields?: LogFields) =>
        post(id, level, msg, { ...bound, ...fields });
  return {
    debug: line("debug"),
    info: line("info"),
    warn: line("warn"),
    error: line("error"),
    child: (fields) => jobLogger(id, min, { ...bound, ...fields }),
  };
}

/** An aborted call's answer, without waiting for the server's. */
const ABORTED: GitHubCallResult = {
  ok: false,
  error: { message: "the GitHub call was aborted", kind: "network" },
};

/**
 * `ctx.github`'s host in an isolate: each call goes to the server, which
 * holds the credentials and answers with plain data.
 */
function githubHost(id: number, hasApp: boolean): GitHubHost {
  return {
    hasApp,
    perform(request, signal, deadline) {
      if (signal.aborted) return Promise.resolve(ABORTED);
      const call = state.nextCall++;
      return new Promise((resolve) => {
        const onAbort = () => {
          state.calls.delete(call);
          scope.postMessage({ type: "github-abort", id, call });
          resolve(ABORTED);
        };
        state.calls.set(call, (result) => {
          signal.removeEventListener("abort", onAbort);
          resolve(result);
        });
        signal.addEventListener("abort", onAbort, { once: true });
        scope.postMessage({
          type: "github",
          id,
          call,
          request,
          deadline,
          trace: tracer.active(),
        });
      });
    },
    forget(installation) {
      scope.postMessage({ type: "forget", id, installation });
    },
  };
}

/** The registry a module exports as `HANDLERS` (or as its default). */
async function loadRegistry(module: string): Promise<HandlerRegistry> {
  const mod = await import(module);
  const found = mod.HANDLERS ?? mod.default;
  if (typeof found !== "object" || found === null) {
    throw new Error(`${module} exports no HANDLERS registry`);
  }
  return found as HandlerRegistry;
}

async function run(
  id: number,
  module: string,
  level: LogLevel,
  hasApp: boolean,
  job: HandlerJob,
) {
  const controller = new AbortController();
  state.current = { id, controller };
  let result: DispatchResult;
  try {
    state.registry ??= loadRegistry(module);
    const handlers = await state.registry;
    result = await runHandlerJob(job, jobLogger(id, level, {}), {
      registry: handlers,
      deadlines,
      signal: controller.signal,
      github: githubHost(id, hasApp),
      tracer,
    });
  } catch (err) {
    state.registry = null;
    result = {
      outcome: "error",
      ms: 0,
      error: "could not load the handlers: " + describeError(err),
      handler: LOAD_STEP,
    };
  }
  state.current = null;
  scope.postMessage({ type: "result", id, result });
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "run") {
    const { id, module, level, hasApp, job } = message;
    void run(id, module, level, hasApp, job);
  } else if (message.type === "github-result") {
    const resolve = state.calls.get(message.call);
    state.calls.delete(message.call);
    resolve?.(message.result);
  } else if (state.current?.id === message.id) {
    state.current.controller.abort(new Error(message.reason));
  }
};

// What escapes a handler's promise is contained here, never in the server.
scope.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const reason = (event as PromiseRejectionEvent).reason;
  post(state.current?.id ?? null, "error", "unhandled rejection in a handler", {
    error: describeError(reason),
  });
});
scope.addEventListener("error", (event) => {
  event.preventDefault();
  const error = event as ErrorEvent;
  post(state.current?.id ?? null, "error", "uncaught exception in a handler", {
    error: describeError(error.error ?? error.message),
  });
});

// `Deno.exit` ends only this isolate; say so first, so the attempt's error
// names it instead of waiting for the deadline.
const exit = Deno.exit;
Object.defineProperty(Deno, "exit", {
  configurable: true,
  value: (code?: number): never => {
    scope.postMessage({
      type: "exit",
      id: state.current?.id ?? null,
      code: code ?? 0,
    });
    return exit(code);
  },
});

// Nor does `close()`: without a word, the pool would wait out the next run's
// deadline on an isolate that is gone.
const close = (globalThis as unknown as { close: () => void }).close;
Object.defineProperty(globalThis, "close", {
  configurable: true,
  value: (): void => {
    scope.postMessage({ type: "closed", id: state.current?.id ?? null });
    close();
  },
});
