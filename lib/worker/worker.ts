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

import { type HandlerRegistry, runHandlers } from "../dispatch.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { decodePayload } from "../http/payload.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import { deliveryKeys } from "../store/keys.ts";
import { createDeadlines, type Deadlines } from "../_util/deadline.ts";
import { backoffDelay } from "../_util/backoff.ts";
import { describeError } from "../_util/errors.ts";

/**
 * How many deliveries, as a multiple of `MAX_CONCURRENCY`, this process may
 * lease at acceptance (running, being stored, or waiting in memory for a
 * slot). Each is leased long enough for the runs ahead of it.
 */
const LOCAL_QUEUE_FACTOR = 4;

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
  /** The app's shared deadlines (handler timeouts). @default a set of its own */
  deadlines?: Deadlines;
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
  /**
   * Durable fast path, step 1: promises a run to a delivery about to be
   * stored, returning the lease expiry to store it with (or `null` when this
   * process has enough work: store it queued instead, for any process).
   */
  reserve(): number | null;
  /** Step 2a: the delivery was stored leased; run it from memory, now or when a slot frees. */
  runLeased(
    leased: { value: unknown; versionstamp: string },
    local: {
      body: Uint8Array<ArrayBuffer>;
      payload?: Record<string, unknown> | undefined;
    },
  ): void;
  /** Step 2b: it was not stored leased (a duplicate, an error): free the slot. */
  release(): void;
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
    deadlines = createDeadlines(),
  } = options;
  const running = new Set<Promise<void>>();
  /** Outcomes being committed after their handler slot was freed. */
  const recordings = new Set<Promise<void>>();
  const owner = crypto.randomUUID();
  const abortRuns = new AbortController();
  let peak = 0;
  let depth = 0;
  let wakeUp: (() => void) | null = null;
  let woken = false;
  let ticking: Promise<number> | null = null;
  /** Deliveries being stored with a lease to this process (fast path). */
  let reserved = 0;
  /** Leased to this process and waiting in memory for a handler slot. */
  const ready: {
    entry: Deno.KvEntry<DeliveryRecord>;
    local: undefined | {
      body: Uint8Array<ArrayBuffer>;
      payload?: Record<string, unknown> | undefined;
    };
  }[] = [];

  function wake(): void {
    woken = true;
    wakeUp?.();
  }

  /**
   * Runs one leased delivery. `local` carries what the accepting request
   * already holds (body bytes, parsed payload), so that the durable fast path
   * reads nothing back from KV.
   */
  async function runOne(
    leased: Deno.KvEntry<DeliveryRecord>,
    local?: {
      body: Uint8Array<ArrayBuffer>;
      payload?: Record<string, unknown> | undefined;
    },
  ): Promise<void> {
    const record = leased.value;
    const start = performance.now();
    const dlog = log.child({
      delivery: record.id,
      event: record.event,
      action: record.action,
      attempt: record.attempts,
    });
    let result;
    try {
      let payload = local?.payload;
      if (payload === undefined) {
        // A large body was only scanned on receipt: parsing it can take tens
        // of milliseconds, so let the accepting request's 202 go out first.
        if (local !== undefined) await new Promise((r) => setTimeout(r, 0));
        const body = local?.body ?? await store.readBody(record);
        const decoded = decodePayload(body, record.kind);
        if (!decoded.ok) throw new Error(decoded.message);
        payload = decoded.payload;
      }
      result = await runHandlers({
        registry,
        event: record.event,
        action: record.action,
        delivery: record.id,
        attempt: record.attempts,
        payload,
        log: dlog,
        timeoutMs: handlerTimeoutMs,
        deadlines,
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
    // The handler slot frees now; recording the outcome (one grouped
    // commit) goes on in the background, awaited by drain().
    const recording: Promise<void> = finish(leased, result, dlog)
      .catch((err) => {
        dlog.error("could not record the outcome", {
          error: describeError(err),
        });
      })
      .finally(() => recordings.delete(recording));
    recordings.add(recording);
  }

  /** The record after an attempt with `result`. */
  function outcome(
    current: DeliveryRecord,
    result: Awaited<ReturnType<typeof runHandlers>>,
    now: number,
  ): DeliveryRecord {
    const base = {
      ...current,
      updatedAt: now,
      durationMs: Math.round(result.ms),
    };
    const failed = result.outcome === "error" || result.outcome === "timeout";
    if (failed && abortRuns.signal.aborted) {
      // Cut short by a shutdown: not the handler's failure, so the attempt
      // does not count, and it is due again at once (after the restart).
      return {
        ...base,
        status: "queued",
        attempts: current.attempts - 1,
        dueAt: now,
        error: "interrupted by a shutdown; it runs again",
      };
    }
    if (current.rerun) {
      // Replayed while it ran: run it again, whatever this run did.
      return {
        ...base,
        status: "queued",
        rerun: false,
        dueAt: now,
        finishedAt: null,
        error: failed ? result.error : null,
      };
    }
    if (result.outcome === "ok" || result.outcome === "skipped") {
      return {
        ...base,
        status: result.outcome === "ok" ? "done" : "skipped",
        finishedAt: now,
        dueAt: null,
        error: null,
      };
    }
    if (current.attempts >= current.attemptLimit) {
      return {
        ...base,
        status: "dead",
        finishedAt: now,
        dueAt: null,
        error: result.error,
      };
    }
    const delay = backoffDelay(current.attempts, {
      baseMs: retryBaseMs,
      maxMs: retryMaxMs,
      random,
    });
    return {
      ...base,
      status: "failed",
      dueAt: now + delay,
      error: result.error,
    };
  }

  /**
   * Records the outcome: first against the entry we leased (no read: the
   * common case), then, if the record changed meanwhile (a replay, an
   * expired lease), against a fresh read.
   */
  async function finish(
    leased: Deno.KvEntry<DeliveryRecord>,
    result: Awaited<ReturnType<typeof runHandlers>>,
    dlog: Logger,
  ): Promise<void> {
    let entry: Deno.KvEntryMaybe<DeliveryRecord> = leased;
    for (let tries = 0; tries < 6; tries++) {
      if (tries > 0) entry = await store.getEntry(leased.value.id);
      const current = entry.value;
      if (current === null) return;
      if (
        current.status !== "running" ||
        current.startedAt !== leased.value.startedAt
      ) {
        dlog.warn(
          "lease lost before the outcome was recorded; another worker re-ran it",
        );
        return;
      }
      const now = store.now();
      const next = outcome(current, result, now);
      const saved = await store.update(
        entry as Deno.KvEntry<DeliveryRecord>,
        next,
      );
      if (saved) {
        const fields = {
          status: next.status,
          ms: Math.round(result.ms),
          ...(next.error ? { error: next.error } : {}),
          ...(next.status === "failed" ? { retryInMs: next.dueAt! - now } : {}),
        };
        if (next.status === "done" || next.status === "skipped") {
          dlog.info("delivery " + next.status, fields);
        } else if (next.status === "failed") {
          dlog.warn("delivery failed", fields);
        } else dlog.error("delivery dead", fields);
        return;
      }
    }
    dlog.error(
      "could not record the outcome; the lease will expire and it will run again",
    );
  }

  /** Tracks a run in the concurrency set. */
  function track(id: string, run: Promise<void>): void {
    const tracked: Promise<void> = run
      .catch((err) => {
        log.error("worker error", { delivery: id, error: describeError(err) });
      })
      .finally(() => {
        running.delete(tracked);
        if (!startReady()) wake();
      });
    running.add(tracked);
    peak = Math.max(peak, running.size);
  }

  /** Starts leased deliveries waiting in memory while slots are free. */
  function startReady(): boolean {
    let started = false;
    while (running.size < maxConcurrency && ready.length > 0) {
      const next = ready.shift()!;
      track(next.entry.value.id, runOne(next.entry, next.local));
      started = true;
    }
    return started;
  }

  async function tickOnce(): Promise<number> {
    const free = maxConcurrency - running.size - ready.length;
    if (free <= 0 || abortRuns.signal.aborted) return 0;
    const ids = await store.listDue(store.now(), free);
    // Lease them all at once: the leases share one group commit.
    const until = leaseUntil();
    const leases = await Promise.all(ids.map(async (id) => {
      try {
        return await store.lease(id, until);
      } catch (err) {
        log.error("lease failed", { delivery: id, error: describeError(err) });
        return null;
      }
    }));
    let started = 0;
    for (const leased of leases) {
      if (leased === null) continue;
      started++;
      // A fast-path run may have taken a slot while we were leasing.
      if (running.size < maxConcurrency) track(leased.value.id, runOne(leased));
      else ready.push({ entry: leased, local: undefined });
    }
    return started;
  }

  function leaseUntil(): number {
    return store.now() + handlerTimeoutMs + leaseMarginMs;
  }

  function reserve(): number | null {
    if (abortRuns.signal.aborted) return null;
    const ahead = running.size + reserved + ready.length;
    if (ahead >= maxConcurrency * LOCAL_QUEUE_FACTOR) return null;
    reserved++;
    // Long enough for every run ahead of it in this process, then its own.
    const rounds = 1 + Math.floor(ahead / maxConcurrency);
    return store.now() + rounds * handlerTimeoutMs + leaseMarginMs;
  }

  function runLeased(
    leased: { value: unknown; versionstamp: string },
    local: {
      body: Uint8Array<ArrayBuffer>;
      payload?: Record<string, unknown> | undefined;
    },
  ): void {
    reserved--;
    const record = leased.value as DeliveryRecord;
    const entry: Deno.KvEntry<DeliveryRecord> = {
      key: deliveryKeys.record(record.id),
      value: record,
      versionstamp: leased.versionstamp,
    };
    if (running.size < maxConcurrency) track(record.id, runOne(entry, local));
    else ready.push({ entry, local });
  }

  function release(): void {
    reserved--;
    wake();
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
    let lastCount = 0;
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
        } else if (now - lastCount >= 5000) {
          lastCount = now;
          depth = await store.countDue(10_000);
        }
      } catch (err) {
        log.error("worker pass failed", { error: describeError(err) });
      }
      await sleep(
        running.size + reserved >= maxConcurrency ? 60_000 : pollMs,
        signal,
      );
    }
  }

  async function drain(timeoutMs: number): Promise<boolean> {
    const outcomes = () => Promise.all([...recordings]);
    if (running.size === 0) {
      await outcomes();
      return true;
    }
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
    await outcomes();
    return finished;
  }

  return {
    start,
    wake,
    tick,
    drain,
    reserve,
    runLeased,
    release,
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
