/**
 * The delivery store: records and their raw bodies on Deno KV, behind one
 * façade. The record is the source of truth for a delivery's life; the store
 * reads it, commits the transitions `lifecycle.ts` computes, and checks every
 * write against what it read (atomic versionstamp checks), so that many
 * processes can share one KV. The keys are in `keys.ts`.
 *
 * Behind it: `group_commit.ts` (every record write, grouped), `bodies.ts`
 * (chunked bodies), `collect.ts` (removing what expired) and `lease.ts`
 * (periodic jobs). It does not run handlers or decide when to retry: the
 * worker (`worker/`) does.
 *
 * @module
 */

import type {
  AcceptResult,
  DeliveryRecord,
  IncomingDelivery,
} from "./types.ts";
import { deliveryKeys, jobLeaseKey, seatKey, WAKE_KEY } from "./keys.ts";
import { lockSafe, type LockSafeKv } from "./kv.ts";
import { takeLease } from "./lease.ts";
import {
  isFinal,
  leaseRecord,
  type NewLease,
  parkRecord,
  rearmRecord,
  reclaimRecord,
  wakeRecord,
} from "./lifecycle.ts";
import { queueHead } from "./order.ts";
import type { KvLimits } from "./limits.ts";
import type { QueueEntry } from "./group_commit.ts";
import { readBody } from "./bodies.ts";
import { listRuns, type RunReport, type RunToStore, saveRuns } from "./runs.ts";
import { createGroupCommit, type GroupCommit } from "./group_commit.ts";
import { type Collected, collectExpired } from "./collect.ts";

/** Options of {@link DeliveryStore}. */
export interface StoreOptions {
  kv: Deno.Kv;
  /** `DELIVERY_TTL_DAYS` in ms. */
  ttlMs: number;
  /** `MAX_ATTEMPTS`: the attempts a delivery gets, and a re-arm adds. */
  maxAttempts: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * Who this process is: every lease it takes carries this id.
   * @default a random UUID
   */
  owner?: string;
  /** Body chunk size; at most 65,536 (KV's value limit). @default 64_000 */
  chunkSize?: number;
  /**
   * Most deliveries committed together while another commit is in flight
   * (group commit); 1 turns grouping off. At most 50 (KV allows 100 checks a
   * commit, two per delivery). @default 32
   */
  batchMax?: number;
  /** The backend's request limits (`limits.ts`). @default the local file's */
  limits?: KvLimits;
  /**
   * How long an ordered delivery that waits for an earlier one of its key
   * is left alone before it is looked at again, should the wake-up that
   * the earlier one's end brings be lost (a crash between the two commits).
   * @default 30_000
   */
  parkMs?: number;
}

/** Options of {@link DeliveryStore.accept}. */
export interface AcceptOptions {
  /**
   * Store the delivery already leased to this process until this time
   * (`running`, attempt 1): the durable fast path for a worker with a free
   * slot. Should the process die, the lease expires and any worker re-runs it.
   */
  leaseUntil?: number | undefined;
  /**
   * With `leaseUntil`: the delivery will wait in memory for a handler slot,
   * so it is stored `waiting`, its attempt counted only when its run starts
   * (`startRecord`). @default false
   */
  waiting?: boolean | undefined;
}

/** How often a re-arm is tried against concurrent writers. */
const REARM_TRIES = 5;
/** How often taking a seat is tried against a concurrent taker. */
const SEAT_TRIES = 5;
/** Most work index entries one reclaim looks at. */
const RECLAIM_MAX = 10_000;
/** Stale queue entries (their record expired) dropped in one head lookup. */
const STALE_MAX = 10;

/** What a seat key holds: who started in the seat last, and when. */
export interface Seat {
  owner: string;
  since: number;
}

