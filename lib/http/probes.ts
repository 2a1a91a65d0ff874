/**
 * The operations probes: `GET /healthz` (the process serves), `GET /readyz`
 * (an allowlist is loaded, or it is off, KV answers, and its writes are not
 * failing) and `GET /metrics` (Prometheus text), plus
 * {@link createReadiness}, the check behind `/readyz`. While writes fail, or
 * when none was seen for a while, the check makes a small write of its own,
 * so that a receiver that gets no traffic (because it is not ready) still
 * finds out when writes work again. It routes nothing (`server.ts` does) and
 * knows the meta refresher only through its status, the store's writes only
 * through `store/health.ts`.
 *
 * @module
 */

import { READY_KEY } from "../store/keys.ts";
import { retryLocked } from "../store/kv.ts";
import type { StoreHealth } from "../store/health.ts";
import { errorMessage } from "../_util/errors.ts";
import { withTimeout } from "../_util/timers.ts";

/**
 * How long `/readyz` waits for KV: a remote KV that is down never answers
 * (Deno's client retries for ever), and a probe must answer.
 */
const KV_PROBE_MS = 2000;
import { jsonResponse } from "./responses.ts";

/** The answer of a readiness probe. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, unknown>;
}

/** What `/readyz` shows of the IP allowlist (the meta refresher's status). */
export interface AllowlistStatus {
  /** A GitHub list has been loaded. */
  ready: boolean;
  /** Ranges in the current list. */
  ranges: number;
  /** Where the current list came from. */
  source: string;
  /** When GitHub last confirmed the list (ms since the epoch). */
  fetchedAt: number | null;
  /** Why the last attempt failed; `null` after a success. */
  lastError: string | null;
}

/** Options of {@link createReadiness}. */
export interface ReadinessOptions {
  /** The meta refresher; `null` when `IP_ALLOWLIST=off`. */
  meta: { status(): AllowlistStatus } | null;
  /** The delivery store's KV, read once per probe. */
  kv: Deno.Kv;
  /** The worker, for the queue depth. */
  worker: { readonly depth: number };
  /** Whether the app has closed (then KV is not asked). */
  isClosed: () => boolean;
  /** The store's write health; without it writes are not looked at. */
  health?: StoreHealth;
  /** Least time between probe writes while writes fail. @default 1000 */
  probeEveryMs?: number;
  /** A probe write is made when no write was seen for this long. @default 30_000 */
  idleProbeMs?: number;
  /** @default Date.now */
  now?: () => number;
}

/** How long a probe write is kept (it only has to land). */
const PROBE_TTL_MS = 60_000;

/** Why `/readyz` answers 503 while no allowlist is loaded. */
const NOT_LOADED = "GitHub's webhook IP ranges have not been loaded yet";
/** Why `/readyz` answers 503 while KV cannot be read. */
const KV_DOWN = "the delivery store (Deno KV) is not available";
/** Why `/readyz` answers 503 while writes fail. */
const WRITES_FAILING = "the delivery store (Deno KV) is failing writes";

/**
 * The allowlist's part of a readiness answer, from the refresher's status
 * at `now`.
 *
 * @example
 * ```ts
 * import { allowlistCheck } from "./probes.ts";
 * allowlistCheck(
 *   { ready: true, ranges: 30, source: "network", fetchedAt: 0, lastError: null },
 *   60_000,
 * ).ageSeconds; // 60
 * ```
 */
export function allowlistCheck(
  status: AllowlistStatus,
  now: number,
): Record<string, unknown> {
  return {
    ready: status.ready,
    ranges: status.ranges,
    source: status.source,
    ageSeconds: status.fetchedAt === null
      ? null
      : Math.round((now - status.fetchedAt) / 1000),
    lastError: status.lastError,
  };
}

