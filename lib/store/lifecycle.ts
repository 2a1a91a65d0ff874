/**
 * The delivery status machine, in one place: every change of a
 * {@link DeliveryRecord}'s status, attempts and due time is a pure function
 * here, from a record (and the time, the run's result, the limits) to the
 * next record.
 *
 * ```
 * received ──────────────▶ queued ──lease──▶ running ──ok──────────────▶ done
 * received, slot free ─────────────────────▶ running ──no handler──────▶ skipped
 * received, slot busy ─────────────────────▶ running, waiting ──slot frees──▶ running
 *                 failed ──lease (due)─────▶ running ──error, timeout──▶ failed (after a backoff)
 *                                            running ──the last one────▶ dead
 *                                            running ──lease lapsed, none left──▶ dead
 *                                            running, waiting ──lease lapsed──▶ running (leased again)
 *                                            running ──shutdown────────▶ queued (attempt not counted)
 *                                            running, not started, shutdown ──▶ queued (attempt not counted)
 *                                            running ──replayed meanwhile──▶ queued (runs again)
 * rearm (replay, redelivery): done, skipped, dead ▶ queued with MAX_ATTEMPTS more;
 *                             queued, failed ▶ due now; running ▶ runs again after this run
 * ```
 *
 * A `running` record's `dueAt` is its lease's expiry: once passed, it is due
 * and {@link leaseRecord} takes it again (a crashed or stalled process), or,
 * when that run was its last attempt, gives it up ({@link giveUpRecord}).
 * An attempt is counted when its run starts, durably before its handler
 * begins: a lease taken for a run that starts at once counts it in the same
 * commit; a delivery stored leased while every slot is busy waits `waiting`
 * (in its holder's memory, the attempt not counted) and {@link startRecord}
 * counts it when a slot frees. So a run that keeps killing its process ends
 * `dead` after `MAX_ATTEMPTS`, and a delivery that only waited loses no
 * attempt when its process dies. The holder renews its lease while it runs or
 * waits ({@link renewRecord}); a restarted process makes the leases of the
 * process it replaces due at once ({@link reclaimRecord}).
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

/** A lease a new record is stored with (the durable fast path). */
export interface NewLease {
  /** Its expiry. */
  until: number;
  /** Its run waits for a slot: the attempt is not counted yet. @default false */
  waiting?: boolean | undefined;
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
  /** Who holds that lease (the accepting process). @default none */
  owner?: string | undefined;
  /**
   * That lease waits for a handler slot: stored `waiting`, the attempt not
   * counted until its run starts ({@link startRecord}). @default false
   */
  waiting?: boolean | undefined;
}

/**
 * The record of a just-received delivery: `queued` and due now, or, with
 * `leaseUntil`, `running` its first attempt until then (or, `waiting`,
 * leased until then with no attempt counted yet).
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
  const waiting = leased && options.waiting === true;
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
    attempts: leased && !waiting ? 1 : 0,
    attemptLimit: options.maxAttempts,
    receivedAt: delivery.receivedAt,
    updatedAt: now,
    startedAt: leased ? now : null,
    finishedAt: null,
    dueAt: leaseUntil ?? now,
    durationMs: null,
    error: null,
    replays: 0,
    ...(leased && options.owner !== undefined ? { owner: options.owner } : {}),
    ...(waiting ? { waiting: true } : {}),
    ...(delivery.orderKey !== undefined ? { orderKey: delivery.orderKey } : {}),
    ...(delivery.trace !== undefined ? { trace: delivery.trace } : {}),
  };
}

/** When an ordered record joined its key's queue: its receipt, or its last re-arm. */
export function queuedAt(record: DeliveryRecord): number {
  return record.queuedAt ?? record.receivedAt;
}

/** Whether a status is final: the record runs no more unless re-armed. */
export function isFinal(status: DeliveryRecord["status"]): boolean {
  return status === "done" || status === "skipped" || status === "dead";
}

/**
 * The record of an ordered delivery that is due but not its key's head:
 * it stays as it was (`queued`, its attempts unchanged), noting the
 * delivery it waits for, and is looked at again at `until` should the
 * wake-up that the head's end brings be lost ({@link wakeRecord}).
 *
 * @example
 * ```ts
 * import { parkRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const queued = { status: "queued", dueAt: 5 } as DeliveryRecord;
 * parkRecord(queued, 10, 30_010, "first").after; // "first"
 * ```
 */
export function parkRecord(
  record: DeliveryRecord,
  now: number,
  until: number,
  after: string,
): DeliveryRecord {
  return { ...record, dueAt: until, after, updatedAt: now };
}

/**
 * The record of an ordered delivery that became its key's head: due at
 * once when it waited ({@link parkRecord}) — at its receipt time, so that
 * it is due for a process whose clock is behind the waker's. Null when there is nothing to do
 * (it is not waiting, or is due already).
 *
 * @example
 * ```ts
 * import { wakeRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const parked = { status: "queued", receivedAt: 5, dueAt: 30_010, after: "first" } as DeliveryRecord;
 * wakeRecord(parked, 20)?.dueAt; // 5
 * ```
 */
