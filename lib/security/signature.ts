/**
 * GitHub webhook signatures: HMAC-SHA256 over the raw body bytes, carried in
 * `X-Hub-Signature-256: sha256=<64 hex digits>`.
 *
 * Keys are imported once ({@link importSecrets}); verification uses
 * `crypto.subtle.verify`, which compares in constant time. Untrusted input
 * never throws here: a malformed header is simply `false`. The SHA-1
 * `X-Hub-Signature` header is never consulted.
 *
 * @module
 */

/** Imported HMAC keys: the current secret first, then the previous one. */
export type SigningKeys = readonly CryptoKey[];

const PREFIX = "sha256=";
const HEX_LENGTH = 64;
const encoder = new TextEncoder();

/**
 * Imports each non-empty secret as an HMAC-SHA256 key usable for `verify`
 * and `sign`.
 *
 * @example
 * ```ts
 * import { importSecrets } from "./signature.ts";
 * const keys = await importSecrets(["It's a Secret to Everybody"]);
 * keys.length; // 1
 * ```
 */
export async function importSecrets(
  secrets: readonly (string | undefined)[],
): Promise<SigningKeys> {
  const keys: CryptoKey[] = [];
  for (const secret of secrets) {
    if (!secret) continue;
    keys.push(
      await crypto.subtle.importKey(
        "raw",
        encoder.encode(secret),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"],
      ),
    );
  }
  return keys;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/**
 * Decodes `sha256=<64 hex>` to its 32 bytes, or `null` when the header has any
 * other form (missing prefix, wrong length, non-hex, `sha1=`).
 *
 * @example
 * ```ts
 * import { parseSignatureHeader } from "./signature.ts";
 * parseSignatureHeader("sha1=abc"); // null
 * ```
 */
export function parseSignatureHeader(
  header: string | null | undefined,
): Uint8Array<ArrayBuffer> | null {
  if (typeof header !== "string") return null;
  if (header.length !== PREFIX.length + HEX_LENGTH) return null;
  if (!header.startsWith(PREFIX)) return null;
  const out = new Uint8Array(HEX_LENGTH / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(header.charCodeAt(PREFIX.length + 2 * i));
    const lo = hexValue(header.charCodeAt(PREFIX.length + 2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/**
 * True when `header` is a well-formed `sha256=` signature of `body` under any
 * of `keys`; false otherwise, including for every malformed header.
 *
 * @example
 * ```ts
 * import { importSecrets, verifySignature } from "./signature.ts";
 * const keys = await importSecrets(["It's a Secret to Everybody"]);
 * await verifySignature(
 *   keys,
 *   new TextEncoder().encode("Hello, World!"),
 *   "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
 * ); // true
 * ```
 */
export async function verifySignature(
  keys: SigningKeys,
  body: Uint8Array<ArrayBuffer>,
  header: string | null | undefined,
): Promise<boolean> {
  const signature = parseSignatureHeader(header);
  if (signature === null) return false;
  for (const key of keys) {
    if (await crypto.subtle.verify("HMAC", key, signature, body)) return true;
  }
  return false;
}

/**
 * Signs `body` as GitHub does, returning the `X-Hub-Signature-256` value
 * (`sha256=…`); with an HMAC SHA-1 key, the `X-Hub-Signature` value
 * (`sha1=…`).
 *
 * @example
 * ```ts
 * import { signBody } from "./signature.ts";
 * await signBody("It's a Secret to Everybody", new TextEncoder().encode("Hello, World!"));
 * // "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
 * ```
 */
export async function signBody(
  secret: string | CryptoKey,
  body: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const key = typeof secret === "string"
    ? (await importSecrets([secret]))[0]!
    : secret;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  let hex = "";
  for (const byte of mac) hex += byte.toString(16).padStart(2, "0");
  const sha1 = (key.algorithm as HmacKeyAlgorithm).hash.name === "SHA-1";
  return (sha1 ? "sha1=" : PREFIX) + hex;
}
