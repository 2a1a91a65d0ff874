/**
 * What one KV request may hold, by backend, so that every atomic commit the
 * store sends fits the strictest server it may meet: self-hosted `denokv`
 * (KV Connect) allows 10 checks and 10 read ranges a request; Deno Deploy's
 * KV and a local file allow 100 checks. Also how many commits the store
 * keeps in flight: one on a local file (SQLite writes one at a time, and
 * grouping does the rest), several over a network, where a commit costs a
 * round trip and throughput would otherwise be one batch per round trip.
 *
 * Limits of the servers: denokv's `proto/limits.rs` (checks 10, mutations
 * 1,000, read ranges 10, entries a read 1,000, key 2,048 bytes, value
 * 65,536 bytes, a commit's mutations 800 KiB); Deno's own local KV and Deno
 * Deploy: checks 100, the rest the same.
 *
 * @module
 */

/** The limits the store sizes its requests to. */
export interface KvLimits {
  /** The backend they are for. */
  backend: KvBackend;
  /** Checks one atomic commit may carry. */
  maxChecks: number;
  /** Mutations one atomic commit may carry. */
  maxMutations: number;
  /** Keys one `getMany` may read (one read range each). */
  maxReadRanges: number;
  /** Atomic commits the store keeps in flight at once. */
  inFlight: number;
}

/** `KV_LIMITS`: which server the limits are those of. */
export type KvBackend = "local" | "denokv" | "deploy";

/** The limits of each backend. */
export const KV_LIMITS: Readonly<Record<KvBackend, KvLimits>> = {
  local: {
    backend: "local",
    maxChecks: 100,
    maxMutations: 1000,
    maxReadRanges: 10,
    inFlight: 1,
  },
  denokv: {
    backend: "denokv",
    maxChecks: 10,
    maxMutations: 1000,
    maxReadRanges: 10,
    inFlight: 64,
  },
  deploy: {
    backend: "deploy",
    maxChecks: 100,
    maxMutations: 1000,
    maxReadRanges: 10,
    inFlight: 64,
  },
};

/**
 * The limits for `KV_PATH`: a KV Connect URL gets the strictest server's
 * (self-hosted `denokv`) unless `backend` says otherwise (`KV_LIMITS`);
 * Deno Deploy's managed KV (`""`) gets Deploy's; a file or `:memory:` the
 * local ones.
 *
 * @example
 * ```ts
 * import { kvLimitsFor } from "./limits.ts";
 * kvLimitsFor("https://kv.example.com").maxChecks; // 10
 * kvLimitsFor("https://api.deno.com/databases/x/connect", "deploy").maxChecks; // 100
 * kvLimitsFor("./data/hookgate.kv").inFlight; // 1
 * ```
 */
export function kvLimitsFor(
  kvPath: string,
  backend?: KvBackend | undefined,
): KvLimits {
  if (backend !== undefined) return KV_LIMITS[backend];
  if (kvPath === "") return KV_LIMITS.deploy;
  return /^https?:\/\//.test(kvPath) ? KV_LIMITS.denokv : KV_LIMITS.local;
}

/** Whether `KV_PATH` names a remote KV (KV Connect, or Deno Deploy's). */
export function isRemoteKv(kvPath: string): boolean {
  return kvPath === "" || /^https?:\/\//.test(kvPath);
}