export function wakeRecord(
  record: DeliveryRecord,
  now: number,
): DeliveryRecord | null {
  if (record.status !== "queued" && record.status !== "failed") return null;
  if (record.after === undefined) return null;
  const { after: _after, ...rest } = record;
  return {
    ...rest,
    // Due for every process, whatever its clock: no later than its receipt.
    dueAt: record.status === "queued"
      ? Math.min(record.receivedAt, now)
      : record.dueAt,
    updatedAt: now,
  };
}

/** `record` without the `waiting` mark: its attempt is counted (or it is not leased). */
function counted(record: DeliveryRecord): DeliveryRecord {
  if (record.waiting === undefined) return record;
  const { waiting: _waiting, ...rest } = record;
  return rest;
}

/**
 * The record taken for a run until `leaseUntil` by `owner`: `running`, one
 * more attempt (its run starts now). Null when it is not due at `now` (final,
 * waiting for a retry, or leased by someone whose lease has not expired). A
 * lapsed `running` record that already used its last attempt is given up
 * instead ({@link giveUpRecord}): run what comes back only when it is
 * `running`. A lapsed `waiting` lease never ran: it is simply leased again
 * (not a lapse, not given up).
 *
 * @example
 * ```ts
 * import { leaseRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const queued = { status: "queued", attempts: 0, dueAt: 5 } as DeliveryRecord;
 * leaseRecord(queued, 10, 40, "me")?.status; // "running"
 * leaseRecord(queued, 4, 40, "me"); // null: not due yet
 * ```
 */
export function leaseRecord(
  record: DeliveryRecord,
  now: number,
  leaseUntil: number,
  owner?: string,
): DeliveryRecord | null {
  if (record.dueAt === null || record.dueAt > now) return null;
  const givenUp = giveUpRecord(record, now);
  if (givenUp !== null) return givenUp;
  const lapsed = record.status === "running" && !record.waiting;
  const { after: _after, ...rest } = counted(record);
  return {
    ...rest,
    status: "running",
    attempts: record.attempts + 1,
    startedAt: now,
    updatedAt: now,
    dueAt: leaseUntil,
    ...(owner === undefined ? {} : { owner }),
    ...(lapsed ? { lapses: (record.lapses ?? 0) + 1 } : {}),
  };
}

/** The error of a delivery given up by {@link giveUpRecord}. */
export function gaveUpError(lapses: number, attempts: number): string {
  const times = lapses === 1 ? "once" : `${lapses} times`;
  return `its run ended before recording an outcome ${times} (the process or its Worker died): given up after ${attempts} attempts`;
}

/**
 * The record given up on: a `running` record whose lease lapsed (its run
 * ended without an outcome: the process or its Worker died) after it had
 * used its last attempt is `dead`, with an error that says so. Null for any
 * other record (still leased, attempts left, not running, or a `waiting`
 * lease: it never ran).
 *
 * @example
 * ```ts
 * import { giveUpRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const crashed = { status: "running", attempts: 2, attemptLimit: 2, dueAt: 5 } as DeliveryRecord;
 * giveUpRecord(crashed, 10)?.status; // "dead"
 * giveUpRecord(crashed, 4); // null: its lease has not lapsed
 * ```
 */
export function giveUpRecord(
  record: DeliveryRecord,
  now: number,
): DeliveryRecord | null {
  if (
    record.status !== "running" || record.waiting || record.dueAt === null ||
    record.dueAt > now || record.attempts < record.attemptLimit
  ) return null;
  const lapses = (record.lapses ?? 0) + 1;
  return {
    ...record,
    status: "dead",
    lapses,
    updatedAt: now,
    finishedAt: now,
    dueAt: null,
    error: gaveUpError(lapses, record.attempts),
  };
}

/**
 * The record of a `waiting` lease whose run starts now (a handler slot freed
 * for it): one more attempt, counted before its handler begins. The lease
 * stays the same (its start, owner and expiry identify it); a record whose
 * attempt is counted already comes back as it is.
 *
 * @example
 * ```ts
 * import { startRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const waited = { status: "running", waiting: true, attempts: 0, startedAt: 1 } as DeliveryRecord;
 * startRecord(waited, 9).attempts; // 1
 * startRecord(startRecord(waited, 9), 10).attempts; // 1: counted once
 * ```
 */
export function startRecord(
  record: DeliveryRecord,
  now: number,
): DeliveryRecord {
  if (!record.waiting) return record;
  return { ...counted(record), attempts: record.attempts + 1, updatedAt: now };
}

