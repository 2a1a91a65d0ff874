/**
 * Forwarding a delivery to another webhook receiver (`FORWARD_URLS`, e.g. a
 * staging copy of the app): one POST per target, as GitHub would send it —
 * the raw body bytes, the stored `X-GitHub-*`, `Content-Type` and
 * `User-Agent` headers, and fresh `X-Hub-Signature-256` and `X-Hub-Signature`
 * values under the forward secret. Never the original signature; redirects
 * are not followed (a 3xx is a failure); only a 2xx is a success.
 *
 * It sends and reports; it stores nothing and retries nothing: each target
 * is one target of the delivery's attempt (`run.ts`), retried with it.
 *
 * @module
 */

import { signBody } from "../security/signature.ts";
import { describeError } from "../_util/errors.ts";

/** The HMAC keys forwards are signed with: SHA-256 and SHA-1, one secret. */
export interface ForwardKeys {
  sha256: CryptoKey;
  sha1: CryptoKey;
}

/** The signature header values of one body. */
export interface ForwardSignatures {
  /** `X-Hub-Signature-256`: `sha256=<hex>`. */
  sha256: string;
  /** `X-Hub-Signature`: `sha1=<hex>`. */
  sha1: string;
}

/** What one forward came to, as a run report. */
export interface ForwardReport {
  /** `forward:<host>` ({@link forwardName}). */
  handler: string;
  ok: boolean;
  /** The target's status, when it answered. */
  status?: number;
  ms: number;
  /** It ran out of `HANDLER_TIMEOUT_MS`. */
  timedOut: boolean;
  /** Why it failed, when it did. */
  error?: string;
}

/** The forwarding targets of a worker and what they are sent with. */
export interface ForwardStage {
  /** `FORWARD_URLS`. */
  targets: readonly URL[];
  keys: ForwardKeys;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Imports `secret` (`FORWARD_SECRET`, or `GITHUB_WEBHOOK_SECRET`) as the two
 * HMAC keys forwards are signed with.
 *
 * @example
 * ```ts
 * import { importForwardKeys } from "./forward.ts";
 * const keys = await importForwardKeys("It's a Secret to Everybody");
 * (keys.sha1.algorithm as HmacKeyAlgorithm).hash.name; // "SHA-1"
 * ```
 */
export async function importForwardKeys(secret: string): Promise<ForwardKeys> {
  const raw = new TextEncoder().encode(secret);
  const key = (hash: string) =>
    crypto.subtle.importKey("raw", raw, { name: "HMAC", hash }, false, [
      "sign",
    ]);
  return { sha256: await key("SHA-256"), sha1: await key("SHA-1") };
}

/**
 * The name a target is reported, counted and remembered under:
 * `forward:<host>` (with its port when it has one).
 *
 * @example
 * ```ts
 * import { forwardName } from "./forward.ts";
 * forwardName(new URL("http://127.0.0.1:8080/webhook")); // "forward:127.0.0.1:8080"
 * ```
 */
export function forwardName(target: URL): string {
  return `forward:${target.host}`;
}

/**
 * The headers of a forward: the stored `X-GitHub-*`, `Content-Type` and
 * `User-Agent` (not `Content-Length`: the request sets its own), and the two
 * fresh signatures.
 *
 * @example
 * ```ts
 * import { forwardHeaders } from "./forward.ts";
 * forwardHeaders(
 *   { "x-github-event": "push", "content-type": "application/json", "content-length": "2" },
 *   { sha256: "sha256=aa", sha1: "sha1=bb" },
 * );
 * // { "x-github-event": "push", "content-type": "application/json",
 * //   "x-hub-signature-256": "sha256=aa", "x-hub-signature": "sha1=bb" }
 * ```
 */
export function forwardHeaders(
  recordHeaders: Record<string, string>,
  signatures: ForwardSignatures,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(recordHeaders)) {
    const lower = name.toLowerCase();
    if (
      lower.startsWith("x-github-") || lower === "content-type" ||
      lower === "user-agent"
    ) out[lower] = value;
  }
  out["x-hub-signature-256"] = signatures.sha256;
  out["x-hub-signature"] = signatures.sha1;
  return out;
}

/**
 * Signs `body` with both forward keys.
 *
 * @example
 * ```ts
 * import { importForwardKeys, signForward } from "./forward.ts";
 * const keys = await importForwardKeys("It's a Secret to Everybody");
 * (await signForward(keys, new TextEncoder().encode("Hello, World!"))).sha256;
 * // "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
 * ```
 */
export async function signForward(
  keys: ForwardKeys,
  body: Uint8Array<ArrayBuffer>,
): Promise<ForwardSignatures> {
  const [sha256, sha1] = await Promise.all([
    signBody(keys.sha256, body),
    signBody(keys.sha1, body),
  ]);
  return { sha256, sha1 };
}

/** Options of {@link forwardDelivery}. */
export interface ForwardOptions {
  target: URL;
  /** The raw body bytes, sent as they are. */
  body: Uint8Array<ArrayBuffer>;
  /** The record's stored headers ({@link forwardHeaders} picks from them). */
  headers: Record<string, string>;
  /** Signatures already made of `body` (one set for every target). */
  signatures: ForwardSignatures;
  /** `HANDLER_TIMEOUT_MS`: the whole request, answer included. */
  timeoutMs: number;
  /** Aborts the request early (a shutdown, a lost lease). */
  signal: AbortSignal;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * POSTs one delivery to one target and reports how it went: ok only for a
 * 2xx answer; a 3xx (never followed), another status, a timeout or a network
 * error is a failed report. Never rejects.
 *
 * @example
 * ```ts
 * import { forwardDelivery } from "./forward.ts";
 * const report = await forwardDelivery({
 *   target: new URL("http://staging.test/webhook"),
 *   body: new TextEncoder().encode("{}"),
 *   headers: { "x-github-event": "ping" },
 *   signatures: { sha256: "sha256=aa", sha1: "sha1=bb" },
 *   timeoutMs: 1000,
 *   signal: new AbortController().signal,
 *   fetch: () => Promise.resolve(new Response(null, { status: 204 })),
 * });
 * report.ok; // true
 * ```
 */
export async function forwardDelivery(
  options: ForwardOptions,
): Promise<ForwardReport> {
  const { target, timeoutMs, fetch = globalThis.fetch } = options;
  const handler = forwardName(target);
  const start = performance.now();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const ms = () => performance.now() - start;
  try {
    const response = await fetch(target, {
      method: "POST",
      headers: forwardHeaders(options.headers, options.signatures),
      body: options.body,
      redirect: "manual",
      signal: AbortSignal.any([options.signal, timeout.signal]),
    });
    await response.body?.cancel().catch(() => {});
    const { status } = response;
    if (status >= 200 && status < 300) {
      return { handler, ok: true, status, ms: ms(), timedOut: false };
    }
    const error = status >= 300 && status < 400
      ? `answered ${status} (redirects are not followed)`
      : `answered ${status}`;
    return { handler, ok: false, status, ms: ms(), timedOut: false, error };
  } catch (err) {
    const timedOut = timeout.signal.aborted && !options.signal.aborted;
    return {
      handler,
      ok: false,
      ms: ms(),
      timedOut,
      error: timedOut ? `timed out after ${timeoutMs} ms` : describeError(err),
    };
  } finally {
    clearTimeout(timer);
  }
}
