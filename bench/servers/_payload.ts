/**
 * The load benchmark's payload: a push-like JSON body of exactly
 * {@link BODY_BYTES} bytes (built from `examples/push.json`) whose `after`
 * field is a 40-hex nonce, so that every delivery is a distinct body. Shared
 * by `bench/load.ts` (which signs the requests) and
 * `bench/servers/kv_ceiling.ts` (which stores the same bodies with no HTTP).
 *
 * @module
 */

/** The HMAC secret every benchmark server and request uses. */
export const BENCH_SECRET = "hookgate load benchmark secret";

/** Size of every benchmark body, in bytes (a 7.7 KB push). */
export const BODY_BYTES = 7_700;

/** Length of the per-delivery nonce (the push's `after` commit id). */
export const NONCE_LENGTH = 40;

/** A body is `prefix + nonce + suffix`; all ASCII, no newline. */
export interface BodyTemplate {
  prefix: string;
  suffix: string;
}

const MARK = "@@NONCE@@";

/**
 * Builds the body template from the push example: compact JSON, the `after`
 * field replaced by the nonce, URL fields of `repository` dropped until it
 * fits and the head commit's message padded to exactly `bytes`.
 */
export async function pushTemplate(bytes = BODY_BYTES): Promise<BodyTemplate> {
  const url = new URL("../../examples/push.json", import.meta.url);
  // deno-lint-ignore no-explicit-any
  const push: any = JSON.parse(await Deno.readTextFile(url));
  push.after = MARK;
  const size = () => JSON.stringify(push).length - MARK.length + NONCE_LENGTH;
  const urls = Object.keys(push.repository).filter((k) => k.endsWith("_url"))
    .reverse();
  while (size() > bytes && urls.length > 0) delete push.repository[urls.pop()!];
  const missing = bytes - size();
  if (missing < 0) throw new RangeError(`push example too large: ${size()}`);
  const filler = " Benchmark padding to a realistic push size.";
  push.head_commit.message += filler.repeat(Math.ceil(missing / filler.length))
    .slice(0, missing);
  const json = JSON.stringify(push);
  if (!/^[\x20-\x7e]*$/.test(json)) throw new Error("template is not ASCII");
  const [prefix, suffix] = json.split(MARK) as [string, string];
  if (prefix.length + NONCE_LENGTH + suffix.length !== bytes) {
    throw new Error("template size mismatch");
  }
  return { prefix, suffix };
}

/** The nonce of delivery `i`: `salt` (16 hex) followed by `i` in 24 hex digits. */
export function nonceFor(salt: string, i: number): string {
  return salt.slice(0, 16).padStart(16, "0") + i.toString(16).padStart(24, "0");
}

/** A UUID-shaped delivery id for delivery `i` under `salt`. */
export function deliveryIdFor(salt: string, i: number): string {
  const s = salt.slice(0, 8).padStart(8, "0");
  const n = i.toString(16).padStart(12, "0");
  return `${s}-0000-4000-8000-${n}`;
}

/** A random 16-hex salt. */
export function randomSalt(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
