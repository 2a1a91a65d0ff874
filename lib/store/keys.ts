/**
 * Every Deno KV key hookgate reads or writes, in one place. Nothing else in
 * `lib/` spells a key out; a new key is added here, with its meaning.
 *
 * Delivery keys (all carry `expireIn` = `DELIVERY_TTL_DAYS`, and the store's
 * collector removes expired ones by the injected clock as well):
 * - `["hookgate","d",id]` — the delivery record
 * - `["hookgate","digest",sha256]` — id of the first delivery with that body
 * - `["hookgate","b",upload,i]` — body chunk `i` (≤ 64,000 bytes); `upload`
 *   starts with the time, so new chunks go at the end of the key space
 * - `["hookgate","t",receivedAt,id]` — newest-first listing index
 * - `["hookgate","due",dueAt,id]` — work index: pending records by due time,
 *   running ones by lease expiry (an expired lease is simply due again)
 * - `["hookgate","upload",startedAt,upload]` — bodies too large for one
 *   commit, written before their record; left behind only by a crash
 * - `["hookgate","q",orderKey,queuedAt,id]` — the per-key queue of
 *   `SERIALIZE_BY`: one entry per delivery not yet final (`queuedAt`: when
 *   it joined: its receipt, or its re-arm); the entry whose versionstamp is
 *   the oldest (the first commit) is the key's head, the next to run
 * - `["hookgate","qlock",orderKey]` — the per-key lease: the id of the one
 *   delivery of the key that runs (or waits to be retried), until it is final
 * - `["hookgate","run",id,attempt,index,part]` — what one handler or script
 *   run of an attempt reported (`store/runs.ts`): part 0 the report and the
 *   start of its output, part 1 the rest of the output
 *
 * Process-wide keys:
 * - `["hookgate","claim",job]` — a lease (`lease.ts`) on a periodic job
 * - `["hookgate","seat",seat]` — the id of the process that last started in
 *   a seat (one host's listen port on one KV file), so that the next one
 *   takes back its leases
 * - `["hookgate","meta","hooks"]` — the last good GitHub hooks list
 * - `["hookgate","meta","lease"]` — the lease on fetching it
 * - `["hookgate","hook",hookId]` — a webhook hookgate has received from
 *   (`X-GitHub-Hook-ID`: its type, repository or organization, installation,
 *   last seen; `github/hooks_seen.ts`), listed by reconciliation; expires
 *   30 days after it was last written
 * - `["hookgate","reconciled",hookId]` — the high-water mark of the last
 *   reconciliation pass over that hook (`github/reconcile_loop.ts`)
 * - `["hookgate","ready"]` — read by `/readyz` to see that KV answers
 * - `["hookgate","wake"]` — a counter (`Deno.KvU64`) every commit that makes
 *   a delivery due now adds one to; workers `kv.watch` it to look for work
 *
 * @module
 */

/** The first part of every key, so hookgate can share a KV with others. */
export const ROOT = "hookgate";

