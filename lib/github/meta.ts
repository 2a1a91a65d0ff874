/**
 * Keeps GitHub's webhook source ranges (the `hooks` list of
 * `GET https://api.github.com/meta`) current, for the IP allowlist.
 *
 * {@link createMetaRefresher} returns a small object that holds the current
 * list and decides when to fetch: it keeps the last good list when an answer
 * is bad, persists each good one so a restarted process is ready at once,
 * takes a KV lease so that processes sharing a KV fetch once between them,
 * and schedules refreshes with exponential backoff and jitter. `refresh()` is
 * one attempt and owns no timer, so tests need none; `start(signal)` is the
 * only timer owner; `maybeRefresh()` is the lazy stale-while-revalidate
 * variant for short-lived isolates (Deno Deploy).
 *
 * The parts live beside it: one conditional fetch in `meta_fetch.ts`, the
 * validation of an answer in `meta_list.ts`, the KV copy in `meta_store.ts`,
 * the `Deno.cron` schedule in `meta_cron.ts`. It does not decide HTTP
 * statuses (the server answers 403 or 503 from {@link MetaRefresher.isAllowed}
 * and {@link MetaRefresher.isReady}), does not parse addresses (that is
 * `cidr.ts`), and never logs the token.
 *
 * @module
 */

import type { Logger } from "../ops/log.ts";
import { NULL_LOGGER } from "../ops/log.ts";
import type { Cidr, IpAddress, Matcher } from "../security/cidr.ts";
import { createMatcher } from "../security/cidr.ts";
import { backoffDelay } from "../_util/backoff.ts";
import { describeError } from "../_util/errors.ts";
import { sleep } from "../_util/timers.ts";
import { META_LEASE_KEY } from "../store/keys.ts";
import { takeLease } from "../store/lease.ts";
import { DEFAULT_META_USER_AGENT, fetchMeta } from "./meta_fetch.ts";
import type { MetaFetchResult } from "./meta_fetch.ts";
import { type HooksList, sameHooks } from "./meta_list.ts";
import { loadPersistedHooks, persistHooks } from "./meta_store.ts";
import { MAX_META_WAIT_MS } from "./rate_limit.ts";

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
   * Where the last good list is persisted (see `meta_store.ts`); `null` for
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

/** First backoff step; with equal jitter the first retry comes in 1–2 s. */
const BACKOFF_BASE_MS = 2000;
/** Backoff never exceeds this (nor the refresh period). */
const BACKOFF_CAP_MS = 5 * 60 * 1000;

/** The options of a refresher, resolved: fixed for its life. */
interface RefresherConfig {
  url: string;
  /** {@link url} fit for logs (no credentials, no query). */
  logUrl: string;
  token: string | undefined;
  refreshMs: number;
  extraMatcher: Matcher | null;
  kv: Deno.Kv | null;
  log: Logger;
  fetch: typeof fetch;
  now: () => number;
  random: () => number;
  userAgent: string;
  timeoutMs: number;
  /** This refresher's name in the fetch lease. */
  owner: string;
}

/** What changes: the list held, the last outcomes, the work in flight. */
interface RefresherState {
  hooks: string[] | null;
  matcher: Matcher | null;
  etag: string | null;
  fetchedAt: number | null;
  lastSuccess: number | null;
  lastError: string | null;
  consecutiveFailures: number;
  source: MetaStatus["source"];
  /** No background refresh starts before this time (ms since the epoch). */
  backoffUntil: number;
  inFlight: Promise<RefreshResult> | null;
  background: Promise<void> | null;
  /** The signal of the running {@link start}; aborts an in-flight fetch. */
  stopSignal: AbortSignal | null;
  /** The delay given to each result, so that it never changes. */
  delays: WeakMap<RefreshResult, number>;
}

