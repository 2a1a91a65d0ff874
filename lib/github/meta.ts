/**
 * Keeps GitHub's webhook source ranges (the `hooks` list of
 * `GET https://api.github.com/meta`) current, for the IP allowlist.
 *
 * {@link createMetaRefresher} returns a small object that fetches the list
 * (conditionally, with `If-None-Match`), validates it strictly, keeps the last
 * good list when an answer is bad, persists it in Deno KV so a restarted
 * process is ready at once, and schedules refreshes with exponential backoff
 * and jitter. `refresh()` is one attempt and owns no timer, so tests need
 * none; `start(signal)` is the only timer owner; `maybeRefresh()` is the lazy
 * stale-while-revalidate variant for short-lived isolates (Deno Deploy).
 *
 * It does not decide HTTP statuses (the server answers 403 or 503 from
 * {@link MetaRefresher.isAllowed} and {@link MetaRefresher.isReady}), does
 * not parse addresses (that is `cidr.ts`), and never logs the token.
 *
 * @module
 */

import type { Logger } from "../ops/log.ts";
import { NULL_LOGGER } from "../ops/log.ts";
import type { Cidr, IpAddress, Matcher } from "../security/cidr.ts";
import { createMatcher, isIpv4Mapped, parseCidr } from "../security/cidr.ts";
import { backoffDelay } from "../_util/backoff.ts";
import { describeError } from "../_util/errors.ts";
import { sleep } from "../_util/timers.ts";
import { META_KV_KEY, META_LEASE_KEY } from "../store/keys.ts";
import { takeLease } from "../store/lease.ts";

/** How long a fetch lease lasts (longer than one fetch with its timeout). */
const LEASE_MS = 30_000;

/** Options of {@link createMetaRefresher}. */
export interface MetaRefresherOptions {
  /** Where the list comes from (`GITHUB_META_URL`). */
  url: string;
  /** Sent as `Authorization: Bearer <token>` when set (`GITHUB_TOKEN`). */
  token?: string | undefined;
  /** Refresh period in seconds (`GITHUB_META_REFRESH_SECONDS`). */
  refreshSeconds: number;
  /**
   * Operator-chosen ranges (`EXTRA_ALLOWED_CIDRS`). They are always allowed,
   * even before any GitHub list is loaded; readiness still needs a GitHub
   * list.
   */
  extraCidrs?: readonly Cidr[];
  /**
   * Where the last good list is persisted ({@link META_KV_KEY}); `null` for
   * nowhere.
   */
  kv?: Deno.Kv | null;
  /** Logger; defaults to one that drops everything. */
  log?: Logger;
  /** The `fetch` used for the meta URL. */
  fetch?: typeof fetch;
  /** Clock in milliseconds since the epoch. */
  now?: () => number;
  /** Source of jitter, in `[0, 1)`. */
  random?: () => number;
  /** `User-Agent` sent to the meta URL. */
  userAgent?: string;
  /** How long one fetch (headers and body) may take; default 10 000 ms. */
  timeoutMs?: number;
}

/** A snapshot of the refresher's state, for `/readyz` and `/metrics`. */
export interface MetaStatus {
  /** A GitHub list has been loaded (from KV or the network). */
  ready: boolean;
  /** Number of ranges in the current GitHub list (extra CIDRs not counted). */
  ranges: number;
  /** When this process last got a 200 or 304 (ms since the epoch). */
  lastSuccess: number | null;
  /**
   * When GitHub last confirmed the current list (ms since the epoch), possibly
   * in another process or before a restart (persisted in KV).
   */
  fetchedAt: number | null;
  /** The ETag of the current list. */
  etag: string | null;
  /** Why the last attempt failed; `null` after a success. */
  lastError: string | null;
  /** Failed attempts since the last success. */
  consecutiveFailures: number;
  /** Where the current list came from. */
  source: "none" | "kv" | "network";
}

/** The outcome of one {@link MetaRefresher.refresh} attempt. */
export interface RefreshResult {
  /** A valid list (200) or a 304 for the list we hold. */
  ok: boolean;
  /** The HTTP status, when an answer arrived. */
  status?: number;
  /** How long the server asked us to wait (`Retry-After`, rate-limit reset). */
  retryAfterMs?: number;
  /** Why the attempt failed. */
  error?: string;
  /** On success: whether the list differs from the one held before. */
  changed?: boolean;
  /** On failure: consecutive failures including this one (drives backoff). */
  failures?: number;
}

