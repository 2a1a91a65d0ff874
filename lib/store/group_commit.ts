/**
 * Every write of a delivery record, and how writes share commits. While one
 * atomic commit is in flight, new acceptances and record updates (leases,
 * outcomes) wait and then go together in the next one (group commit): up to
 * `batchMax` acceptances, within KV's limits of 100 checks, 1,000 mutations
 * and 800 KiB. When any check of a batch fails, each of its operations is
 * committed on its own, so each still gets its own answer. Nothing waits for
 * a timer.
 *
 * An acceptance checks that neither the delivery's id nor its body digest is
 * stored yet, and writes the record ({@link newRecord}), its index entries
 * and its body chunks in one commit; a body too large for that is written
 * ahead ({@link writeBody}). An update is checked against the versionstamp
 * it was read with and moves the record's work index entry along.
 *
 * It does not decide what a record becomes (`lifecycle.ts`) nor what a failed
 * check means (a duplicate? the store's façade reads who came first).
 *
 * @module
 */

import type {
  AcceptResult,
  DeliveryRecord,
  IncomingDelivery,
} from "./types.ts";
import { deliveryKeys, WAKE_KEY } from "./keys.ts";
import { KV_LIMITS, type KvLimits } from "./limits.ts";
import type { LockSafeKv } from "./kv.ts";
import { isFinal, type NewLease, newRecord, queuedAt } from "./lifecycle.ts";
import {
  chunksOf,
  COMMIT_BYTES,
  deleteBody,
  stageChunks,
  uploadId,
  writeBody,
} from "./bodies.ts";

/** Bodies up to this size may share a commit with other deliveries. */
const GROUP_BODY_MAX = 65_536;
/** Checks one acceptance makes (its id and its body digest). */
const CHECKS_PER_ACCEPT = 2;
/**
 * Mutations counted for one acceptance beside its body chunks (record,
 * digest, listing, work index, queue entry, wake-up) and for one update
 * (record, work index moved, queue entry).
 */
const MUTATIONS_PER_ACCEPT = 6;
const MUTATIONS_PER_UPDATE = 4;
/** Bytes counted for one acceptance beside its body (record and indexes). */
const RECORD_BYTES = 4096;

/** A delivery stored: the answer of an acceptance whose checks held. */
export type Queued = Extract<AcceptResult, { status: "queued" }>;

/** Options of {@link createGroupCommit}. */
export interface GroupCommitOptions {
  kv: LockSafeKv;
  /** `DELIVERY_TTL_DAYS` in ms: every key written expires after it. */
  ttlMs: number;
  /** The attempts a new record gets (`MAX_ATTEMPTS`). */
  maxAttempts: number;
  now: () => number;
  /** Who holds the leases of records stored leased (this process). @default none */
  owner?: string | undefined;
  /** Body chunk size; at most 65,536 (KV's value limit). @default 64_000 */
  chunkSize?: number | undefined;
  /**
   * Most deliveries committed together while another commit is in flight;
   * 1 turns grouping off. At most half the backend's checks (two per
   * delivery: 50 locally, 5 on self-hosted denokv). @default 32, or that
   * half when smaller
   */
  batchMax?: number | undefined;
  /** The backend's request limits and commits in flight. @default KV_LIMITS.local */
  limits?: KvLimits | undefined;
}

