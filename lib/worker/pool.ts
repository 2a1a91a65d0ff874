/**
 * A small pool of Worker isolates that run handler jobs (`isolate.ts`), one
 * job per isolate at a time, so that no handler — a synchronous loop, a
 * hang, `Deno.exit`, a thrown timer — can delay a 202, stall another
 * delivery or end the receiver. The worker (`worker.ts`) bounds how many
 * jobs run at once; the pool keeps that many isolates at most, starting
 * them as needed and keeping them for the next job.
 *
 * A run still going at its deadline (`HANDLER_TIMEOUT_MS` and a grace) is
 * ended by terminating its isolate, which is replaced; so is an isolate whose
 * run timed out (what the handler left running is ended with it), or whose
 * handler called `Deno.exit`. A shutdown aborts a run's signal first, then
 * terminates the isolate after half the grace.
 *
 * One V8 limit remains: running out of heap inside a Worker ends the whole
 * process. Attempts are counted when a run is leased (`store/lifecycle.ts`),
 * so such a delivery ends `dead` after `MAX_ATTEMPTS` restarts.
 *
 * @module
 */

import type { DispatchResult } from "../dispatch.ts";
import { LOG_LEVELS, type Logger, type LogLevel } from "../ops/log.ts";
import { describeError } from "../_util/errors.ts";
import type { Deadlines } from "../_util/deadline.ts";
import type { FromIsolate, ToIsolate } from "./isolate.ts";
import type { HandlerJob, HandlerRunner } from "./run.ts";
import { createTracer, type Tracer } from "../ops/tracing.ts";
import { type GitHubHost, NO_GITHUB } from "../github/client.ts";

/** How long a run may go past its timeout before its isolate is terminated. */
const GRACE_MS = 1000;

/** Options of {@link createPool}. */
export interface PoolOptions {
  /** The module exporting the `HANDLERS` registry (a URL). */
  module: string;
  /** Most isolates kept (the worker's `MAX_CONCURRENCY`). */
  size: number;
  /** The app's shared deadlines. */
  deadlines: Deadlines;
  /** Where lines that belong to no run go (an isolate that failed). */
  log: Logger;
  /** How long past its timeout a run is ended by force. @default 1000 */
  graceMs?: number;
  /** `LOG_LEVEL`: handlers' lines below it are dropped in the isolate. @default "debug" */
  logLevel?: LogLevel;
  /** Performs the handlers' `ctx.github` calls. @default none: they fail */
  github?: GitHubHost;
  /**
   * Runs each `ctx.github` call inside the span of the handler that made it.
   * @default Deno's, when `OTEL_DENO=true`
   */
  tracer?: Tracer;
}

/** The run an isolate is busy with. */
interface Job {
  id: number;
  log: Logger;
  started: number;
  /** When its handlers' time is up, in ms since the epoch. */
  deadlineAt: number;
  timeoutMs: number;
  /** `ctx.github` calls in flight, aborted when the run ends. */
  calls: Map<number, AbortController>;
  resolve: (result: DispatchResult) => void;
  /** Cancels the forced end (deadline, abort listener). */
  cancel: () => void;
}

/** One Worker isolate and the run it is busy with. */
interface Slot {
  worker: Worker;
  job: Job | null;
}

/** Everything the pool changes, in one place. */
interface PoolState {
  idle: Slot[];
  busy: Set<Slot>;
  nextId: number;
  closed: boolean;
}

const OUTCOMES = new Set(["ok", "skipped", "error", "timeout"]);

/**
 * A message from an isolate, checked: null when it is not one `isolate.ts`
 * sends (a handler posting with the global `postMessage`).
 *
 * @example
 * ```ts
 * import { readMessage } from "./pool.ts";
 * readMessage({ type: "exit", id: 1, code: 3 })?.type; // "exit"
 * readMessage({ type: "log", id: 1, level: "loud", msg: "x", fields: {} }); // null
 * readMessage(null); // null
 * ```
 */
