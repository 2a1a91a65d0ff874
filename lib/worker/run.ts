/**
 * Running one leased delivery: its body (from the accepting request's memory,
 * or read back from the store), handed to a {@link HandlerRunner} as plain
 * data, to a result. It records nothing: `outcome.ts` commits the result.
 *
 * What runs the handlers themselves — decoding the payload, the context, the
 * routing to `event` / `event.action` / `*`, the timeout — is one function,
 * {@link runHandlerJob}, whose input ({@link HandlerJob}) and output
 * (`DispatchResult`) are plain data, so that it runs on the far side of a
 * `postMessage`: in production in a Worker isolate (`pool.ts`,
 * `isolate.ts`), where no handler can stall or end the accepting process;
 * {@link createInlineRunner} runs it on this event loop (tests, and hosts
 * without Workers).
 *
 * @module
 */

import {
  type DispatchResult,
  type HandlerRegistry,
  runHandlers,
} from "../dispatch.ts";
import type { Logger } from "../ops/log.ts";
import type { Deadlines } from "../_util/deadline.ts";
import { describeError } from "../_util/errors.ts";
import { type BodyKind, decodePayload, payloadJson } from "../http/payload.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import type { GitHubHost } from "../github/client.ts";
import { goneInstallation, installationOf } from "../github/refs.ts";
import { endTargetSpan, NO_TRACER, type Tracer } from "../ops/tracing.ts";
import type { ScriptJob, ScriptRun, ScriptRunner } from "./scripts.ts";
import {
  forwardDelivery,
  forwardName,
  type ForwardReport,
  type ForwardStage,
  signForward,
} from "./forward.ts";

/** What the accepting request already holds of a delivery (the fast path). */
export interface LocalDelivery {
  /** The raw body bytes. */
  body: Uint8Array<ArrayBuffer>;
  /** The payload, when the receiver already parsed it (small bodies). */
  payload?: Record<string, unknown> | undefined;
}

/** One run of a delivery's handlers, as plain (structured-cloneable) data. */
export interface HandlerJob {
  /** `X-GitHub-Event`. */
  event: string;
  /** `payload.action`, when present. */
  action: string | undefined;
  /** `X-GitHub-Delivery`. */
  delivery: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The raw body bytes, decoded where the handlers run. */
  body: Uint8Array;
  /** How the body is encoded. */
  kind: BodyKind;
  /** The payload already parsed, when the runner is on this event loop. */
  payload?: unknown;
  /** `HANDLER_TIMEOUT_MS`, for each handler. */
  timeoutMs: number;
  /** The run's span as a W3C `traceparent`: the handlers' spans' parent. */
  trace?: string | undefined;
}

/**
 * Where handlers run: what is not data and belongs to that place (in a
 * Worker isolate it is built there: its registry, its deadlines, a signal
 * aborted by a message).
 */
export interface HandlerHost {
  registry: HandlerRegistry;
  /** Handler timeouts share these. */
  deadlines: Deadlines;
  /** Aborts every handler early (shutdown). */
  signal: AbortSignal;
  /** Where `ctx.github`'s calls go. @default none: they fail, saying so */
  github?: GitHubHost | undefined;
  /** A span per handler. @default none */
  tracer?: Tracer | undefined;
}

/** The step a result is attributed to when the payload cannot be decoded. */
export const LOAD_STEP = "(load)";

/**
 * Runs the handlers of one job, each bounded by its timeout: plain data in,
 * plain data out, and it never rejects. A body that does not decode is an
 * `error` of the {@link LOAD_STEP}. `log` is the delivery's logger on the
 * host's side (in an isolate, one posting its lines back).
 *
 * @example
 * ```ts
 * import { runHandlerJob } from "./run.ts";
 * import { createDeadlines } from "../_util/deadline.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const job = {
 *   event: "ping", action: undefined, delivery: "d1", attempt: 1,
 *   body: new TextEncoder().encode("{}"), kind: "json", timeoutMs: 1000,
 * } as const;
 * const host = { registry: { ping: { default() {} } }, deadlines: createDeadlines(), signal: new AbortController().signal };
 * (await runHandlerJob(job, NULL_LOGGER, host)).outcome; // "ok"
 * ```
 */
