/**
 * The worker: takes due delivery records from the store (leasing each with an
 * atomic versionstamp check), runs them (`run.ts`) at most `MAX_CONCURRENCY`
 * at once, and has their outcome recorded (`outcome.ts`) — `done`,
 * `skipped`, `failed` with a backoff before the next attempt, or `dead`.
 *
 * Nothing depends on KV queue messages: the worker polls the store's `due`
 * index (a lease that expired — a crash, another process — is simply due
 * again, so polling is also the sweeper), and {@link Worker.wake} makes it
 * look at once after this process accepted a delivery. Deliveries this
 * process stored already leased to itself (the durable fast path,
 * `accept.ts`) run from memory, now or when a slot frees.
 *
 * It knows no status rules (`store/lifecycle.ts`) and runs no handler itself.
 *
 * @module
 */

import type { HandlerRegistry } from "../dispatch.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import { createDeadlines, type Deadlines } from "../_util/deadline.ts";
import { describeError } from "../_util/errors.ts";
import {
  createInlineRunner,
  type HandlerRunner,
  type LocalDelivery,
  type RunContext,
  runDelivery,
} from "./run.ts";
import { countRun, type OutcomeOptions, recordOutcome } from "./outcome.ts";

/**
 * How many deliveries, as a multiple of `MAX_CONCURRENCY`, this process may
 * lease at acceptance (running, being stored, or waiting in memory for a
 * slot). Each is leased long enough for the runs ahead of it.
 */
const LOCAL_QUEUE_FACTOR = 4;
/** How long the loop waits, unless woken, when every slot is taken. */
const BUSY_WAIT_MS = 60_000;
/** How often the queue depth is counted between collections. */
const COUNT_EVERY_MS = 5000;
/** Most records counted for the queue depth. */
const COUNT_MAX = 10_000;
/** How long handlers get to end after a drain's timeout aborted them. */
const ABORT_GRACE_MS = 1000;

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  store: DeliveryStore;
  /**
   * Where handlers run (a pool of Worker isolates, `pool.ts`).
   * @default `registry` run on this event loop
   */
  runner?: HandlerRunner;
  /** The handlers, run inline when no `runner` is given (tests). */
  registry?: HandlerRegistry;
  log: Logger;
  metrics?: Metrics;
  maxConcurrency: number;
  handlerTimeoutMs: number;
  /** How often to look for due records when not woken. @default 1000 */
  pollMs?: number;
  /** First retry delay; doubles each attempt, with jitter. @default 5000 */
  retryBaseMs?: number;
  /** Longest retry delay. @default 600_000 (10 minutes) */
  retryMaxMs?: number;
  /** Extra lease time beyond the handler timeout. @default the timeout, at most 5000 ms */
  leaseMarginMs?: number;
  /** How often to remove expired records. @default 600_000 (10 minutes) */
  collectEveryMs?: number;
  /** The app's shared deadlines (inline handler timeouts). @default a set of its own */
  deadlines?: Deadlines;
  /** Source of retry jitter. @default Math.random */
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
  runLeased(leased: Deno.KvEntry<DeliveryRecord>, local: LocalDelivery): void;
  /** Step 2b: it was not stored leased (a duplicate, an error): free the slot. */
  release(): void;
  /** Handler runs in progress. */
  readonly active: number;
  /** The highest number of simultaneous runs seen. */
  readonly peak: number;
  /** Records due or running, as of the last count. */
  readonly depth: number;
}

/** The limits a fast-path lease is computed from. */
export interface ReserveLimits {
  maxConcurrency: number;
  handlerTimeoutMs: number;
  leaseMarginMs: number;
}

/**
 * The lease expiry for a delivery accepted with `ahead` deliveries already
 * running or waiting in this process: long enough for every round of runs
 * ahead of it, then its own. Null when `ahead` fills the local queue
 * (`LOCAL_QUEUE_FACTOR` × `MAX_CONCURRENCY`): store it queued instead.
 *
 * @example
 * ```ts
 * import { reservedUntil } from "./worker.ts";
 * const limits = { maxConcurrency: 2, handlerTimeoutMs: 100, leaseMarginMs: 10 };
 * reservedUntil(3, 1000, limits); // 1210: two rounds of runs, and the margin
 * reservedUntil(8, 1000, limits); // null
 * ```
 */
export function reservedUntil(
  ahead: number,
  now: number,
  limits: ReserveLimits,
): number | null {
  const { maxConcurrency, handlerTimeoutMs, leaseMarginMs } = limits;
  if (ahead >= maxConcurrency * LOCAL_QUEUE_FACTOR) return null;
  const rounds = 1 + Math.floor(ahead / maxConcurrency);
  return now + rounds * handlerTimeoutMs + leaseMarginMs;
}

/** A delivery leased to this process, waiting in memory for a handler slot. */
interface Waiting {
  entry: Deno.KvEntry<DeliveryRecord>;
  local: LocalDelivery | undefined;
}