/** Record writes, grouped into shared commits where they can be. */
export interface GroupCommit {
  /**
   * Stores a new delivery (already leased to this process when `lease` is
   * given).
   * Null when its id or body digest is already stored; rejects when KV fails.
   */
  accept(
    delivery: IncomingDelivery,
    lease: NewLease | undefined,
  ): Promise<Queued | null>;
  /** {@link GroupCommit.accept} in a commit of its own. */
  acceptAlone(
    delivery: IncomingDelivery,
    lease: NewLease | undefined,
  ): Promise<Queued | null>;
  /**
   * Replaces a record if it is unchanged since `entry` was read. Returns the
   * new entry, or null when another process got there first.
   */
  update(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null>;
  /**
   * {@link GroupCommit.update} in a commit of its own, which also checks
   * that the entries in `checks` are unchanged, and makes the writes
   * `stage` adds (given the record's `expireIn`).
   */
  updateAlone(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
    checks?: readonly Deno.AtomicCheck[],
    stage?: (op: Deno.AtomicOperation, expireIn: number) => void,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null>;
  /** How many commits that store records (single or grouped) were made. */
  readonly commits: number;
}

interface PendingAccept {
  delivery: IncomingDelivery;
  lease: NewLease | undefined;
  resolve: (result: Queued | null) => void;
  reject: (err: unknown) => void;
}

interface PendingUpdate {
  entry: Deno.KvEntry<DeliveryRecord>;
  next: DeliveryRecord;
  resolve: (entry: Deno.KvEntry<DeliveryRecord> | null) => void;
  reject: (err: unknown) => void;
}

/** The operations of the next commit, and those that wait for a later one. */
export interface Batch<A, U> {
  accepts: A[];
  updates: U[];
  restAccepts: A[];
  restUpdates: U[];
}

/**
 * Picks the next commit's operations, in arrival order: acceptances up to
 * `batchMax` and {@link COMMIT_BYTES}, then updates in the checks they left.
 * Two operations on one id (or two acceptances of one body) never share a
 * commit: the later one waits.
 *
 * @example
 * ```ts
 * import { takeBatch } from "./group_commit.ts";
 * const accept = (id: string) => ({ delivery: { id, digest: id, body: new Uint8Array(1) } });
 * const batch = takeBatch([accept("a"), accept("b"), accept("a")], [], 32);
 * batch.accepts.length; // 2
 * batch.restAccepts.length; // 1: the second "a" waits
 * ```
 */
export function takeBatch<
  A extends {
    delivery: Pick<IncomingDelivery, "id" | "digest" | "body" | "orderKey">;
  },
  U extends { entry: { value: Pick<DeliveryRecord, "id"> } },
>(
  accepts: readonly A[],
  updates: readonly U[],
  batchMax: number,
  room: BatchRoom = {},
): Batch<A, U> {
  const maxChecks = room.maxChecks ?? KV_LIMITS.local.maxChecks;
  const maxMutations = room.maxMutations ?? KV_LIMITS.local.maxMutations;
  let mutations = 0;
  const batch: Batch<A, U> = {
    accepts: [],
    updates: [],
    restAccepts: [],
    restUpdates: [],
  };
  const keys = new Set<string>();
  let bytes = 0;
  for (const item of accepts) {
    const { id, digest, body, orderKey } = item.delivery;
    const clash = keys.has("d" + id) || keys.has("h" + digest) ||
      (orderKey !== undefined && room.busy?.has(orderKey) === true);
    const cost = MUTATIONS_PER_ACCEPT + Math.ceil(body.byteLength / 64_000);
    if (
      clash || batch.accepts.length >= batchMax ||
      CHECKS_PER_ACCEPT * (batch.accepts.length + 1) > maxChecks ||
      mutations + cost > maxMutations ||
      bytes + body.byteLength + RECORD_BYTES > COMMIT_BYTES
    ) {
      batch.restAccepts.push(item);
      continue;
    }
    keys.add("d" + id).add("h" + digest);
    bytes += body.byteLength + RECORD_BYTES;
    mutations += cost;
    batch.accepts.push(item);
  }
  // Updates fill the checks that acceptances left.
  const checksLeft = maxChecks - CHECKS_PER_ACCEPT * batch.accepts.length;
  for (const item of updates) {
    const key = "d" + item.entry.value.id;
    if (
      keys.has(key) || batch.updates.length >= checksLeft ||
      mutations + MUTATIONS_PER_UPDATE > maxMutations
    ) {
      batch.restUpdates.push(item);
    } else {
      keys.add(key);
      mutations += MUTATIONS_PER_UPDATE;
      batch.updates.push(item);
    }
  }
  return batch;
}

/** What else bounds a batch beside `batchMax` ({@link takeBatch}). */
export interface BatchRoom {
  /** Checks a commit may carry. @default 100 */
  maxChecks?: number;
  /** Mutations a commit may carry. @default 1000 */
  maxMutations?: number;
  /**
   * Order keys with an acceptance in a commit still in flight: another
   * acceptance of the key waits for it, so that commits keep receipt order.
   */
  busy?: { has(orderKey: string): boolean };
}

/**
 * How long a record's keys should live from `now`: until its receive time
 * plus the TTL, and at least a second.
 *
 * @example
 * ```ts
 * import { expireInOf } from "./group_commit.ts";
 * expireInOf({ receivedAt: 0 }, 10_000, 4_000); // 6000
 * ```
 */
export function expireInOf(
  record: Pick<DeliveryRecord, "receivedAt">,
  ttlMs: number,
  now: number,
): number {
  return Math.max(1000, record.receivedAt + ttlMs - now);
}

/**
 * What an ordered delivery's queue entry holds: its id, and the place of its
 * commit among those of this process (the versionstamp orders commits; this
 * orders the deliveries of one grouped commit, which share a versionstamp).
 */
export interface QueueEntry {
  id: string;
  seq: number;
}

/** Adds the queue entry of an ordered record (`SERIALIZE_BY`). */
function stageQueued(
  op: Deno.AtomicOperation,
  record: DeliveryRecord,
  expireIn: number,
  seq: number,
): void {
  if (record.orderKey === undefined) return;
  op.set(
    deliveryKeys.queued(record.orderKey, queuedAt(record), record.id),
    { id: record.id, seq } satisfies QueueEntry,
    { expireIn },
  );
}

/** Whether a record is due at `now` for any worker: it needs a wake-up. */
function dueFor(record: DeliveryRecord, now: number): boolean {
  return record.dueAt !== null && record.dueAt <= now &&
    !isFinal(record.status);
}

/** Tells every worker watching the wake key to look for work. */
function stageWake(op: Deno.AtomicOperation): void {
  op.sum(WAKE_KEY, 1n);
}

/** Adds the two "is it new?" checks and the record with its index keys. */
function stageRecord(
  op: Deno.AtomicOperation,
  record: DeliveryRecord,
  expireIn: number,
  seq = 0,
): void {
  stageQueued(op, record, expireIn, seq);
  const idKey = deliveryKeys.record(record.id);
  const digestKey = deliveryKeys.digest(record.digest);
  op.check({ key: idKey, versionstamp: null })
    .check({ key: digestKey, versionstamp: null })
    .set(idKey, record, { expireIn })
    .set(digestKey, record.id, { expireIn })
    .set(deliveryKeys.listed(record.receivedAt, record.id), record.id, {
      expireIn,
    })
    .set(deliveryKeys.due(record.dueAt!, record.id), record.id, { expireIn });
}

/**
 * Adds one record update (checked against `entry`) to `op`. True when it
 * makes the record due now: the commit should wake the workers.
 */
function stageUpdate(
  op: Deno.AtomicOperation,
  entry: Deno.KvEntry<DeliveryRecord>,
  next: DeliveryRecord,
  expireIn: number,
  seq = 0,
  now = next.updatedAt,
): boolean {
  const prev = entry.value;
  op.check(entry).set(deliveryKeys.record(prev.id), next, { expireIn });
  const wakes = dueFor(next, now) && !dueFor(prev, now);
  // An ordered record leaves its key's queue when final, and a re-armed
  // one joins its end again.
  if (
    next.orderKey !== undefined && isFinal(prev.status) !== isFinal(next.status)
  ) {
    if (isFinal(next.status)) {
      op.delete(deliveryKeys.queued(next.orderKey, queuedAt(prev), next.id));
      // The key's lease goes with it (it holds it from its first lease on).
      op.delete(deliveryKeys.orderLock(next.orderKey));
    } else stageQueued(op, next, expireIn, seq);
  }
  if (prev.dueAt !== next.dueAt) {
    if (prev.dueAt !== null) op.delete(deliveryKeys.due(prev.dueAt, prev.id));
    if (next.dueAt !== null) {
      op.set(deliveryKeys.due(next.dueAt, prev.id), prev.id, { expireIn });
    }
  }
  return wakes;
}

/** The answer for a stored delivery, with the leased entry when leased. */
function queued(
  record: DeliveryRecord,
  lease: NewLease | undefined,
  versionstamp: string,
): Queued {
  return {
    status: "queued",
    id: record.id,
    ...(lease === undefined ? {} : {
      leased: {
        key: deliveryKeys.record(record.id),
        value: record,
        versionstamp,
      },
    }),
  };
}

/** One store's writer: its settings and the operations waiting to commit. */
interface Writer {
  kv: LockSafeKv;
  ttlMs: number;
  maxAttempts: number;
  owner: string | undefined;
  chunkSize: number;
  batchMax: number;
  now: () => number;
  accepts: PendingAccept[];
  updates: PendingUpdate[];
  /** The backend's limits: checks and mutations a commit, commits in flight. */
  limits: KvLimits;
  /** Commits in flight: while all slots are taken, new operations wait and group. */
  inFlight: number;
  /** Order keys with an acceptance in flight, with how many. */
  busy: Map<string, number>;
  /** With commits apart (several in flight): the next batch is of updates. */
  updatesNext: boolean;
  /** Commits that stored records. */
  commits: number;
  /** Orders the queue entries this writer makes (see {@link QueueEntry}). */
  seq: number;
}

/** Adds what stores one delivery whose body fits in the commit. */
function stageInline(
  w: Writer,
  op: Deno.AtomicOperation,
  delivery: IncomingDelivery,
  at: number,
  lease: NewLease | undefined,
): DeliveryRecord {
  const upload = uploadId(at);
  const chunks = chunksOf(delivery.body, w.chunkSize);
  const record = newRecord(delivery, { upload, chunks: chunks.length }, {
    now: at,
    maxAttempts: w.maxAttempts,
    leaseUntil: lease?.until,
    waiting: lease?.waiting,
    owner: w.owner,
  });
  stageRecord(op, record, w.ttlMs, w.seq++);
  stageChunks(op, upload, chunks, w.ttlMs);
  return record;
}

/** Stores one delivery in its own commit (after its body, when large). */
async function acceptAlone(
  w: Writer,
  delivery: IncomingDelivery,
  lease: NewLease | undefined,
): Promise<Queued | null> {
  const at = w.now();
  const op = w.kv.atomic();
  let record: DeliveryRecord;
  let cleanup: (() => Promise<void>) | null = null;
  if (delivery.body.byteLength <= COMMIT_BYTES) {
    record = stageInline(w, op, delivery, at, lease);
  } else {
    // Chunks first; the upload key marks them until the record commit
    // deletes it.
    const body = await writeBody(w.kv, delivery.body, {
      now: at,
      chunkSize: w.chunkSize,
      expireIn: w.ttlMs,
    });
    record = newRecord(delivery, body, {
      now: at,
      maxAttempts: w.maxAttempts,
      leaseUntil: lease?.until,
      waiting: lease?.waiting,
      owner: w.owner,
    });
    stageRecord(op, record, w.ttlMs, w.seq++);
    op.delete(body.uploadKey);
    cleanup = () => deleteBody(w.kv, body.upload, body.chunks, body.uploadKey);
  }
  if (dueFor(record, at)) stageWake(op);
  w.commits++;
  const res = await op.commit();
  if (res.ok) return queued(record, lease, res.versionstamp);
  await cleanup?.();
  return null;
}

/** Commits one record update on its own (with `checks` of other keys). */
async function updateAlone(
  w: Writer,
  entry: Deno.KvEntry<DeliveryRecord>,
  next: DeliveryRecord,
  checks: readonly Deno.AtomicCheck[] = [],
  stage?: (op: Deno.AtomicOperation, expireIn: number) => void,
): Promise<Deno.KvEntry<DeliveryRecord> | null> {
  const op = w.kv.atomic();
  for (const check of checks) op.check(check);
  stage?.(op, expireInOf(next, w.ttlMs, w.now()));
  const now = w.now();
  if (
    stageUpdate(op, entry, next, expireInOf(next, w.ttlMs, now), w.seq++, now)
  ) {
    stageWake(op);
  }
  const res = await op.commit();
  return res.ok
    ? { key: entry.key, value: next, versionstamp: res.versionstamp }
    : null;
}

/**
 * Commits each operation of a batch on its own: at once, but ordered
 * deliveries (`SERIALIZE_BY`) one after another, so that their commits keep
 * the order they were received in.
 */
async function settleAlone(
  w: Writer,
  accepts: PendingAccept[],
  updates: PendingUpdate[],
): Promise<void> {
  const alone = (item: PendingAccept) =>
    acceptAlone(w, item.delivery, item.lease).then(item.resolve, item.reject);
  const inOrder = accepts.filter((item) =>
    item.delivery.orderKey !== undefined
  );
  await Promise.all([
    (async () => {
      for (const item of inOrder) await alone(item);
    })(),
    ...accepts.filter((item) => item.delivery.orderKey === undefined).map(
      alone,
    ),
    ...updates.map((item) =>
      updateAlone(w, item.entry, item.next).then(item.resolve, item.reject)
    ),
  ]);
}

/** Commits one batch together; on a failed check, each on its own. */
async function commitBatch(
  w: Writer,
  accepts: PendingAccept[],
  updates: PendingUpdate[],
): Promise<void> {
  const at = w.now();
  const op = w.kv.atomic();
  const records = accepts.map((item) =>
    stageInline(w, op, item.delivery, at, item.lease)
  );
  let wake = records.some((record) => dueFor(record, at));
  for (const item of updates) {
    const wakes = stageUpdate(
      op,
      item.entry,
      item.next,
      expireInOf(item.next, w.ttlMs, at),
      w.seq++,
      at,
    );
    wake ||= wakes;
  }
  if (wake) stageWake(op);
  let res: Deno.KvCommitResult | Deno.KvCommitError;
  try {
    if (accepts.length > 0) w.commits++;
    res = await op.commit();
  } catch (err) {
    for (const item of accepts) item.reject(err);
    for (const item of updates) item.reject(err);
    return;
  }
  if (!res.ok) {
    // A duplicate, or a record changed meanwhile: each on its own.
    return await settleAlone(w, accepts, updates);
  }
  const versionstamp = res.versionstamp;
  accepts.forEach((item, i) =>
    item.resolve(queued(records[i]!, item.lease, versionstamp))
  );
  for (const item of updates) {
    item.resolve({ key: item.entry.key, value: item.next, versionstamp });
  }
}

/**
 * Starts commits of what waits while fewer than the backend's
 * {@link KvLimits.inFlight} are in flight: on a local file one at a time
 * (what arrives meanwhile is grouped into the next), over a network several,
 * so that throughput is not one batch per round trip.
 */
function pump(w: Writer): void {
  while (
    w.inFlight < w.limits.inFlight &&
    (w.accepts.length > 0 || w.updates.length > 0)
  ) {
    // With several commits in flight, an update's check fails whenever the
    // record changed in another commit (a renewal beside its outcome), and a
    // failed check replays the whole batch one by one: acceptances and
    // updates then go in commits of their own, taking turns.
    const apart = w.limits.inFlight > 1;
    const updatesNow = apart && w.updates.length > 0 &&
      (w.updatesNext || w.accepts.length === 0);
    const batch = takeBatch(
      apart && updatesNow ? [] : w.accepts,
      apart && !updatesNow ? [] : w.updates,
      w.batchMax,
      {
        maxChecks: w.limits.maxChecks,
        maxMutations: w.limits.maxMutations,
        busy: w.busy,
      },
    );
    w.updatesNext = !updatesNow;
    // What is left waits for a commit of its order key to land.
    if (batch.accepts.length + batch.updates.length === 0) return;
    if (apart && updatesNow) w.updates = batch.restUpdates;
    else if (apart) w.accepts = batch.restAccepts;
    else {
      w.accepts = batch.restAccepts;
      w.updates = batch.restUpdates;
    }
    const keys = batch.accepts.flatMap((item) =>
      item.delivery.orderKey === undefined ? [] : [item.delivery.orderKey]
    );
    for (const key of keys) w.busy.set(key, (w.busy.get(key) ?? 0) + 1);
    w.inFlight++;
    const single = batch.accepts.length + batch.updates.length === 1;
    const commit = single
      ? settleAlone(w, batch.accepts, batch.updates)
      : commitBatch(w, batch.accepts, batch.updates);
    void commit.catch((err) => {
      for (const item of batch.accepts) item.reject(err);
      for (const item of batch.updates) item.reject(err);
    }).finally(() => {
      w.inFlight--;
      for (const key of keys) {
        const n = (w.busy.get(key) ?? 1) - 1;
        if (n === 0) w.busy.delete(key);
        else w.busy.set(key, n);
      }
      pump(w);
    });
  }
}

/**
 * Creates the record writer of one store. Throws a `RangeError` when
 * `batchMax` or `chunkSize` is beyond what KV allows.
 *
 * @example
 * ```ts
 * import { createGroupCommit } from "./group_commit.ts";
 * import { lockSafe } from "./kv.ts";
 * const kv = await Deno.openKv(":memory:");
 * const commits = createGroupCommit({ kv: lockSafe(kv), ttlMs: 60_000, maxAttempts: 3, now: Date.now });
 * commits.commits; // 0
 * kv.close();
 * ```
 */
export function createGroupCommit(options: GroupCommitOptions): GroupCommit {
  const limits = options.limits ?? KV_LIMITS.local;
  const most = Math.floor(limits.maxChecks / CHECKS_PER_ACCEPT);
  const { chunkSize = 64_000, batchMax = Math.min(32, most) } = options;
  if (!Number.isInteger(batchMax) || batchMax < 1 || batchMax > most) {
    throw new RangeError(
      `Cannot group commits as 'batchMax' must be an integer from 1 to ${most} (half the ${limits.maxChecks} checks a commit may carry): current value is ${batchMax}`,
    );
  }
  if (chunkSize > 65_536 || chunkSize < 1) {
    throw new RangeError(
      `Cannot store bodies as 'chunkSize' must be 1 to 65536: current value is ${chunkSize}`,
    );
  }
  const w: Writer = {
    kv: options.kv,
    ttlMs: options.ttlMs,
    maxAttempts: options.maxAttempts,
    owner: options.owner,
    chunkSize,
    batchMax,
    now: options.now,
    accepts: [],
    updates: [],
    limits,
    inFlight: 0,
    busy: new Map(),
    updatesNext: false,
    commits: 0,
    seq: 0,
  };
  return {
    accept(delivery, lease) {
      if (batchMax <= 1 || delivery.body.byteLength > GROUP_BODY_MAX) {
        return acceptAlone(w, delivery, lease);
      }
      return new Promise((resolve, reject) => {
        w.accepts.push({ delivery, lease, resolve, reject });
        pump(w);
      });
    },
    acceptAlone: (delivery, lease) => acceptAlone(w, delivery, lease),
    update(entry, next) {
      if (batchMax <= 1) return updateAlone(w, entry, next);
      return new Promise((resolve, reject) => {
        w.updates.push({ entry, next, resolve, reject });
        pump(w);
      });
    },
    updateAlone: (entry, next, checks, stage) =>
      updateAlone(w, entry, next, checks, stage),
    get commits() {
      return w.commits;
    },
  };
}