export async function runHandlerJob(
  job: HandlerJob,
  log: Logger,
  host: HandlerHost,
): Promise<DispatchResult> {
  const start = performance.now();
  let payload = job.payload;
  if (payload === undefined) {
    const decoded = decodePayload(job.body, job.kind);
    if (!decoded.ok) {
      return {
        outcome: "error",
        ms: performance.now() - start,
        error: decoded.message,
        handler: LOAD_STEP,
      };
    }
    payload = decoded.payload;
  }
  const tracer = host.tracer ?? NO_TRACER;
  const result = await tracer.within(job.trace, () =>
    runHandlers({
      registry: host.registry,
      event: job.event,
      action: job.action,
      delivery: job.delivery,
      attempt: job.attempt,
      payload,
      log,
      timeoutMs: job.timeoutMs,
      deadlines: host.deadlines,
      signal: host.signal,
      tracer,
      ...(host.github ? { github: host.github } : {}),
    }));
  // An installation deleted or suspended: its cached token is of no use.
  const gone = goneInstallation(job.event, job.action, payload);
  if (gone !== undefined) host.github?.forget(gone);
  return result;
}

/**
 * Runs handler jobs somewhere: on this event loop ({@link createInlineRunner})
 * or in Worker isolates (`pool.ts`). `run` never rejects; `signal` aborts the
 * run (a shutdown).
 */
export interface HandlerRunner {
  run(
    job: HandlerJob,
    log: Logger,
    signal: AbortSignal,
  ): Promise<DispatchResult>;
  /** Ends whatever the runner holds (Workers); runs in progress end as errors. */
  close(): Promise<void>;
  /** Gets `n` places ready ahead of the first jobs (isolates). */
  warm?(n: number): void;
}

/**
 * A runner on this event loop: the handlers share the accepting process's
 * isolate, so a synchronous loop in one stalls everything. For tests and for
 * hosts without Workers (Deno Deploy).
 *
 * @example
 * ```ts
 * import { createInlineRunner } from "./run.ts";
 * import { createDeadlines } from "../_util/deadline.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const runner = createInlineRunner({ ping: { default() {} } }, createDeadlines());
 * const job = {
 *   event: "ping", action: undefined, delivery: "d1", attempt: 1,
 *   body: new TextEncoder().encode("{}"), kind: "json", timeoutMs: 1000,
 * } as const;
 * (await runner.run(job, NULL_LOGGER, new AbortController().signal)).outcome; // "ok"
 * ```
 */
export function createInlineRunner(
  registry: HandlerRegistry,
  deadlines: Deadlines,
  github?: GitHubHost,
  tracer?: Tracer,
): HandlerRunner {
  return {
    run: (job, log, signal) =>
      runHandlerJob(job, log, { registry, deadlines, signal, github, tracer }),
    close: () => Promise.resolve(),
  };
}

