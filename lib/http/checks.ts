/**
 * The webhook's header checks as pure functions of header values: the
 * delivery headers' sanity, the content encoding and the declared length.
 * They say what is wrong, not how to answer: `webhook.ts` maps each verdict
 * to its status and JSON error code. The content type's parsing is
 * `bodyKind` in `payload.ts`, next to the body kinds it names.
 *
 * @module
 */

/** Longest `X-GitHub-Event` / `X-GitHub-Delivery` value accepted. */
export const MAX_HEADER_LENGTH = 100;
/**
 * C0, DEL and C1 controls. Deno hands header bytes 0x80–0xFF to JavaScript
 * as the Latin-1 characters U+0080–U+00FF, so the bytes 0x80–0x9F arrive as
 * C1 controls.
 */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A `Content-Length` we believe: digits only, at most 15 of them. */
const LENGTH = /^[0-9]{1,15}$/;

/** What {@link checkHeader} found. */
export type HeaderCheck = "missing" | "bad" | "repeated" | "ok";

/**
 * Whether a delivery header (`X-GitHub-Event`, `X-GitHub-Delivery`) is
 * missing (absent or empty), bad (longer than {@link MAX_HEADER_LENGTH} or
 * with a control character), repeated (a comma: what `Headers` makes of a
 * header sent twice, `"a, b"`; neither an event name nor a delivery GUID
 * ever holds one) or ok.
 *
 * @example
 * ```ts
 * import { checkHeader } from "./checks.ts";
 * checkHeader("push"); // "ok"
 * checkHeader(null); // "missing"
 * checkHeader("bad\u0001event"); // "bad"
 * checkHeader("push, issues"); // "repeated"
 * ```
 */
export function checkHeader(value: string | null): HeaderCheck {
  if (value === null || value === "") return "missing";
  if (value.length > MAX_HEADER_LENGTH || CONTROL.test(value)) return "bad";
  if (value.includes(",")) return "repeated";
  return "ok";
}

/**
 * Whether a `Content-Encoding` value leaves the body as sent: absent or
 * `identity` (GitHub never compresses; nothing is decompressed).
 *
 * @example
 * ```ts
 * import { isIdentityEncoding } from "./checks.ts";
 * isIdentityEncoding(null); // true
 * isIdentityEncoding(" Identity "); // true
 * isIdentityEncoding("gzip"); // false
 * ```
 */
export function isIdentityEncoding(encoding: string | null): boolean {
  return encoding === null || encoding.trim().toLowerCase() === "identity";
}

/**
 * The body length a `Content-Length` value declares, or `undefined` when it
 * is absent or not a plain number of at most 15 digits (then the length is
 * only counted while reading).
 *
 * @example
 * ```ts
 * import { declaredLength } from "./checks.ts";
 * declaredLength("7600"); // 7600
 * declaredLength("-1"); // undefined
 * ```
 */
export function declaredLength(value: string | null): number | undefined {
  return value !== null && LENGTH.test(value) ? Number(value) : undefined;
}
