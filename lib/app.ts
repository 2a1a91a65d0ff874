/**
 * Assembles a running hookgate from a resolved {@link Config}: signing keys,
 * KV, store, worker, meta refresher, metrics, admin API and the request
 * handler. `main.ts` calls it and serves the result; end-to-end tests call
 * it directly. It opens the KV it is told to and starts no listener.
 *
 * @module
 */

import { createAdminRoute } from "./ops/admin.ts";
import { createDashboardRoute } from "./ops/dashboard/route.ts";
import type { Config } from "./config/config.ts";
import { createDeadlines, type Deadlines } from "./_util/deadline.ts";
import { openKv } from "./store/kv.ts";
import type { HandlerRegistry } from "./dispatch.ts";
import type { Logger } from "./ops/log.ts";
import { createMetaRefresher, type MetaRefresher } from "./github/meta.ts";
import { scheduleMetaCron } from "./github/meta_cron.ts";
import { createMetrics, type Metrics } from "./ops/metrics.ts";
import { createMetricsShare } from "./ops/metrics_share.ts";
import { createBodyBudget } from "./http/body.ts";
import { createReadiness } from "./http/probes.ts";
import { createHandler, type ServeInfo } from "./http/server.ts";
import { importSecrets } from "./security/signature.ts";
import { DeliveryStore } from "./store/store.ts";
import { isRemoteKv, kvLimitsFor } from "./store/limits.ts";
import { createWorker, type Worker } from "./worker/worker.ts";
import { createAccept } from "./worker/accept.ts";
import { createHandlerRunner, createScriptStage } from "./worker/runner.ts";
import { importForwardKeys } from "./worker/forward.ts";
import { createGitHubBroker, type GitHubBroker } from "./github/broker.ts";
import { createAppAuth } from "./github/app_auth.ts";
import { loadAppKey } from "./github/app_config.ts";
import { createStoreHealth } from "./store/health.ts";
import { createAdminAuth } from "./security/auth.ts";
import { createHookMemory } from "./github/hooks_seen.ts";
import { createReconciler, type Reconciler } from "./github/reconcile_loop.ts";

/** How often workers poll a remote KV, where `kv.watch` wakes them. */
const REMOTE_POLL_MS = 5000;
/** The local queue over a remote KV, as a multiple of `MAX_CONCURRENCY`. */
const REMOTE_QUEUE_FACTOR = 32;

/** Options of {@link createApp}; everything but `config` and `log` has a default. */
export interface AppOptions {
  config: Config;
  log: Logger;
  kv?: Deno.Kv;
  /**
   * The module whose `HANDLERS` run in Worker isolates.
   * @default lib/handlers/mod.ts
   */
  handlersModule?: string;
  /** Handlers to run on this event loop instead of in Workers (tests). */
  registry?: HandlerRegistry;
  fetch?: typeof fetch;
  now?: () => number;
  /** Worker tuning, for tests. */
  worker?: { pollMs?: number; retryBaseMs?: number; leaseMs?: number };
  /** Reconciliation tuning, for tests (`github/reconcile_loop.ts`). */
  reconcile?: { firstDelayMs?: number; paceMs?: number };
}

/** A wired hookgate, not yet started. */
export interface App {
  fetch: (request: Request, info: ServeInfo) => Promise<Response>;
  /** Starts the worker and the meta refresher; they stop when `signal` aborts. */
  start(signal: AbortSignal): void;
  /** Waits up to `timeoutMs` for running handlers, then closes KV. */
  close(timeoutMs: number): Promise<void>;
  kv: Deno.Kv;
  store: DeliveryStore;
  worker: Worker;
  meta: MetaRefresher | null;
  metrics: Metrics;
  /** The deadlines shared by body reads and handler runs. */
  deadlines: Deadlines;
}

/** The gauges /metrics shows, read from the running parts when rendered. */
function registerGauges(
  metrics: Metrics,
  worker: Worker,
  meta: MetaRefresher | null,
  share: ReturnType<typeof createMetricsShare>,
): void {
  metrics.gauge(
    "webhook_queue_depth",
    "Deliveries waiting or running.",
    () => worker.depth,
  );
  metrics.gauge(
    "webhook_queue_oldest_due_seconds",
    "How long the earliest due delivery has waited for a worker (0: none overdue).",
    () => worker.overdueSeconds,
  );
  metrics.gauge(
    "webhook_handler_runs_active",
    "Handler runs in progress.",
    () => worker.active,
  );
  metrics.gauge(
    "hookgate_ip_allowlist_enabled",
    "1 when webhooks are checked against GitHub's IP ranges, 0 with IP_ALLOWLIST=off.",
    () => meta === null ? 0 : 1,
  );
  metrics.gauge(
    "github_meta_hook_ranges",
    "CIDR ranges in the current GitHub hooks allowlist.",
    () => meta?.status().ranges ?? 0,
  );
  metrics.gauge(
    "github_meta_last_success_timestamp_seconds",
    "When GitHub's meta endpoint last answered with a valid list (or 304).",
    () =>
      Math.max(meta?.status().lastSuccess ?? 0, meta?.status().fetchedAt ?? 0) /
      1000,
  );
  metrics.gauge(
    "process_resident_memory_bytes",
    "Resident memory of this process.",
    () => Deno.memoryUsage().rss,
  );
  metrics.gauge(
    "process_heap_used_bytes",
    "V8 heap in use.",
    () => Deno.memoryUsage().heapUsed,
  );

  metrics.gauge(
    "hookgate_isolates",
    "Isolates of this process whose counters /metrics sums (deno serve --parallel).",
    () => share.isolates(),
  );
}