/** Hook scripts (`HOOKS_DIR`), run after a delivery's handlers. */
export interface ScriptStage {
  /** The folder the scripts are looked up in. */
  dir: string;
  runner: ScriptRunner;
  /**
   * The token `ctx.github` would use for `installation` (the scripts'
   * `GITHUB_TOKEN`), undefined when there is none; rejects when it cannot
   * be minted.
   */
  token(
    installation: number | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined>;
}

/** What one run of a delivery came to: its handlers' result, then its scripts'. */
export type RunResult = DispatchResult & {
  /** The reports of the hook scripts that ran, in order. */
  scripts?: ScriptRun[];
  /** The reports of the forward targets that ran, in `FORWARD_URLS` order. */
  forwards?: ForwardReport[];
  /**
   * The targets that succeeded in this attempt ({@link HANDLERS_TARGET},
   * `forward:<host>`), when there are forward targets: a retry skips them.
   */
  settled?: string[];
};

/** The name the handlers and scripts stage is settled under. */
export const HANDLERS_TARGET = "handlers";

/** What {@link runDelivery} needs beside the delivery: one per worker. */
export interface RunContext {
  store: DeliveryStore;
  runner: HandlerRunner;
  /** `HANDLER_TIMEOUT_MS`. */
  timeoutMs: number;
  /** Aborts every run early (shutdown). */
  signal: AbortSignal;
  /** Hook scripts, when `HOOKS_DIR` is set. */
  scripts?: ScriptStage | undefined;
  /** Forward targets, when `FORWARD_URLS` is set. */
  forwards?: ForwardStage | undefined;
  /** A span per forward; the handlers' spans are children of the active one. @default none */
  tracer?: Tracer | undefined;
}

/**
 * Folds the scripts' reports into the handlers' result: the attempt fails
 * with the first script that failed (a timeout when it ran out of time); a
 * delivery no handler took is not `skipped` when a script ran.
 *
 * @example
 * ```ts
 * import { withScripts } from "./run.ts";
 * const run = { handler: "push", ok: true, exitCode: 0, signal: null, timedOut: false, ms: 5, output: new Uint8Array() };
 * withScripts({ outcome: "skipped", ms: 1 }, [run]).outcome; // "ok"
 * ```
 */
export function withScripts(
  result: DispatchResult,
  scripts: ScriptRun[],
): RunResult {
  if (scripts.length === 0) return result;
  const ms = result.ms + scripts.reduce((sum, run) => sum + run.ms, 0);
  const failed = scripts.find((run) => !run.ok);
  if (failed) {
    return {
      outcome: failed.timedOut ? "timeout" : "error",
      ms,
      error: `script ${failed.handler}: ${failed.error ?? "failed"}`,
      handler: failed.handler,
      ...(result.runs ? { runs: result.runs } : {}),
      scripts,
    };
  }
  return { ...result, outcome: "ok", ms, scripts };
}

/**
 * Runs the hook scripts of a delivery whose handlers succeeded (or that no
 * handler took): looked up for this delivery, each given the token. Never
 * rejects.
 */
async function runScripts(
  job: HandlerJob,
  result: DispatchResult,
  stage: ScriptStage,
  signal: AbortSignal,
): Promise<RunResult> {
  if (result.outcome === "error" || result.outcome === "timeout") return result;
  const decoded = job.payload !== undefined
    ? { ok: true as const, payload: job.payload as Record<string, unknown> }
    : decodePayload(job.body, job.kind);
  const json = payloadJson(job.body, job.kind);
  if (!decoded.ok || json === null) return result;
  let token: string | undefined;
  const getToken = async () =>
    token = await stage.token(installationOf(decoded.payload), signal);
  const scriptJob: ScriptJob = {
    event: job.event,
    action: job.action,
    delivery: job.delivery,
    attempt: job.attempt,
    json,
    payload: decoded.payload,
  };
  const runs = await stage.runner.run(scriptJob, getToken, signal);
  if (token !== undefined) {
    for (const run of runs) run.output = redact(run.output, token);
  }
  return withScripts(result, runs);
}

/** What a redacted secret is replaced with in kept output. */
export const REDACTED = "[redacted]";

/**
 * `output` with every occurrence of `secret` replaced by {@link REDACTED}:
 * a script that prints its `GITHUB_TOKEN` does not leave it in the record,
 * the admin API or the dashboard.
 *
 * @example
 * ```ts
 * import { redact } from "./run.ts";
 * const out = new TextEncoder().encode("token=ghs_abc!");
 * new TextDecoder().decode(redact(out, "ghs_abc")); // "token=[redacted]!"
 * const cut = new TextEncoder().encode("_abc and more");
 * new TextDecoder().decode(redact(cut, "ghs_abc")); // "[redacted] and more"
 * ```
 */
export function redact(output: Uint8Array, secret: string): Uint8Array {
  const needle = new TextEncoder().encode(secret);
  if (needle.length === 0) return output;
  const mark = new TextEncoder().encode(REDACTED);
  const parts: Uint8Array[] = [];
  // The kept tail may begin inside the secret: its end goes too.
  const cut = tailOverlap(output, needle);
  if (cut > 0) parts.push(mark);
  let from = cut;
  for (let i = output.indexOf(needle[0]!, from); i !== -1;) {
    if (startsAt(output, needle, i)) {
      parts.push(output.subarray(from, i), mark);
      from = i + needle.length;
      i = output.indexOf(needle[0]!, from);
    } else i = output.indexOf(needle[0]!, i + 1);
  }
  if (parts.length === 0) return output;
  parts.push(output.subarray(from));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether `needle` is at `at` in `bytes`. */
function startsAt(bytes: Uint8Array, needle: Uint8Array, at: number): boolean {
  if (at + needle.length > bytes.length) return false;
  for (let j = 0; j < needle.length; j++) {
    if (bytes[at + j] !== needle[j]) return false;
  }
  return true;
}

/**
 * How many bytes `output` starts with that end `needle` (4 or more, fewer
 * than all of it): a secret cut by the start of the kept tail.
 */
function tailOverlap(output: Uint8Array, needle: Uint8Array): number {
  for (let k = Math.min(needle.length - 1, output.length); k >= 4; k--) {
    if (startsAt(output, needle.subarray(needle.length - k), 0)) return k;
  }
  return 0;
}

/**
 * Folds the forward reports into the result of the handlers and scripts:
 * the attempt fails with the first target that failed (a timeout when it
 * ran out of time); a delivery no handler took is not `skipped` when it was
 * forwarded. `settled` names what succeeded in this attempt.
 *
 * @example
 * ```ts
 * import { withForwards } from "./run.ts";
 * const failed = { handler: "forward:staging.test", ok: false, status: 500, ms: 4, timedOut: false, error: "answered 500" };
 * const result = withForwards({ outcome: "ok", ms: 1 }, [failed], ["handlers"]);
 * result.outcome; // "error"
 * result.settled; // ["handlers"]
 * ```
 */
export function withForwards(
  result: RunResult,
  forwards: ForwardReport[],
  settled: string[],
): RunResult {
  const ms = result.ms + forwards.reduce((sum, run) => sum + run.ms, 0);
  const failed = forwards.find((run) => !run.ok);
  if (result.outcome === "error" || result.outcome === "timeout") {
    return { ...result, ms, forwards, settled };
  }
  if (failed) {
    return {
      ...result,
      outcome: failed.timedOut ? "timeout" : "error",
      ms,
      error: `${failed.handler}: ${failed.error ?? "failed"}`,
      handler: failed.handler,
      forwards,
      settled,
    };
  }
  const outcome = result.outcome === "skipped" && forwards.length === 0
    ? "skipped"
    : "ok";
  return { ...result, outcome, ms, forwards, settled };
}

/**
 * Sends the delivery to each forward target not settled in an earlier
 * attempt (all at once), after a handlers stage that came to `result`
 * (whether it ran now or was settled before). Never rejects.
 */
async function runForwards(
  record: DeliveryRecord,
  body: Uint8Array,
  result: RunResult,
  stage: ForwardStage,
  context: RunContext,
): Promise<RunResult> {
  const before = new Set(record.settled ?? []);
  const settled = result.outcome === "ok" || result.outcome === "skipped"
    ? [HANDLERS_TARGET]
    : [];
  const targets = stage.targets.filter((t) => !before.has(forwardName(t)));
  const bytes = body.buffer instanceof ArrayBuffer
    ? body as Uint8Array<ArrayBuffer>
    : new Uint8Array(body);
  const signatures = targets.length > 0
    ? await signForward(stage.keys, bytes)
    : { sha256: "", sha1: "" };
  const tracer = context.tracer ?? NO_TRACER;
  const forwards = await Promise.all(targets.map((target) =>
    tracer.inSpan(
      "hookgate.forward",
      { "hookgate.handler": forwardName(target) },
      async (span) => {
        const report = await forwardDelivery({
          target,
          body: bytes,
          headers: record.headers,
          signatures,
          timeoutMs: context.timeoutMs,
          signal: context.signal,
          ...(stage.fetch ? { fetch: stage.fetch } : {}),
        });
        endTargetSpan(span, report);
        return report;
      },
    )
  ));
  for (const run of forwards) if (run.ok) settled.push(run.handler);
  return withForwards(result, forwards, settled);
}

/**
 * Runs one leased delivery to a result: its handlers, then (`HOOKS_DIR`)
 * its hook scripts, then (`FORWARD_URLS`) its forward targets; a retry
 * skips what succeeded in an earlier attempt (`record.settled`). `local` carries what the accepting request already
 * holds, so that the durable fast path reads nothing back from KV. A body that cannot be read is an `error` of the
 * {@link LOAD_STEP}; it never rejects.
 */
export async function runDelivery(
  record: DeliveryRecord,
  local: LocalDelivery | undefined,
  log: Logger,
  context: RunContext,
): Promise<RunResult> {
  // The fast path runs from inside the accepting request: let its 202 go
  // out before the body is copied to the handlers (or, inline, parsed).
  if (local !== undefined) await new Promise((r) => setTimeout(r, 0));
  const start = performance.now();
  let body: Uint8Array;
  try {
    body = local?.body ?? await context.store.readBody(record);
  } catch (err) {
    return {
      outcome: "error",
      ms: performance.now() - start,
      error: describeError(err),
      handler: LOAD_STEP,
    };
  }
  const job: HandlerJob = {
    event: record.event,
    action: record.action,
    delivery: record.id,
    attempt: record.attempts,
    body,
    kind: record.kind,
    timeoutMs: context.timeoutMs,
    ...(local?.payload !== undefined ? { payload: local.payload } : {}),
    ...(context.tracer?.enabled ? { trace: context.tracer.active() } : {}),
  };
  const result = record.settled?.includes(HANDLERS_TARGET)
    ? { outcome: "ok" as const, ms: 0 }
    : await runHandlersAndScripts(job, log, context);
  if (context.forwards === undefined) return result;
  return await runForwards(record, body, result, context.forwards, context);
}

/** The handlers, then the hook scripts, of one job. */
async function runHandlersAndScripts(
  job: HandlerJob,
  log: Logger,
  context: RunContext,
): Promise<RunResult> {
  const result = await context.runner.run(job, log, context.signal);
  if (context.scripts === undefined) return result;
  return await runScripts(job, result, context.scripts, context.signal);
}
