/**
 * The per-key queues of `SERIALIZE_BY`, read: which delivery of an order key
 * is its head, the only one that may run. An ordered delivery's queue entry
 * is written in the commit that stores it and deleted in the commit that
 * makes it final (`group_commit.ts`); so the entry with the oldest
 * versionstamp belongs to the delivery stored first among those not yet
 * `done`, `skipped` or `dead` — whichever process stored it, whatever the
 * clocks say. A later delivery's entry is always newer: once a delivery is
 * the head, it stays the head until it is final.
 *
 * It writes nothing but stale entries (an entry whose record expired).
 * Parking and waking records is the store's (`store.ts`), the statuses are
 * `lifecycle.ts`'s.
 *
 * @module
 */

import { deliveryKeys } from "./keys.ts";
import type { LockSafeKv } from "./kv.ts";
import type { QueueEntry } from "./group_commit.ts";

/** Most entries of one key looked at for its head. */
const HEAD_SCAN = 100;

/**
 * Whether `a` was queued before `b`: by commit (versionstamp), then by
 * place within one grouped commit.
 *
 * @example
 * ```ts
 * import { queuedBefore } from "./order.ts";
 * const a = { key: [], value: { id: "a", seq: 2 }, versionstamp: "01" };
 * const b = { key: [], value: { id: "b", seq: 1 }, versionstamp: "02" };
 * queuedBefore(a, b); // true
 * ```
 */
export function queuedBefore(
  a: Deno.KvEntry<QueueEntry>,
  b: Deno.KvEntry<QueueEntry>,
): boolean {
  if (a.versionstamp !== b.versionstamp) return a.versionstamp < b.versionstamp;
  return a.value.seq < b.value.seq;
}

/**
 * The head of an order key's queue: the entry queued first among the
 * {@link HEAD_SCAN} oldest by receive time (entries are keyed by it, so
 * only processes whose clocks differ by more than the whole queue could
 * hide the head). Null when the queue is empty.
 */
export async function queueHead(
  kv: LockSafeKv,
  orderKey: string,
): Promise<Deno.KvEntry<QueueEntry> | null> {
  let head: Deno.KvEntry<QueueEntry> | null = null;
  for (
    const entry of await kv.list<QueueEntry>(
      { prefix: deliveryKeys.queue(orderKey) },
      { limit: HEAD_SCAN },
    )
  ) {
    if (head === null || queuedBefore(entry, head)) head = entry;
  }
  return head;
}
