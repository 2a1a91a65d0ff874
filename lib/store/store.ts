/**
 * Delivery records and their raw bodies on Deno KV. The record is the source
 * of truth for a delivery's life; this module only reads and writes it, with
 * atomic versionstamp checks so that many processes can share one KV.
 *
 * Keys (all carry `expireIn` = `DELIVERY_TTL_DAYS`, and {@link DeliveryStore.collect}
 * removes expired ones by the injected clock as well):
 * - `["hookgate","d",id]` — the {@link DeliveryRecord}
 * - `["hookgate","digest",sha256]` — id of the first delivery with that body
 * - `["hookgate","b",upload,i]` — body chunk `i` (≤ 64,000 bytes); `upload`
 *   starts with the time, so new chunks go at the end of the key space
 * - `["hookgate","t",receivedAt,id]` — newest-first listing index
 * - `["hookgate","due",dueAt,id]` — work index: pending records by due time,
 *   running ones by lease expiry (an expired lease is simply due again)
 * - `["hookgate","upload",startedAt,upload]` — bodies too large for one
 *   commit, written before their record; left behind only by a crash
 *
 * It does not run handlers or decide retries (`worker.ts` does).
 *
 * @module
 */

import type { AcceptResult, IncomingDelivery } from "./types.ts";
import { jobLeaseKey } from "./keys.ts";
import { lockSafe, type LockSafeKv } from "./kv.ts";
import { takeLease } from "./lease.ts";
import type { BodyKind } from "../http/payload.ts";

/** The statuses of the contract. */
export type DeliveryStatus =
  | "queued"
  | "running"
  | "done"
  | "failed"
  | "dead"
  | "skipped";

/** What is stored of one delivery (never the parsed payload). */
export interface DeliveryRecord {
  id: string;
  event: string;
  action: string | undefined;
  hookId: string | undefined;
  target: { type: string; id: string } | undefined;
  headers: Record<string, string>;
  repository: string | undefined;
  sender: string | undefined;
  kind: BodyKind;
  digest: string;
  size: number;
  /** Key of the body chunks. */
  upload: string;
  chunks: number;
  status: DeliveryStatus;
  attempts: number;
  /** The delivery is `dead` once `attempts` reaches this. */
  attemptLimit: number;
  receivedAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** When it is next due (pending) or its lease expires (running); null when final. */
  dueAt: number | null;
  durationMs: number | null;
  error: string | null;
  /** Times it was re-armed by a redelivery or a replay. */
  replays: number;
  /** Replayed while running: run it again when the current run ends. */
  rerun?: boolean;
}

/** The public view of a record (admin API). */
export interface DeliverySummary {
  id: string;
  event: string;
  action: string | null;
  status: DeliveryStatus;
  attempts: number;
  receivedAt: string;
  finishedAt: string | null;
  error: string | null;
  repository: string | null;
  sender: string | null;
  durationMs: number | null;
  size: number;
  hookId: string | null;
}

/** Options of {@link DeliveryStore}. */
export interface StoreOptions {
  kv: Deno.Kv;
  ttlMs: number;
  maxAttempts: number;
  now?: () => number;
  /** Body chunk size; at most 65,536 (KV's value limit). */
  chunkSize?: number;
  /**
   * Most deliveries committed together while another commit is in flight
   * (group commit); 1 turns grouping off. Default 32; at most 50 (KV allows
   * 100 checks a commit, two per delivery).
   */
  batchMax?: number;
}

const ROOT = "hookgate";
/** Bytes of body written in one atomic commit (KV allows 800 KiB). */
const COMMIT_BYTES = 640_000;
/** How long a body without a record is kept before it counts as orphaned. */
const ORPHAN_AFTER_MS = 3_600_000;
/** Bodies up to this size may share a commit with other deliveries. */
const GROUP_BODY_MAX = 65_536;

/** Options of {@link DeliveryStore.accept}. */
export interface AcceptOptions {
  /**
   * Store the delivery already leased to this process until this time
   * (`running`, attempt 1): the durable fast path for a worker with a free
   * slot. Should the process die, the lease expires and any worker re-runs it.
   */
  leaseUntil?: number | undefined;
}

interface PendingUpdate {
  entry: Deno.KvEntry<DeliveryRecord>;
  next: DeliveryRecord;
  resolve: (entry: Deno.KvEntry<DeliveryRecord> | null) => void;
  reject: (err: unknown) => void;
}

