/**
 * One reconciliation of GitHub's webhook deliveries with hookgate's KV, the
 * one implementation behind `deno task redeliver` and the server's periodic
 * pass (`reconcile_loop.ts`): list a hook's recent deliveries back to a
 * cutoff, find those none of whose attempts got a 2xx, skip the ones
 * hookgate stored anyway, and ask GitHub to redeliver each other one once
 * (its latest attempt), oldest first, paced a second apart.
 *
 * {@link reconcileHook} does one hook and tells a {@link ReconcileReporter}
 * what it sees (the CLI prints it); {@link reconcilePass} does many, logs,
 * counts and never rejects for one hook's failure. Neither reads KV nor
 * holds credentials: the stored check and the clients are parameters; rate
 * limits are the REST client's (`rest.ts`).
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { sleep as sleepUntil } from "../_util/timers.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import {
  type DeliveryAttempt,
  type FailedDelivery,
  type FailedReport,
  findFailed,
  type HookTarget,
  listHookAttempts,
  redeliverAttempt,
} from "./hook_deliveries.ts";
import { GitHubApiError, type RestClient } from "./rest.ts";

/** Pause between redeliveries: GitHub asks for a second between mutations. */
export const PACE_MS = 1000;
/** How long GitHub keeps deliveries, and redelivers them. */
export const GITHUB_WINDOW_MS = 3 * 86_400_000;
/**
 * How far before the newest attempt seen the next pass starts again: an
 * attempt still in flight when the list was read shows up later with an
 * earlier `delivered_at`.
 */
export const MARK_OVERLAP_MS = 5 * 60_000;

/** What {@link reconcileHook} tells as it goes; every member is optional. */
export interface ReconcileReporter {
  /** A page of the hook's deliveries was read (1 for the first). */
  page?(page: number, attempts: readonly DeliveryAttempt[]): void;
  /** The attempts were grouped into deliveries. */
  examined?(report: FailedReport): void;
  /** A failed delivery hookgate has stored (`status`): left alone. */
  stored?(delivery: FailedDelivery, status: string): void;
  /** A dry run would redeliver it. */
  wouldRedeliver?(delivery: FailedDelivery): void;
  /** GitHub accepted the redelivery (`status`, 202). */
  redelivered?(delivery: FailedDelivery, status: number): void;
  /** GitHub refused the redelivery, or it could not be asked. */
  refused?(delivery: FailedDelivery, error: GitHubApiError): void;
  /** The credentials were refused (401): `skipped` deliveries not attempted. */
  stopped?(skipped: number): void;
}

/** Options of {@link reconcileHook}. */
export interface ReconcileHookOptions {
  /** The oldest attempt looked at (epoch ms); paging stops there. */
  since: number;
  /** A stored delivery's status, or `null` when hookgate has not stored it. */
  isStored: (guid: string) => Promise<string | null>;
  /** List and report; redeliver nothing. @default false */
  dryRun?: boolean;
  /** Pause between redeliveries. @default PACE_MS */
  paceMs?: number;
  /** Waits out the pace; resolves early when `signal` aborts. @default a timer */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Aborts listing and redelivering. */
  signal?: AbortSignal;
  /** Told what is seen and done. */
  report?: ReconcileReporter;
  /** Guids not to redeliver again (another hook of the same pass did). */
  skip?: ReadonlySet<string>;
}

/** What one hook's reconciliation found and did. */
export interface HookResult {
  /** Attempts at or after `since`. */
  listed: number;
  /** Distinct deliveries among them. */
  deliveries: number;
  /** Deliveries of which no attempt got a 2xx. */
  failed: number;
  /** Failed deliveries hookgate stored anyway. */
  alreadyStored: number;
  /** Failed, unstored: redelivered (or, in a dry run, would be). */
  pending: number;
  /** Redeliveries GitHub accepted. */
  redelivered: number;
  /** Redeliveries GitHub refused or that could not be asked for. */
  errors: number;
  /** Not attempted after the credentials were refused. */
  skipped: number;
  /** The guids GitHub accepted a redelivery of. */
  guids: string[];
  /**
   * Where the next pass over this hook may start (epoch ms): shortly before
   * the newest attempt seen, and no later than the last attempt of a
   * delivery whose redelivery failed for a reason that may pass (a 422 —
   * GitHub will not — does not hold it back); `since` when nothing was
   * listed. `null` after a dry run: keep the last one.
   */
  mark: number | null;
}

