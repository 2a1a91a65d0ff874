/**
 * The server's reconciliation (`RECONCILE_INTERVAL_MINUTES`): a first pass
 * soon after start, then one every interval, each over every webhook
 * hookgate has received from (`hooks_seen.ts`), from where the last pass
 * over that hook got to (its high-water mark in KV), else GitHub's 3-day
 * window; a hook this process sees for the first time brings a catch-up
 * pass over the hooks no pass has covered yet forward. One process at a time among those sharing the KV runs a pass
 * (the job lease `"reconcile"`, renewed before each hook); the others skip
 * theirs. Each pass is logged with its counts; its time of success is the
 * gauge `webhook_reconcile_last_success_timestamp_seconds`.
 *
 * The pass itself is `reconcile.ts` (shared with `deno task redeliver`);
 * here are the timer, the lease, the marks and the log lines. It holds no
 * credentials: `clientFor` (the broker) does.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { sleep as sleepUntil } from "../_util/timers.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { hookKeys } from "../store/keys.ts";
import { type HookMemory, hookTargetOf, type SeenHook } from "./hooks_seen.ts";
import {
  GITHUB_WINDOW_MS,
  type PassCounts,
  type PassHook,
  reconcilePass,
} from "./reconcile.ts";
import type { RestClient } from "./rest.ts";
import type { HookTarget } from "./hook_deliveries.ts";

/** The job name of the lease (`store.claim`). */
export const RECONCILE_JOB = "reconcile";
/** Delay of the first pass after start. */
export const FIRST_PASS_DELAY_MS = 15_000;

/** Options of {@link createReconciler}. */
export interface ReconcilerOptions {
  /** Where the hooks are remembered. */
  hooks: Pick<HookMemory, "list">;
  /** The KV holding the marks. */
  kv: Deno.Kv;
  /** Takes or renews the job lease for `ms` (`store.claim(job, owner, ms)`). */
  claim: (job: string, ms: number) => Promise<boolean>;
  /** A stored delivery's status, or `null` (`store.get`). */
  isStored: (guid: string) => Promise<string | null>;
  /** The client for a hook (`broker.hookClient`); `null`: no credentials. */
  clientFor: (
    target: HookTarget,
    hook: SeenHook,
    signal: AbortSignal,
  ) => RestClient | null;
  /** Time between passes. */
  intervalMs: number;
  /** Time from start to the first pass. @default FIRST_PASS_DELAY_MS */
  firstDelayMs?: number;
  log: Logger;
  /** Where the redeliveries and the last success are counted. */
  metrics?: Metrics;
  /** @default Date.now */
  now?: () => number;
  /** Pause between redeliveries. @default PACE_MS of reconcile.ts */
  paceMs?: number;
}

/** The server's reconciliation; see {@link createReconciler}. */
export interface Reconciler {
  /** One pass now, if the lease is free: its counts, or `null` when another process holds it. */
  runOnce(signal: AbortSignal): Promise<PassCounts | null>;
  /** Runs passes until `signal` aborts; resolves then. */
  start(signal: AbortSignal): Promise<void>;
  /**
   * A hook was seen for the first time by this process: soon (the first
   * pass's delay) a catch-up pass covers the hooks no pass has covered yet
   * (those without a mark), rather than waiting a whole interval.
   */
  nudge(): void;
  /** When a pass last completed (epoch ms; 0: never). */
  readonly lastSuccess: number;
}