interface PendingAccept {
  delivery: IncomingDelivery;
  leaseUntil: number | undefined;
  resolve: (result: AcceptResult) => void;
  reject: (err: unknown) => void;
}

/**
 * A new upload id (the key of a body's chunks): the time in base 36, fixed
 * width so that ids sort by time, then a random UUID. Body chunks are the
 * largest rows written; ids that grow with time append them at the end of
 * KV's SQLite B-tree instead of splitting pages all over it (measured in a
 * bare KV write loop on a file: 1.4 × the deliveries a second of random ids).
 */
function uploadId(now: number): string {
  return now.toString(36).padStart(9, "0") + "-" + crypto.randomUUID();
}

/** The stored record as the admin API shows it. */
export function summarize(record: DeliveryRecord): DeliverySummary {
  return {
    id: record.id,
    event: record.event,
    action: record.action ?? null,
    status: record.status,
    attempts: record.attempts,
    receivedAt: new Date(record.receivedAt).toISOString(),
    finishedAt: record.finishedAt === null
      ? null
      : new Date(record.finishedAt).toISOString(),
    error: record.error,
    repository: record.repository ?? null,
    sender: record.sender ?? null,
    durationMs: record.durationMs,
    size: record.size,
    hookId: record.hookId ?? null,
  };
}

/** Delivery records and bodies on one `Deno.Kv`. */
export class DeliveryStore {
  readonly kv: LockSafeKv;
  readonly ttlMs: number;
  readonly maxAttempts: number;
  readonly #now: () => number;
  readonly #chunkSize: number;
  readonly #batchMax: number;
  #pending: PendingAccept[] = [];
  #pendingUpdates: PendingUpdate[] = [];
  #flushing = false;
  #recordCommits = 0;

  /** @param options the KV, TTL and clock */
  constructor(options: StoreOptions) {
    this.kv = lockSafe(options.kv);
    this.ttlMs = options.ttlMs;
    this.maxAttempts = options.maxAttempts;
    this.#now = options.now ?? Date.now;
    this.#chunkSize = options.chunkSize ?? 64_000;
    this.#batchMax = options.batchMax ?? 32;
    if (
      !Number.isInteger(this.#batchMax) || this.#batchMax < 1 ||
      this.#batchMax > 50
    ) {
      throw new RangeError(
        `Cannot group commits as 'batchMax' must be an integer from 1 to 50: current value is ${this.#batchMax}`,
      );
    }
    if (this.#chunkSize > 65_536 || this.#chunkSize < 1) {
      throw new RangeError(
        `Cannot store bodies as 'chunkSize' must be 1 to 65536: current value is ${this.#chunkSize}`,
      );
    }
  }

  /** How many record commits (single or grouped) this store has made. */
  get recordCommits(): number {
    return this.#recordCommits;
  }

  /** The current time of the injected clock. */
  now(): number {
    return this.#now();
  }

  #chunksOf(body: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < body.byteLength; i += this.#chunkSize) {
      out.push(
        body.subarray(i, Math.min(i + this.#chunkSize, body.byteLength)),
      );
    }
    return out;
  }

  /**
   * Stores a delivery: body chunks, then one atomic commit of the record that
   * checks neither its id nor its body digest exists. Answers `duplicate`
   * (with the first id) otherwise; a `dead` duplicate is re-armed and
   * answered `queued`. Rejects when KV fails: nothing is acknowledged then.
   */
  accept(
    delivery: IncomingDelivery,
    options: AcceptOptions = {},
  ): Promise<AcceptResult> {
    const leaseUntil = options.leaseUntil;
    if (this.#batchMax <= 1 || delivery.body.byteLength > GROUP_BODY_MAX) {
      return this.#acceptOne(delivery, leaseUntil);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ delivery, leaseUntil, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  #record(
    delivery: IncomingDelivery,
    now: number,
    upload: string,
    chunks: number,
    leaseUntil: number | undefined,
  ): DeliveryRecord {
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
      upload,
      chunks,
      status: leased ? "running" : "queued",
      attempts: leased ? 1 : 0,
      attemptLimit: this.maxAttempts,
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

  /** Adds the checks and writes that store one delivery whose body fits inline. */
  #stage(
    op: Deno.AtomicOperation,
    delivery: IncomingDelivery,
    now: number,
    leaseUntil: number | undefined,
  ): DeliveryRecord {
    const upload = uploadId(now);
    const chunks = this.#chunksOf(delivery.body);
    const record = this.#stageRecord(
      op,
      delivery,
      now,
      upload,
      chunks.length,
      leaseUntil,
    );
    chunks.forEach((chunk, i) =>
      op.set([ROOT, "b", upload, i], chunk, { expireIn: this.ttlMs })
    );
    return record;
  }

  /** Adds the two "is it new?" checks and the record with its index keys. */
  #stageRecord(
    op: Deno.AtomicOperation,
    delivery: IncomingDelivery,
    now: number,
    upload: string,
    chunks: number,
    leaseUntil: number | undefined,
  ): DeliveryRecord {
    const expireIn = this.ttlMs;
    const idKey = [ROOT, "d", delivery.id];
    const digestKey = [ROOT, "digest", delivery.digest];
    const record = this.#record(delivery, now, upload, chunks, leaseUntil);
    op.check({ key: idKey, versionstamp: null })
      .check({ key: digestKey, versionstamp: null })
      .set(idKey, record, { expireIn })
      .set(digestKey, delivery.id, { expireIn })
      .set([ROOT, "t", delivery.receivedAt, delivery.id], delivery.id, {
        expireIn,
      })
      .set([ROOT, "due", record.dueAt!, delivery.id], delivery.id, {
        expireIn,
      });
    return record;
  }

