/**
 * The delivery leases this process holds — running, or waiting in memory for
 * a handler slot — their renewal, and the commit that counts a waiting
 * lease's attempt when its run starts. Every lease is short ({@link LEASE_MS})
 * so that a process that dies leaves nothing leased for long; while this
 * process lives, one background pass every third of the lease renews all it
 * holds (the renewals share the store's group commits). A lease stops being
 * renewed when its outcome is recorded ({@link LeaseKeeper.release}).
 *
 * Each held lease keeps the record's latest entry, so that the outcome is
 * committed against it; should a renewal and the outcome cross, the outcome
 * retries against a fresh read (`outcome.ts`), and so does a renewal that
 * finds the record changed by someone else (a replay).
 *
 * It decides nothing about a record's status (`store/lifecycle.ts`) and
 * starts no run.
 *
 * @module
 */

import type { Logger } from "../ops/log.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import {
  holdsLease,
  releaseRecord,
  renewRecord,
  startRecord,
} from "../store/lifecycle.ts";
import { describeError } from "../_util/errors.ts";

/**
 * How long a lease lasts unless renewed: a delivery whose process died runs
 * again within this (at once when the process restarts in its seat).
 */
export const LEASE_MS = 15_000;
/** Reads and commits tried by one renewal against concurrent writers. */
const RENEW_TRIES = 3;

/** One lease this process holds. */
export interface HeldLease {
  /** The record as it was leased (its start and owner identify the run). */
  readonly leased: DeliveryRecord;
  /** The record's latest entry: commit the outcome against this. */
  entry: Deno.KvEntry<DeliveryRecord>;
  /**
   * Aborted when the lease is lost while held: another worker took the
   * record (its lease lapsed: renewals kept failing, the process stalled).
   * The run must stop, so that it does not go on beside the new one.
   */
  readonly lost: AbortSignal;
}

/** A held lease with the controller of its {@link HeldLease.lost} signal. */
interface Held extends HeldLease {
  readonly losing: AbortController;
}

/** Options of {@link createLeaseKeeper}. */
export interface LeaseKeeperOptions {
  store: Pick<DeliveryStore, "now" | "update" | "getEntry">;
  log: Logger;
  /** How long a lease lasts; renewed every third of it. @default LEASE_MS */
  leaseMs?: number;
}

/** The leases a worker holds, renewed in the background. */
export interface LeaseKeeper {
  /** Holds a lease just taken; renewals start (or go on) in the background. */
  hold(entry: Deno.KvEntry<DeliveryRecord>): HeldLease;
  /** Stops renewing `held`: its outcome is recorded (or given up). */
  release(held: HeldLease): void;
  /**
   * Gives `held` back before its run started (a shutdown): the record is
   * queued again, due now, the attempt not counted. Rejects when KV fails.
   */
  giveBack(held: HeldLease): Promise<void>;
  /**
   * Counts the attempt of a `waiting` lease whose run is about to start (one
   * commit, shared with renewals), keeping the new entry. False when the
   * lease is no longer this process's (then it is no longer held). Rejects
   * when KV fails.
   */
  start(held: HeldLease): Promise<boolean>;
  /** Whether a lease on this delivery is held. */
  holds(id: string): boolean;
  /** One renewal pass over every lease held; returns how many were renewed. */
  renew(): Promise<number>;
  /** Stops renewing and forgets every lease (the worker is drained). */
  stop(): void;
  /** How long a lease lasts. */
  readonly leaseMs: number;
  /** Leases held. */
  readonly size: number;
}

/**
 * Commits `change` of a held lease's record: against the entry held, then,
 * when the record changed meanwhile, against a fresh read as long as this
 * run still holds it. The new entry, or null when the lease is no longer
 * this run's.
 */