/**
 * The record with its lease renewed until `until` by its holder: nothing
 * else changes (the attempt, its start and its owner stay).
 *
 * @example
 * ```ts
 * import { renewRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const mine = { status: "running", startedAt: 1, dueAt: 15 } as DeliveryRecord;
 * renewRecord(mine, 25).dueAt; // 25
 * ```
 */
export function renewRecord(
  record: DeliveryRecord,
  until: number,
): DeliveryRecord {
  return { ...record, dueAt: until };
}

/**
 * The record of a run whose holder `owner` is known to be gone (a process
 * restarted in its place): due now, so that {@link leaseRecord} takes it
 * again at once rather than when its lease would lapse. Null when it is not
 * a running record of `owner`'s, or is due already.
 *
 * @example
 * ```ts
 * import { reclaimRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const orphan = { status: "running", owner: "gone", dueAt: 15 } as DeliveryRecord;
 * reclaimRecord(orphan, "gone", 3)?.dueAt; // 3
 * reclaimRecord(orphan, "alive", 3); // null: someone else's
 * ```
 */
export function reclaimRecord(
  record: DeliveryRecord,
  owner: string,
  now: number,
): DeliveryRecord | null {
  if (
    record.status !== "running" || record.owner !== owner ||
    record.dueAt === null || record.dueAt <= now
  ) return null;
  return { ...record, dueAt: now };
}

/**
 * The record of a lease given back before its run started (it waited in
 * memory for a handler slot, or was just taken, when the process shut
 * down): `queued`, due now, the attempt not counted (taken back, unless it
 * was `waiting`: never counted).
 *
 * @example
 * ```ts
 * import { releaseRecord } from "./lifecycle.ts";
 * import type { DeliveryRecord } from "./types.ts";
 * const waiting = { status: "running", attempts: 1, dueAt: 15 } as DeliveryRecord;
 * releaseRecord(waiting, 3).attempts; // 0
 * ```
 */
export function releaseRecord(
  record: DeliveryRecord,
  now: number,
): DeliveryRecord {
  return {
    ...counted(record),
    status: "queued",
    attempts: record.waiting ? record.attempts : record.attempts - 1,
    dueAt: now,
    updatedAt: now,
    ...(record.rerun ? { rerun: false } : {}),
  };
}

/**
 * Whether `current` is still the run that was leased as `leased`: running,
 * started at the same time and held by the same owner (not re-leased by
 * another worker since).
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
  return current.status === "running" &&
    current.startedAt === leased.startedAt && current.owner === leased.owner;
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
  // A replay of a dead or failed delivery runs only the targets that have
  // not succeeded (handlers that did are not run again, a forward that got
  // its copy gets no other); a replay of a done one runs every target.
  const { settled: _settled, ...cleared } = record;
  const rest = record.status === "done" || record.status === "skipped"
    ? cleared
    : record;
  if (record.status === "queued" || record.status === "failed") {
    // Already waiting: make it due now.
    return {
      ...rest,
      dueAt: Math.min(record.dueAt ?? now, now),
      updatedAt: now,
    };
  }
  const running = record.status === "running";
  return {
    ...rest,
    // An ordered record re-armed from final joins the end of its key's queue.
    ...(!running && record.orderKey !== undefined ? { queuedAt: now } : {}),
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
  & (
    | { outcome: "ok" | "skipped"; ms: number }
    | { outcome: "error" | "timeout"; ms: number; error: string }
  )
  & {
    /**
     * The targets that succeeded in this attempt (`"handlers"`,
     * `"forward:<host>"`): a failed record keeps them, with those of its
     * earlier attempts, so that its retries skip them. @default none
     */
    settled?: readonly string[] | undefined;
  };

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
 * failing run short (then the attempt does not count). A record that fails
 * again, is cut short or ends `dead` keeps the targets that succeeded so far
 * (`settled`); `done`, `skipped` and a rerun clear them.
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
  const { settled: _settled, ...rest } = record;
  const base = {
    ...rest,
    updatedAt: now,
    durationMs: Math.round(result.ms),
  };
  const failed = result.outcome === "error" || result.outcome === "timeout";
  if (failed && options.interrupted) {
    // Cut short by a shutdown: it is due again at once (after the restart).
    return {
      ...base,
      ...settledUnion(record, result),
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
      // Kept: a replay of the dead delivery runs only what did not succeed.
      ...settledUnion(record, result),
      status: "dead",
      finishedAt: now,
      dueAt: null,
      error: result.error,
    };
  }
  return {
    ...base,
    ...settledUnion(record, result),
    status: "failed",
    dueAt: now + backoffDelay(record.attempts, options.backoff),
    error: result.error,
  };
}

/** The `settled` of a record failing again: its own and the attempt's, once each. */
function settledUnion(
  record: DeliveryRecord,
  result: AttemptResult,
): { settled?: string[] } {
  const union = [
    ...new Set([...record.settled ?? [], ...result.settled ?? []]),
  ];
  return union.length > 0 ? { settled: union } : {};
}