/**
 * The server's side of `ctx.github`: the App's credentials (its key read and
 * imported now, so that a bad key stops the start) or `GITHUB_TOKEN`.
 */
async function githubBroker(
  config: Config,
  fetch: typeof globalThis.fetch | undefined,
): Promise<GitHubBroker> {
  const app = config.githubApp
    ? createAppAuth({
      appId: config.githubApp.id,
      key: await loadAppKey(config.githubApp),
      baseUrl: config.githubApiUrl,
      ...(fetch ? { fetch } : {}),
    })
    : undefined;
  return createGitHubBroker({
    baseUrl: config.githubApiUrl,
    app,
    token: config.githubToken,
    ...(fetch ? { fetch } : {}),
  });
}

/**
 * The server's reconciliation, when `RECONCILE_INTERVAL_MINUTES` is set and
 * there are credentials to use (else null, warned).
 */
/** What the reconciliation is made from. */
interface ReconcileParts {
  kv: Deno.Kv;
  store: DeliveryStore;
  github: GitHubBroker;
  hooks: ReturnType<typeof createHookMemory>;
  metrics: Metrics;
}

/**
 * The memory of the hooks deliveries came from, and the reconciler that
 * goes over them (null when off); a hook seen for the first time nudges it.
 */
function reconciliationFor(
  options: AppOptions,
  parts: Omit<ReconcileParts, "hooks">,
): {
  hooks: ReturnType<typeof createHookMemory>;
  reconciler: Reconciler | null;
} {
  const hooks = createHookMemory({
    kv: parts.kv,
    log: options.log,
    now: options.now ?? Date.now,
    onNew: () => reconciler?.nudge(),
  });
  const reconciler = reconcilerFor(options, { ...parts, hooks });
  return { hooks, reconciler };
}

function reconcilerFor(
  options: AppOptions,
  parts: ReconcileParts,
): Reconciler | null {
  const { config, log } = options;
  const minutes = config.reconcileIntervalMinutes;
  if (minutes === null) return null;
  if (!config.githubToken && !config.githubApp) {
    log.warn(
      "RECONCILE_INTERVAL_MINUTES is set but neither GITHUB_TOKEN nor a GitHub App is: reconciliation is off",
    );
    return null;
  }
  const { store, github } = parts;
  return createReconciler({
    hooks: parts.hooks,
    kv: parts.kv,
    claim: (job, ms) => store.claim(job, store.owner, ms),
    isStored: async (guid) => (await store.get(guid))?.status ?? null,
    clientFor: (target, hook, signal) =>
      github.hookClient(target, hook.installation, signal),
    intervalMs: minutes * 60_000,
    log: log.child({ component: "reconcile" }),
    metrics: parts.metrics,
    ...(options.now ? { now: options.now } : {}),
    ...options.reconcile,
  });
}

