/**
 * One conditional fetch of GitHub's meta endpoint: `If-None-Match`, GitHub's
 * API headers, an optional token, a timeout over headers and body, and a
 * capped body read, validated by `meta_list.ts`. The answer is a
 * discriminated {@link MetaFetchResult}: a new list, "not modified", a
 * failure (with the server's requested wait, if any), or "stopped".
 *
 * It keeps no state, schedules nothing, logs nothing and never throws for
 * what the network or the server does: the refresher (`meta.ts`) decides
 * what a result means for the list it holds.
 *
 * @module
 */

import { describeError } from "../_util/errors.ts";
import { readResponseCapped } from "../_util/read_capped.ts";
import { type HooksList, validateHooks } from "./meta_list.ts";
import { metaRetryAfterMs } from "./rate_limit.ts";
import { githubHeaders } from "./rest.ts";

/** Largest meta body read, in bytes; a bigger one is a failure. */
export const MAX_META_BODY_BYTES = 5 * 1024 * 1024;
/** A longer `ETag` is not kept (nor sent back). */
const MAX_ETAG_LENGTH = 512;
/** The `User-Agent` sent to the meta URL unless another is given. */
export const DEFAULT_META_USER_AGENT =
  "hookgate/0.1 (+https://github.com/hookgate)";

/** Options of {@link fetchMeta}. */
export interface MetaFetchOptions {
  /** The meta URL (`GITHUB_META_URL`). */
  url: string;
  /** Sent as `If-None-Match` when not `null`. @default null */
  etag?: string | null;
  /** Sent as `Authorization: Bearer <token>` when set and not empty. */
  token?: string | undefined;
  /** The `User-Agent`. @default DEFAULT_META_USER_AGENT */
  userAgent?: string;
  /** How long headers and body together may take, in ms. @default 10000 */
  timeoutMs?: number;
  /** The `fetch` used. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Clock in ms since the epoch, for `Retry-After` dates. @default Date.now */
  now?: () => number;
  /** Aborting it stops the fetch; the result is then `stopped`. */
  signal?: AbortSignal | null;
}

/** The outcome of one {@link fetchMeta}. */
export type MetaFetchResult =
  /** A 2xx with a valid list; `etag` is its `ETag` (if short enough). */
  | { kind: "ok"; status: number; list: HooksList; etag: string | null }
  /** A 304; `etag` is the new `ETag`, if one came. */
  | { kind: "not_modified"; status: 304; etag: string | null }
  /** No answer, or one that is not a valid list. */
  | { kind: "failed"; status?: number; error: string; retryAfterMs?: number }
  /** The signal aborted before the attempt ended. */
  | { kind: "stopped" };

/**
 * Fetches the meta URL once and validates the answer; never throws.
 *
 * @example
 * ```ts
 * import { fetchMeta } from "./meta_fetch.ts";
 * const result = await fetchMeta({
 *   url: "https://api.github.com/meta",
 *   fetch: () => Promise.resolve(Response.json({ hooks: ["192.30.252.0/22"] })),
 * });
 * result.kind; // "ok"
 * ```
 */
export async function fetchMeta(
  options: MetaFetchOptions,
): Promise<MetaFetchResult> {
  const {
    url,
    etag = null,
    token,
    userAgent = DEFAULT_META_USER_AGENT,
    timeoutMs = 10_000,
    fetch = globalThis.fetch,
    now = Date.now,
    signal: stop = null,
  } = options;
  const headers = githubHeaders(userAgent, token);
  if (etag !== null) headers.set("if-none-match", etag);

  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onStop = () => controller.abort(new Error("stopped"));
  stop?.addEventListener("abort", onStop, { once: true });
  /** Why a step failed: the timeout's reason if it fired, else `error`. */
  const reason = (error: unknown) =>
    controller.signal.aborted
      ? describeError(controller.signal.reason)
      : describeError(error);
  let response: Response;
  let body: Uint8Array | null;
  try {
    if (stop?.aborted) return { kind: "stopped" };
    try {
      response = await fetch(url, {
        headers,
        signal: controller.signal,
        redirect: "follow",
      });
    } catch (error) {
      if (stop?.aborted) return { kind: "stopped" };
      return { kind: "failed", error: `fetch failed: ${reason(error)}` };
    }
    const { status } = response;
    if (status === 304) {
      await response.body?.cancel();
      return { kind: "not_modified", status, etag: etagOf(response) };
    }
    if (status < 200 || status > 299) {
      await response.body?.cancel();
      const result: MetaFetchResult = {
        kind: "failed",
        status,
        error: `unexpected status ${status}`,
      };
      const wait = metaRetryAfterMs(status, response.headers, now());
      if (wait !== undefined) result.retryAfterMs = wait;
      return result;
    }
    try {
      body = await readResponseCapped(response, MAX_META_BODY_BYTES);
    } catch (error) {
      if (stop?.aborted) return { kind: "stopped" };
      return { kind: "failed", status, error: `body failed: ${reason(error)}` };
    }
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener("abort", onStop);
  }
  return parseAnswer(response, body);
}

/** A fully read 2xx answer as a result. */
function parseAnswer(
  response: Response,
  body: Uint8Array | null,
): MetaFetchResult {
  const { status } = response;
  if (body === null) {
    return {
      kind: "failed",
      status,
      error: `body larger than ${MAX_META_BODY_BYTES} bytes`,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return { kind: "failed", status, error: "answer is not JSON" };
  }
  const checked = validateHooks(parsed);
  if (!checked.ok) return { kind: "failed", status, error: checked.error };
  const { hooks, cidrs } = checked;
  return { kind: "ok", status, list: { hooks, cidrs }, etag: etagOf(response) };
}

/** The answer's `ETag`, or `null` when absent or too long to keep. */
function etagOf(response: Response): string | null {
  const tag = response.headers.get("etag");
  return tag !== null && tag.length <= MAX_ETAG_LENGTH ? tag : null;
}