/** Everything a worker changes while it runs, in one place. */
interface WorkerState {
  /** Handler runs in progress. */
  running: Set<Promise<void>>;
  /** Outcomes being committed after their handler slot was freed. */
  recordings: Set<Promise<void>>;
  /** Leased to this process and waiting in memory for a handler slot. */
  ready: Waiting[];
  /** Deliveries being stored with a lease to this process (fast path). */
  reserved: number;
  peak: number;
  depth: number;
  /** Ends the loop's current wait, if it waits. */
  wakeUp: (() => void) | null;
  /** A wake came since the loop's last pass began. */
  woken: boolean;
  /** The pass in progress. */
  ticking: Promise<number> | null;
  lastCollect: number;
  lastCount: number;
}

/**
 * Waits `ms` for work: ends early when the worker is woken (or was, since
 * this pass began) or `signal` aborts. Not `_util/timers.ts`'s `sleep`: a
 * wake would need a fresh AbortController joined to `signal` for every
 * wait, and wakes come with deliveries.
 */
function waitForWork(
  state: WorkerState,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  if (state.woken || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      state.wakeUp = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    state.wakeUp = done;
  });
}

/** What {@link housekeep} needs. */
interface HousekeepingOptions {
  store: DeliveryStore;
  log: Logger;
  collectEveryMs: number;
  /** Who this process is when claiming the collector job. */
  owner: string;
}

/**
 * Counts the queue depth every few seconds, and once a collection period
 * collects expired records (one collector across every process on the KV).
 */
async function housekeep(
  state: WorkerState,
  options: HousekeepingOptions,
): Promise<void> {
  const { store, collectEveryMs } = options;
  const now = store.now();
  if (now - state.lastCollect >= collectEveryMs) {
    state.lastCollect = now;
    state.depth = await store.countDue();
    if (await store.claim("collect", options.owner, collectEveryMs)) {
      const collected = await store.collect();
      if (collected.records + collected.orphans > 0) {
        options.log.info("expired deliveries removed", collected);
      }
    }
  } else if (now - state.lastCount >= COUNT_EVERY_MS) {
    state.lastCount = now;
    state.depth = await store.countDue(COUNT_MAX);
  }
}

/**
 * Waits for the runs in progress for up to `timeoutMs`, then aborts them and
 * gives them {@link ABORT_GRACE_MS} more; then waits for every outcome to be
 * recorded. True when they ended in time.
 */
async function drainRuns(
  state: WorkerState,
  abortRuns: AbortController,
  timeoutMs: number,
): Promise<boolean> {
  const recorded = () => Promise.all([...state.recordings]);
  if (state.running.size === 0) {
    await recorded();
    return true;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const all = Promise.all([...state.running]).then(() => true as const);
  const finished = await Promise.race([all, timedOut]);
  clearTimeout(timer);
  if (!finished) {
    abortRuns.abort(new Error("server shutting down"));
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      all,
      new Promise((r) => grace = setTimeout(r, ABORT_GRACE_MS)),
    ]);
    clearTimeout(grace);
  }
  await recorded();
  return finished;
}

/** What a worker is made of, fixed when it is created. */
interface WorkerParts {
  store: DeliveryStore;
  log: Logger;
  metrics: Metrics | undefined;
  maxConcurrency: number;
  handlerTimeoutMs: number;
  leaseMarginMs: number;
  pollMs: number;
  /** Aborted when a drain runs out of time: cuts the handlers short. */
  abortRuns: AbortController;
  run: RunContext;
  outcomes: OutcomeOptions;
  housekeeping: HousekeepingOptions;
  limits: ReserveLimits;
}

/** The parts of a worker, with the defaults of {@link WorkerOptions}. */
function workerParts(options: WorkerOptions): WorkerParts {
  const { store, log, maxConcurrency, handlerTimeoutMs } = options;
  const leaseMarginMs = options.leaseMarginMs ??
    Math.min(5000, handlerTimeoutMs);
  const abortRuns = new AbortController();
  return {
    store,
    log,
    metrics: options.metrics,
    maxConcurrency,
    handlerTimeoutMs,
    leaseMarginMs,
    pollMs: options.pollMs ?? 1000,
    abortRuns,
    run: {
      store,
      runner: options.runner ??
        createInlineRunner(
          options.registry ?? {},
          options.deadlines ?? createDeadlines(),
        ),
      timeoutMs: handlerTimeoutMs,
      signal: abortRuns.signal,
    },
    outcomes: {
      store,
      backoff: {
        baseMs: options.retryBaseMs ?? 5000,
        maxMs: options.retryMaxMs ?? 600_000,
        random: options.random ?? Math.random,
      },
      shutdown: abortRuns.signal,
    },
    housekeeping: {
      store,
      log,
      collectEveryMs: options.collectEveryMs ?? 600_000,
      owner: crypto.randomUUID(),
    },
    limits: { maxConcurrency, handlerTimeoutMs, leaseMarginMs },
  };
}

