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
 * An attempt is counted durably exactly when a run starts, before its
 * handler begins: a lease is taken counted (one commit: the common case)
 * only with a handler slot promised to it; a fast-path delivery accepted
 * while every slot is promised is stored `waiting`, and the commit that
 * counts its attempt is made when a slot frees, just before it runs. Once a
 * drain began, nothing starts: leases taken or waiting are given back.
 *
 * Every lease it holds is short and renewed in the background while the run
 * lasts (`leases.ts`); a process restarted in the seat of one that died takes
 * its leases back at once ({@link Worker.claimSeat}).
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
import { sleep } from "../_util/timers.ts";
import {
  createInlineRunner,
  type HandlerRunner,
  type LocalDelivery,
  type RunContext,
  runDelivery,
  type RunResult,
  type ScriptStage,
} from "./run.ts";
import { createTracer, type Tracer, type TraceSpan } from "../ops/tracing.ts";
import type { ForwardStage } from "./forward.ts";
import {
  countOutcome,
  countRun,
  logGivenUp,
  type OutcomeOptions,
  recordOutcome,
  reportsOf,
} from "./outcome.ts";
import {
  createLeaseKeeper,
  type HeldLease,
  LEASE_MS,
  type LeaseKeeper,
} from "./leases.ts";

/**
 * How many deliveries, as a multiple of `MAX_CONCURRENCY`, this process may
 * lease at acceptance (running, being stored, or waiting in memory for a
 * slot). Each lease is short and renewed while it waits (`leases.ts`).
 */
const LOCAL_QUEUE_FACTOR = 4;
/**
 * Bodies larger than this never wait in a local queue longer than
 * {@link LOCAL_QUEUE_FACTOR} × `MAX_CONCURRENCY` (they are held in memory).
 */
const LONG_QUEUE_BODY_MAX = 262_144;
/** How long the loop waits, unless woken, when every slot is taken. */
const BUSY_WAIT_MS = 60_000;
/** How often the queue depth is counted between collections. */
const COUNT_EVERY_MS = 5000;
/** Most records counted for the queue depth. */
const COUNT_MAX = 10_000;
/** How long handlers get to end after a drain's timeout aborted them. */
const ABORT_GRACE_MS = 1000;
/** How long a broken `kv.watch` waits before it is watched again. */
const WATCH_RETRY_MS = 1000;
/** Added to the lease length when reclaiming a predecessor's leases (clock steps). */
const RECLAIM_SLACK_MS = 1000;

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
  /** Hook scripts (`HOOKS_DIR`), run after the handlers. @default none */
  scripts?: ScriptStage | undefined;
  /** Forward targets (`FORWARD_URLS`), sent after the handlers. @default none */
  forwards?: ForwardStage | undefined;
  log: Logger;
  metrics?: Metrics;
  maxConcurrency: number;
  handlerTimeoutMs: number;
  /**
   * How often to look for due records when not woken (a slow safety net
   * where `kv.watch` wakes the worker). @default 1000
   */
  pollMs?: number;
  /**
   * Wake up when another process makes work due (`kv.watch` on the wake
   * counter). Across processes on one local file Deno does not deliver
   * those: there the poll finds the work. @default true
   */
  watch?: boolean;
  /** First retry delay; doubles each attempt, with jitter. @default 5000 */
  retryBaseMs?: number;
  /** Longest retry delay. @default 600_000 (10 minutes) */
  retryMaxMs?: number;
  /**
   * How long a lease lasts unless renewed (renewed every third of it while
   * the delivery runs or waits here). @default LEASE_MS (15 s)
   */
  leaseMs?: number;
  /**
   * How many deliveries, as a multiple of `maxConcurrency`, this process
   * keeps leased from acceptance (running or waiting in memory). Over a
   * remote KV a larger one keeps deliveries on the fast path, where a lease
   * costs no round trip of its own. @default 4
   */
  localQueueFactor?: number;
  /** How often to remove expired records. @default 600_000 (10 minutes) */
  collectEveryMs?: number;
  /** The app's shared deadlines (inline handler timeouts). @default a set of its own */
  deadlines?: Deadlines;
  /** Source of retry jitter. @default Math.random */
  random?: () => number;
  /** A span per run, linked to its receipt. @default Deno's, when `OTEL_DENO=true` */
  tracer?: Tracer;
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
   * stored, returning the lease to store it with (or `null` when this
   * process has enough work or is draining: store it queued instead, for
   * any process).
   */
  reserve(bytes?: number): Reservation | null;
  /**
   * Takes `seat` (see `boot.ts`) for this process and makes the leases of
   * the process that had it before (dead: this one took its place) due at
   * once. Returns how many it took back.
   */
  claimSeat(seat: string): Promise<number>;
  /** Step 2a: the delivery was stored leased; run it from memory, now or when a slot frees. */
  runLeased(leased: Deno.KvEntry<DeliveryRecord>, local: LocalDelivery): void;
  /** Step 2b: it was not stored leased (a duplicate, an error): free the reservation. */
  release(reservation: Reservation): void;
  /** Handler runs in progress. */
  readonly active: number;
  /** The highest number of simultaneous runs seen. */
  readonly peak: number;
  /** Records due or running, as of the last count. */
  readonly depth: number;
  /**
   * Seconds the earliest due delivery has waited for a worker, as of the
   * last count (0 when none is overdue).
   */
  readonly overdueSeconds: number;
}