  /**
   * Group commit: while one commit is in flight, new acceptances and record
   * updates (outcomes, leases) wait and then go together in the next atomic
   * commit (up to {@link StoreOptions.batchMax} acceptances, within KV's
   * limits of 100 checks, 1,000 mutations and 800 KiB). When any check of a
   * batch fails, each of its operations is committed on its own, so each
   * still gets its own answer. Nothing waits for a timer.
   */
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length > 0 || this.#pendingUpdates.length > 0) {
        const accepts: PendingAccept[] = [];
        const restAccepts: PendingAccept[] = [];
        const keys = new Set<string>();
        let bytes = 0;
        for (const item of this.#pending) {
          const { id, digest, body } = item.delivery;
          const clash = keys.has("d" + id) || keys.has("h" + digest);
          if (
            clash || accepts.length >= this.#batchMax ||
            bytes + body.byteLength + 4096 > COMMIT_BYTES
          ) {
            restAccepts.push(item);
            continue;
          }
          keys.add("d" + id).add("h" + digest);
          bytes += body.byteLength + 4096;
          accepts.push(item);
        }
        this.#pending = restAccepts;
        // Updates fill the checks that acceptances left (2 each, 100 in all).
        const updates: PendingUpdate[] = [];
        const restUpdates: PendingUpdate[] = [];
        const room = 100 - 2 * accepts.length;
        for (const item of this.#pendingUpdates) {
          const key = "d" + item.entry.value.id;
          if (keys.has(key) || updates.length >= room) restUpdates.push(item);
          else {
            keys.add(key);
            updates.push(item);
          }
        }
        this.#pendingUpdates = restUpdates;

