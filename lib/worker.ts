/**
 * The worker: takes due delivery records from the store (leasing each with an
 * atomic versionstamp check), runs their handlers with a timeout and at most
 * `MAX_CONCURRENCY` at once, and records the outcome — `done`, `skipped`,
 * `failed` with a backoff before the next attempt, or `dead`.
 *
 * Nothing depends on KV queue messages: the worker polls the store's `due`
 * index (a lease that expired — a crash, another process — is simply due
 * again, so polling is also the sweeper), and {@link Worker.wake} makes it
 * look at once after this process accepted a delivery.
 *
 * @module
 */

import {
  describeError,
  type HandlerRegistry,
  runHandlers,
} from "./dispatch.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { decodePayload } from "./payload.ts";
import type { DeliveryRecord, DeliveryStore } from "./store.ts";

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  store: DeliveryStore;
  registry: HandlerRegistry;
  log: Logger;
  metrics?: Metrics;
  maxConcurrency: number;
  handlerTimeoutMs: number;
  /** How often to look for due records when not woken (default 1000 ms). */
  pollMs?: number;
  /** First retry delay; doubles each attempt, with jitter (default 5000 ms). */
  retryBaseMs?: number;
  /** Longest retry delay (default 10 minutes). */
  retryMaxMs?: number;
  /** Extra lease time beyond the handler timeout (default: the timeout, at most 5000 ms). */
  leaseMarginMs?: number;
  /** How often to remove expired records (default 10 minutes). */
  collectEveryMs?: number;
  random?: () => number;
}

/** A running worker. */
export interface Worker {
  /** Runs until `signal` aborts; then waits for running handlers (see {@link drain}). */
  start(signal: AbortSignal): Promise<void>;
  /** Look for due records now (a delivery was just accepted). */
  wake(): void;
  /** One pass: lease and start what is due, up to the free slots. Returns how many started. */
  tick(): Promise<number>;
  /** Resolves when no handler runs, or after `timeoutMs` (then aborts them). */
  drain(timeoutMs: number): Promise<boolean>;
  /** Handler runs in progress. */
  readonly active: number;
  /** The highest number of simultaneous runs seen. */
  readonly peak: number;
  /** Records due or running, as of the last count. */
  readonly depth: number;
}

/**
 * Creates a worker over a store. It starts nothing until {@link Worker.start}.
 *
 * @example
 * ```ts ignore
 * const worker = createWorker({ store, registry: HANDLERS, log, maxConcurrency: 8, handlerTimeoutMs: 30_000 });
 * worker.start(controller.signal);
 * ```
 */