/** Keeps GitHub's `hooks` ranges current; see {@link createMetaRefresher}. */
export interface MetaRefresher {
  /**
   * Loads the persisted list from KV (kept if older than the one held);
   * `true` if one was found and valid. Never throws.
   */
  load(): Promise<boolean>;
  /**
   * Makes exactly one fetch attempt (a call while one is in flight shares
   * it). Never throws; replaces the list only with a valid answer and then
   * persists it.
   */
  refresh(): Promise<RefreshResult>;
  /** Whether a GitHub list has ever been loaded (from KV or the network). */
  isReady(): boolean;
  /**
   * Whether `ip` is in the current GitHub list or in the extra CIDRs; the
   * extra CIDRs are allowed even when not ready.
   */
  isAllowed(ip: IpAddress): boolean;
  /** A snapshot of the current state. */
  status(): MetaStatus;
  /**
   * Milliseconds to wait after `result` before the next attempt: the refresh
   * period after a success, exponential backoff with jitter after a failure
   * (at least the server's `Retry-After`). The same result object always
   * gets the same delay.
   */
  nextDelayMs(result: RefreshResult): number;
  /**
   * Refreshes now, then again after each {@link MetaRefresher.nextDelayMs},
   * until `signal` aborts (which also aborts an in-flight fetch). Resolves
   * once stopped; never rejects. Call it once.
   */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Cheap, non-blocking: when the list is missing or older than the refresh
   * period, no attempt is in flight and no backoff is pending, starts one in
   * the background (first adopting a fresher list another process persisted
   * in KV, if any). Errors are logged, never thrown.
   */
  maybeRefresh(): void;
  /** Resolves once no refresh (foreground or background) is in flight. */
  idle(): Promise<void>;
}

/** Largest meta body read, in bytes; a bigger one is a failure. */
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** Most `hooks` entries accepted. */
const MAX_HOOKS = 1000;
/** Narrowest allowed prefix lengths: nothing wider than /8 or /24. */
const MIN_PREFIX = { 4: 8, 6: 24 } as const;
/** First backoff step; with equal jitter the first retry comes in 1–2 s. */
const BACKOFF_BASE_MS = 2000;
/** Backoff never exceeds this (nor the refresh period). */
const BACKOFF_CAP_MS = 5 * 60 * 1000;
/** A server-requested wait is honoured up to this long. */
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
const MAX_ETAG_LENGTH = 512;
const DEFAULT_USER_AGENT = "hookgate/0.1 (+https://github.com/hookgate)";

interface Persisted {
  hooks: string[];
  etag: string | null;
  fetchedAt: number;
}

type Validated =
  | { ok: true; hooks: string[]; cidrs: Cidr[] }
  | { ok: false; error: string };

function validateHooks(value: unknown): Validated {
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
    if (typeof entry !== "string") {
      return { ok: false, error: `hooks[${i}] is not a string` };
    }
    const cidr = parseCidr(entry);
    if (cidr === null) {
      return {
        ok: false,
        error: `hooks[${i}] is not a valid CIDR: ${
          JSON.stringify(entry.slice(0, 60))
        }`,
      };
    }
    // An IPv4-mapped range (`::ffff:0.0.0.0/96`) matches IPv4 peers, so it is
    // held to the IPv4 limit.
    const mapped = cidr.version === 6 && cidr.prefix >= 96 &&
      isIpv4Mapped(cidr.network);
    const width = mapped ? cidr.prefix - 96 : cidr.prefix;
    const min = MIN_PREFIX[mapped ? 4 : cidr.version];
    if (width < min) {
      return {
        ok: false,
        error: `hooks[${i}] ${cidr.text} is wider than /${min}${
          mapped ? " (IPv4-mapped)" : ""
        }`,
      };
    }
    cidrs.push(cidr);
  }
  return { ok: true, hooks: hooks as string[], cidrs };
}