/** Delivery records and bodies on one `Deno.Kv`. */
export class DeliveryStore {
  /** The KV, every call retried on SQLite's lock errors. */
  readonly kv: LockSafeKv;
  /** `DELIVERY_TTL_DAYS` in ms. */
  readonly ttlMs: number;
  /** `MAX_ATTEMPTS`. */
  readonly maxAttempts: number;
  /** This process's id: the owner of every lease it takes. */
  readonly owner: string;
  readonly #now: () => number;
  readonly #commits: GroupCommit;
  readonly #raw: Deno.Kv;
  readonly #parkMs: number;

  /** @param options the KV, TTL and clock */
  constructor(options: StoreOptions) {
    this.kv = lockSafe(options.kv);
    this.#raw = options.kv;
    this.ttlMs = options.ttlMs;
    this.maxAttempts = options.maxAttempts;
    this.owner = options.owner ?? crypto.randomUUID();
    this.#now = options.now ?? Date.now;
    this.#parkMs = options.parkMs ?? 30_000;
    this.#commits = createGroupCommit({
      kv: this.kv,
      ttlMs: this.ttlMs,
      maxAttempts: this.maxAttempts,
      now: this.#now,
      owner: this.owner,
      chunkSize: options.chunkSize,
      batchMax: options.batchMax,
      limits: options.limits,
    });
  }

  /** How many record commits (single or grouped) this store has made. */
  get recordCommits(): number {
    return this.#commits.commits;
  }

  /**
   * Calls `onWake` each time a commit — of any process sharing this KV —
   * makes work due now (the wake counter in `keys.ts`, through `kv.watch`),
   * until `signal` aborts or the watch ends. Resolves then; never rejects:
   * a watch that fails leaves the worker's poll to find the work.
   */
  async watchWakes(onWake: () => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const reader = this.#raw.watch([WAKE_KEY]).getReader();
    const stop = () => reader.cancel().catch(() => {});
    signal.addEventListener("abort", stop, { once: true });
    try {
      // The first answer is the counter as it is: nothing happened yet.
      if ((await reader.read()).done) return;
      while (!(await reader.read()).done) onWake();
    } catch {
      // The KV closed or the connection broke: the caller may watch again.
    } finally {
      signal.removeEventListener("abort", stop);
      reader.releaseLock();
    }
  }

  /** The current time of the injected clock. */
  now(): number {
    return this.#now();
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
    const lease = options.leaseUntil === undefined
      ? undefined
      : { until: options.leaseUntil, waiting: options.waiting ?? false };
    return this.#commits.accept(delivery, lease).then((stored) =>
      stored ?? this.#answerClash(delivery, lease)
    );
  }

  /** A check of `delivery`'s commit failed: which delivery came first? */
  async #answerClash(
    delivery: IncomingDelivery,
    lease: NewLease | undefined,
  ): Promise<AcceptResult> {
    let first = await this.get(delivery.id);
    if (first === null) {
      const digest = await this.kv.get<string>(
        deliveryKeys.digest(delivery.digest),
      );
      if (digest.value !== null) first = await this.get(digest.value);
      if (first === null) {
        // The other delivery expired between our commit and our reads: retry.
        const stored = await this.#commits.acceptAlone(delivery, lease);
        return stored ?? this.#answerClash(delivery, lease);
      }
    }
    if (first.status === "dead") {
      const rearmed = await this.rearm(first.id, "redelivery");
      if (rearmed) return { status: "queued", id: first.id };
    }
    return { status: "duplicate", id: first.id };
  }

  /** One record, or null. */
  async get(id: string): Promise<DeliveryRecord | null> {
    return (await this.getEntry(id)).value;
  }

  /** One record with its versionstamp, for atomic updates. */
  getEntry(id: string): Promise<Deno.KvEntryMaybe<DeliveryRecord>> {
    return this.kv.get<DeliveryRecord>(deliveryKeys.record(id));
  }

  /** The raw body bytes of a record, reassembled from its chunks. */
  readBody(record: DeliveryRecord): Promise<Uint8Array<ArrayBuffer>> {
    return readBody(this.kv, record);
  }

  /**
   * Keeps what each handler and script of attempt `attempt` of `record`
   * reported (`runs.ts`), for as long as the record lives.
   */
  saveRuns(
    record: DeliveryRecord,
    attempt: number,
    runs: readonly RunToStore[],
  ): Promise<void> {
    const expireIn = Math.max(
      1000,
      record.receivedAt + this.ttlMs - this.#now(),
    );
    return saveRuns(this.kv, record.id, attempt, runs, expireIn);
  }

  /** What each run of a delivery reported, oldest attempt first. */
  runs(id: string): Promise<RunReport[]> {
    return listRuns(this.kv, id);
  }

  /** Records newest first (by receive time), at most `limit`. */
  async list(limit: number): Promise<DeliveryRecord[]> {
    const ids: string[] = [];
    for (
      const entry of await this.kv.list<string>(
        { prefix: deliveryKeys.listedFrom() },
        { reverse: true, limit },
      )
    ) ids.push(entry.value);
    const out: DeliveryRecord[] = [];
    for (let i = 0; i < ids.length; i += 10) {
      const entries = await this.kv.getMany<DeliveryRecord[]>(
        ids.slice(i, i + 10).map((id) => deliveryKeys.record(id)),
      );
      for (const entry of entries) if (entry.value) out.push(entry.value);
    }
    return out;
  }

  /**
   * Ids of the records received from `since` to `until` (ms, both
   * inclusive; unset: unbounded) that pass `match`, oldest first. Reads at
   * most `max` listing entries, and each one's record (ten a `getMany`:
   * KV Connect allows ten read ranges a request). When the range holds
   * more, `next` is the receive time of the first entry not read: call
   * again from there for the rest (null when all was read). Entries whose
   * record expired are skipped.
   */
  async listReceived(
    range: { since?: number | undefined; until?: number | undefined },
    max: number,
    match: (record: DeliveryRecord) => boolean,
  ): Promise<{ ids: string[]; scanned: number; next: number | null }> {
    const entries = await this.kv.list<string>({
      start: deliveryKeys.listedFrom(range.since ?? 0),
      end: deliveryKeys.listedFrom(
        range.until === undefined ? Number.MAX_SAFE_INTEGER : range.until + 1,
      ),
    }, { limit: max + 1 });
    const listed = entries.slice(0, max).map((entry) => entry.value);
    const ids: string[] = [];
    for (let i = 0; i < listed.length; i += 10) {
      const records = await this.kv.getMany<DeliveryRecord[]>(
        listed.slice(i, i + 10).map((id) => deliveryKeys.record(id)),
      );
      for (const { value } of records) {
        if (value !== null && match(value)) ids.push(value.id);
      }
    }
    const rest = entries[max];
    return {
      ids,
      scanned: listed.length,
      next: rest === undefined ? null : rest.key[2] as number,
    };
  }

  /** Ids of records due at or before `at` (pending, or with an expired lease). */
  async listDue(at: number, limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (
      const entry of await this.kv.list<string>(
        { start: deliveryKeys.dueFrom(0), end: deliveryKeys.dueFrom(at + 1) },
        { limit },
      )
    ) ids.push(entry.value);
    return ids;
  }

  /** The earliest due time, or null when nothing is waiting. */
  async nextDue(): Promise<number | null> {
    for (
      const entry of await this.kv.list(
        { prefix: deliveryKeys.dueFrom() },
        { limit: 1 },
      )
    ) {
      return deliveryKeys.dueOf(entry.key).dueAt;
    }
    return null;
  }

  /** How many records wait or run (bounded count). */
  async countDue(max = 10_000): Promise<number> {
    let n = 0;
    for (
      const _ of await this.kv.list({ prefix: deliveryKeys.dueFrom() }, {
        limit: max,
      })
    ) n++;
    return n;
  }

  /**
   * When the earliest entry of the work index is due (ms), or null when
   * nothing waits: a due time in the past is work no worker has taken yet.
   */
  async oldestDue(): Promise<number | null> {
    const [first] = await this.kv.list({ prefix: deliveryKeys.dueFrom() }, {
      limit: 1,
    });
    return first ? deliveryKeys.dueOf(first.key).dueAt : null;
  }

  /**
   * Replaces a record if it is unchanged since `entry` was read, moving its
   * `due` index entry along (in a shared commit). Returns the new record, or
   * null when another process got there first.
   */
  async update(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    const saved = await this.#commits.update(entry, next);
    // An ordered delivery that became final hands its key to the next one.
    if (
      saved !== null && next.orderKey !== undefined && isFinal(next.status) &&
      !isFinal(entry.value.status)
    ) await this.advance(next.orderKey);
    return saved;
  }

  /**
   * The head of an order key's queue, unless it is `record` itself: the
   * delivery `record` must wait for. Entries whose record expired are
   * dropped on the way. Null when `record` may run.
   */
  async #blocker(
    record: DeliveryRecord,
  ): Promise<Deno.KvEntry<QueueEntry> | null> {
    let head: Deno.KvEntry<QueueEntry> | null = null;
    for (let i = 0; i < STALE_MAX; i++) {
      head = await queueHead(this.kv, record.orderKey!);
      // Its own entry is gone (it expired): it is no longer ordered.
      if (head === null || head.value.id === record.id) return null;
      const first = await this.get(head.value.id);
      if (first !== null && !isFinal(first.status)) return head;
      await this.kv.atomic().check(head).delete(head.key).commit();
    }
    // Still stale entries ahead: wait (the next look drops more of them).
    return head;
  }

  /**
   * Makes the head of an order key due now when it waited for the delivery
   * that just ended ({@link wakeRecord}). Entries whose record expired are
   * dropped on the way.
   */
  async advance(orderKey: string): Promise<void> {
    for (let i = 0; i < STALE_MAX; i++) {
      const head = await queueHead(this.kv, orderKey);
      if (head === null) return;
      const entry = await this.getEntry(head.value.id);
      if (entry.value === null) {
        await this.kv.atomic().check(head).delete(head.key).commit();
        continue;
      }
      const next = wakeRecord(entry.value, this.#now());
      if (next !== null) {
        await this.#commits.update(entry as Deno.KvEntry<DeliveryRecord>, next);
      }
      return;
    }
  }

  /**
   * Takes a due record for this process ({@link owner}): `running`, one more
   * attempt, due again at `leaseUntil` should we die. Null if it is not due
   * or another process took it. A lapsed run that had used its last attempt
   * comes back `dead` instead (see `giveUpRecord`): run only what comes back
   * `running`. An ordered delivery (`orderKey`) that is not its key's head is
   * not taken: it waits, `queued`, for the head to end (see `order.ts`).
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
    const next = leaseRecord(entry.value, now, leaseUntil, this.owner);
    if (next === null) return null;
    if (next.status === "running" && entry.value.orderKey !== undefined) {
      return await this.#leaseInOrder(
        entry as Deno.KvEntry<DeliveryRecord>,
        next,
        now,
      );
    }
    return await this.update(entry as Deno.KvEntry<DeliveryRecord>, next);
  }

  /**
   * Leases an ordered record only when it may run: its key's lease is free
   * (or its own, or held by a record that is gone or final) and it is its
   * key's head. The lease commit takes the key's lease; the final commit
   * gives it back (`group_commit.ts`). Otherwise the record waits
   * ({@link parkRecord}) — in a commit that fails, leaving it due, when
   * what it waits for changed meanwhile, so that no wake-up is lost.
   */
  async #leaseInOrder(
    entry: Deno.KvEntry<DeliveryRecord>,
    next: DeliveryRecord,
    now: number,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    const { id } = entry.value;
    const lockKey = deliveryKeys.orderLock(entry.value.orderKey!);
    const lock = await this.kv.get<string>(lockKey);
    let blocker: { id: string; check: Deno.AtomicCheck } | null = null;
    if (lock.value !== null && lock.value !== id) {
      const holder = await this.get(lock.value);
      if (holder !== null && !isFinal(holder.status)) {
        blocker = { id: lock.value, check: lock };
      }
    }
    if (blocker === null && lock.value !== id) {
      const head = await this.#blocker(entry.value);
      if (head !== null) blocker = { id: head.value.id, check: head };
    }
    if (blocker !== null) {
      const parked = parkRecord(
        entry.value,
        now,
        now + this.#parkMs,
        blocker.id,
      );
      await this.#commits.updateAlone(entry, parked, [blocker.check]);
      return null;
    }
    return await this.#commits.updateAlone(
      entry,
      next,
      [lock],
      (op, expireIn) => op.set(lockKey, id, { expireIn }),
    );
  }

  async #dropDue(id: string, now: number): Promise<void> {
    for (
      const entry of await this.kv.list({
        start: deliveryKeys.dueFrom(0),
        end: deliveryKeys.dueFrom(now + 1),
      })
    ) {
      if (deliveryKeys.dueOf(entry.key).id === id) {
        await this.kv.delete(entry.key);
      }
    }
  }

  /**
   * Re-arms a record (a replay, or a redelivery of a `dead` one; see
   * `rearmRecord`). Returns it, or null if unknown. It commits on its own,
   * never through the group commit: re-arms are rare, and one that loses a
   * race reads again at once.
   */
  async rearm(
    id: string,
    _why: "replay" | "redelivery",
  ): Promise<DeliveryRecord | null> {
    for (let tries = 0; tries < REARM_TRIES; tries++) {
      const entry = await this.getEntry(id);
      if (entry.value === null) return null;
      const next = rearmRecord(entry.value, this.#now(), this.maxAttempts);
      const saved = await this.#commits.updateAlone(
        entry as Deno.KvEntry<DeliveryRecord>,
        next,
      );
      if (saved) return saved.value;
    }
    throw new Error(`could not re-arm delivery ${id}: too much contention`);
  }

  /**
   * Takes `seat` (one host's listen port on this KV; see `boot.ts`) for this
   * process, returning who had it before: the process this one replaces,
   * whose leases it may take back ({@link reclaim}). Null when the seat was
   * empty (or already ours). The seat key lives as long as a delivery does.
   */
  async takeSeat(seat: string): Promise<string | null> {
    const key = seatKey(seat);
    for (let tries = 0; tries < SEAT_TRIES; tries++) {
      const entry = await this.kv.get<Seat>(key);
      const res = await this.kv.atomic()
        .check(entry)
        .set(key, { owner: this.owner, since: this.#now() } satisfies Seat, {
          expireIn: this.ttlMs,
        })
        .commit();
      if (!res.ok) continue;
      const before = entry.value?.owner ?? null;
      return before === this.owner ? null : before;
    }
    throw new Error(`could not take seat ${seat}: too much contention`);
  }

  /**
   * Makes every running record of `owner` (a process known to be gone) due
   * now, so that it runs again at once rather than when its lease lapses.
   * Looks at the work index from now to `withinMs` ahead (an owner's leases
   * end within its lease length), at most {@link RECLAIM_MAX} entries.
   * Returns how many records it made due.
   */
  async reclaim(owner: string, withinMs: number): Promise<number> {
    const now = this.#now();
    const ids = (await this.kv.list<string>({
      start: deliveryKeys.dueFrom(now + 1),
      end: deliveryKeys.dueFrom(now + withinMs + 1),
    }, { limit: RECLAIM_MAX })).map((entry) => entry.value);
    let reclaimed = 0;
    for (let i = 0; i < ids.length; i += 10) {
      const entries = await this.kv.getMany<DeliveryRecord[]>(
        ids.slice(i, i + 10).map((id) => deliveryKeys.record(id)),
      );
      const saved = await Promise.all(entries.map((entry) => {
        const next = entry.value && reclaimRecord(entry.value, owner, now);
        return next
          ? this.update(entry as Deno.KvEntry<DeliveryRecord>, next)
          : null;
      }));
      reclaimed += saved.filter((entry) => entry !== null).length;
    }
    return reclaimed;
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
  collect(): Promise<Collected> {
    return collectExpired(this.kv, { now: this.#now(), ttlMs: this.ttlMs });
  }
}
