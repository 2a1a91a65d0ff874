/**
 * Decoding a webhook body: `application/json` bytes, or the
 * `application/x-www-form-urlencoded` form GitHub sends as `payload=<json>`.
 * Never throws on untrusted input; the caller has already verified the
 * signature over the very same bytes.
 *
 * @module
 */

import { scanJson } from "./json_scan.ts";

/** How the body was encoded (from `Content-Type`). */
export type BodyKind = "json" | "form";

/** A decoded payload, or why it could not be decoded. */
export type DecodeResult =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; message: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Maps a `Content-Type` header to a {@link BodyKind}, or `null` when it is
 * neither JSON nor a form. Parameters such as `charset` are ignored.
 *
 * @example
 * ```ts
 * import { bodyKind } from "./payload.ts";
 * bodyKind("application/json; charset=utf-8"); // "json"
 * bodyKind("text/plain"); // null
 * ```
 */
export function bodyKind(contentType: string | null): BodyKind | null {
  if (contentType === null) return null;
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim()
    .toLowerCase();
  if (type === "application/json") return "json";
  if (type === "application/x-www-form-urlencoded") return "form";
  return null;
}

/**
 * Decodes body bytes to a JSON object: strict UTF-8, then `JSON.parse`
 * (for forms, of the `payload` field).
 *
 * @example
 * ```ts
 * import { decodePayload } from "./payload.ts";
 * decodePayload(new TextEncoder().encode('{"zen":"hi"}'), "json"); // { ok: true, payload: { zen: "hi" } }
 * ```
 */
export function decodePayload(body: Uint8Array, kind: BodyKind): DecodeResult {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, message: "The body is not valid UTF-8." };
  }
  if (kind === "form") {
    const field = new URLSearchParams(text).get("payload");
    if (field === null) {
      return { ok: false, message: "The form body has no 'payload' field." };
    }
    text = field;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: "The payload is not valid JSON." };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, message: "The payload is not a JSON object." };
  }
  return { ok: true, payload: value as Record<string, unknown> };
}

/**
 * The JSON text of a body as bytes: the body itself (`json`), or the form's
 * `payload` field. Null when a form has no such field or is not UTF-8.
 *
 * @example
 * ```ts
 * import { payloadJson } from "./payload.ts";
 * const form = new TextEncoder().encode("payload=%7B%7D");
 * new TextDecoder().decode(payloadJson(form, "form")!); // "{}"
 * ```
 */
export function payloadJson(
  body: Uint8Array,
  kind: BodyKind,
): Uint8Array | null {
  if (kind === "json") return body;
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return null;
  }
  const field = new URLSearchParams(text).get("payload");
  return field === null ? null : new TextEncoder().encode(field);
}

/** The payload's `action` when it is a short string, else `undefined`. */
export function payloadAction(
  payload: Record<string, unknown>,
): string | undefined {
  const action = payload.action;
  return typeof action === "string" && action.length <= 100
    ? action
    : undefined;
}

/** What the receiver records of a payload it has checked but not kept. */
export type InspectResult =
  | {
    ok: true;
    action: string | undefined;
    repository: string | undefined;
    sender: string | undefined;
    /** The parsed payload, when it was parsed (bodies under {@link SCAN_FROM_BYTES}). */
    payload?: Record<string, unknown> | undefined;
  }
  | { ok: false; message: string };

/** JSON bodies from this size on are validated without being parsed. */
export const SCAN_FROM_BYTES = 1_048_576;

function short(value: unknown, max: number): string | undefined {
  return typeof value === "string" && value.length <= max ? value : undefined;
}

/**
 * Checks that a body decodes to a JSON object and returns the fields the
 * receiver records (`action`, `repository.full_name`, `sender.login`). Large
 * JSON bodies are validated by {@link scanJson} without building the
 * object; the worker parses the stored bytes when it runs the handlers.
 *
 * @example
 * ```ts
 * import { inspectPayload } from "./payload.ts";
 * inspectPayload(new TextEncoder().encode('{"action":"opened"}'), "json");
 * // { ok: true, action: "opened", repository: undefined, sender: undefined, payload: { action: "opened" } }
 * ```
 */
export function inspectPayload(
  body: Uint8Array,
  kind: BodyKind,
): InspectResult {
  if (kind === "json" && body.byteLength >= SCAN_FROM_BYTES) {
    const scanned = scanJson(body);
    if (!scanned.ok) {
      return {
        ok: false,
        message: scanned.message.includes("string")
          ? "The payload is not valid JSON (or not valid UTF-8)."
          : scanned.message,
      };
    }
    if (!scanned.object) {
      return { ok: false, message: "The payload is not a JSON object." };
    }
    return {
      ok: true,
      action: short(scanned.fields.action, 100),
      repository: short(scanned.fields.repository, 200),
      sender: short(scanned.fields.sender, 100),
    };
  }
  const decoded = decodePayload(body, kind);
  if (!decoded.ok) return decoded;
  const p = decoded.payload;
  const pick = (obj: unknown, key: string, max: number) =>
    typeof obj === "object" && obj !== null
      ? short((obj as Record<string, unknown>)[key], max)
      : undefined;
  return {
    ok: true,
    action: short(p.action, 100),
    repository: pick(p.repository, "full_name", 200),
    sender: pick(p.sender, "login", 100),
    payload: p,
  };
}
