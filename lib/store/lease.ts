/**
 * A lease in Deno KV: among every process and isolate sharing one KV, one
 * owner at a time holds a named key until a time. Used for periodic jobs
 * (collecting expired deliveries) and for fetching GitHub's meta list.
 * Delivery records carry their own lease in the record (see `lifecycle.ts`);
 * this is for work that has no record.
 *
 * @module
 */

/** What a lease key holds. */
export interface Lease {
  /** Who holds it (a random id per process or refresher). */
  owner: string;
  /** When it lapses, ms since the epoch. */
  until: number;
}

/** The part of `Deno.Kv` a lease needs. */
export type LeaseKv = Pick<Deno.Kv, "get" | "atomic">;

/**
 * Takes or renews the lease at `key` for `ms`: true when `owner` holds it
 * now (it was free, had lapsed, or was already `owner`'s), false when
 * someone else holds it. The check-and-set is atomic, so two callers never
 * both get true. The key expires with the lease.
 *
 * @example
 * ```ts
 * import { takeLease } from "./lease.ts";
 * const kv = await Deno.openKv(":memory:");
 * await takeLease(kv, ["job"], "me", 1000, Date.now()); // true
 * await takeLease(kv, ["job"], "you", 1000, Date.now()); // false
 * kv.close();
 * ```
 */
export async function takeLease(
  kv: LeaseKv,
  key: Deno.KvKey,
  owner: string,
  ms: number,
  now: number,
): Promise<boolean> {
  const entry = await kv.get<Lease>(key);
  const lease = entry.value;
  if (lease !== null && lease.owner !== owner && lease.until > now) {
    return false;
  }
  const res = await kv.atomic()
    .check(entry)
    .set(key, { owner, until: now + ms } satisfies Lease, { expireIn: ms })
    .commit();
  return res.ok;
}