/** A run promised to a delivery about to be stored ({@link Worker.reserve}). */
export interface Reservation {
  /** Store it leased until then. */
  leaseUntil: number;
  /**
   * No handler slot is free for it: store it `waiting` (the attempt is
   * counted when a slot frees and its run starts).
   */
  waiting: boolean;
}

/** The limits a fast-path lease is computed from. */
export interface ReserveLimits {
  maxConcurrency: number;
  /** How long a lease lasts unless renewed. */
  leaseMs: number;
  /**
   * The local queue's length as a multiple of `maxConcurrency`.
   * @default LOCAL_QUEUE_FACTOR (4)
   */
  queueFactor?: number;
}

/**
 * The lease expiry for a delivery accepted with `ahead` deliveries already
 * running or waiting in this process: one lease length, however many are
 * ahead (it is renewed while it waits). Null when `ahead` fills the local
 * queue (`LOCAL_QUEUE_FACTOR` × `MAX_CONCURRENCY`): store it queued instead.
 *
 * @example
 * ```ts
 * import { reservedUntil } from "./worker.ts";
 * const limits = { maxConcurrency: 2, leaseMs: 15_000 };
 * reservedUntil(3, 1000, limits); // 16000
 * reservedUntil(8, 1000, limits); // null
 * ```
 */
export function reservedUntil(
  ahead: number,
  now: number,
  limits: ReserveLimits,
): number | null {
  const factor = limits.queueFactor ?? LOCAL_QUEUE_FACTOR;
  if (ahead >= limits.maxConcurrency * factor) return null;
  return now + limits.leaseMs;
}

