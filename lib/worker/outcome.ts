/**
 * Recording what a run came to: the handler metrics, the record's next state
 * (computed by `store/lifecycle.ts`, committed through the store's group
 * commit, retried against a fresh read when the record changed meanwhile),
 * and one log line per outcome.
 *
 * It runs nothing and decides no status itself.
 *
 * @module
 */

import type { DispatchResult } from "../dispatch.ts";
import type { RunResult } from "./run.ts";
import type { RunToStore } from "../store/runs.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import {
  finishAttempt,
  holdsLease,
  INTERRUPTED_ERROR,
} from "../store/lifecycle.ts";
import type { BackoffOptions } from "../_util/backoff.ts";

/** Reads and commits tried before an outcome is given up (the lease then expires). */
const OUTCOME_TRIES = 6;

/**
 * Counts each handler, script and forward target that ran in `webhook_handler_runs_total`
 * and `webhook_handler_duration_seconds`, labelled with its name (nothing
 * when no handler ran: skipped). A run ended before any handler reported
 * (its isolate ended, its body did not load) counts once, under the step
 * that failed.
 *
 * @example
 * ```ts
 * import { countRun } from "./outcome.ts";
 * import { createMetrics } from "../ops/metrics.ts";
 * const metrics = createMetrics();
 * countRun(metrics, "push", { outcome: "ok", ms: 12, runs: [{ handler: "push", result: "ok", ms: 12 }] });
 * metrics.value("webhook_handler_runs_total", { event: "push", handler: "push", result: "ok" }); // 1
 * ```
 */
export function countRun(
  metrics: Metrics | undefined,
  event: string,
  result: RunResult,
): void {
  if (!metrics) return;
  const count = (handler: string, outcome: string, ms: number) => {
    metrics.inc("webhook_handler_runs_total", {
      event,
      handler,
      result: outcome,
    });
    metrics.observe("webhook_handler_duration_seconds", ms / 1000, {
      event,
      handler,
    });
  };
  const runs = result.runs ?? [];
  for (const run of runs) count(run.handler, run.result, run.ms);
  for (const run of [...result.scripts ?? [], ...result.forwards ?? []]) {
    count(
      run.handler,
      run.ok ? "ok" : run.timedOut ? "timeout" : "error",
      run.ms,
    );
  }
  const reported = runs.length + (result.scripts?.length ?? 0);
  if (reported === 0 && unreported(result)) {
    count(result.handler, result.outcome, result.ms);
  }
}

/** The statuses an attempt can leave a delivery in that are counted. */
const COUNTED = new Set(["done", "failed", "dead", "skipped"]);

/**
 * Counts the status an attempt left a delivery in, in
 * `webhook_delivery_outcomes_total` (done, failed, dead or skipped; a run
 * queued again by a shutdown or a replay is not an outcome). The event's
 * `dead` series is shown from its first outcome on, at 0 until one dies.
 *
 * @example
 * ```ts
 * import { countOutcome } from "./outcome.ts";
 * import { createMetrics } from "../ops/metrics.ts";
 * import type { DeliveryRecord } from "../store/types.ts";
 * const metrics = createMetrics();
 * countOutcome(metrics, { event: "push", status: "dead" } as DeliveryRecord);
 * metrics.value("webhook_delivery_outcomes_total", { event: "push", status: "dead" }); // 1
 * ```
 */
export function countOutcome(
  metrics: Metrics | undefined,
  record: DeliveryRecord,
): void {
  if (!metrics || !COUNTED.has(record.status)) return;
  const name = "webhook_delivery_outcomes_total";
  metrics.inc(name, { event: record.event, status: record.status });
  // The dead series exists (at 0) from the event's first outcome on, so that
  // `increase()` sees the first dead delivery of a process too.
  if (record.status !== "dead") {
    metrics.inc(name, { event: record.event, status: "dead" }, 0);
  }
}

/**
 * Whether `result` failed in a step no report names (its isolate ended, its
 * body did not load): not a forward target, which reports itself.
 */
function unreported(result: RunResult): result is RunResult & {
  outcome: "error" | "timeout";
  handler: string;
  error: string;
} {
  if (result.outcome !== "error" && result.outcome !== "timeout") return false;
  return !result.forwards?.some((run) => run.handler === result.handler);
}

/**
 * The run reports of one attempt, as the store keeps them (`store/runs.ts`):
 * each handler that ran, then each script with its exit and output, then
 * each forward target with its HTTP status.
 *
 * @example
 * ```ts
 * import { reportsOf } from "./outcome.ts";
 * reportsOf({ outcome: "ok", ms: 3, runs: [{ handler: "push", result: "ok", ms: 3 }] });
 * // [{ handler: "push", kind: "handler", ok: true, ms: 3 }]
 * ```
 */