/** A mark as stored, checked; `null` for anything else. */
function markValue(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * Makes the reconciler. Nothing runs until {@link Reconciler.start} or
 * {@link Reconciler.runOnce}.
 *
 * @example
 * ```ts
 * import { createReconciler } from "./reconcile_loop.ts";
 * import { createHookMemory } from "./hooks_seen.ts";
 * import { createLogger } from "../ops/log.ts";
 * const kv = await Deno.openKv(":memory:");
 * const reconciler = createReconciler({
 *   hooks: createHookMemory({ kv }),
 *   kv,
 *   claim: () => Promise.resolve(true),
 *   isStored: () => Promise.resolve(null),
 *   clientFor: () => null,
 *   intervalMs: 60_000,
 *   log: createLogger({ write: () => {} }),
 * });
 * (await reconciler.runOnce(new AbortController().signal))?.hooks; // 0
 * kv.close();
 * ```
 */
export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { kv, log, metrics, intervalMs, now = Date.now } = options;
  const state = { lastSuccess: 0 };
  metrics?.gauge(
    "webhook_reconcile_last_success_timestamp_seconds",
    "When this process last completed a reconciliation pass (0: never).",
    () => state.lastSuccess / 1000,
  );

  /** The remembered hooks (only those without a mark: `unmarked`), each with where its pass starts. */
  async function passHooks(unmarked: boolean): Promise<
    { pass: PassHook; seen: SeenHook }[]
  > {
    const window = now() - GITHUB_WINDOW_MS;
    const out: { pass: PassHook; seen: SeenHook }[] = [];
    for (const seen of await options.hooks.list()) {
      const target = hookTargetOf(seen);
      if (target === null) continue;
      const mark = markValue((await kv.get(hookKeys.mark(seen.hookId))).value);
      if (unmarked && mark !== null) continue;
      out.push({
        seen,
        pass: {
          id: seen.hookId,
          target,
          since: Math.max(mark ?? window, window),
        },
      });
    }
    return out;
  }

  async function runOnce(
    signal: AbortSignal,
    unmarked: boolean,
  ): Promise<PassCounts | null> {
    if (!(await options.claim(RECONCILE_JOB, intervalMs))) {
      log.debug("reconciliation pass skipped: another process holds the lease");
      return null;
    }
    const started = now();
    const hooks = await passHooks(unmarked);
    // A redelivery asked for once is not asked for again: its copy may not
    // have come yet (or this hookgate is what fails), and the next pass
    // lists the same failed attempt.
    const asked = (await Array.fromAsync(
      kv.list<number>({ prefix: hookKeys.askedAll() }),
    )).map((entry) => entry.key.at(-1) as string);
    const seenOf = new Map(hooks.map((h) => [h.pass, h.seen]));
    const counts = await reconcilePass({
      hooks: hooks.map((h) => h.pass),
      clientFor: (hook) =>
        options.clientFor(hook.target, seenOf.get(hook)!, signal),
      isStored: options.isStored,
      asked,
      log,
      ...(metrics ? { metrics } : {}),
      ...(options.paceMs !== undefined ? { paceMs: options.paceMs } : {}),
      renew: () => options.claim(RECONCILE_JOB, intervalMs),
      onHook: async (hook, result) => {
        for (const guid of result.guids) {
          await kv.set(hookKeys.asked(guid), now(), {
            expireIn: GITHUB_WINDOW_MS,
          });
        }
        if (result.mark !== null) {
          await kv.set(hookKeys.mark(hook.id), result.mark, {
            expireIn: GITHUB_WINDOW_MS,
          });
        }
      },
      signal,
    });
    if (signal.aborted) return counts;
    state.lastSuccess = now();
    const fields = { ...counts, ms: state.lastSuccess - started };
    const msg = unmarked
      ? "reconciliation pass (new hooks)"
      : "reconciliation pass";
    if (counts.errors > 0) log.warn(`${msg} had errors`, fields);
    else log.info(msg, fields);
    return counts;
  }

  /** Aborts the current wait, for a catch-up pass (see {@link Reconciler.nudge}). */
  let interrupt: (() => void) | null = null;
  let nudged = false;

  return {
    runOnce: (signal) => runOnce(signal, false),
    async start(signal) {
      const firstDelayMs = options.firstDelayMs ?? FIRST_PASS_DELAY_MS;
      // Scheduling goes by the real clock: the timers do.
      let fullAt = Date.now() + firstDelayMs;
      let catchUpAt = Infinity;
      while (!signal.aborted) {
        const wait = new AbortController();
        const stop = () => wait.abort();
        signal.addEventListener("abort", stop, { once: true });
        interrupt = stop;
        if (nudged) wait.abort();
        await sleepUntil(
          Math.max(0, Math.min(fullAt, catchUpAt) - Date.now()),
          wait.signal,
        );
        interrupt = null;
        signal.removeEventListener("abort", stop);
        if (signal.aborted) break;
        if (nudged) {
          nudged = false;
          catchUpAt = Math.min(catchUpAt, Date.now() + firstDelayMs);
          continue;
        }
        const full = Date.now() >= fullAt;
        try {
          await runOnce(signal, !full);
        } catch (err) {
          log.warn("reconciliation pass failed", { error: errorMessage(err) });
        }
        catchUpAt = Infinity;
        if (full) fullAt = Date.now() + intervalMs;
      }
    },
    nudge() {
      nudged = true;
      interrupt?.();
    },
    get lastSuccess() {
      return state.lastSuccess;
    },
  };
}