async function commitHeld(
  store: LeaseKeeperOptions["store"],
  held: HeldLease,
  change: (record: DeliveryRecord) => DeliveryRecord,
): Promise<Deno.KvEntry<DeliveryRecord> | null> {
  let entry: Deno.KvEntryMaybe<DeliveryRecord> = held.entry;
  for (let tries = 0; tries < RENEW_TRIES; tries++) {
    if (tries > 0) entry = await store.getEntry(held.leased.id);
    if (entry.value === null || !holdsLease(entry.value, held.leased)) {
      return null;
    }
    const saved = await store.update(
      entry as Deno.KvEntry<DeliveryRecord>,
      change(entry.value),
    );
    if (saved) return saved;
  }
  return null;
}

/**
 * Renews one lease until `until`, keeping the new entry. False when the
 * lease is no longer this run's (its outcome was recorded, or another worker
 * took it after it lapsed).
 */
async function renewOne(
  store: LeaseKeeperOptions["store"],
  held: HeldLease,
  until: number,
): Promise<boolean> {
  const saved = await commitHeld(
    store,
    held,
    (record) => renewRecord(record, until),
  );
  if (saved) held.entry = saved;
  return saved !== null;
}

/**
 * Creates the lease keeper of one worker. Its timer runs only while leases
 * are held.
 *
 * @example
 * ```ts
 * import { createLeaseKeeper } from "./leases.ts";
 * import { DeliveryStore } from "../store/store.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const kv = await Deno.openKv(":memory:");
 * const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
 * const leases = createLeaseKeeper({ store, log: NULL_LOGGER, leaseMs: 3_000 });
 * await leases.renew(); // 0: nothing held
 * kv.close();
 * ```
 */
export function createLeaseKeeper(options: LeaseKeeperOptions): LeaseKeeper {
  const { store, log, leaseMs = LEASE_MS } = options;
  const held = new Map<string, Held>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  function schedule(): void {
    if (timer !== undefined || held.size === 0) return;
    timer = setTimeout(async () => {
      try {
        await renew();
      } finally {
        timer = undefined;
        schedule();
      }
    }, Math.max(1, Math.floor(leaseMs / 3)));
  }

  async function renew(): Promise<number> {
    const until = store.now() + leaseMs;
    const results = await Promise.all([...held.values()].map(async (lease) => {
      try {
        if (await renewOne(store, lease, until)) return true;
        // Recorded meanwhile, or taken by another worker: stop renewing.
        if (held.get(lease.leased.id) === lease) {
          held.delete(lease.leased.id);
          lease.losing.abort(
            new Error("the lease was lost: it runs elsewhere"),
          );
        }
      } catch (err) {
        // Tried again at the next pass, while the lease lasts.
        log.error("lease renewal failed", {
          delivery: lease.leased.id,
          error: describeError(err),
        });
        const expiry = lease.entry.value.dueAt;
        if (expiry !== null && store.now() >= expiry) {
          lease.losing.abort(
            new Error("the lease lapsed: renewals failed until it expired"),
          );
        }
      }
      return false;
    }));
    return results.filter(Boolean).length;
  }

  return {
    hold(entry) {
      const losing = new AbortController();
      const lease: Held = {
        leased: entry.value,
        entry,
        losing,
        lost: losing.signal,
      };
      held.set(entry.value.id, lease);
      schedule();
      return lease;
    },
    release(lease) {
      if (held.get(lease.leased.id) === lease) held.delete(lease.leased.id);
    },
    async giveBack(lease) {
      try {
        await commitHeld(store, lease, (r) => releaseRecord(r, store.now()));
      } finally {
        if (held.get(lease.leased.id) === lease) held.delete(lease.leased.id);
      }
    },
    async start(lease) {
      const saved = await commitHeld(
        store,
        lease,
        (record) => startRecord(record, store.now()),
      );
      if (saved) lease.entry = saved;
      else if (held.get(lease.leased.id) === lease) {
        held.delete(lease.leased.id);
      }
      return saved !== null;
    },
    holds: (id) => held.has(id),
    renew,
    stop() {
      held.clear();
      clearTimeout(timer);
      timer = undefined;
    },
    leaseMs,
    get size() {
      return held.size;
    },
  };
}
