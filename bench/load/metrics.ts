/**
 * hookgate's /metrics as the load benchmark reads them: the Prometheus
 * text parsed into values by name and label set, and what a measured run
 * changed (statuses answered, deliveries accepted and duplicate, backlog
 * left). Only hookgate (c, d) has /metrics; nothing here starts it.
 *
 * @module
 */

import type { RunResult } from "./common.ts";

/** Metric values by `name{labels}` (or bare `name`). */
export type Metrics = Map<string, number>;

/**
 * Parses Prometheus text: comments and blank lines skipped.
 *
 * @example
 * ```ts
 * import { parseMetrics } from "./metrics.ts";
 * parseMetrics('# HELP x\nwebhook_queue_depth 3\n'); // Map { "webhook_queue_depth" => 3 }
 * ```
 */
export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/**
 * hookgate's /metrics on `port`, parsed.
 *
 * @example
 * ```ts
 * import { scrape } from "./metrics.ts";
 * // const before = await scrape(started.port);
 * ```
 */
export async function scrape(port: number): Promise<Metrics> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return parseMetrics(await res.text());
}

/**
 * The sum of metric `name` over the label sets that `match` accepts.
 *
 * @example
 * ```ts
 * import { metricSum } from "./metrics.ts";
 * metricSum(new Map([['x{a="1"}', 2], ['x{a="2"}', 3]]), "x"); // 5
 * ```
 */
export function metricSum(
  m: Metrics,
  name: string,
  match: (labels: string) => boolean = () => true,
): number {
  let sum = 0;
  for (const [key, value] of m) {
    if (key === name || key.startsWith(`${name}{`)) {
      if (match(key.slice(name.length))) sum += value;
    }
  }
  return sum;
}

/**
 * `webhook_requests_total` by status.
 *
 * @example
 * ```ts
 * import { statusCounts } from "./metrics.ts";
 * statusCounts(new Map([['webhook_requests_total{status="202"}', 7]])); // { "202": 7 }
 * ```
 */
export function statusCounts(m: Metrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of m) {
    const s = /^webhook_requests_total\{status="(\d+)"\}$/.exec(key)?.[1];
    if (s) out[s] = value;
  }
  return out;
}

/**
 * What a run changed between two scrapes: statuses answered (those with
 * a count), deliveries accepted and duplicate, and the queue depth left.
 *
 * @example
 * ```ts
 * import { runDeltas } from "./metrics.ts";
 * const before = new Map([['webhook_requests_total{status="202"}', 1]]);
 * const after = new Map([['webhook_requests_total{status="202"}', 4]]);
 * runDeltas(before, after).statuses; // { "202": 3 }
 * ```
 */
export function runDeltas(
  before: Metrics,
  after: Metrics,
): Required<
  Pick<RunResult, "statuses" | "accepted" | "duplicates" | "backlog">
> {
  const delta = (name: string, match?: (l: string) => boolean) =>
    metricSum(after, name, match) - metricSum(before, name, match);
  const s0 = statusCounts(before);
  const statuses: Record<string, number> = {};
  for (const [status, n] of Object.entries(statusCounts(after))) {
    const d = n - (s0[status] ?? 0);
    if (d > 0) statuses[status] = d;
  }
  return {
    statuses,
    accepted: delta(
      "webhook_deliveries_total",
      (l) => l.includes('outcome="accepted"'),
    ),
    duplicates: delta(
      "webhook_deliveries_total",
      (l) => l.includes('outcome="duplicate"'),
    ),
    backlog: metricSum(after, "webhook_queue_depth"),
  };
}
