/**
 * The delivery status machine, in one place: every change of a
 * {@link DeliveryRecord}'s status, attempts and due time is a pure function
 * here, from a record (and the time, the run's result, the limits) to the
 * next record.
 *
 * ```
 * received ──────────────▶ queued ──lease──▶ running ──ok──────────────▶ done
 * received, slot free ─────────────────────▶ running ──no handler──────▶ skipped
 *                 failed ──lease (due)─────▶ running ──error, timeout──▶ failed (after a backoff)
 *                                            running ──the last one────▶ dead
 *                                            running ──shutdown────────▶ queued (attempt not counted)
 *                                            running ──replayed meanwhile──▶ queued (runs again)
 * rearm (replay, redelivery): done, skipped, dead ▶ queued with MAX_ATTEMPTS more;
 *                             queued, failed ▶ due now; running ▶ runs again after this run
 * ```
 *
 * A `running` record's `dueAt` is its lease's expiry: once passed, it is due
 * and {@link leaseRecord} takes it again (a crashed or stalled process).
 *
 * It reads and writes nothing: the store commits what these functions return
 * (`store.ts`, `group_commit.ts`) and the worker decides when to call them
 * (`worker/outcome.ts`).
 *
 * @module
 */

import type { DeliveryRecord, IncomingDelivery } from "./types.ts";
import { backoffDelay, type BackoffOptions } from "../_util/backoff.ts";

/** Where a new record's body is stored (see `bodies.ts`). */
export interface StoredBody {
  /** The upload id: the key of the body chunks. */
  upload: string;
  /** How many chunks. */
  chunks: number;
}

/** Options of {@link newRecord}. */
export interface NewRecordOptions {
  /** The time of the commit. */
  now: number;
  /** The attempts a delivery gets (`MAX_ATTEMPTS`). */
  maxAttempts: number;
  /**
   * Store it already leased to the accepting process until this time:
   * `running`, attempt 1 (the durable fast path). @default queued, due now
   */
  leaseUntil?: number | undefined;
}

/**
 * The record of a just-received delivery: `queued` and due now, or, with
 * `leaseUntil`, `running` its first attempt until then.
 *
 * @example
 * ```ts
 * import { newRecord } from "./lifecycle.ts";
 * const delivery = {
 *   id: "d1", event: "push", action: undefined, hookId: undefined,
 *   target: undefined, headers: {}, body: new Uint8Array(2), kind: "json",
 *   digest: "", receivedAt: 0, repository: undefined, sender: undefined,
 * } as const;
 * newRecord(delivery, { upload: "u", chunks: 1 }, { now: 5, maxAttempts: 3 })
 *   .status; // "queued"
 * ```
 */
export function newRecord(
  delivery: IncomingDelivery,
  body: StoredBody,
  options: NewRecordOptions,
): DeliveryRecord {
  const { now, leaseUntil } = options;
  const leased = leaseUntil !== undefined;
  return {
    id: delivery.id,
    event: delivery.event,
    action: delivery.action,
    hookId: delivery.hookId,
    target: delivery.target,
    headers: delivery.headers,
    repository: delivery.repository,
    sender: delivery.sender,
    kind: delivery.kind,
    digest: delivery.digest,
    size: delivery.body.byteLength,
    upload: body.upload,
    chunks: body.chunks,
    status: leased ? "running" : "queued",
    attempts: leased ? 1 : 0,
    attemptLimit: options.maxAttempts,
    receivedAt: delivery.receivedAt,
    updatedAt: now,
    startedAt: leased ? now : null,
    finishedAt: null,
    dueAt: leaseUntil ?? now,
    durationMs: null,
    error: null,
    replays: 0,
  };
}

/**
 * The record taken for a run until `leaseUntil`: `running`, one more
 * attempt. Null when it is not due at `now` (final, waiting for a retry, or
 * leased by someone whose lease has not expired).
 *
 * @example
 * ```ts
 * import { leaseRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const queued = { status: "queued", attempts: 0, dueAt: 5 } as DeliveryRecord;
 * leaseRecord(queued, 10, 40)?.status; // "running"
 * leaseRecord(queued, 4, 40); // null: not due yet
 * ```
 */
export function leaseRecord(
  record: DeliveryRecord,
  now: number,
  leaseUntil: number,
): DeliveryRecord | null {
  if (record.dueAt === null || record.dueAt > now) return null;
  return {
    ...record,
    status: "running",
    attempts: record.attempts + 1,
    startedAt: now,
    updatedAt: now,
    dueAt: leaseUntil,
  };
}