export function reportsOf(result: RunResult): RunToStore[] {
  const reports: RunToStore[] = (result.runs ?? []).map((run) => ({
    handler: run.handler,
    kind: "handler",
    ok: run.result === "ok",
    ms: Math.round(run.ms),
    ...(run.result !== "ok" && "error" in result &&
        result.handler === run.handler
      ? { error: result.error }
      : {}),
  }));
  if (reports.length === 0 && unreported(result)) {
    reports.push({
      handler: result.handler,
      kind: "handler",
      ok: false,
      ms: Math.round(result.ms),
      error: result.error,
    });
  }
  for (const run of result.scripts ?? []) {
    reports.push({
      handler: run.handler,
      kind: "script",
      ok: run.ok,
      ms: Math.round(run.ms),
      exitCode: run.exitCode,
      signal: run.signal,
      ...(run.error !== undefined ? { error: run.error } : {}),
      output: run.output,
    });
  }
  for (const run of result.forwards ?? []) {
    reports.push({
      handler: run.handler,
      kind: "forward",
      ok: run.ok,
      ms: Math.round(run.ms),
      ...(run.status !== undefined ? { status: run.status } : {}),
      ...(run.error !== undefined ? { error: run.error } : {}),
    });
  }
  return reports;
}

/** Options of {@link recordOutcome}: one set per worker. */
export interface OutcomeOptions {
  store: DeliveryStore;
  /** The retry delays after a failed attempt. */
  backoff: BackoffOptions;
  /** Aborted when the process shuts down: a failure then does not count. */
  shutdown: AbortSignal;
  /** Counts each outcome ({@link countOutcome}). */
  metrics?: Metrics | undefined;
}

/**
 * Commits the outcome of a run of `leased`: first against the entry that was
 * leased (no read: the common case), then, if the record changed meanwhile
 * (a replay, an expired lease), against a fresh read. Gives up, with a log
 * line, when the lease was lost (another worker re-ran it) or after
 * {@link OUTCOME_TRIES} conflicts. Resolves to the record as committed (null
 * when given up); rejects only when KV fails.
 */
export async function recordOutcome(
  leased: Deno.KvEntry<DeliveryRecord>,
  result: RunResult,
  log: Logger,
  options: OutcomeOptions,
): Promise<DeliveryRecord | null> {
  const { store } = options;
  let entry: Deno.KvEntryMaybe<DeliveryRecord> = leased;
  for (let tries = 0; tries < OUTCOME_TRIES; tries++) {
    if (tries > 0) entry = await store.getEntry(leased.value.id);
    const current = entry.value;
    if (current === null) return null;
    if (!holdsLease(current, leased.value)) {
      log.warn(
        "lease lost before the outcome was recorded; another worker re-ran it",
      );
      return null;
    }
    const now = store.now();
    const next = finishAttempt(current, result, {
      now,
      backoff: options.backoff,
      interrupted: options.shutdown.aborted,
    });
    if (await store.update(entry as Deno.KvEntry<DeliveryRecord>, next)) {
      logOutcome(log, next, result, now);
      countOutcome(options.metrics, next);
      return next;
    }
  }
  log.error(
    "could not record the outcome; the lease will expire and it will run again",
  );
  return null;
}

/**
 * The log line of a recorded outcome: info, warn when failed, error only
 * when dead. A run that is queued again (cut short by a shutdown, or
 * replayed while it ran) is info: it runs again, nothing is wrong.
 */
function logOutcome(
  log: Logger,
  next: DeliveryRecord,
  result: DispatchResult,
  now: number,
): void {
  const fields = {
    status: next.status,
    ms: Math.round(result.ms),
    ...(next.error ? { error: next.error } : {}),
    ...(next.status === "failed" ? { retryInMs: next.dueAt! - now } : {}),
  };
  switch (next.status) {
    case "done":
    case "skipped":
      return log.info("delivery " + next.status, fields);
    case "failed":
      return log.warn("delivery failed", fields);
    case "dead":
      return log.error("delivery dead", fields);
    default:
      return log.info(
        next.error === INTERRUPTED_ERROR
          ? "delivery interrupted by the shutdown; it runs again"
          : "delivery replayed while it ran; it runs again",
        fields,
      );
  }
}

/**
 * The log line of a delivery given up at its lease (`giveUpRecord`: its runs
 * kept ending before an outcome), once, by the process that committed it.
 *
 * @example
 * ```ts
 * import { logGivenUp } from "./outcome.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import type { DeliveryRecord } from "../store/types.ts";
 * logGivenUp(NULL_LOGGER, { status: "dead", error: "given up" } as DeliveryRecord);
 * ```
 */
export function logGivenUp(log: Logger, record: DeliveryRecord): void {
  log.error("delivery dead", { status: record.status, error: record.error });
}