/**
 * Runs one leased delivery, then records its outcome in the background
 * (tracked in `state.recordings`, awaited by a drain): the handler slot
 * frees as soon as the handlers end.
 */
async function runOne(
  parts: WorkerParts,
  state: WorkerState,
  leased: Deno.KvEntry<DeliveryRecord>,
  local: LocalDelivery | undefined,
): Promise<void> {
  const record = leased.value;
  const log = parts.log.child({
    delivery: record.id,
    event: record.event,
    action: record.action,
    attempt: record.attempts,
  });
  const result = await runDelivery(record, local, log, parts.run);
  countRun(parts.metrics, record.event, result);
  const recording: Promise<void> = recordOutcome(
    leased,
    result,
    log,
    parts.outcomes,
  )
    .catch((err) => {
      log.error("could not record the outcome", { error: describeError(err) });
    })
    .finally(() => state.recordings.delete(recording));
  state.recordings.add(recording);
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
  const parts = workerParts(options);
  const { store, log, maxConcurrency, abortRuns } = parts;
  const state: WorkerState = {
    running: new Set(),
    recordings: new Set(),
    ready: [],
    reserved: 0,
    peak: 0,
    depth: 0,
    wakeUp: null,
    woken: false,
    ticking: null,
    lastCollect: 0,
    lastCount: 0,
  };

  function wake(): void {
    state.woken = true;
    state.wakeUp?.();
  }

  /** Starts a run now if a slot is free, or keeps it waiting in memory. */
  function runOrWait(
    entry: Deno.KvEntry<DeliveryRecord>,
    local: LocalDelivery | undefined,
  ): void {
    if (state.running.size < maxConcurrency) track(entry, local);
    else state.ready.push({ entry, local });
  }

  /** Starts a run and tracks it in the concurrency set. */
  function track(
    entry: Deno.KvEntry<DeliveryRecord>,
    local: LocalDelivery | undefined,
  ): void {
    const tracked: Promise<void> = runOne(parts, state, entry, local)
      .catch((err) => {
        log.error("worker error", {
          delivery: entry.value.id,
          error: describeError(err),
        });
      })
      .finally(() => {
        state.running.delete(tracked);
        if (!startReady()) wake();
      });
    state.running.add(tracked);
    state.peak = Math.max(state.peak, state.running.size);
  }

  /** Starts leased deliveries waiting in memory while slots are free. */
  function startReady(): boolean {
    let started = false;
    while (state.running.size < maxConcurrency && state.ready.length > 0) {
      const next = state.ready.shift()!;
      track(next.entry, next.local);
      started = true;
    }
    return started;
  }

  async function tickOnce(): Promise<number> {
    const free = maxConcurrency - state.running.size - state.ready.length;
    if (free <= 0 || abortRuns.signal.aborted) return 0;
    const ids = await store.listDue(store.now(), free);
    // Lease them all at once: the leases share one group commit.
    const until = store.now() + parts.handlerTimeoutMs + parts.leaseMarginMs;
    const leases = await Promise.all(ids.map(async (id) => {
      try {
        return await store.lease(id, until);
      } catch (err) {
        log.error("lease failed", { delivery: id, error: describeError(err) });
        return null;
      }
    }));
    let started = 0;
    for (const entry of leases) {
      if (entry === null) continue;
      started++;
      // A fast-path run may have taken a slot while we were leasing.
      runOrWait(entry, undefined);
    }
    return started;
  }

  function tick(): Promise<number> {
    // One pass at a time; a wake during a pass triggers another pass.
    if (state.ticking) return state.ticking;
    state.ticking = tickOnce().finally(() => state.ticking = null);
    return state.ticking;
  }

  async function start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      state.woken = false;
      try {
        await tick();
        await housekeep(state, parts.housekeeping);
      } catch (err) {
        log.error("worker pass failed", { error: describeError(err) });
      }
      const busy = state.running.size + state.reserved >= maxConcurrency;
      await waitForWork(state, busy ? BUSY_WAIT_MS : parts.pollMs, signal);
    }
  }

  return {
    start,
    wake,
    tick,
    drain: (timeoutMs) => drainRuns(state, abortRuns, timeoutMs),
    reserve() {
      if (abortRuns.signal.aborted) return null;
      const ahead = state.running.size + state.reserved + state.ready.length;
      const until = reservedUntil(ahead, store.now(), parts.limits);
      if (until !== null) state.reserved++;
      return until;
    },
    runLeased(entry, local) {
      state.reserved--;
      runOrWait(entry, local);
    },
    release() {
      state.reserved--;
      wake();
    },
    get active() {
      return state.running.size;
    },
    get peak() {
      return state.peak;
    },
    get depth() {
      return state.depth;
    },
  };
}