/** A delivery leased to this process, waiting in memory for a handler slot. */
interface Waiting {
  held: HeldLease;
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
  /**
   * Handler slots promised to runs about to start: counted leases being
   * stored (fast path) or taken (a pass), and waiting ones whose attempt is
   * being counted. A slot is free when `running` + `starting` leave one.
   */
  starting: number;
  /** A drain began: leases that would wait for a slot are given back. */
  draining: boolean;
  peak: number;
  depth: number;
  /** When the earliest work index entry was due, as of the last count. */
  oldestDue: number | null;
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

/** Ends the loop's wait now, or its next one (see {@link waitForWork}). */
function wakeState(state: WorkerState): void {
  state.woken = true;
  state.wakeUp?.();
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
 * Counts the queue depth and looks up the earliest due entry every few
 * seconds, and once a collection period
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
  } else return;
  state.oldestDue = await store.oldestDue();
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
  pollMs: number;
  /** Whether to watch the wake counter. */
  watch: boolean;
  /** The leases this process holds, renewed in the background. */
  leases: LeaseKeeper;
  /** Aborted when a drain runs out of time: cuts the handlers short. */
  abortRuns: AbortController;
  /**
   * Aborted when a drain ends: a run whose outcome comes later was cut short
   * by the shutdown (its runner closes after the drain), so its attempt does
   * not count.
   */
  drained: AbortController;
  run: RunContext;
  tracer: Tracer;
  outcomes: OutcomeOptions;
  housekeeping: HousekeepingOptions;
  limits: ReserveLimits;
}

/** The parts of a worker, with the defaults of {@link WorkerOptions}. */
function workerParts(options: WorkerOptions): WorkerParts {
  const { store, log, maxConcurrency, handlerTimeoutMs } = options;
  const leaseMs = options.leaseMs ?? LEASE_MS;
  const abortRuns = new AbortController();
  const drained = new AbortController();
  const tracer = options.tracer ?? createTracer();
  return {
    store,
    log,
    metrics: options.metrics,
    maxConcurrency,
    handlerTimeoutMs,
    pollMs: options.pollMs ?? 1000,
    watch: options.watch ?? true,
    leases: createLeaseKeeper({ store, log, leaseMs }),
    abortRuns,
    drained,
    run: {
      store,
      runner: options.runner ??
        createInlineRunner(
          options.registry ?? {},
          options.deadlines ?? createDeadlines(),
          undefined,
          tracer,
        ),
      timeoutMs: handlerTimeoutMs,
      signal: abortRuns.signal,
      scripts: options.scripts,
      forwards: options.forwards,
      tracer,
    },
    tracer,
    outcomes: {
      store,
      backoff: {
        baseMs: options.retryBaseMs ?? 5000,
        maxMs: options.retryMaxMs ?? 600_000,
        random: options.random ?? Math.random,
      },
      shutdown: AbortSignal.any([abortRuns.signal, drained.signal]),
      metrics: options.metrics,
    },
    housekeeping: {
      store,
      log,
      collectEveryMs: options.collectEveryMs ?? 600_000,
      owner: store.owner,
    },
    limits: {
      maxConcurrency,
      leaseMs,
      queueFactor: options.localQueueFactor ?? LOCAL_QUEUE_FACTOR,
    },
  };
}

/** The logger of one delivery's attempt. */
function deliveryLog(log: Logger, record: DeliveryRecord): Logger {
  return log.child({
    delivery: record.id,
    event: record.event,
    action: record.action,
    attempt: record.attempts,
  });
}

/**
 * Runs one leased delivery, then records its outcome in the background
 * (tracked in `state.recordings`, awaited by a drain): the handler slot
 * frees as soon as the handlers end. The lease is renewed until the outcome
 * is recorded, which is committed against its latest entry.
 */
async function runOne(
  parts: WorkerParts,
  state: WorkerState,
  held: HeldLease,
  local: LocalDelivery | undefined,
): Promise<void> {
  // The latest entry: a waiting lease's attempt was counted since it was taken.
  const record = held.entry.value;
  const log = deliveryLog(parts.log, record);
  const span = startRunSpan(parts.tracer, record);
  // A lease lost mid-run stops the run: it goes on elsewhere.
  const signal = AbortSignal.any([parts.run.signal, held.lost]);
  let result: RunResult;
  try {
    result = await span.run(() =>
      runDelivery(record, local, log, { ...parts.run, signal })
    );
  } catch (err) {
    // runDelivery never rejects; should it, the span still ends.
    span.fail("run error");
    span.end();
    throw err;
  }
  countRun(parts.metrics, record.event, result);
  let recorded: DeliveryRecord | null = null;
  const recording: Promise<void> = span.run(() =>
    saveReports(parts, record, result, log)
      .then(() => recordOutcome(held.entry, result, log, parts.outcomes))
      .then((next) => void (recorded = next))
      .catch((err) => {
        log.error("could not record the outcome", {
          error: describeError(err),
        });
      })
      .finally(() => {
        endRunSpan(span, result, recorded);
        parts.leases.release(held);
        state.recordings.delete(recording);
        // Its end may have made the next delivery of its order key due.
        if (record.orderKey !== undefined) wakeState(state);
      })
  );
  state.recordings.add(recording);
}