export function readMessage(data: unknown): FromIsolate | null {
  if (typeof data !== "object" || data === null) return null;
  const m = data as Record<string, unknown>;
  const id = m.id === null || typeof m.id === "number";
  switch (m.type) {
    case "log":
      return id && (LOG_LEVELS as readonly unknown[]).includes(m.level) &&
          typeof m.msg === "string" && typeof m.fields === "object" &&
          m.fields !== null
        ? data as FromIsolate
        : null;
    case "result": {
      const r = m.result as Record<string, unknown> | null;
      return typeof m.id === "number" && typeof r === "object" && r !== null &&
          OUTCOMES.has(r.outcome as string) && typeof r.ms === "number" &&
          (r.outcome === "ok" || r.outcome === "skipped" ||
            (typeof r.error === "string" && typeof r.handler === "string")) &&
          (r.runs === undefined || validRuns(r.runs))
        ? data as FromIsolate
        : null;
    }
    case "exit":
      return id && typeof m.code === "number" ? data as FromIsolate : null;
    case "closed":
      return id ? data as FromIsolate : null;
    case "github": {
      const r = m.request as Record<string, unknown> | null;
      return typeof m.id === "number" && typeof m.call === "number" &&
          typeof m.deadline === "number" && typeof r === "object" &&
          r !== null && (r.kind === "request" || r.kind === "paginate") &&
          typeof r.route === "string" && (r.as === "installation" ||
            r.as === "app")
        ? data as FromIsolate
        : null;
    }
    case "github-abort":
      return typeof m.id === "number" && typeof m.call === "number"
        ? data as FromIsolate
        : null;
    case "forget":
      return typeof m.id === "number" && Number.isSafeInteger(m.installation)
        ? data as FromIsolate
        : null;
    default:
      return null;
  }
}

/** Whether an isolate's `runs` are what `runHandlers` reports. */
function validRuns(runs: unknown): boolean {
  return Array.isArray(runs) && runs.length <= 1000 &&
    runs.every((r) =>
      typeof r === "object" && r !== null && typeof r.handler === "string" &&
      r.handler.length <= 200 && OUTCOMES.has(r.result) &&
      r.result !== "skipped" && typeof r.ms === "number"
    );
}

/**
 * The result of a run the pool ended itself.
 *
 * @example
 * ```ts
 * import { forcedResult } from "./pool.ts";
 * forcedResult("timeout", "handler timed out", 12).outcome; // "timeout"
 * ```
 */
export function forcedResult(
  outcome: "error" | "timeout",
  error: string,
  ms: number,
): DispatchResult {
  return { outcome, ms, error, handler: "(isolate)" };
}

/**
 * Creates the pool: a {@link HandlerRunner} whose jobs run in Worker
 * isolates. Isolates start on first use; {@link HandlerRunner.close}
 * terminates them all.
 *
 * @example
 * ```ts ignore
 * const runner = createPool({ module: new URL("../handlers/mod.ts", import.meta.url).href, size: 8, deadlines, log });
 * const result = await runner.run(job, log, signal);
 * await runner.close();
 * ```
 */