/**
 * Reconciles one hook: lists its deliveries back to `since`, and asks for a
 * redelivery of each failed one `isStored` does not know, oldest first.
 * Rejects as the listing does (a {@link GitHubApiError}) or as `isStored`
 * does; a refused redelivery is counted and reported, not thrown. Stops
 * redelivering after a 401.
 *
 * @example
 * ```ts ignore
 * import { reconcileHook } from "./reconcile.ts";
 * const result = await reconcileHook(client, { kind: "app" }, {
 *   since: Date.now() - 86_400_000,
 *   isStored: async (guid) => (await store.get(guid))?.status ?? null,
 * });
 * ```
 */
export async function reconcileHook(
  client: RestClient,
  hook: HookTarget,
  options: ReconcileHookOptions,
): Promise<HookResult> {
  const { since, report = {}, signal = new AbortController().signal } = options;
  const attempts = await listHookAttempts(client, hook, {
    cutoff: since,
    signal,
    onPage: (page, items) => report.page?.(page, items),
  });
  const found = findFailed(attempts, since);
  report.examined?.(found);

  const pending: FailedDelivery[] = [];
  for (const delivery of found.failed) {
    const status = await options.isStored(delivery.guid);
    if (status === null) {
      if (!options.skip?.has(delivery.guid)) pending.push(delivery);
    } else report.stored?.(delivery, status);
  }
  const result: HookResult = {
    listed: found.examined,
    deliveries: found.deliveries,
    failed: found.failed.length,
    alreadyStored: found.failed.length - pending.length,
    pending: pending.length,
    redelivered: 0,
    errors: 0,
    skipped: 0,
    guids: [],
    mark: null,
  };
  if (options.dryRun) {
    for (const delivery of pending) report.wouldRedeliver?.(delivery);
    return result;
  }
  const held = await redeliverAll(client, hook, pending, result, options);
  result.mark = markOf(attempts, held, since);
  return result;
}

/**
 * Redelivers `pending` into `result`; returns the deliveries whose
 * redelivery may still succeed later (failed for a passing reason, or not
 * attempted).
 */
async function redeliverAll(
  client: RestClient,
  hook: HookTarget,
  pending: readonly FailedDelivery[],
  result: HookResult,
  options: ReconcileHookOptions,
): Promise<FailedDelivery[]> {
  const {
    report = {},
    paceMs = PACE_MS,
    signal = new AbortController().signal,
  } = options;
  const sleep = options.sleep ?? sleepUntil;
  const held: FailedDelivery[] = [];
  for (const [i, delivery] of pending.entries()) {
    if (i > 0) await sleep(paceMs, signal);
    if (signal.aborted) {
      held.push(...pending.slice(i));
      break;
    }
    try {
      const answer = await redeliverAttempt(client, hook, delivery.latestId, {
        signal,
      });
      result.redelivered++;
      result.guids.push(delivery.guid);
      report.redelivered?.(delivery, answer.status);
      continue;
    } catch (err) {
      if (!(err instanceof GitHubApiError)) throw err;
      result.errors++;
      report.refused?.(delivery, err);
      if (err.status !== 422) held.push(delivery);
      if (err.kind !== "status" || err.status !== 401) continue;
    }
    result.skipped = pending.length - i - 1;
    held.push(...pending.slice(i + 1));
    if (result.skipped > 0) report.stopped?.(result.skipped);
    break;
  }
  return held;
}

/** The next pass's start: see {@link HookResult.mark}. */
function markOf(
  attempts: readonly DeliveryAttempt[],
  held: readonly FailedDelivery[],
  since: number,
): number {
  if (attempts.length === 0) return since;
  let mark = Math.max(...attempts.map((a) => a.deliveredAt)) - MARK_OVERLAP_MS;
  for (const delivery of held) mark = Math.min(mark, delivery.lastAt);
  return mark;
}

/** A hook of a pass, with where to start. */
export interface PassHook {
  /** A name for logs (the hook id). */
  id: string;
  /** Where the hook lives in the REST API. */
  target: HookTarget;
  /** The oldest attempt to look at (epoch ms). */
  since: number;
}

