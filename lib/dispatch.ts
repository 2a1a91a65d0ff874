/**
 * Routes one delivery to its handler functions: `*` (every event), the event
 * module's `default` export (every action) and its export named after the
 * action (`issues.ts` → `export function opened`). Knows nothing of HTTP, KV
 * or retries: it runs the handlers once and reports what happened.
 *
 * @module
 */

import { createDeadlines, type Deadlines } from "./_util/deadline.ts";
import {
  createGitHub,
  type GitHub,
  type GitHubHost,
  type GitHubTransport,
  NO_GITHUB,
} from "./github/client.ts";
import {
  installationOf,
  isBotSender,
  issueParams,
  pullRequestParams,
  type RepoParams,
  repoParams,
} from "./github/refs.ts";
import type { Logger } from "./ops/log.ts";
import { NO_TRACER, type Tracer } from "./ops/tracing.ts";
import { describeError } from "./_util/errors.ts";

/** What a handler is given for one attempt at one delivery. */
export interface HandlerContext<P = unknown> {
  /** `X-GitHub-Event`, e.g. `"pull_request"`. */
  event: string;
  /** `payload.action` when the payload has one, e.g. `"opened"`. */
  action: string | undefined;
  /** `X-GitHub-Delivery`. */
  delivery: string;
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: number;
  /** The parsed JSON payload. */
  payload: P;
  /** A logger already carrying the delivery id, event and action. */
  log: Logger;
  /** Fires when `HANDLER_TIMEOUT_MS` has passed or the server shuts down. */
  signal: AbortSignal;
  /**
   * GitHub's REST API, authenticated by hookgate: the delivery's
   * installation token (App), else `GITHUB_TOKEN`; `github.app` is the App
   * itself. Calls are aborted with {@link signal}.
   */
  github: GitHub;
  /** `{ owner, repo, ...extra }` from `payload.repository`. */
  repo<E extends object = Record<never, never>>(extra?: E): RepoParams<E>;
  /** {@link repo} with `issue_number`. */
  issue<E extends object = Record<never, never>>(
    extra?: E,
  ): RepoParams<{ issue_number: number } & E>;
  /** {@link repo} with `pull_number`. */
  pullRequest<E extends object = Record<never, never>>(
    extra?: E,
  ): RepoParams<{ pull_number: number } & E>;
  /** Whether `payload.sender.type` is `"Bot"`. */
  isBot: boolean;
}

/** A handler function; a thrown error or rejection marks the attempt failed. */
// deno-lint-ignore no-explicit-any
export type Handler<P = any> = (ctx: HandlerContext<P>) => void | Promise<void>;

/**
 * A handler module: `default` sees every action of its event, a named export
 * sees the action of that name.
 */
export type HandlerModule = { readonly [name: string]: unknown };

/** The static registry: event name (or `"*"`) → module. */
export type HandlerRegistry = Readonly<Record<string, HandlerModule>>;

/** What {@link createContext} builds a context from. */
export interface ContextInit<P> {
  event: string;
  action: string | undefined;
  delivery: string;
  attempt: number;
  payload: P;
  log: Logger;
  signal: AbortSignal;
  /** @default a client whose calls fail, saying no GitHub host is wired */
  github?: GitHub;
}

/**
 * A handler's context: the delivery's data, and the helpers computed from
 * its payload. What {@link runHandlers} gives each handler; tests of a
 * handler can build one too.
 *
 * @example
 * ```ts
 * import { createContext } from "./dispatch.ts";
 * import { NULL_LOGGER } from "./ops/log.ts";
 * const ctx = createContext({
 *   event: "issues", action: "opened", delivery: "d1", attempt: 1,
 *   payload: { issue: { number: 5 }, repository: { name: "r", owner: { login: "o" } } },
 *   log: NULL_LOGGER, signal: new AbortController().signal,
 * });
 * ctx.issue(); // { owner: "o", repo: "r", issue_number: 5 }
 * ```
 */
export function createContext<P>(init: ContextInit<P>): HandlerContext<P> {
  const { payload } = init;
  return {
    event: init.event,
    action: init.action,
    delivery: init.delivery,
    attempt: init.attempt,
    payload,
    log: init.log,
    signal: init.signal,
    github: init.github ??
      createGitHub({
        transport: noTransport,
        signal: init.signal,
        hasApp: false,
      }),
    repo: (extra) => repoParams(payload, extra),
    issue: (extra) => issueParams(payload, extra),
    pullRequest: (extra) => pullRequestParams(payload, extra),
    isBot: isBotSender(payload),
  };
}

/** Where no GitHub host is wired. */
const noTransport: GitHubTransport = (call, signal) =>
  NO_GITHUB.perform(call, signal, 0);

/** The handlers that apply to one delivery, in the order they run. */
export interface Route {
  /** `"*"`, `"push"`, `"issues.opened"`, … */
  name: string;
  handler: Handler;
}

/**
 * Lists the handlers for `event` / `action`: `*` first, then the event's
 * `default`, then the action's export.
 *
 * @example
 * ```ts
 * import { routeDelivery } from "./dispatch.ts";
 * const registry = { issues: { opened: () => {} } };
 * routeDelivery(registry, "issues", "opened").map((r) => r.name); // ["issues.opened"]
 * ```
 */