        if (accepts.length + updates.length === 1) {
          await this.#settleAlone(accepts, updates);
          continue;
        }
        const now = this.#now();
        const op = this.kv.atomic();
        const records = accepts.map((item) =>
          this.#stage(op, item.delivery, now, item.leaseUntil)
        );
        for (const item of updates) {
          this.#stageUpdate(op, item.entry, item.next);
        }
        let res: Deno.KvCommitResult | Deno.KvCommitError;
        try {
          if (accepts.length > 0) this.#recordCommits++;
          res = await op.commit();
        } catch (err) {
          for (const item of accepts) item.reject(err);
          for (const item of updates) item.reject(err);
          continue;
        }
        if (res.ok) {
          const versionstamp = res.versionstamp;
          accepts.forEach((item, i) => {
            item.resolve({
              status: "queued",
              id: item.delivery.id,
              ...(item.leaseUntil === undefined
                ? {}
                : { leased: { value: records[i]!, versionstamp } }),
            });
          });
          for (const item of updates) {
            item.resolve({
              key: item.entry.key,
              value: item.next,
              versionstamp,
            });
          }
        } else {
          // A duplicate, or a record changed meanwhile: each on its own.
          await this.#settleAlone(accepts, updates);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Commits each operation of a batch on its own. */
  async #settleAlone(
    accepts: PendingAccept[],
    updates: PendingUpdate[],
  ): Promise<void> {
    await Promise.all([
      ...accepts.map((item) =>
        this.#acceptOne(item.delivery, item.leaseUntil).then(
          item.resolve,
          item.reject,
        )
      ),
      ...updates.map((item) =>
        this.#updateOne(item.entry, item.next).then(item.resolve, item.reject)
      ),
    ]);
  }

  /** Stores one delivery in its own commit(s); answers duplicates. */
  async #acceptOne(
    delivery: IncomingDelivery,
    leaseUntil?: number,
  ): Promise<AcceptResult> {
    const now = this.#now();
    const inline = delivery.body.byteLength <= COMMIT_BYTES;
    let op: Deno.AtomicOperation;
    let record: DeliveryRecord;
    let cleanup: (() => Promise<void>) | null = null;
    if (inline) {
      op = this.kv.atomic();
      record = this.#stage(op, delivery, now, leaseUntil);
    } else {
      // Bodies too large for one commit: chunks first, in batches; the
      // upload key marks them until the record commit deletes it.
      const expireIn = this.ttlMs;
      const upload = uploadId(now);
      const chunks = this.#chunksOf(delivery.body);
      const uploadKey = [ROOT, "upload", now, upload];
      await this.kv.set(uploadKey, upload, { expireIn });
      for (let i = 0; i < chunks.length;) {
        const batch = this.kv.atomic();
        let bytes = 0;
        while (
          i < chunks.length && bytes + chunks[i]!.byteLength <= COMMIT_BYTES
        ) {
          batch.set([ROOT, "b", upload, i], chunks[i]!, { expireIn });
          bytes += chunks[i]!.byteLength;
          i++;
        }
        const res = await batch.commit();
        if (!res.ok) throw new Error("body chunk commit failed");
      }
      op = this.kv.atomic();
      record = this.#stageRecord(
        op,
        delivery,
        now,
        upload,
        chunks.length,
        leaseUntil,
      );
      op.delete(uploadKey);
      cleanup = () => this.#deleteBody(upload, chunks.length, uploadKey);
    }
    this.#recordCommits++;
    const res = await op.commit();
    if (res.ok) {
      return {
        status: "queued",
        id: delivery.id,
        ...(leaseUntil === undefined
          ? {}
          : { leased: { value: record, versionstamp: res.versionstamp } }),
      };
    }

    // A check failed: which delivery came first?
    await cleanup?.();
    let first =
      (await this.kv.get<DeliveryRecord>([ROOT, "d", delivery.id])).value;
    if (first === null) {
      const digest = await this.kv.get<string>([
        ROOT,
        "digest",
        delivery.digest,
      ]);
      if (digest.value !== null) {
        first =
          (await this.kv.get<DeliveryRecord>([ROOT, "d", digest.value])).value;
      }
      if (first === null) {
        // The other delivery expired between our commit and our reads: retry.
        return this.#acceptOne(delivery, leaseUntil);
      }
    }
    if (first.status === "dead") {
      const rearmed = await this.rearm(first.id, "redelivery");
      if (rearmed) return { status: "queued", id: first.id };
    }
    return { status: "duplicate", id: first.id };
  }

  async #deleteBody(
    upload: string,
    chunks: number,
    uploadKey?: Deno.KvKey,
  ): Promise<void> {
    for (let i = 0; i < chunks; i += 500) {
      const op = this.kv.atomic();
      for (let j = i; j < Math.min(i + 500, chunks); j++) {
        op.delete([ROOT, "b", upload, j]);
      }
      if (uploadKey && i + 500 >= chunks) op.delete(uploadKey);
      await op.commit();
    }
    if (chunks === 0 && uploadKey) await this.kv.delete(uploadKey);
  }

  /** One record, or null. */
  async get(id: string): Promise<DeliveryRecord | null> {
    return (await this.kv.get<DeliveryRecord>([ROOT, "d", id])).value;
  }

  /** One record with its versionstamp, for atomic updates. */
  getEntry(id: string): Promise<Deno.KvEntryMaybe<DeliveryRecord>> {
    return this.kv.get<DeliveryRecord>([ROOT, "d", id]);
  }

  /** The raw body bytes of a record, reassembled from its chunks. */
  async readBody(record: DeliveryRecord): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(record.size);
    let offset = 0;
    // Small pages of chunks, copied straight into `out`: never the whole
    // body twice in memory.
    for (let first = 0; first < record.chunks; first += 16) {
      const page = await this.kv.list<Uint8Array>({
        start: [ROOT, "b", record.upload, first],
        end: [ROOT, "b", record.upload, Math.min(first + 16, record.chunks)],
      });
      for (const entry of page) {
        if (offset + entry.value.byteLength > out.byteLength) break;
        out.set(entry.value, offset);
        offset += entry.value.byteLength;
      }
    }
    if (offset !== record.size) {
      throw new Error(
        `body of delivery ${record.id} is incomplete: ${offset} of ${record.size} bytes`,
      );
    }
    return out;
  }

  /** Records newest first (by receive time), at most `limit`. */
  async list(limit: number): Promise<DeliveryRecord[]> {
    const ids: string[] = [];
    for (
      const entry of await this.kv.list<string>({ prefix: [ROOT, "t"] }, {
        reverse: true,
        limit,
      })
    ) ids.push(entry.value);
    const out: DeliveryRecord[] = [];
    for (let i = 0; i < ids.length; i += 10) {
      const entries = await this.kv.getMany<DeliveryRecord[]>(
        ids.slice(i, i + 10).map((id) => [ROOT, "d", id]),
      );
      for (const entry of entries) if (entry.value) out.push(entry.value);
    }
    return out;
  }

  /** Ids of records due at or before `at` (pending, or with an expired lease). */
  async listDue(at: number, limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (
      const entry of await this.kv.list<string>(
        { start: [ROOT, "due", 0], end: [ROOT, "due", at + 1] },
        { limit },
      )
    ) ids.push(entry.value);
    return ids;
  }

  /** The earliest due time after `at`, or null when nothing is waiting. */
  async nextDue(): Promise<number | null> {
    for (
      const entry of await this.kv.list({ prefix: [ROOT, "due"] }, { limit: 1 })
    ) {
      return entry.key[2] as number;
    }
    return null;
  }

  /** How many records wait or run (bounded count). */
  async countDue(max = 10_000): Promise<number> {
    let n = 0;
    for (
      const _ of await this.kv.list({ prefix: [ROOT, "due"] }, { limit: max })
    ) n++;
    return n;
  }

  /**
   * Replaces a record if it is unchanged since `entry` was read, moving its
   * `due` index entry along. Returns the new record, or null when another
   * process got there first.
   */
  update(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    if (this.#batchMax <= 1) return this.#updateOne(entry, next);
    return new Promise((resolve, reject) => {
      this.#pendingUpdates.push({ entry, next, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  /** Adds one record update (checked against `entry`) to `op`. */
  #stageUpdate(
    op: Deno.AtomicOperation,
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
  ): void {
    const prev = entry.value;
    op.check(entry)
      .set([ROOT, "d", prev.id], next, { expireIn: this.#expireIn(next) });
    if (prev.dueAt !== null && prev.dueAt !== next.dueAt) {
      op.delete([ROOT, "due", prev.dueAt, prev.id]);
    }
    if (next.dueAt !== null && prev.dueAt !== next.dueAt) {
      op.set([ROOT, "due", next.dueAt, prev.id], prev.id, {
        expireIn: this.#expireIn(next),
      });
    }
  }

  async #updateOne(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    const op = this.kv.atomic();
    this.#stageUpdate(op, entry, next);
    const res = await op.commit();
    return res.ok
      ? { key: entry.key, value: next, versionstamp: res.versionstamp }
      : null;
  }

  #expireIn(record: DeliveryRecord): number {
    return Math.max(1000, record.receivedAt + this.ttlMs - this.#now());
  }

  /**
   * Takes a due record for this process: `running`, one more attempt, due
   * again at `leaseUntil` should we die. Null if it is not due or another
   * process took it.
   */
  async lease(
    id: string,
    leaseUntil: number,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    const now = this.#now();
    const entry = await this.getEntry(id);
    if (entry.value === null) {
      // The index outlived its record (expired): drop it.
      await this.#dropDue(id, now);
      return null;
    }
    const record = entry.value;
    if (record.dueAt === null || record.dueAt > now) return null;
    return await this.update(entry as Deno.KvEntry<DeliveryRecord>, {
      ...record,
      status: "running",
      attempts: record.attempts + 1,
      startedAt: now,
      updatedAt: now,
      dueAt: leaseUntil,
    });
  }

  async #dropDue(id: string, now: number): Promise<void> {
    for (
      const entry of await this.kv.list({
        start: [ROOT, "due", 0],
        end: [ROOT, "due", now + 1],
      })
    ) {
      if (entry.key[3] === id) await this.kv.delete(entry.key);
    }
  }

  /**
   * Re-arms a record (a replay, or a redelivery of a `dead` one): `queued`,
   * due now, with `MAX_ATTEMPTS` more attempts. Returns it, or null if unknown.
   * It commits on its own, never through the group commit: it runs inside a
   * batch's fallback (a duplicate of a dead delivery) and must not wait for
   * the batch that waits for it.
   */
  async rearm(
    id: string,
    _why: "replay" | "redelivery",
  ): Promise<DeliveryRecord | null> {
    for (let tries = 0; tries < 5; tries++) {
      const entry = await this.getEntry(id);
      if (entry.value === null) return null;
      const record = entry.value;
      const now = this.#now();
      if (record.status === "queued" || record.status === "failed") {
        // Already waiting: make it due now.
        const next = await this.#updateOne(
          entry as Deno.KvEntry<DeliveryRecord>,
          {
            ...record,
            dueAt: Math.min(record.dueAt ?? now, now),
            updatedAt: now,
          },
        );
        if (next) return next.value;
        continue;
      }
      const next = await this.#updateOne(
        entry as Deno.KvEntry<DeliveryRecord>,
        {
          ...record,
          status: record.status === "running" ? "running" : "queued",
          ...(record.status === "running" ? { rerun: true } : {}),
          attemptLimit: record.attempts + this.maxAttempts,
          dueAt: record.status === "running" ? record.dueAt : now,
          finishedAt: record.status === "running" ? record.finishedAt : null,
          updatedAt: now,
          replays: record.replays + 1,
        },
      );
      if (next) return next.value;
    }
    throw new Error(`could not re-arm delivery ${id}: too much contention`);
  }

  /**
   * Claims a named periodic job (e.g. `"collect"`) for `ms` among every
   * process and isolate sharing this KV: true for exactly one claimant until
   * the claim expires.
   */
  claim(job: string, owner: string, ms: number): Promise<boolean> {
    return takeLease(this.kv, jobLeaseKey(job), owner, ms, this.#now());
  }

  /**
   * Removes what is past `DELIVERY_TTL_DAYS` by the injected clock (records,
   * bodies, indexes) and bodies orphaned by a crash before their record was
   * committed. Returns how many records and orphaned bodies went.
   */
  async collect(): Promise<{ records: number; orphans: number }> {
    const now = this.#now();
    let records = 0;
    let orphans = 0;
    const cutoff = now - this.ttlMs;
    for (
      const entry of await this.kv.list<string>({
        start: [ROOT, "t", 0],
        end: [ROOT, "t", cutoff],
      }, {
        limit: 1000,
      })
    ) {
      const id = entry.value;
      const rec = await this.kv.get<DeliveryRecord>([ROOT, "d", id]);
      const op = this.kv.atomic().delete(entry.key);
      if (rec.value && rec.value.receivedAt < cutoff) {
        const r = rec.value;
        op.check(rec).delete(rec.key);
        const digest = await this.kv.get<string>([ROOT, "digest", r.digest]);
        if (digest.value === id) op.delete(digest.key);
        if (r.dueAt !== null) op.delete([ROOT, "due", r.dueAt, id]);
        if ((await op.commit()).ok) {
          await this.#deleteBody(r.upload, r.chunks);
          records++;
        }
      } else {
        await op.commit();
      }
    }
    for (
      const entry of await this.kv.list<string>({
        start: [ROOT, "upload", 0],
        end: [ROOT, "upload", now - ORPHAN_AFTER_MS],
      })
    ) {
      const upload = entry.value;
      const keys: Deno.KvKey[] = [];
      for (const chunk of await this.kv.list({ prefix: [ROOT, "b", upload] })) {
        keys.push(chunk.key);
      }
      for (let i = 0; i < keys.length; i += 500) {
        const op = this.kv.atomic();
        for (const key of keys.slice(i, i + 500)) op.delete(key);
        await op.commit();
      }
      await this.kv.delete(entry.key);
      orphans++;
    }
    return { records, orphans };
  }
}