/** GitHub's meta refresher, or null when `IP_ALLOWLIST=off`. */
function metaFor(options: AppOptions, kv: Deno.Kv): MetaRefresher | null {
  const { config, log } = options;
  if (config.ipAllowlist !== "github") return null;
  return createMetaRefresher({
    url: config.metaUrl,
    token: config.githubToken,
    refreshSeconds: config.metaRefreshSeconds,
    extraCidrs: config.extraAllowedCidrs,
    kv,
    log: log.child({ component: "meta" }),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}

/** The forward targets of `FORWARD_URLS`, with their signing keys; none when unset. */
async function forwardStage(config: Config) {
  if (config.forwardUrls.length === 0) return undefined;
  return {
    targets: config.forwardUrls.map((url) => new URL(url)),
    keys: await importForwardKeys(config.forwardSecret ?? config.secrets[0]!),
  };
}

/**
 * The worker's tuning for the KV: over a network `kv.watch` wakes the
 * workers (the poll is a safety net), and a lease taken from the work index
 * costs a round trip or two, so more deliveries stay on the fast path.
 */
function kvTuning(
  config: Config,
): { pollMs: number; localQueueFactor: number } {
  const remote = isRemoteKv(config.kvPath);
  return {
    pollMs: remote ? REMOTE_POLL_MS : 1000,
    localQueueFactor: remote ? REMOTE_QUEUE_FACTOR : 4,
  };
}

/** Builds the app: keys imported once, KV opened, everything wired. */
export async function createApp(options: AppOptions): Promise<App> {
  const { config, log } = options;
  const keys = await importSecrets(config.secrets);
  const kv = options.kv ?? await openKv(config.kvPath);
  const metrics = createMetrics();
  // One interval for every body read and handler run of this app.
  const deadlines = createDeadlines();
  const store = new DeliveryStore({
    kv,
    ttlMs: config.deliveryTtlMs,
    maxAttempts: config.maxAttempts,
    limits: kvLimitsFor(config.kvPath, config.kvLimits),
    ...(options.now ? { now: options.now } : {}),
  });
  const github = await githubBroker(config, options.fetch);
  const runner = createHandlerRunner({
    config,
    log,
    deadlines,
    github,
    ...(options.registry ? { registry: options.registry } : {}),
    ...(options.handlersModule ? { module: options.handlersModule } : {}),
  });
  const scripts = await createScriptStage({ config, log, github });
  const worker = createWorker({
    store,
    runner,
    log,
    metrics,
    maxConcurrency: config.maxConcurrency,
    handlerTimeoutMs: config.handlerTimeoutMs,
    deadlines,
    scripts,
    forwards: await forwardStage(config),
    ...kvTuning(config),
    ...options.worker,
  });
  const meta = metaFor(options, kv);
  if (meta) await meta.load();

  const share = createMetricsShare({ metrics });
  registerGauges(metrics, worker, meta, share);

  // The durable fast path: stored leased to this worker when it has room.
  const health = createStoreHealth({ now: options.now });
  const { hooks, reconciler } = reconciliationFor(options, {
    kv,
    store,
    github,
    metrics,
  });
  const accept = createAccept({
    store,
    worker,
    health,
    serializeBy: config.serializeBy,
    hooks,
  });

  let closed = false;
  const readiness = createReadiness({
    meta,
    kv,
    worker,
    isClosed: () => closed,
    health,
    ...(options.now ? { now: options.now } : {}),
  });
  const { adminToken: token, trustedProxies } = config;
  const auth = createAdminAuth({ token: token ?? "", trustedProxies, log });

  const fetch = createHandler({
    config,
    keys,
    // Revalidating on requests is for Deno Deploy, where no timer runs; a
    // server's own loop keeps the list fresh, and a rejected request never
    // touches KV.
    allowlist: meta && !config.deploy
      ? { isReady: () => meta.isReady(), isAllowed: (ip) => meta.isAllowed(ip) }
      : meta,
    accept,
    log,
    metrics,
    readiness,
    renderMetrics: share.render,
    routes: [
      createAdminRoute({ store, token, wake: worker.wake, auth, log }),
      createDashboardRoute({ token, auth }),
    ],
    deadlines,
    // One budget for the body buffers this app sizes up front.
    bodyBudget: createBodyBudget(),
    ...(options.now ? { now: options.now } : {}),
  });

  let running: Promise<unknown>[] = [];
  let releaseDeadlines: (() => void) | undefined;
  return {
    fetch,
    start(signal) {
      share.start(signal);
      running = [worker.start(signal)];
      // The first delivery should not wait for an isolate to start.
      runner.warm?.(1);
      // Off Deploy the process serves until it stops: keep the deadline
      // timer running rather than starting it again for every request,
      // until the signal aborts or the app closes.
      if (!config.deploy && releaseDeadlines === undefined) {
        const release = deadlines.hold();
        releaseDeadlines = release;
        if (signal.aborted) release();
        else signal.addEventListener("abort", release, { once: true });
      }
      if (meta && config.deploy) {
        // Deno Deploy: isolates come and go, so no timer loop. Deno.cron
        // where the platform has it, and stale-while-revalidate on requests.
        scheduleMetaCron(meta, config.metaRefreshSeconds, log);
        meta.maybeRefresh();
      } else if (meta) {
        running.push(meta.start(signal));
      }
      if (reconciler) running.push(reconciler.start(signal));
    },
    async close(timeoutMs) {
      // Deadlines still pending keep the timer alive as long as they need it.
      releaseDeadlines?.();
      releaseDeadlines = undefined;
      await worker.drain(timeoutMs);
      await runner.close();
      await scripts?.runner.close();
      await Promise.allSettled(running);
      await meta?.idle();
      await hooks.idle();
      closed = true;
      if (!options.kv) kv.close();
    },
    kv,
    store,
    worker,
    meta,
    metrics,
    deadlines,
  };
}