/**
 * Whether `current` is still the run that was leased as `leased`: running,
 * and started at the same time (not re-leased by another worker since).
 *
 * @example
 * ```ts
 * import { holdsLease } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const mine = { status: "running", startedAt: 1 } as DeliveryRecord;
 * holdsLease({ ...mine, startedAt: 2 }, mine); // false: leased again since
 * ```
 */
export function holdsLease(
  current: DeliveryRecord,
  leased: DeliveryRecord,
): boolean {
  return current.status === "running" && current.startedAt === leased.startedAt;
}

/**
 * The record re-armed by a replay or a redelivery of a `dead` one: a final
 * record is `queued` and due now with `maxAttempts` more attempts; a waiting
 * one is made due now; a running one runs again when its run ends.
 *
 * @example
 * ```ts
 * import { rearmRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const dead = { status: "dead", attempts: 2, replays: 0 } as DeliveryRecord;
 * rearmRecord(dead, 100, 2).attemptLimit; // 4
 * ```
 */
export function rearmRecord(
  record: DeliveryRecord,
  now: number,
  maxAttempts: number,
): DeliveryRecord {
  if (record.status === "queued" || record.status === "failed") {
    // Already waiting: make it due now.
    return {
      ...record,
      dueAt: Math.min(record.dueAt ?? now, now),
      updatedAt: now,
    };
  }
  const running = record.status === "running";
  return {
    ...record,
    status: running ? "running" : "queued",
    ...(running ? { rerun: true } : {}),
    attemptLimit: record.attempts + maxAttempts,
    dueAt: running ? record.dueAt : now,
    finishedAt: running ? record.finishedAt : null,
    updatedAt: now,
    replays: record.replays + 1,
  };
}

/** What one run of a delivery's handlers came to (a `DispatchResult` fits). */
export type AttemptResult =
  | { outcome: "ok" | "skipped"; ms: number }
  | { outcome: "error" | "timeout"; ms: number; error: string };

/** Options of {@link finishAttempt}. */
export interface FinishOptions {
  /** The time the outcome is recorded. */
  now: number;
  /** The retry delays after a failed attempt. */
  backoff: BackoffOptions;
  /**
   * The process is shutting down and cut the run short: a failure then is
   * not the handler's, so the attempt does not count. @default false
   */
  interrupted?: boolean;
}

/** The error a run cut short by a shutdown is recorded with. */
export const INTERRUPTED_ERROR = "interrupted by a shutdown; it runs again";

/**
 * The record after a run with `result`: `done` or `skipped`; `failed` and
 * due again after a backoff; `dead` after its last attempt; `queued` again
 * at once when it was replayed while running, or when a shutdown cut a
 * failing run short (then the attempt does not count).
 *
 * @example
 * ```ts
 * import { finishAttempt } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const running = { status: "running", attempts: 1, attemptLimit: 5 } as DeliveryRecord;
 * const backoff = { baseMs: 1000, maxMs: 60_000 };
 * finishAttempt(running, { outcome: "ok", ms: 3 }, { now: 9, backoff }).status; // "done"
 * ```
 */
export function finishAttempt(
  record: DeliveryRecord,
  result: AttemptResult,
  options: FinishOptions,
): DeliveryRecord {
  const { now } = options;
  const base = {
    ...record,
    updatedAt: now,
    durationMs: Math.round(result.ms),
  };
  const failed = result.outcome === "error" || result.outcome === "timeout";
  if (failed && options.interrupted) {
    // Cut short by a shutdown: it is due again at once (after the restart).
    return {
      ...base,
      status: "queued",
      attempts: record.attempts - 1,
      dueAt: now,
      error: INTERRUPTED_ERROR,
    };
  }
  if (record.rerun) {
    // Replayed while it ran: run it again, whatever this run did.
    return {
      ...base,
      status: "queued",
      rerun: false,
      dueAt: now,
      finishedAt: null,
      error: failed ? result.error : null,
    };
  }
  if (!failed) {
    return {
      ...base,
      status: result.outcome === "ok" ? "done" : "skipped",
      finishedAt: now,
      dueAt: null,
      error: null,
    };
  }
  if (record.attempts >= record.attemptLimit) {
    return {
      ...base,
      status: "dead",
      finishedAt: now,
      dueAt: null,
      error: result.error,
    };
  }
  return {
    ...base,
    status: "failed",
    dueAt: now + backoffDelay(record.attempts, options.backoff),
    error: result.error,
  };
}