export function routeDelivery(
  registry: HandlerRegistry,
  event: string,
  action: string | undefined,
): Route[] {
  const routes: Route[] = [];
  const star = registry["*"];
  if (star && typeof star.default === "function") {
    routes.push({ name: "*", handler: star.default as Handler });
  }
  if (event === "*" || !Object.hasOwn(registry, event)) return routes;
  const mod = registry[event]!;
  if (typeof mod.default === "function") {
    routes.push({ name: event, handler: mod.default as Handler });
  }
  if (
    action !== undefined && action !== "default" && Object.hasOwn(mod, action)
  ) {
    const fn = mod[action];
    if (typeof fn === "function") {
      routes.push({ name: `${event}.${action}`, handler: fn as Handler });
    }
  }
  return routes;
}

/** True when some handler other than `*` exists for the delivery. */
export function hasEventHandler(routes: readonly Route[]): boolean {
  return routes.some((r) => r.name !== "*");
}

/** What one handler's run came to (`handler` is its {@link Route} name). */
export interface HandlerRun {
  handler: string;
  result: "ok" | "error" | "timeout";
  ms: number;
}

/**
 * The outcome of {@link runHandlers}, with a {@link HandlerRun} per handler
 * that ran (up to the one that failed).
 */
export type DispatchResult =
  & (
    | { outcome: "ok"; ms: number }
    | { outcome: "skipped"; ms: number }
    | {
      outcome: "error" | "timeout";
      ms: number;
      error: string;
      handler: string;
    }
  )
  & { runs?: HandlerRun[] };

/** Options of {@link runHandlers}. */
export interface RunOptions {
  registry: HandlerRegistry;
  event: string;
  action: string | undefined;
  delivery: string;
  attempt: number;
  payload: unknown;
  log: Logger;
  timeoutMs: number;
  /**
   * The app's shared deadlines (one interval for every run).
   * @default a set of its own for this run
   */
  deadlines?: Deadlines;
  /** Aborts every handler early (shutdown). */
  signal?: AbortSignal;
  /** Where `ctx.github`'s calls go. @default none: they fail, saying so */
  github?: GitHubHost;
  /** A span per handler, a child of the active span. @default none */
  tracer?: Tracer;
  now?: () => number;
}

/** Thrown into a handler's signal when `HANDLER_TIMEOUT_MS` passes. */
export class HandlerTimeoutError extends Error {
  /** @param ms the timeout that passed */
  constructor(ms: number) {
    super(`handler timed out after ${ms} ms`);
    this.name = "HandlerTimeoutError";
  }
}

/**
 * Runs every handler that applies, one after another, each bounded by
 * `timeoutMs`. A delivery with no event handler is `skipped` (the `*`
 * handler still runs). Never throws and never rejects.
 */
export async function runHandlers(
  options: RunOptions,
): Promise<DispatchResult> {
  const {
    registry,
    event,
    action,
    timeoutMs,
    now = performance.now.bind(performance),
  } = options;
  const start = now();
  const routes = routeDelivery(registry, event, action);
  const controller = new AbortController();
  // The error (and its stack trace) is made only when the time is up.
  let timeoutError: HandlerTimeoutError | undefined;
  const cancelDeadline = (options.deadlines ?? createDeadlines()).after(
    timeoutMs,
    () => {
      timeoutError = new HandlerTimeoutError(timeoutMs);
      controller.abort(timeoutError);
    },
  );
  const onOuterAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) controller.abort(options.signal.reason);
  else options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const host = options.github ?? NO_GITHUB;
  // Rate-limit waits must end before the handlers' deadline.
  const deadline = Date.now() + timeoutMs;
  const github = createGitHub({
    transport: (call, signal) => host.perform(call, signal, deadline),
    signal: controller.signal,
    installation: installationOf(options.payload),
    hasApp: host.hasApp,
  });
  const { payload } = options;
  const tracer = options.tracer ?? NO_TRACER;
  const runs: HandlerRun[] = [];
  try {
    for (const route of routes) {
      const began = now();
      const span = tracer.enabled
        ? tracer.start("hookgate.handler", {
          "hookgate.handler": route.name,
          "github.event": event,
          "github.action": action,
          "github.delivery": options.delivery,
          "hookgate.attempt": options.attempt,
        })
        : tracer.start("hookgate.handler");
      const ctx = createContext({
        event,
        action,
        delivery: options.delivery,
        attempt: options.attempt,
        payload,
        log: options.log.child({ handler: route.name }),
        signal: controller.signal,
        github,
      });
      try {
        await span.run(() =>
          raceAbort(() => route.handler(ctx), controller.signal)
        );
        runs.push({ handler: route.name, result: "ok", ms: now() - began });
        span.set({ "hookgate.outcome": "ok" });
      } catch (err) {
        const timedOut = timeoutError !== undefined &&
          controller.signal.reason === timeoutError;
        const outcome = timedOut ? "timeout" : "error";
        runs.push({ handler: route.name, result: outcome, ms: now() - began });
        const error = describeError(timedOut ? timeoutError : err);
        span.set({ "hookgate.outcome": outcome });
        // Not the error's text: it may quote the payload.
        span.fail(
          timedOut ? "timeout" : err instanceof Error ? err.name : "error",
        );
        return {
          outcome,
          ms: now() - start,
          error,
          handler: route.name,
          runs,
        };
      } finally {
        span.end();
      }
    }
    return {
      outcome: hasEventHandler(routes) ? "ok" : "skipped",
      ms: now() - start,
      runs,
    };
  } finally {
    cancelDeadline();
    options.signal?.removeEventListener("abort", onOuterAbort);
  }
}

/** Resolves with the handler, or rejects as soon as `signal` aborts. */
function raceAbort(
  run: () => void | Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve()
      .then(run)
      .then(
        () => resolve(),
        (err) => reject(err),
      )
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}
