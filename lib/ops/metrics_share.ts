/**
 * Summing metrics across the isolates of one process (`deno serve
 * --parallel` runs one isolate per core, and `/metrics` is answered by
 * whichever isolate takes the request). Each isolate broadcasts its counters
 * and histograms on a `BroadcastChannel` — in Deno, a channel spans the
 * isolates of one process and nothing more — and renders its own plus the
 * latest snapshot of every live peer. Separate processes stay separate, as
 * Prometheus expects of separate targets.
 *
 * @module
 */

import type { Metrics, MetricsSnapshot } from "./metrics.ts";

/** Options of {@link createMetricsShare}. */
export interface MetricsShareOptions {
  metrics: Metrics;
  /** How often each isolate broadcasts (default 1000 ms). */
  intervalMs?: number;
  channel?: string;
  now?: () => number;
}

/** The sharing of one isolate. */
export interface MetricsShare {
  /** Broadcasts until `signal` aborts. */
  start(signal: AbortSignal): void;
  /** Prometheus text: this isolate's metrics plus its live peers' counters. */
  render(): string;
  /** How many isolates (this one included) were heard from recently. */
  isolates(): number;
}

interface Message {
  isolate: string;
  snapshot: MetricsSnapshot | null; // null: the isolate is leaving
}

/**
 * Creates the sharing for one isolate.
 *
 * @example
 * ```ts ignore
 * const share = createMetricsShare({ metrics });
 * share.start(signal);
 * new Response(share.render());
 * ```
 */
export function createMetricsShare(options: MetricsShareOptions): MetricsShare {
  const {
    metrics,
    intervalMs = 1000,
    channel = "hookgate-metrics",
    now = Date.now,
  } = options;
  const id = crypto.randomUUID();
  const peers = new Map<string, { at: number; snapshot: MetricsSnapshot }>();

  function live(): MetricsSnapshot[] {
    const cutoff = now() - 5 * intervalMs;
    const out: MetricsSnapshot[] = [];
    for (const [peer, entry] of peers) {
      if (entry.at < cutoff) peers.delete(peer);
      else out.push(entry.snapshot);
    }
    return out;
  }

  return {
    start(signal) {
      if (typeof BroadcastChannel === "undefined" || signal.aborted) return;
      const bc = new BroadcastChannel(channel);
      bc.onmessage = (event: MessageEvent<Message>) => {
        const { isolate, snapshot } = event.data;
        if (isolate === id) return;
        if (snapshot === null) peers.delete(isolate);
        else peers.set(isolate, { at: now(), snapshot });
      };
      const send = () =>
        bc.postMessage(
          { isolate: id, snapshot: metrics.snapshot() } as Message,
        );
      const timer = setInterval(send, intervalMs);
      send();
      signal.addEventListener("abort", () => {
        clearInterval(timer);
        bc.postMessage({ isolate: id, snapshot: null } as Message);
        bc.close();
      }, { once: true });
    },
    render: () => metrics.render(live()),
    isolates: () => 1 + live().length,
  };
}