export function createWorker(options: WorkerOptions): Worker {
  const {
    store,
    registry,
    log,
    metrics,
    maxConcurrency,
    handlerTimeoutMs,
    pollMs = 1000,
    retryBaseMs = 5000,
    retryMaxMs = 600_000,
    leaseMarginMs = Math.min(5000, handlerTimeoutMs),
    collectEveryMs = 600_000,
    random = Math.random,
  } = options;
  const running = new Set<Promise<void>>();
  const owner = crypto.randomUUID();
  const abortRuns = new AbortController();
  let peak = 0;
  let depth = 0;
  let wakeUp: (() => void) | null = null;
  let woken = false;
  let ticking: Promise<number> | null = null;

  function wake(): void {
    woken = true;
    wakeUp?.();
  }

  async function runOne(record: DeliveryRecord): Promise<void> {
    const start = performance.now();
    const dlog = log.child({
      delivery: record.id,
      event: record.event,
      action: record.action,
      attempt: record.attempts,
    });
    let result;
    try {
      const body = await store.readBody(record);
      const decoded = decodePayload(body, record.kind);
      if (!decoded.ok) throw new Error(decoded.message);
      result = await runHandlers({
        registry,
        event: record.event,
        action: record.action,
        delivery: record.id,
        attempt: record.attempts,
        payload: decoded.payload,
        log: dlog,
        timeoutMs: handlerTimeoutMs,
        signal: abortRuns.signal,
      });
    } catch (err) {
      result = {
        outcome: "error" as const,
        ms: performance.now() - start,
        error: describeError(err),
        handler: "(load)",
      };
    }
    if (metrics && result.outcome !== "skipped") {
      metrics.inc("webhook_handler_runs_total", {
        event: record.event,
        result: result.outcome,
      });
      metrics.observe("webhook_handler_duration_seconds", result.ms / 1000, {
        event: record.event,
      });
    }
    await finish(record, result, dlog);
  }

  async function finish(
    leased: DeliveryRecord,
    result: Awaited<ReturnType<typeof runHandlers>>,
    dlog: Logger,
  ): Promise<void> {
    for (let tries = 0; tries < 5; tries++) {
      const entry = await store.getEntry(leased.id);
      const current = entry.value;
      if (current === null) return;
      if (
        current.status !== "running" || current.startedAt !== leased.startedAt
      ) {
        dlog.warn(
          "lease lost before the outcome was recorded; another worker re-ran it",
        );
        return;
      }
      const now = store.now();
      let next: DeliveryRecord;
      if (result.outcome === "ok" || result.outcome === "skipped") {
        next = {
          ...current,
          status: result.outcome === "ok" ? "done" : "skipped",
          finishedAt: now,
          updatedAt: now,
          dueAt: null,
          durationMs: Math.round(result.ms),
          error: null,
        };
      } else if (current.attempts >= current.attemptLimit) {
        next = {
          ...current,
          status: "dead",
          finishedAt: now,
          updatedAt: now,
          dueAt: null,
          durationMs: Math.round(result.ms),
          error: result.error,
        };
      } else {
        const backoff = Math.min(
          retryMaxMs,
          retryBaseMs * 2 ** (current.attempts - 1),
        );
        const delay = Math.round(backoff / 2 + random() * backoff / 2);
        next = {
          ...current,
          status: "failed",
          updatedAt: now,
          dueAt: now + delay,
          durationMs: Math.round(result.ms),
          error: result.error,
        };
      }
      const saved = await store.update(
        entry as Deno.KvEntry<DeliveryRecord>,
        next,
      );
      if (saved) {
        const fields = {
          status: saved.status,
          ms: Math.round(result.ms),
          ...(saved.error ? { error: saved.error } : {}),
          ...(saved.status === "failed"
            ? { retryInMs: saved.dueAt! - now }
            : {}),
        };
        if (saved.status === "done" || saved.status === "skipped") {
          dlog.info("delivery " + saved.status, fields);
        } else if (saved.status === "failed") {
          dlog.warn("delivery failed", fields);
        } else dlog.error("delivery dead", fields);
        return;
      }
    }
    dlog.error(
      "could not record the outcome; the lease will expire and it will run again",
    );
  }

  async function tickOnce(): Promise<number> {
    const free = maxConcurrency - running.size;
    if (free <= 0) return 0;
    const now = store.now();
    const ids = await store.listDue(now, free * 2);
    let started = 0;
    for (const id of ids) {
      if (running.size >= maxConcurrency) break;
      if (abortRuns.signal.aborted) break;
      let record: DeliveryRecord | null;
      try {
        record = await store.lease(
          id,
          store.now() + handlerTimeoutMs + leaseMarginMs,
        );
      } catch (err) {
        log.error("lease failed", { delivery: id, error: describeError(err) });
        continue;
      }
      if (record === null) continue;
      started++;
      const run: Promise<void> = runOne(record)
        .catch((err) => {
          log.error("worker error", {
            delivery: id,
            error: describeError(err),
          });
        })
        .finally(() => {
          running.delete(run);
          wake();
        });
      running.add(run);
      peak = Math.max(peak, running.size);
    }
    return started;
  }

  function tick(): Promise<number> {
    // One pass at a time; a wake during a pass triggers another pass.
    if (ticking) return ticking;
    ticking = tickOnce().finally(() => ticking = null);
    return ticking;
  }

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (woken || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      wakeUp = done;
    });
  }

  async function start(signal: AbortSignal): Promise<void> {
    let lastCollect = 0;
    while (!signal.aborted) {
      woken = false;
      try {
        await tick();
        const now = store.now();
        if (now - lastCollect >= collectEveryMs) {
          lastCollect = now;
          depth = await store.countDue();
          // One collector per period across every process on this KV.
          if (await store.claim("collect", owner, collectEveryMs)) {
            const collected = await store.collect();
            if (collected.records + collected.orphans > 0) {
              log.info("expired deliveries removed", collected);
            }
          }
        } else if (running.size === 0) {
          depth = await store.countDue(10_000);
        }
      } catch (err) {
        log.error("worker pass failed", { error: describeError(err) });
      }
      await sleep(running.size >= maxConcurrency ? 60_000 : pollMs, signal);
    }
  }

  async function drain(timeoutMs: number): Promise<boolean> {
    if (running.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const all = Promise.all([...running]).then(() => true as const);
    const finished = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    if (!finished) {
      abortRuns.abort(new Error("server shutting down"));
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        all,
        new Promise((r) => grace = setTimeout(r, 1000)),
      ]);
      clearTimeout(grace);
    }
    return finished;
  }

  return {
    start,
    wake,
    tick,
    drain,
    get active() {
      return running.size;
    },
    get peak() {
      return peak;
    },
    get depth() {
      return depth;
    },
  };
}
