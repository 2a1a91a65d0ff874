/**
 * Validating the `hooks` list of an answer from GitHub's meta endpoint (or
 * the copy persisted in KV), strictly: an answer that could widen the IP
 * allowlist by mistake is refused whole, never trimmed.
 *
 * Pure: it parses CIDRs (through `cidr.ts`) but fetches, stores and logs
 * nothing.
 *
 * @module
 */

import type { Cidr } from "../security/cidr.ts";
import { isIpv4Mapped, parseCidr } from "../security/cidr.ts";

/** Most `hooks` entries accepted. */
export const MAX_HOOKS = 1000;
/** Narrowest allowed prefix lengths: nothing wider than /8 or /24. */
const MIN_PREFIX = { 4: 8, 6: 24 } as const;

/** A valid `hooks` list: the entries as GitHub wrote them, and parsed. */
export interface HooksList {
  /** The entries, in GitHub's order. */
  hooks: string[];
  /** The same entries, parsed. */
  cidrs: Cidr[];
}

/** The outcome of {@link validateHooks}. */
export type HooksValidation =
  | ({ ok: true } & HooksList)
  | { ok: false; error: string };

/**
 * Checks that `value` is an object whose `hooks` is a non-empty array of at
 * most {@link MAX_HOOKS} valid CIDRs, none wider than /8 (IPv4, including
 * IPv4-mapped IPv6) or /24 (IPv6); the error says which entry failed.
 *
 * @example
 * ```ts
 * import { validateHooks } from "./meta_list.ts";
 * validateHooks({ hooks: ["192.30.252.0/22"] }).ok; // true
 * validateHooks({ hooks: ["0.0.0.0/0"] }); // { ok: false, error: "hooks[0] 0.0.0.0/0 is wider than /8" }
 * ```
 */
export function validateHooks(value: unknown): HooksValidation {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, error: "answer is not a JSON object" };
  }
  const hooks = (value as { hooks?: unknown }).hooks;
  if (hooks === undefined) return { ok: false, error: "hooks is missing" };
  if (!Array.isArray(hooks)) {
    return { ok: false, error: "hooks is not an array" };
  }
  if (hooks.length === 0) return { ok: false, error: "hooks is empty" };
  if (hooks.length > MAX_HOOKS) {
    return {
      ok: false,
      error: `hooks has ${hooks.length} entries, more than ${MAX_HOOKS}`,
    };
  }
  const cidrs: Cidr[] = [];
  for (const [i, entry] of hooks.entries()) {
    const checked = checkEntry(entry, i);
    if (typeof checked === "string") return { ok: false, error: checked };
    cidrs.push(checked);
  }
  return { ok: true, hooks: hooks as string[], cidrs };
}

/** Entry `i` parsed, or why it is refused. */
function checkEntry(entry: unknown, i: number): Cidr | string {
  if (typeof entry !== "string") return `hooks[${i}] is not a string`;
  const cidr = parseCidr(entry);
  if (cidr === null) {
    return `hooks[${i}] is not a valid CIDR: ${
      JSON.stringify(entry.slice(0, 60))
    }`;
  }
  // An IPv4-mapped range (`::ffff:0.0.0.0/96`) matches IPv4 peers, so it is
  // held to the IPv4 limit.
  const mapped = cidr.version === 6 && cidr.prefix >= 96 &&
    isIpv4Mapped(cidr.network);
  const width = mapped ? cidr.prefix - 96 : cidr.prefix;
  const min = MIN_PREFIX[mapped ? 4 : cidr.version];
  if (width < min) {
    return `hooks[${i}] ${cidr.text} is wider than /${min}${
      mapped ? " (IPv4-mapped)" : ""
    }`;
  }
  return cidr;
}

/**
 * Whether `b` holds the same entries as `a`, in the same order (`a` may be
 * `null`: no list yet, so never the same).
 *
 * @example
 * ```ts
 * import { sameHooks } from "./meta_list.ts";
 * sameHooks(["10.0.0.0/8"], ["10.0.0.0/8"]); // true
 * sameHooks(null, ["10.0.0.0/8"]); // false
 * ```
 */
export function sameHooks(
  a: readonly string[] | null,
  b: readonly string[],
): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}
