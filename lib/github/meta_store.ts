/**
 * The last good GitHub `hooks` list in Deno KV (at `META_KV_KEY`, see
 * `store/keys.ts`), so that a restarted process, or another isolate sharing
 * the KV, has an allowlist at once. Reading validates the stored copy as
 * strictly as a fresh answer (`meta_list.ts`).
 *
 * Both functions answer with a discriminated result and never throw for a
 * KV failure; they log nothing and decide nothing about freshness (that is
 * the refresher's, `meta.ts`).
 *
 * @module
 */

import { describeError } from "../_util/errors.ts";
import { META_KV_KEY } from "../store/keys.ts";
import { type HooksList, validateHooks } from "./meta_list.ts";

/** What is stored at `META_KV_KEY`. */
export interface PersistedHooks {
  /** The `hooks` entries, as GitHub wrote them. */
  hooks: string[];
  /** The `ETag` of the answer they came with. */
  etag: string | null;
  /** When GitHub last confirmed them (200 or 304), ms since the epoch. */
  fetchedAt: number;
}

/** The outcome of {@link loadPersistedHooks}. */
export type LoadedHooks =
  /** Nothing is stored. */
  | { kind: "none" }
  /** KV could not be read. */
  | { kind: "unreadable"; error: string }
  /** Something is stored, but not a valid list. */
  | { kind: "invalid"; error: string }
  /** A valid list. */
  | {
    kind: "ok";
    list: HooksList;
    etag: string | null;
    fetchedAt: number;
  };

/**
 * Reads and validates the stored list.
 *
 * @example
 * ```ts
 * import { loadPersistedHooks, persistHooks } from "./meta_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * await persistHooks(kv, { hooks: ["192.30.252.0/22"], etag: null, fetchedAt: 1 });
 * (await loadPersistedHooks(kv)).kind; // "ok"
 * kv.close();
 * ```
 */
export async function loadPersistedHooks(
  kv: Pick<Deno.Kv, "get">,
): Promise<LoadedHooks> {
  let value: unknown;
  try {
    value = (await kv.get(META_KV_KEY)).value;
  } catch (error) {
    return { kind: "unreadable", error: describeError(error) };
  }
  if (value === null) return { kind: "none" };
  const entry = value as Partial<PersistedHooks>;
  const checked = validateHooks(value);
  const stamp = entry.fetchedAt;
  if (
    !checked.ok || typeof stamp !== "number" || !Number.isFinite(stamp) ||
    !(entry.etag === null || typeof entry.etag === "string")
  ) {
    return {
      kind: "invalid",
      error: checked.ok ? "bad etag or fetchedAt" : checked.error,
    };
  }
  const { hooks, cidrs } = checked;
  return {
    kind: "ok",
    list: { hooks, cidrs },
    etag: entry.etag,
    fetchedAt: stamp,
  };
}

/**
 * Stores `value` as the last good list; `{ ok: false }` with the reason when
 * KV refuses.
 *
 * @example
 * ```ts
 * import { persistHooks } from "./meta_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * await persistHooks(kv, { hooks: ["192.30.252.0/22"], etag: null, fetchedAt: 1 }); // { ok: true }
 * kv.close();
 * ```
 */
export async function persistHooks(
  kv: Pick<Deno.Kv, "set">,
  value: PersistedHooks,
): Promise<{ ok: true } | { ok: false; error: string }> {
  const { hooks, etag, fetchedAt } = value;
  try {
    await kv.set(META_KV_KEY, { hooks, etag, fetchedAt });
    return { ok: true };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}
