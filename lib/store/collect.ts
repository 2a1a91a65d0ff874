/**
 * Collecting what is past `DELIVERY_TTL_DAYS` by the injected clock (KV's
 * own `expireIn` is not exact, and a test's clock is not KV's): records with
 * their digest, work index entry, queue entry (`SERIALIZE_BY`), body and
 * run reports, listing entries left behind, and
 * bodies orphaned by a crash before their record was committed.
 *
 * It does not decide when to collect or who collects: the worker claims the
 * `"collect"` job (`lease.ts`) once a period across every process.
 *
 * @module
 */

import type { DeliveryRecord } from "./types.ts";
import { deliveryKeys } from "./keys.ts";
import type { LockSafeKv } from "./kv.ts";
import { deleteBody, deleteChunks } from "./bodies.ts";
import { deleteRuns } from "./runs.ts";
import { queuedAt } from "./lifecycle.ts";

/** How long a body without a record is kept before it counts as orphaned. */
export const ORPHAN_AFTER_MS = 3_600_000;

/** Listing entries looked at in one collection. */
const RECORDS_PER_COLLECT = 1000;

/** What one collection removed (a type, so that it can be logged as fields). */
export type Collected = {
  /** Records (with their indexes and bodies). */
  records: number;
  /** Bodies whose record never came. */
  orphans: number;
};

/**
 * Removes up to 1,000 records received before `now - ttlMs`, and every body
 * upload older than {@link ORPHAN_AFTER_MS} that no record finished.
 *
 * @example
 * ```ts
 * import { collectExpired } from "./collect.ts";
 * import { lockSafe } from "./kv.ts";
 * const kv = await Deno.openKv(":memory:");
 * await collectExpired(lockSafe(kv), { now: Date.now(), ttlMs: 1000 }); // { records: 0, orphans: 0 }
 * kv.close();
 * ```
 */
export async function collectExpired(
  kv: LockSafeKv,
  options: { now: number; ttlMs: number },
): Promise<Collected> {
  const { now, ttlMs } = options;
  return {
    records: await collectRecords(kv, now - ttlMs),
    orphans: await collectOrphans(kv, now - ORPHAN_AFTER_MS),
  };
}

/** Removes records received before `cutoff`; returns how many. */
async function collectRecords(kv: LockSafeKv, cutoff: number): Promise<number> {
  let records = 0;
  for (
    const entry of await kv.list<string>({
      start: deliveryKeys.listedFrom(0),
      end: deliveryKeys.listedFrom(cutoff),
    }, { limit: RECORDS_PER_COLLECT })
  ) {
    const id = entry.value;
    const rec = await kv.get<DeliveryRecord>(deliveryKeys.record(id));
    const op = kv.atomic().delete(entry.key);
    if (rec.value && rec.value.receivedAt < cutoff) {
      const r = rec.value;
      op.check(rec).delete(rec.key);
      const digest = await kv.get<string>(deliveryKeys.digest(r.digest));
      if (digest.value === id) op.delete(digest.key);
      if (r.dueAt !== null) op.delete(deliveryKeys.due(r.dueAt, id));
      if (r.orderKey !== undefined) {
        op.delete(deliveryKeys.queued(r.orderKey, queuedAt(r), id));
      }
      if ((await op.commit()).ok) {
        await deleteBody(kv, r.upload, r.chunks);
        await deleteRuns(kv, id);
        records++;
      }
    } else {
      await op.commit();
    }
  }
  return records;
}

/** Removes body uploads started before `before`; returns how many. */
async function collectOrphans(kv: LockSafeKv, before: number): Promise<number> {
  let orphans = 0;
  for (
    const entry of await kv.list<string>({
      start: deliveryKeys.uploadFrom(0),
      end: deliveryKeys.uploadFrom(before),
    })
  ) {
    await deleteChunks(kv, entry.value);
    await kv.delete(entry.key);
    orphans++;
  }
  return orphans;
}