/** A refresher: its configuration and its one state object. */
interface Refresher {
  config: RefresherConfig;
  state: RefresherState;
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

/** The options with their defaults; throws for a bad one. */
function resolveConfig(options: MetaRefresherOptions): RefresherConfig {
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
    userAgent = DEFAULT_META_USER_AGENT,
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
  return {
    url,
    logUrl: safeUrl(url),
    token,
    refreshMs: refreshSeconds * 1000,
    extraMatcher: extraCidrs.length > 0 ? createMatcher(extraCidrs) : null,
    kv,
    log,
    fetch,
    now,
    random,
    userAgent,
    timeoutMs,
    owner: crypto.randomUUID(),
  };
}

/** The state of a refresher that holds nothing yet. */
function initialState(): RefresherState {
  return {
    hooks: null,
    matcher: null,
    etag: null,
    fetchedAt: null,
    lastSuccess: null,
    lastError: null,
    consecutiveFailures: 0,
    source: "none",
    backoffUntil: 0,
    inFlight: null,
    background: null,
    stopSignal: null,
    delays: new WeakMap(),
  };
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
  const r: Refresher = {
    config: resolveConfig(options),
    state: initialState(),
  };
  const { extraMatcher } = r.config;
  const { state } = r;
  return {
    load: () => load(r),
    refresh: () => refresh(r),
    isReady: () => state.hooks !== null,
    isAllowed: (ip) =>
      (extraMatcher !== null && extraMatcher(ip)) ||
      (state.matcher !== null && state.matcher(ip)),
    status: () => ({
      ready: state.hooks !== null,
      ranges: state.hooks?.length ?? 0,
      lastSuccess: state.lastSuccess,
      fetchedAt: state.fetchedAt,
      etag: state.etag,
      lastError: state.lastError,
      consecutiveFailures: state.consecutiveFailures,
      source: state.source,
    }),
    nextDelayMs: (result) => nextDelayMs(r, result),
    start: (signal) => start(r, signal),
    maybeRefresh: () => maybeRefresh(r),
    idle: () => idle(state),
  };
}

/** Holds `list` as the current one. */
function adopt(state: RefresherState, list: HooksList): void {
  state.hooks = list.hooks;
  state.matcher = createMatcher(list.cidrs);
}

/** Persists the list held, if any; a KV failure is logged. */
async function persist({ config, state }: Refresher): Promise<void> {
  const { hooks, etag, fetchedAt } = state;
  if (config.kv === null || hooks === null || fetchedAt === null) return;
  const saved = await persistHooks(config.kv, { hooks, etag, fetchedAt });
  if (!saved.ok) {
    config.log.warn("github meta list not persisted", { error: saved.error });
  }
}

/** {@link MetaRefresher.load}. */
async function load({ config, state }: Refresher): Promise<boolean> {
  const { kv, log, now } = config;
  if (kv === null) return false;
  const loaded = await loadPersistedHooks(kv);
  switch (loaded.kind) {
    case "none":
      return false;
    case "unreadable":
      log.warn("github meta list not loaded from kv", { error: loaded.error });
      return false;
    case "invalid":
      log.warn("github meta list in kv is invalid, ignored", {
        error: loaded.error,
      });
      return false;
  }
  if (state.fetchedAt === null || loaded.fetchedAt > state.fetchedAt) {
    const changed = !sameHooks(state.hooks, loaded.list.hooks);
    adopt(state, loaded.list);
    state.etag = loaded.etag;
    state.fetchedAt = loaded.fetchedAt;
    state.source = "kv";
    if (changed) {
      log.info("github meta hooks loaded from kv", {
        ranges: loaded.list.hooks.length,
        ageSeconds: Math.round((now() - loaded.fetchedAt) / 1000),
      });
    }
  }
  return true;
}

/** Counts a failed attempt, arms the backoff and logs it. */
function fail(
  r: Refresher,
  result: RefreshResult & { error: string },
): RefreshResult {
  const { config, state } = r;
  state.consecutiveFailures++;
  result.failures = state.consecutiveFailures;
  state.lastError = result.error;
  const delay = nextDelayMs(r, result);
  state.backoffUntil = config.now() + delay;
  config.log.warn("github meta refresh failed", {
    url: config.logUrl,
    ...(result.status === undefined ? {} : { status: result.status }),
    error: result.error,
    failures: state.consecutiveFailures,
    retryInMs: delay,
    ready: state.hooks !== null,
  });
  return result;
}

/** Records a 200 or 304 for the list held. */
function succeed({ config, state }: Refresher): void {
  const t = config.now();
  state.lastSuccess = t;
  state.fetchedAt = t;
  state.lastError = null;
  state.consecutiveFailures = 0;
  state.backoffUntil = 0;
}

/** One fetch, and what its result does to the state. */
async function attempt(r: Refresher): Promise<RefreshResult> {
  const { config, state } = r;
  const result = await fetchMeta({
    url: config.url,
    etag: state.hooks !== null ? state.etag : null,
    token: config.token,
    userAgent: config.userAgent,
    timeoutMs: config.timeoutMs,
    fetch: config.fetch,
    now: config.now,
    signal: state.stopSignal,
  });
  switch (result.kind) {
    case "stopped":
      return { ok: false, error: "stopped" };
    case "failed":
      return fail(r, failure(result));
    case "not_modified":
      return await notModified(r, result);
    case "ok":
      return await updated(r, result);
  }
}

/** A failed fetch as a {@link RefreshResult}, without absent fields. */
function failure(
  result: Extract<MetaFetchResult, { kind: "failed" }>,
): RefreshResult & { error: string } {
  const out: RefreshResult & { error: string } = {
    ok: false,
    ...(result.status === undefined ? {} : { status: result.status }),
    error: result.error,
  };
  if (result.retryAfterMs !== undefined) out.retryAfterMs = result.retryAfterMs;
  return out;
}

/** A 304: the list held is still current (a failure if none is held). */
async function notModified(
  r: Refresher,
  result: Extract<MetaFetchResult, { kind: "not_modified" }>,
): Promise<RefreshResult> {
  const { config, state } = r;
  const { status } = result;
  if (state.hooks === null) {
    return fail(r, { ok: false, status, error: "304 without a held list" });
  }
  if (result.etag !== null) state.etag = result.etag;
  succeed(r);
  config.log.debug("github meta not modified", { ranges: state.hooks.length });
  await persist(r);
  return { ok: true, status, changed: false };
}

/** A valid list: held, logged if it changed, persisted. */
async function updated(
  r: Refresher,
  result: Extract<MetaFetchResult, { kind: "ok" }>,
): Promise<RefreshResult> {
  const { config, state } = r;
  const { list, status } = result;
  const changed = !sameHooks(state.hooks, list.hooks);
  adopt(state, list);
  state.etag = result.etag;
  state.source = "network";
  succeed(r);
  if (changed) {
    config.log.info("github meta hooks updated", { ranges: list.hooks.length });
  } else {
    config.log.debug("github meta hooks unchanged", {
      ranges: list.hooks.length,
    });
  }
  await persist(r);
  return { ok: true, status, changed };
}

/** {@link MetaRefresher.refresh}: one attempt, shared while in flight. */
function refresh(r: Refresher): Promise<RefreshResult> {
  const { state } = r;
  if (state.inFlight !== null) return state.inFlight;
  const promise = attempt(r).catch((error): RefreshResult =>
    fail(r, { ok: false, error: `unexpected: ${describeError(error)}` })
  ).finally(() => {
    if (state.inFlight === promise) state.inFlight = null;
  });
  state.inFlight = promise;
  return promise;
}

/** {@link MetaRefresher.nextDelayMs}, remembered per result. */
function nextDelayMs(
  { config, state }: Refresher,
  result: RefreshResult,
): number {
  const cached = state.delays.get(result);
  if (cached !== undefined) return cached;
  const delay = delayAfter(result, state.consecutiveFailures, config);
  state.delays.set(result, delay);
  return delay;
}

/**
 * The wait after `result`: the refresh period after a success; after a
 * failure, backoff with jitter (capped at 5 minutes and the period) or the
 * server's requested wait (capped at an hour), whichever is longer.
 */
function delayAfter(
  result: RefreshResult,
  consecutiveFailures: number,
  { refreshMs, random }: Pick<RefresherConfig, "refreshMs" | "random">,
): number {
  if (result.ok) return refreshMs;
  const n = Math.max(1, result.failures ?? consecutiveFailures);
  const delay = backoffDelay(n, {
    baseMs: BACKOFF_BASE_MS,
    maxMs: Math.min(BACKOFF_CAP_MS, refreshMs),
    random,
  });
  if (result.retryAfterMs === undefined) return delay;
  return Math.max(delay, Math.min(result.retryAfterMs, MAX_META_WAIT_MS));
}

/** Whether the list held is younger than the refresh period. */
function isFresh({ config, state }: Refresher): boolean {
  return state.hooks !== null && state.fetchedAt !== null &&
    config.now() - state.fetchedAt < config.refreshMs;
}

/** {@link MetaRefresher.maybeRefresh}. */
function maybeRefresh(r: Refresher): void {
  const { config, state } = r;
  if (state.inFlight !== null || state.background !== null) return;
  if (isFresh(r) || config.now() < state.backoffUntil) return;
  const task = (async () => {
    try {
      if (config.kv !== null && await load(r) && isFresh(r)) return;
      if (!(await holdsFetchLease(r))) return;
      await refresh(r);
    } catch (error) {
      config.log.error("github meta background refresh failed", {
        error: describeError(error),
      });
    } finally {
      state.background = null;
    }
  })();
  state.background = task;
}

/** {@link MetaRefresher.idle}. */
async function idle(state: RefresherState): Promise<void> {
  while (state.inFlight !== null || state.background !== null) {
    await Promise.allSettled([state.inFlight, state.background]);
  }
}

/**
 * Takes (or renews) the fetch lease in KV. True when this refresher may
 * fetch: no KV, a free or expired lease, or one it already holds.
 */
async function holdsFetchLease({ config }: Refresher): Promise<boolean> {
  const { kv, owner, now, log } = config;
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
async function tick(r: Refresher): Promise<number> {
  const { config, state } = r;
  if (config.kv !== null) {
    await load(r);
    if (isFresh(r)) {
      // Someone refreshed recently: come back when it goes stale.
      return Math.max(
        1000,
        state.fetchedAt! + config.refreshMs - config.now(),
      ) +
        Math.round(config.random() * 1000);
    }
    if (!(await holdsFetchLease(r))) return Math.min(1000, config.refreshMs);
  }
  return nextDelayMs(r, await refresh(r));
}

/** {@link MetaRefresher.start}: ticks until `signal` aborts. */
async function start(r: Refresher, signal: AbortSignal): Promise<void> {
  const { state } = r;
  state.stopSignal = signal;
  try {
    while (!signal.aborted) {
      const delay = await tick(r);
      if (signal.aborted) break;
      await sleep(delay, signal);
    }
    await idle(state);
  } finally {
    if (state.stopSignal === signal) state.stopSignal = null;
  }
}
