/**
 * Reading how long GitHub asks a client to wait: `Retry-After` (delta
 * seconds or an HTTP date) and an exhausted primary rate limit
 * (`x-ratelimit-remaining: 0` with `x-ratelimit-reset`). One home for both
 * callers' policies: {@link metaRetryAfterMs} (the meta refresher: any wait
 * the server names, capped) and {@link restRateLimit} (the REST client: when
 * to wait and retry, with a fallback wait when GitHub does not say how long).
 *
 * Pure: the clock is a parameter; nothing here waits, fetches or logs.
 *
 * @module
 */

/** What the headers of an answer say about waiting, before any policy. */
export type ServerWait =
  /** `Retry-After` was readable: wait `waitMs` (never negative). */
  | { source: "retry-after"; waitMs: number; value: string }
  /** The primary limit is spent and resets at `resetAtMs`. */
  | { source: "reset"; waitMs: number; resetAtMs: number }
  /** The primary limit is spent, with no readable reset time. */
  | { source: "exhausted" };

/** A rate-limited answer the REST client waits out: how long, and why. */
export interface RateLimitWait {
  /** Milliseconds to wait before retrying. */
  waitMs: number;
  /** Why, in words fit for a message (`Retry-After: 30`, …). */
  reason: string;
}

/** Statuses whose `Retry-After` the meta refresher honours. */
const META_WAIT_STATUSES: ReadonlySet<number> = new Set([403, 429, 503]);
/** The meta refresher honours a server-requested wait up to this long. */
export const MAX_META_WAIT_MS = 60 * 60 * 1000;
/** Past the reset, the REST client waits this much more for clock skew. */
const RESET_SKEW_MS = 1000;

/**
 * Parses a `Retry-After` value (delta seconds, or an HTTP date measured from
 * `nowMs`) into milliseconds, never negative; `null` when absent, empty or
 * unreadable.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "./rate_limit.ts";
 * parseRetryAfter("120", 0); // 120000
 * parseRetryAfter("Thu, 01 Jan 1970 00:01:30 GMT", 60_000); // 30000
 * parseRetryAfter("soon", 0); // null
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/**
 * What `headers` say about waiting: a readable `Retry-After` first, else a
 * spent primary limit (`x-ratelimit-remaining: 0`) with its reset time, if
 * readable; `null` when they say nothing.
 *
 * @example
 * ```ts
 * import { readServerWait } from "./rate_limit.ts";
 * const headers = new Headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60" });
 * readServerWait(headers, 0); // { source: "reset", waitMs: 60000, resetAtMs: 60000 }
 * ```
 */
export function readServerWait(
  headers: Headers,
  nowMs: number,
): ServerWait | null {
  const value = headers.get("retry-after");
  const retryAfter = parseRetryAfter(value, nowMs);
  if (retryAfter !== null) {
    return { source: "retry-after", waitMs: retryAfter, value: value!.trim() };
  }
  if (headers.get("x-ratelimit-remaining")?.trim() !== "0") return null;
  const reset = headers.get("x-ratelimit-reset")?.trim();
  if (reset === undefined || !/^\d+$/.test(reset)) {
    return { source: "exhausted" };
  }
  const resetAtMs = Number(reset) * 1000;
  return { source: "reset", waitMs: Math.max(0, resetAtMs - nowMs), resetAtMs };
}

/**
 * The meta refresher's reading of a failed answer: how long the server asked
 * it to wait (403, 429 or 503 with `Retry-After`, or a spent limit with a
 * reset time), capped at an hour; `undefined` when it did not ask.
 *
 * @example
 * ```ts
 * import { metaRetryAfterMs } from "./rate_limit.ts";
 * metaRetryAfterMs(429, new Headers({ "retry-after": "120" }), 0); // 120000
 * metaRetryAfterMs(500, new Headers({ "retry-after": "120" }), 0); // undefined
 * ```
 */
export function metaRetryAfterMs(
  status: number,
  headers: Headers,
  nowMs: number,
): number | undefined {
  if (!META_WAIT_STATUSES.has(status)) return undefined;
  const wait = readServerWait(headers, nowMs);
  if (wait === null || wait.source === "exhausted") return undefined;
  return Math.min(wait.waitMs, MAX_META_WAIT_MS);
}

/**
 * The REST client's reading of an answer: a {@link RateLimitWait} when it is
 * a rate limit to wait out, else `null`. A 403 or 429 with `Retry-After`
 * waits that long; with a spent primary limit, until a second past the reset
 * (or `fallbackMs` without a reset time); a 429 without either, or a 403
 * whose body speaks of a rate limit (a secondary limit), waits `fallbackMs`.
 *
 * @example
 * ```ts
 * import { restRateLimit } from "./rate_limit.ts";
 * restRateLimit(429, new Headers(), "", 0, 60_000);
 * // { waitMs: 60000, reason: "429 without Retry-After" }
 * restRateLimit(403, new Headers(), '{"message":"Must have admin rights"}', 0, 60_000); // null
 * ```
 */
export function restRateLimit(
  status: number,
  headers: Headers,
  body: string,
  nowMs: number,
  fallbackMs: number,
): RateLimitWait | null {
  if (status !== 403 && status !== 429) return null;
  const wait = readServerWait(headers, nowMs);
  switch (wait?.source) {
    case "retry-after":
      return { waitMs: wait.waitMs, reason: `Retry-After: ${wait.value}` };
    case "reset":
      return {
        waitMs: Math.max(RESET_SKEW_MS, wait.waitMs + RESET_SKEW_MS),
        reason: `x-ratelimit-remaining: 0 until ${isoTime(wait.resetAtMs)}`,
      };
    case "exhausted":
      return { waitMs: fallbackMs, reason: "x-ratelimit-remaining: 0" };
  }
  if (status === 429) {
    return { waitMs: fallbackMs, reason: "429 without Retry-After" };
  }
  // A 403 without headers is a secondary rate limit only if it says so.
  if (/rate limit/i.test(body)) {
    return { waitMs: fallbackMs, reason: "secondary rate limit" };
  }
  return null;
}

/**
 * An epoch-milliseconds time in ISO 8601, to the second, as messages print it.
 *
 * @example
 * ```ts
 * import { isoTime } from "./rate_limit.ts";
 * isoTime(Date.parse("2025-06-02T12:00:30.250Z")); // "2025-06-02T12:00:30Z"
 * ```
 */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.[0-9]{3}Z$/, "Z");
}