export function createPool(options: PoolOptions): HandlerRunner & {
  /** Starts isolates ahead of the first jobs, up to the pool's size. */
  warm(n: number): void;
  /** Isolates alive now. */
  readonly isolates: number;
} {
  const { module, size, deadlines, log } = options;
  const graceMs = options.graceMs ?? GRACE_MS;
  const level = options.logLevel ?? "debug";
  const github = options.github ?? NO_GITHUB;
  const tracer = options.tracer ?? createTracer();
  const state: PoolState = {
    idle: [],
    busy: new Set(),
    nextId: 1,
    closed: false,
  };

  function spawn(): Slot {
    // Its messages arrive in the context it was made in: never a delivery's.
    const worker = tracer.detached(() =>
      new Worker(new URL("./isolate.ts", import.meta.url), {
        type: "module",
        name: "hookgate handlers",
      })
    );
    const slot: Slot = { worker, job: null };
    worker.onmessage = (event: MessageEvent<unknown>) => {
      // A handler can post anything with the global postMessage: what is
      // not one of ours ends its run, and nothing it sends can throw here.
      const message = readMessage(event.data);
      if (message === null) {
        end(slot, "error", "a handler posted a message of its own to the pool");
        return;
      }
      try {
        onMessage(slot, message);
      } catch (err) {
        end(
          slot,
          "error",
          "a message from the handler Worker failed: " +
            describeError(err),
        );
      }
    };
    worker.onerror = (event) => {
      // The isolate contains handler errors; this is one it could not.
      event.preventDefault();
      end(slot, "error", "the handler Worker failed: " + event.message);
    };
    return slot;
  }

  function onMessage(slot: Slot, message: FromIsolate) {
    const job = slot.job;
    if (message.type === "log") {
      const logger = job && job.id === message.id ? job.log : log;
      // In the handler's span, so that Deno's export of the line names it too.
      tracer.within(
        message.trace,
        () => logger[message.level](message.msg, message.fields),
      );
    } else if (message.type === "result") {
      if (!job || job.id !== message.id) return;
      finish(slot, message.result);
      if (message.result.outcome === "timeout") retire(slot);
      else release(slot);
    } else if (message.type === "github") {
      if (job && job.id === message.id) perform(slot, job, message);
    } else if (message.type === "github-abort") {
      job?.calls.get(message.call)?.abort();
    } else if (message.type === "forget") {
      github.forget(message.installation);
    } else if (message.type === "exit") {
      end(slot, "error", `a handler called Deno.exit(${message.code})`);
    } else {
      end(slot, "error", "a handler closed its Worker (close())");
    }
  }

  /** Performs a run's `ctx.github` call and posts the answer back. */
  function perform(
    slot: Slot,
    job: Job,
    message: Extract<FromIsolate, { type: "github" }>,
  ) {
    const controller = new AbortController();
    job.calls.set(message.call, controller);
    // No later than the run's own deadline, whatever the isolate says.
    const deadline = Math.min(message.deadline, job.deadlineAt);
    void tracer.within(
      message.trace,
      () => github.perform(message.request, controller.signal, deadline),
    ).then(
      (result) => {
        job.calls.delete(message.call);
        // Posted even when the run has ended: the isolate forgets the call.
        if (state.busy.has(slot) || state.idle.includes(slot)) {
          slot.worker.postMessage(
            {
              type: "github-result",
              call: message.call,
              result,
            } satisfies ToIsolate,
          );
        }
      },
    );
  }

  /** Resolves the slot's run with `result`. */
  function finish(slot: Slot, result: DispatchResult) {
    const job = slot.job;
    if (!job) return;
    slot.job = null;
    job.cancel();
    for (const call of job.calls.values()) call.abort();
    job.resolve(result);
  }

  /** Ends the slot's run (if any) with an error and replaces the isolate. */
  function end(slot: Slot, outcome: "error" | "timeout", error: string) {
    const job = slot.job;
    if (job) {
      finish(
        slot,
        forcedResult(outcome, error, performance.now() - job.started),
      );
    }
    retire(slot);
  }

  function retire(slot: Slot) {
    slot.worker.terminate();
    state.busy.delete(slot);
    const at = state.idle.indexOf(slot);
    if (at !== -1) state.idle.splice(at, 1);
  }

  function release(slot: Slot) {
    state.busy.delete(slot);
    if (state.closed || state.idle.length >= size) slot.worker.terminate();
    else state.idle.push(slot);
  }

  function run(
    job: HandlerJob,
    jobLog: Logger,
    signal: AbortSignal,
  ): Promise<DispatchResult> {
    if (state.closed) {
      return Promise.resolve(
        forcedResult("error", "the handler pool is closed", 0),
      );
    }
    const slot = state.idle.pop() ?? spawn();
    state.busy.add(slot);
    const id = state.nextId++;
    return new Promise((resolve) => {
      let cancelForce = deadlines.after(
        job.timeoutMs + graceMs,
        () =>
          end(
            slot,
            "timeout",
            `handler timed out after ${job.timeoutMs} ms and did not stop; its Worker was terminated`,
          ),
      );
      const onAbort = () => {
        const reason = signal.reason instanceof Error
          ? signal.reason.message
          : String(signal.reason);
        slot.worker.postMessage(
          { type: "abort", id, reason } satisfies ToIsolate,
        );
        cancelForce();
        // Half the grace: the worker's drain waits a whole one for outcomes.
        cancelForce = deadlines.after(
          graceMs / 2,
          () => end(slot, "error", `${reason}; its Worker was terminated`),
        );
      };
      slot.job = {
        id,
        log: jobLog,
        started: performance.now(),
        deadlineAt: Date.now() + job.timeoutMs,
        timeoutMs: job.timeoutMs,
        calls: new Map(),
        resolve,
        cancel: () => {
          cancelForce();
          signal.removeEventListener("abort", onAbort);
        },
      };
      // The body is copied; the payload is parsed on the isolate's side.
      const { payload: _parsed, ...data } = job;
      slot.worker.postMessage(
        {
          type: "run",
          id,
          module,
          level,
          hasApp: github.hasApp,
          job: data,
        } satisfies ToIsolate,
      );
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  return {
    run,
    warm(n) {
      while (!state.closed && state.idle.length < Math.min(n, size)) {
        state.idle.push(spawn());
      }
    },
    get isolates() {
      return state.idle.length + state.busy.size;
    },
    close() {
      state.closed = true;
      for (const slot of [...state.busy]) {
        end(slot, "error", "the server stopped; its Worker was terminated");
      }
      for (const slot of state.idle.splice(0)) slot.worker.terminate();
      return Promise.resolve();
    },
  };
}