function sameList(a: readonly string[] | null, b: readonly string[]): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `origin + pathname` only: never credentials or a query string in logs. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return "(invalid url)";
  }
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into milliseconds. */
function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/** How long the server asked us to wait, capped; `undefined` if it did not. */
function serverWaitMs(response: Response, nowMs: number): number | undefined {
  const { status, headers } = response;
  if (status !== 403 && status !== 429 && status !== 503) return undefined;
  let wait = parseRetryAfter(headers.get("retry-after"), nowMs);
  if (wait === null && headers.get("x-ratelimit-remaining") === "0") {
    const reset = headers.get("x-ratelimit-reset");
    if (reset !== null && /^\d+$/.test(reset.trim())) {
      wait = Math.max(0, Number(reset.trim()) * 1000 - nowMs);
    }
  }
  return wait === null ? undefined : Math.min(wait, MAX_RETRY_AFTER_MS);
}

/** Reads at most `limit` bytes of `response`'s body; `null` when larger. */
async function readCapped(
  response: Response,
  limit: number,
): Promise<Uint8Array | null> {
  const length = Number(response.headers.get("content-length"));
  if (Number.isFinite(length) && length > limit) {
    await response.body?.cancel();
    return null;
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Creates a {@link MetaRefresher}. Nothing happens until a method is called:
 * no fetch, no timer, no KV access.
 *
 * @example
 * ```ts
 * import { createMetaRefresher } from "./meta.ts";
 * import { parseIp } from "../security/cidr.ts";
 *
 * const meta = createMetaRefresher({
 *   url: "https://api.github.com/meta",
 *   refreshSeconds: 3600,
 *   fetch: () => Promise.resolve(Response.json({ hooks: ["192.30.252.0/22"] })),
 * });
 * const result = await meta.refresh();
 * result.ok; // true
 * meta.isAllowed(parseIp("192.30.252.1")!); // true
 * meta.nextDelayMs(result); // 3600000
 * ```
 */
export function createMetaRefresher(
  options: MetaRefresherOptions,
): MetaRefresher {
  const {
    url,
    token,
    refreshSeconds,
    extraCidrs = [],
    kv = null,
    log = NULL_LOGGER,
    fetch = globalThis.fetch,
    now = Date.now,
    random = Math.random,
    userAgent = DEFAULT_USER_AGENT,
    timeoutMs = 10_000,
  } = options;
  if (!(Number.isFinite(refreshSeconds) && refreshSeconds > 0)) {
    throw new RangeError(
      `Cannot create meta refresher as 'refreshSeconds' must be a positive number: current value is ${refreshSeconds}`,
    );
  }
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError(
      `Cannot create meta refresher as 'timeoutMs' must be a positive number: current value is ${timeoutMs}`,
    );
  }
  if (!URL.canParse(url)) {
    throw new TypeError(
      `Cannot create meta refresher as 'url' is not a valid URL: current value is ${
        safeUrl(url)
      }`,
    );
  }

  const refreshMs = refreshSeconds * 1000;
  const logUrl = safeUrl(url);
  const extraMatcher: Matcher | null = extraCidrs.length > 0
    ? createMatcher(extraCidrs)
    : null;

  let hooks: string[] | null = null;
  let matcher: Matcher | null = null;
  let etag: string | null = null;
  let fetchedAt: number | null = null;
  let lastSuccess: number | null = null;
  let lastError: string | null = null;
  let consecutiveFailures = 0;
  let source: MetaStatus["source"] = "none";
  let backoffUntil = 0;
  let inFlight: Promise<RefreshResult> | null = null;
  let background: Promise<void> | null = null;
  let stopSignal: AbortSignal | null = null;
  const owner = crypto.randomUUID();
  const delays = new WeakMap<RefreshResult, number>();

  function adopt(list: string[], cidrs: Cidr[]): void {
    hooks = list;
    matcher = createMatcher(cidrs);
  }

  async function persist(): Promise<void> {
    if (kv === null || hooks === null || fetchedAt === null) return;
    const value: Persisted = { hooks, etag, fetchedAt };
    try {
      await kv.set(META_KV_KEY, value);
    } catch (error) {
      log.warn("github meta list not persisted", {
        error: describeError(error),
      });
    }
  }

  async function load(): Promise<boolean> {
    if (kv === null) return false;
    let value: unknown;
    try {
      value = (await kv.get(META_KV_KEY)).value;
    } catch (error) {
      log.warn("github meta list not loaded from kv", {
        error: describeError(error),
      });
      return false;
    }
    if (value === null) return false;
    const entry = value as Partial<Persisted>;
    const checked = validateHooks(value);
    const stamp = entry.fetchedAt;
    if (
      !checked.ok || typeof stamp !== "number" || !Number.isFinite(stamp) ||
      !(entry.etag === null || typeof entry.etag === "string")
    ) {
      log.warn("github meta list in kv is invalid, ignored", {
        error: checked.ok ? "bad etag or fetchedAt" : checked.error,
      });
      return false;
    }
    if (fetchedAt === null || stamp > fetchedAt) {
      const changed = !sameList(hooks, checked.hooks);
      adopt(checked.hooks, checked.cidrs);
      etag = entry.etag;
      fetchedAt = stamp;
      source = "kv";
      if (changed) {
        log.info("github meta hooks loaded from kv", {
          ranges: checked.hooks.length,
          ageSeconds: Math.round((now() - stamp) / 1000),
        });
      }
    }
    return true;
  }

  function fail(result: RefreshResult & { error: string }): RefreshResult {
    consecutiveFailures++;
    result.failures = consecutiveFailures;
    lastError = result.error;
    const delay = nextDelayMs(result);
    backoffUntil = now() + delay;
    log.warn("github meta refresh failed", {
      url: logUrl,
      ...(result.status === undefined ? {} : { status: result.status }),
      error: result.error,
      failures: consecutiveFailures,
      retryInMs: delay,
      ready: hooks !== null,
    });
    return result;
  }

  function succeed(): void {
    const t = now();
    lastSuccess = t;
    fetchedAt = t;
    lastError = null;
    consecutiveFailures = 0;
    backoffUntil = 0;
  }

  async function attempt(): Promise<RefreshResult> {
    const headers = new Headers({
      "accept": "application/vnd.github+json",
      "user-agent": userAgent,
      "x-github-api-version": "2022-11-28",
    });
    if (etag !== null && hooks !== null) headers.set("if-none-match", etag);
    if (token) headers.set("authorization", `Bearer ${token}`);

    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const stop = stopSignal;
    const onStop = () => controller.abort(new Error("stopped"));
    stop?.addEventListener("abort", onStop, { once: true });
    let response: Response;
    let body: Uint8Array | null;
    try {
      if (stop?.aborted) return { ok: false, error: "stopped" };
      try {
        response = await fetch(url, {
          headers,
          signal: controller.signal,
          redirect: "follow",
        });
      } catch (error) {
        if (stop?.aborted) return { ok: false, error: "stopped" };
        const reason = controller.signal.aborted
          ? describeError(controller.signal.reason)
          : describeError(error);
        return fail({ ok: false, error: `fetch failed: ${reason}` });
      }
      const { status } = response;
      if (status === 304) {
        await response.body?.cancel();
        if (hooks === null) {
          return fail({ ok: false, status, error: "304 without a held list" });
        }
        const newTag = response.headers.get("etag");
        if (newTag !== null && newTag.length <= MAX_ETAG_LENGTH) etag = newTag;
        succeed();
        log.debug("github meta not modified", { ranges: hooks.length });
        await persist();
        return { ok: true, status, changed: false };
      }
      if (status < 200 || status > 299) {
        await response.body?.cancel();
        const result: RefreshResult & { error: string } = {
          ok: false,
          status,
          error: `unexpected status ${status}`,
        };
        const wait = serverWaitMs(response, now());
        if (wait !== undefined) result.retryAfterMs = wait;
        return fail(result);
      }
      try {
        body = await readCapped(response, MAX_BODY_BYTES);
      } catch (error) {
        if (stop?.aborted) return { ok: false, error: "stopped" };
        const reason = controller.signal.aborted
          ? describeError(controller.signal.reason)
          : describeError(error);
        return fail({ ok: false, status, error: `body failed: ${reason}` });
      }
    } finally {
      clearTimeout(timer);
      stop?.removeEventListener("abort", onStop);
    }

    const { status } = response;
    if (body === null) {
      return fail({
        ok: false,
        status,
        error: `body larger than ${MAX_BODY_BYTES} bytes`,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(body),
      );
    } catch {
      return fail({ ok: false, status, error: "answer is not JSON" });
    }
    const checked = validateHooks(parsed);
    if (!checked.ok) return fail({ ok: false, status, error: checked.error });

    const changed = !sameList(hooks, checked.hooks);
    adopt(checked.hooks, checked.cidrs);
    const newTag = response.headers.get("etag");
    etag = newTag !== null && newTag.length <= MAX_ETAG_LENGTH ? newTag : null;
    source = "network";
    succeed();
    if (changed) {
      log.info("github meta hooks updated", { ranges: checked.hooks.length });
    } else {
      log.debug("github meta hooks unchanged", {
        ranges: checked.hooks.length,
      });
    }
    await persist();
    return { ok: true, status, changed };
  }

  function refresh(): Promise<RefreshResult> {
    if (inFlight !== null) return inFlight;
    const promise = attempt().catch((error): RefreshResult =>
      fail({ ok: false, error: `unexpected: ${describeError(error)}` })
    ).finally(() => {
      if (inFlight === promise) inFlight = null;
    });
    inFlight = promise;
    return promise;
  }

  function nextDelayMs(result: RefreshResult): number {
    const cached = delays.get(result);
    if (cached !== undefined) return cached;
    let delay: number;
    if (result.ok) {
      delay = refreshMs;
    } else {
      const n = Math.max(1, result.failures ?? consecutiveFailures);
      delay = backoffDelay(n, {
        baseMs: BACKOFF_BASE_MS,
        maxMs: Math.min(BACKOFF_CAP_MS, refreshMs),
        random,
      });
      if (result.retryAfterMs !== undefined) {
        delay = Math.max(
          delay,
          Math.min(result.retryAfterMs, MAX_RETRY_AFTER_MS),
        );
      }
    }
    delays.set(result, delay);
    return delay;
  }

  function isFresh(): boolean {
    return hooks !== null && fetchedAt !== null &&
      now() - fetchedAt < refreshMs;
  }

  function maybeRefresh(): void {
    if (inFlight !== null || background !== null) return;
    if (isFresh() || now() < backoffUntil) return;
    const task = (async () => {
      try {
        if (kv !== null && await load() && isFresh()) return;
        if (!(await holdsFetchLease())) return;
        await refresh();
      } catch (error) {
        log.error("github meta background refresh failed", {
          error: describeError(error),
        });
      } finally {
        background = null;
      }
    })();
    background = task;
  }

  async function idle(): Promise<void> {
    while (inFlight !== null || background !== null) {
      await Promise.allSettled([inFlight, background]);
    }
  }

  /**
   * Takes (or renews) the fetch lease in KV. True when this refresher may
   * fetch: no KV, a free or expired lease, or one it already holds.
   */
  async function holdsFetchLease(): Promise<boolean> {
    if (kv === null) return true;
    try {
      return await takeLease(kv, META_LEASE_KEY, owner, LEASE_MS, now());
    } catch (error) {
      log.warn("github meta lease not taken; fetching anyway", {
        error: describeError(error),
      });
      return true;
    }
  }

  /**
   * One tick of the shared schedule: adopt a fresher list another process
   * persisted; otherwise fetch, if this refresher holds the lease. Returns
   * how long to wait before the next tick.
   */
  async function tick(): Promise<number> {
    if (kv !== null) {
      await load();
      if (isFresh()) {
        // Someone refreshed recently: come back when it goes stale.
        return Math.max(1000, fetchedAt! + refreshMs - now()) +
          Math.round(random() * 1000);
      }
      if (!(await holdsFetchLease())) return Math.min(1000, refreshMs);
    }
    return nextDelayMs(await refresh());
  }

  async function start(signal: AbortSignal): Promise<void> {
    stopSignal = signal;
    try {
      while (!signal.aborted) {
        const delay = await tick();
        if (signal.aborted) break;
        await sleep(delay, signal);
      }
      await idle();
    } finally {
      if (stopSignal === signal) stopSignal = null;
    }
  }

  return {
    load,
    refresh,
    isReady: () => hooks !== null,
    isAllowed: (ip) =>
      (extraMatcher !== null && extraMatcher(ip)) ||
      (matcher !== null && matcher(ip)),
    status: () => ({
      ready: hooks !== null,
      ranges: hooks?.length ?? 0,
      lastSuccess,
      fetchedAt,
      etag,
      lastError,
      consecutiveFailures,
      source,
    }),
    nextDelayMs,
    start,
    maybeRefresh,
    idle,
  };
}