/** What a pass did, summed over its hooks. */
export interface PassCounts {
  /** Hooks reconciled (listed, whatever came of it). */
  hooks: number;
  /** Attempts examined. */
  listed: number;
  /** Deliveries none of whose attempts got a 2xx. */
  failed: number;
  /** Redeliveries GitHub accepted. */
  redelivered: number;
  /** Failed deliveries hookgate had stored anyway. */
  alreadyStored: number;
  /** Hooks that could not be reconciled, and refused redeliveries. */
  errors: number;
}

/** Options of {@link reconcilePass}. */
export interface PassOptions {
  hooks: readonly PassHook[];
  /** The client to reach a hook with; `null`: no credentials for it (skipped, warned). */
  clientFor: (hook: PassHook) => RestClient | null;
  /** A stored delivery's status, or `null`. */
  isStored: (guid: string) => Promise<string | null>;
  log: Pick<Logger, "info" | "warn">;
  /** Counts redeliveries in `webhook_reconcile_redeliveries_total`. */
  metrics?: Pick<Metrics, "inc">;
  /** Told of each hook's result (to keep its mark); awaited. */
  onHook?: (hook: PassHook, result: HookResult) => void | Promise<void>;
  /** Called before each hook; a false answer ends the pass (the lease was lost). */
  renew?: () => Promise<boolean>;
  /** @default PACE_MS */
  paceMs?: number;
  /** @default a timer */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  /** Guids already asked for (an earlier pass): never asked for again. */
  asked?: Iterable<string>;
}

/**
 * Reconciles every hook in turn, logging each refusal and failure at warn;
 * resolves with the summed counts (it rejects only when `onHook` or
 * `renew` does).
 *
 * @example
 * ```ts
 * import { reconcilePass } from "./reconcile.ts";
 * const counts = await reconcilePass({
 *   hooks: [],
 *   clientFor: () => null,
 *   isStored: () => Promise.resolve(null),
 *   log: console,
 * });
 * counts.hooks; // 0
 * ```
 */
export async function reconcilePass(options: PassOptions): Promise<PassCounts> {
  const { log, metrics, signal } = options;
  const counts: PassCounts = {
    hooks: 0,
    listed: 0,
    failed: 0,
    redelivered: 0,
    alreadyStored: 0,
    errors: 0,
  };
  const done = new Set<string>(options.asked ?? []);
  for (const hook of options.hooks) {
    if (signal?.aborted) break;
    if (options.renew && !(await options.renew())) break;
    const client = options.clientFor(hook);
    if (client === null) {
      log.warn("reconciliation: no credentials for this webhook, skipped", {
        hook: hook.id,
        kind: hook.target.kind,
      });
      continue;
    }
    let result: HookResult;
    try {
      result = await reconcileHook(client, hook.target, {
        since: hook.since,
        isStored: options.isStored,
        skip: done,
        report: passReporter(hook, log, metrics),
        ...(options.paceMs !== undefined ? { paceMs: options.paceMs } : {}),
        ...(options.sleep ? { sleep: options.sleep } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) break;
      counts.errors++;
      log.warn("reconciliation: the webhook's deliveries could not be listed", {
        hook: hook.id,
        kind: hook.target.kind,
        error: errorMessage(err),
      });
      continue;
    }
    for (const guid of result.guids) done.add(guid);
    counts.hooks++;
    counts.listed += result.listed;
    counts.failed += result.failed;
    counts.redelivered += result.redelivered;
    counts.alreadyStored += result.alreadyStored;
    counts.errors += result.errors;
    await options.onHook?.(hook, result);
  }
  return counts;
}

/** Logs and counts one hook's refusals and redeliveries. */
function passReporter(
  hook: PassHook,
  log: Pick<Logger, "info" | "warn">,
  metrics: Pick<Metrics, "inc"> | undefined,
): ReconcileReporter {
  return {
    redelivered() {
      metrics?.inc("webhook_reconcile_redeliveries_total", {
        result: "accepted",
      });
    },
    refused(delivery, error) {
      metrics?.inc("webhook_reconcile_redeliveries_total", {
        result: "refused",
      });
      log.warn("reconciliation: GitHub refused a redelivery", {
        hook: hook.id,
        delivery: delivery.guid,
        event: delivery.event,
        status: error.status ?? null,
        error: error.message,
      });
    },
    stopped(skipped) {
      log.warn("reconciliation: the credentials were refused; stopping", {
        hook: hook.id,
        skipped,
      });
    },
  };
}