/**
 * The span of one attempt: a child of the request that received the
 * delivery (in its trace, across the `202`, a restart or another process),
 * and linked to it.
 */
function startRunSpan(tracer: Tracer, record: DeliveryRecord): TraceSpan {
  if (!tracer.enabled) return tracer.start("hookgate.run");
  return tracer.start("hookgate.run", {
    "github.event": record.event,
    "github.action": record.action,
    "github.delivery": record.id,
    "hookgate.attempt": record.attempts,
  }, { parent: record.trace, link: record.trace, kind: "consumer" });
}

/** Ends a run's span with the status its attempt left the delivery in. */
function endRunSpan(
  span: TraceSpan,
  result: RunResult,
  recorded: DeliveryRecord | null,
): void {
  span.set({ "hookgate.outcome": recorded?.status ?? "unrecorded" });
  // The step and how it failed, never the error's text (it may quote the payload).
  if (result.outcome === "error" || result.outcome === "timeout") {
    span.fail(`${result.handler} ${result.outcome}`);
  }
  span.end();
}

/** Keeps the run reports of an attempt; a failure is logged, not fatal. */
async function saveReports(
  parts: WorkerParts,
  record: DeliveryRecord,
  result: RunResult,
  log: Logger,
): Promise<void> {
  const reports = reportsOf(result);
  if (reports.length === 0) return;
  try {
    await parts.store.saveRuns(record, record.attempts, reports);
  } catch (err) {
    log.warn("could not keep the run reports", { error: describeError(err) });
  }
}

/** Gives a lease back unrun (a drain); never rejects. */
function giveBackNow(parts: WorkerParts, held: HeldLease): Promise<void> {
  return parts.leases.giveBack(held).catch((err) => {
    parts.log.error("could not give a lease back; it runs when it lapses", {
      delivery: held.leased.id,
      error: describeError(err),
    });
  });
}

/** Tracks `work` like an outcome being recorded, so that a drain awaits it. */
function trackRecording(state: WorkerState, work: Promise<void>): void {
  const tracked: Promise<void> = work.finally(() =>
    state.recordings.delete(tracked)
  );
  state.recordings.add(tracked);
}

/**
 * Gives a lease back unrun (a drain: it waited for a slot, or was taken as
 * the drain began), tracked like an outcome so that the drain awaits it.
 */
function giveBack(parts: WorkerParts, state: WorkerState, held: HeldLease) {
  trackRecording(state, giveBackNow(parts, held));
}

/**
 * Drains a worker: nothing starts any more; the leases waiting for a slot,
 * and those a pass under way takes, are given back (they will not run
 * here); the runs in progress get `timeoutMs` ({@link drainRuns}); then
 * renewals stop, and an outcome recorded later counts as interrupted.
 */
async function drainWorker(
  parts: WorkerParts,
  state: WorkerState,
  timeoutMs: number,
): Promise<boolean> {
  state.draining = true;
  for (const { held } of state.ready.splice(0)) giveBack(parts, state, held);
  // A pass under way gives back what it leases: wait for it to be tracked.
  await state.ticking?.catch(() => 0);
  const ended = await drainRuns(state, parts.abortRuns, timeoutMs);
  parts.leases.stop();
  parts.drained.abort(new Error("the worker is drained"));
  return ended;
}