/** Keys of deliveries, their bodies and their indexes. */
export const deliveryKeys = {
  /** The delivery record. */
  record: (id: string): Deno.KvKey => [ROOT, "d", id],
  /** The id of the first delivery with this body digest. */
  digest: (sha256: string): Deno.KvKey => [ROOT, "digest", sha256],
  /** Body chunk `index` of `upload`. */
  chunk: (upload: string, index: number): Deno.KvKey => [
    ROOT,
    "b",
    upload,
    index,
  ],
  /** Prefix of every chunk of `upload`. */
  chunks: (upload: string): Deno.KvKey => [ROOT, "b", upload],
  /** The listing index entry (newest first by `receivedAt`). */
  listed: (receivedAt: number, id: string): Deno.KvKey => [
    ROOT,
    "t",
    receivedAt,
    id,
  ],
  /** Prefix (or, with a time, range bound) of the listing index. */
  listedFrom: (receivedAt?: number): Deno.KvKey =>
    receivedAt === undefined ? [ROOT, "t"] : [ROOT, "t", receivedAt],
  /** The work index entry: due at `dueAt`. */
  due: (dueAt: number, id: string): Deno.KvKey => [ROOT, "due", dueAt, id],
  /** Prefix (or, with a time, range bound) of the work index. */
  dueFrom: (dueAt?: number): Deno.KvKey =>
    dueAt === undefined ? [ROOT, "due"] : [ROOT, "due", dueAt],
  /** The due time and delivery id a work index key holds. */
  dueOf: (key: Deno.KvKey): { dueAt: number; id: string } => ({
    dueAt: key[2] as number,
    id: key[3] as string,
  }),
  /** A body upload too large for one commit, written before its record. */
  upload: (startedAt: number, upload: string): Deno.KvKey => [
    ROOT,
    "upload",
    startedAt,
    upload,
  ],
  /** Range bound of the uploads index. */
  uploadFrom: (startedAt: number): Deno.KvKey => [ROOT, "upload", startedAt],
  /** A delivery's entry in the queue of its order key (`SERIALIZE_BY`). */
  queued: (orderKey: string, queuedAt: number, id: string): Deno.KvKey => [
    ROOT,
    "q",
    orderKey,
    queuedAt,
    id,
  ],
  /** Prefix of the queue of one order key. */
  queue: (orderKey: string): Deno.KvKey => [ROOT, "q", orderKey],
  /**
   * The lease on an order key: the id of the delivery that holds it, from
   * its first lease until it is final. No other delivery of the key runs
   * meanwhile.
   */
  orderLock: (orderKey: string): Deno.KvKey => [ROOT, "qlock", orderKey],
  /** Part `part` of run `index` of `attempt` of a delivery. */
  run: (
    id: string,
    attempt: number,
    index: number,
    part: number,
  ): Deno.KvKey => [
    ROOT,
    "run",
    id,
    attempt,
    index,
    part,
  ],
  /** Prefix of every run of a delivery. */
  runs: (id: string): Deno.KvKey => [ROOT, "run", id],
} as const;

/** The lease (`lease.ts`) on a named periodic job (e.g. `"collect"`). */
export function jobLeaseKey(job: string): Deno.KvKey {
  return [ROOT, "claim", job];
}

/**
 * The owner id of the process that last started in `seat` (`Seat`, in
 * `store.ts`): a process restarted in the same seat reclaims its leases.
 */
export function seatKey(seat: string): Deno.KvKey {
  return [ROOT, "seat", seat];
}

/** Where the last good GitHub hooks list is persisted. */
export const META_KV_KEY: readonly ["hookgate", "meta", "hooks"] = [
  ROOT,
  "meta",
  "hooks",
];

/**
 * The lease (`lease.ts`) on fetching GitHub's meta endpoint: among processes and
 * isolates sharing one KV, only the holder fetches; the others read the
 * persisted list.
 */
export const META_LEASE_KEY: readonly ["hookgate", "meta", "lease"] = [
  ROOT,
  "meta",
  "lease",
];

/** Keys of the webhooks hookgate has received from, for reconciliation. */
export const hookKeys = {
  /** What is remembered of one hook (`github/hooks_seen.ts`). */
  hook: (hookId: string): Deno.KvKey => [ROOT, "hook", hookId],
  /** Prefix of every remembered hook. */
  hooks: (): Deno.KvKey => [ROOT, "hook"],
  /** Where the last reconciliation pass over a hook got to (epoch ms). */
  mark: (hookId: string): Deno.KvKey => [ROOT, "reconciled", hookId],
  /**
   * A delivery reconciliation asked GitHub to redeliver (kept for GitHub's
   * 3-day window): it is not asked for again, whatever the passes list.
   */
  asked: (guid: string): Deno.KvKey => [ROOT, "asked", guid],
  /** Prefix of every delivery asked for. */
  askedAll: (): Deno.KvKey => [ROOT, "asked"],
} as const;

/** The counter workers watch: bumped by every commit that makes work due now. */
export const WAKE_KEY: readonly ["hookgate", "wake"] = [ROOT, "wake"];

/** The key `/readyz` reads to see that KV answers (it is never written). */
export const READY_KEY: readonly ["hookgate", "ready"] = [ROOT, "ready"];