/**
 * Makes the readiness check behind `/readyz`: ready when an allowlist is
 * loaded (or off), KV answers a read, and (with `health`) its writes are not
 * failing. It writes a probe key itself, at most every `probeEveryMs` while
 * writes fail and after `idleProbeMs` without any write; concurrent checks
 * share one probe.
 *
 * @example
 * ```ts
 * import { createReadiness } from "./probes.ts";
 * const kv = await Deno.openKv(":memory:");
 * const readiness = createReadiness({
 *   meta: null,
 *   kv,
 *   worker: { depth: 0 },
 *   isClosed: () => false,
 * });
 * (await readiness()).ready; // true
 * kv.close();
 * ```
 */
export function createReadiness(
  options: ReadinessOptions,
): () => Promise<Readiness> {
  const { meta, kv, worker, isClosed, health, now = Date.now } = options;
  const probeEveryMs = options.probeEveryMs ?? 1000;
  const idleProbeMs = options.idleProbeMs ?? 30_000;
  let probing: Promise<void> | null = null;

  /** A small write, when one is due, reported to `health`. */
  function probe(health: StoreHealth): Promise<void> {
    const { consecutiveFailures, lastWriteAt } = health.status();
    const every = consecutiveFailures > 0 ? probeEveryMs : idleProbeMs;
    if (lastWriteAt !== null && now() - lastWriteAt < every) {
      return probing ?? Promise.resolve();
    }
    probing ??= retryLocked(() =>
      kv.set(READY_KEY, now(), { expireIn: PROBE_TTL_MS })
    ).then(() => health.succeeded(), (err) => health.failed(err))
      .finally(() => probing = null);
    return probing;
  }

  return async function readiness(): Promise<Readiness> {
    const checks: Record<string, unknown> = {};
    let ready = true;
    if (meta) {
      const status = meta.status();
      checks.allowlist = allowlistCheck(status, now());
      if (!status.ready) {
        ready = false;
        checks.reason = NOT_LOADED;
      }
    } else checks.allowlist = { ready: true, mode: "off" };
    try {
      if (isClosed()) throw new Error("closed");
      await withTimeout(
        retryLocked(() => kv.get(READY_KEY)),
        KV_PROBE_MS,
        "the KV",
      );
      checks.kv = { ready: true };
    } catch (err) {
      ready = false;
      checks.kv = { ready: false, error: errorMessage(err) };
      checks.reason ??= KV_DOWN;
    }
    if (health && !isClosed()) {
      // A probe write still waiting counts once it ends; answer meanwhile.
      await withTimeout(probe(health), KV_PROBE_MS, "the KV").catch(() => {});
      const writes = health.status();
      if (!writes.healthy) {
        ready = false;
        checks.reason ??= WRITES_FAILING;
      }
      if (writes.consecutiveFailures > 0) {
        checks.kv = {
          ...checks.kv as Record<string, unknown>,
          ...(writes.healthy ? {} : { ready: false }),
          writeFailures: writes.consecutiveFailures,
          lastWriteError: writes.lastError,
        };
      }
    }
    checks.queueDepth = worker.depth;
    return { ready, checks };
  };
}

/**
 * The `/healthz` answer: 200 while the process serves.
 *
 * @example
 * ```ts
 * import { healthResponse } from "./probes.ts";
 * healthResponse().status; // 200
 * ```
 */
export function healthResponse(): Response {
  return jsonResponse(200, { status: "ok" });
}

/**
 * The `/readyz` answer: 200 `ready` or 503 `not_ready`, with the checks
 * (always ready without a `readiness`).
 *
 * @example
 * ```ts
 * import { readyResponse } from "./probes.ts";
 * (await readyResponse()).status; // 200
 * ```
 */
export async function readyResponse(
  readiness?: () => Readiness | Promise<Readiness>,
): Promise<Response> {
  const state = readiness ? await readiness() : { ready: true, checks: {} };
  return jsonResponse(state.ready ? 200 : 503, {
    status: state.ready ? "ready" : "not_ready",
    ...state.checks,
  });
}

/**
 * The `/metrics` answer: `text` as Prometheus' text format.
 *
 * @example
 * ```ts
 * import { metricsResponse } from "./probes.ts";
 * metricsResponse("up 1\n").headers.get("content-type"); // "text/plain; version=0.0.4; charset=utf-8"
 * ```
 */
export function metricsResponse(text: string): Response {
  return new Response(text, {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