/**
 * Takes `seat` for this process and makes the leases of the process that
 * had it before due now: they end within one lease length, so that is how
 * far ahead the work index is looked at. Returns how many.
 */
async function claimSeat(
  parts: WorkerParts,
  seat: string,
  wake: () => void,
): Promise<number> {
  const before = await parts.store.takeSeat(seat);
  if (before === null) return 0;
  const reclaimed = await parts.store.reclaim(
    before,
    parts.leases.leaseMs + RECLAIM_SLACK_MS,
  );
  if (reclaimed > 0) {
    parts.log.info("took back the leases of the process this one replaces", {
      reclaimed,
    });
    wake();
  }
  return reclaimed;
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
  const { store, log, maxConcurrency, abortRuns, leases } = parts;
  const state: WorkerState = {
    running: new Set(),
    recordings: new Set(),
    ready: [],
    reserved: 0,
    starting: 0,
    draining: false,
    peak: 0,
    depth: 0,
    oldestDue: null,
    wakeUp: null,
    woken: false,
    ticking: null,
    lastCollect: 0,
    lastCount: 0,
  };

  const wake = () => wakeState(state);

  /** Whether a handler slot is neither running nor promised. */
  function slotFree(): boolean {
    return state.running.size + state.starting < maxConcurrency;
  }

  /**
   * Starts the run of a counted lease taken with a slot promised to it
   * (`state.starting`), or gives it back when a drain began meanwhile.
   */
  function startCounted(
    held: HeldLease,
    local: LocalDelivery | undefined,
  ): void {
    state.starting--;
    if (state.draining) giveBack(parts, state, held);
    else track(held, local);
  }

  /** Keeps a waiting lease in memory until a slot frees (gives it back when draining). */
  function enqueue(held: HeldLease, local: LocalDelivery | undefined): void {
    if (state.draining) return giveBack(parts, state, held);
    state.ready.push({ held, local });
    startReady();
  }

  /** Starts a run and tracks it in the concurrency set. */
  function track(held: HeldLease, local: LocalDelivery | undefined): void {
    const tracked: Promise<void> = runOne(parts, state, held, local)
      .catch((err) => {
        log.error("worker error", {
          delivery: held.leased.id,
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

  /**
   * Starts a waiting lease in a slot promised to it: one commit counts its
   * attempt, then its run starts (given back instead when a drain began
   * meanwhile; skipped when the lease was lost). Tracked like an outcome.
   */
  function startWaiting(next: Waiting): void {
    const { held, local } = next;
    trackRecording(
      state,
      (async () => {
        let counted = false;
        try {
          counted = await leases.start(held);
          if (!counted) {
            log.warn(
              "lease lost while it waited for a slot; it runs elsewhere",
              {
                delivery: held.leased.id,
              },
            );
          }
        } catch (err) {
          log.error(
            "could not count an attempt; it runs when its lease lapses",
            {
              delivery: held.leased.id,
              error: describeError(err),
            },
          );
          leases.release(held);
        }
        state.starting--;
        if (!counted) {
          if (!startReady()) wake();
        } else if (state.draining) await giveBackNow(parts, held);
        else track(held, local);
      })(),
    );
  }

  /** Starts leased deliveries waiting in memory while slots are free. */
  function startReady(): boolean {
    let started = false;
    while (!state.draining && slotFree() && state.ready.length > 0) {
      state.starting++;
      startWaiting(state.ready.shift()!);
      started = true;
    }
    return started;
  }

  /** Takes a lease, counted (its run starts at once); null when not taken. */
  async function leaseOne(
    id: string,
    until: number,
  ): Promise<Deno.KvEntry<DeliveryRecord> | null> {
    try {
      return await store.lease(id, until);
    } catch (err) {
      log.error("lease failed", { delivery: id, error: describeError(err) });
      return null;
    }
  }

  async function tickOnce(): Promise<number> {
    const free = maxConcurrency - state.running.size - state.starting -
      state.ready.length;
    if (free <= 0 || abortRuns.signal.aborted || state.draining) return 0;
    // Not one this process holds already (a lease it renews late).
    const ids = (await store.listDue(store.now(), free))
      .filter((id) => !leases.holds(id))
      // Slots taken meanwhile (a fast-path delivery) are not leased for.
      .slice(
        0,
        Math.max(
          0,
          maxConcurrency - state.running.size - state.starting -
            state.ready.length,
        ),
      );
    if (state.draining) return 0;
    // Each lease counts its attempt: promise it a slot while it is taken.
    state.starting += ids.length;
    // Lease them all at once: the leases share one group commit.
    const until = store.now() + leases.leaseMs;
    const taken = await Promise.all(ids.map((id) => leaseOne(id, until)));
    let started = 0;
    for (const entry of taken) {
      if (entry === null || entry.value.status !== "running") {
        state.starting--;
        // Its runs kept ending before an outcome and none is left: given up.
        if (entry !== null) {
          logGivenUp(deliveryLog(log, entry.value), entry.value);
          countOutcome(parts.metrics, entry.value);
        }
        continue;
      }
      // A drain that began while we were leasing gives it back instead.
      if (!state.draining) started++;
      startCounted(leases.hold(entry), undefined);
    }
    return started;
  }

  function tick(): Promise<number> {
    // One pass at a time; a wake during a pass triggers another pass.
    if (state.ticking) return state.ticking;
    state.ticking = tickOnce().finally(() => state.ticking = null);
    return state.ticking;
  }

  /** Watches the wake counter (other processes' work) until `signal` aborts. */
  async function watchWakes(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await store.watchWakes(wake, signal);
      await sleep(WATCH_RETRY_MS, signal);
    }
  }

  async function start(signal: AbortSignal): Promise<void> {
    const watching = parts.watch ? watchWakes(signal) : Promise.resolve();
    await loop(signal);
    await watching;
  }

  async function loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      state.woken = false;
      try {
        await tick();
        await housekeep(state, parts.housekeeping);
      } catch (err) {
        log.error("worker pass failed", { error: describeError(err) });
      }
      const busy = !slotFree();
      await waitForWork(state, busy ? BUSY_WAIT_MS : parts.pollMs, signal);
    }
  }

  return {
    start,
    wake,
    tick,
    drain: (timeoutMs) => drainWorker(parts, state, timeoutMs),
    reserve(bytes = 0) {
      if (abortRuns.signal.aborted || state.draining) return null;
      const ahead = state.running.size + state.reserved + state.ready.length;
      // A long local queue is for small bodies: they wait in memory.
      const limits = bytes > LONG_QUEUE_BODY_MAX
        ? { ...parts.limits, queueFactor: LOCAL_QUEUE_FACTOR }
        : parts.limits;
      const leaseUntil = reservedUntil(ahead, store.now(), limits);
      if (leaseUntil === null) return null;
      state.reserved++;
      // A free slot is promised to it: its lease counts the attempt.
      const waiting = !slotFree();
      if (!waiting) state.starting++;
      return { leaseUntil, waiting };
    },
    runLeased(entry, local) {
      state.reserved--;
      // Called from inside the accepting request: what starts here (lease
      // renewals, the run, its follow-ups) must not carry that request's span.
      parts.tracer.detached(() => {
        const held = leases.hold(entry);
        if (entry.value.waiting) enqueue(held, local);
        else startCounted(held, local);
      });
    },
    claimSeat: (seat) => claimSeat(parts, seat, wake),
    release(reservation) {
      state.reserved--;
      if (!reservation.waiting) state.starting--;
      if (!startReady()) wake();
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
    get overdueSeconds() {
      const due = state.oldestDue;
      return due === null ? 0 : Math.max(0, store.now() - due) / 1000;
    },
  };
}
