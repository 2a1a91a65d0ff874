/**
 * The maths of the load benchmark's report: medians, the repetitions of a
 * server and mode summarised, and the lookups the ratios are made of.
 * Pure; the text is made in report.ts and record.ts.
 *
 * @module
 */

import {
  type Ceiling,
  type CeilingResult,
  type Mode,
  MODES,
  type RunResult,
  type Server,
  SERVERS,
} from "./common.ts";

/**
 * The median of `xs` (the mean of the middle two for an even count; NaN
 * for none).
 *
 * @example
 * ```ts
 * import { median } from "./summary.ts";
 * median([3, 1, 2]); // 2
 * median([4, 1, 2, 3]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The repetitions of one server and mode, with their medians. */
export interface Summary {
  server: Server;
  mode: Mode;
  runs: RunResult[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Groups runs by server and mode (valid signatures first, then (a) to
 * (d)), with the median rate and latencies of each group.
 *
 * @example
 * ```ts
 * import { summarize } from "./summary.ts";
 * summarize([]); // []
 * ```
 */
export function summarize(runs: readonly RunResult[]): Summary[] {
  const out: Summary[] = [];
  for (const mode of MODES) {
    for (const server of SERVERS) {
      const rs = runs.filter((r) => r.server === server && r.mode === mode);
      if (rs.length === 0) continue;
      out.push({
        server,
        mode,
        runs: rs,
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
      });
    }
  }
  return out;
}

/**
 * The summary of `server` in `mode`, if it ran.
 *
 * @example
 * ```ts
 * import { summaryOf } from "./summary.ts";
 * summaryOf([], "a", "good"); // undefined
 * ```
 */
export function summaryOf(
  summaries: readonly Summary[],
  server: Server,
  mode: Mode,
): Summary | undefined {
  return summaries.find((s) => s.server === server && s.mode === mode);
}

/**
 * The median rate of `server` in `mode`, if it ran.
 *
 * @example
 * ```ts
 * import { rpsOf } from "./summary.ts";
 * rpsOf([], "b", "bad"); // undefined
 * ```
 */
export function rpsOf(
  summaries: readonly Summary[],
  server: Server,
  mode: Mode,
): number | undefined {
  return summaryOf(summaries, server, mode)?.rps;
}

/**
 * The runs of ceiling `kind`.
 *
 * @example
 * ```ts
 * import { ceilingRuns } from "./summary.ts";
 * ceilingRuns([], "e"); // []
 * ```
 */
export function ceilingRuns(
  ceilings: readonly CeilingResult[],
  kind: Ceiling,
): CeilingResult[] {
  return ceilings.filter((c) => c.kind === kind);
}

/**
 * The median deliveries a second of ceiling `kind`, if it ran.
 *
 * @example
 * ```ts
 * import { ceilingRate } from "./summary.ts";
 * ceilingRate([], "e"); // undefined
 * ```
 */
export function ceilingRate(
  ceilings: readonly CeilingResult[],
  kind: Ceiling,
): number | undefined {
  const cs = ceilingRuns(ceilings, kind);
  return cs.length ? median(cs.map((c) => c.perSecond)) : undefined;
}

/**
 * The median of each thread's cost over a list of per-thread costs (a
 * thread missing from one counts 0 there).
 *
 * @example
 * ```ts
 * import { medianCosts } from "./summary.ts";
 * medianCosts([{ main: 1 }, { main: 3, sw: 2 }]); // { main: 2, sw: 1 }
 * ```
 */
export function medianCosts(
  list: readonly Record<string, number>[],
): Record<string, number> {
  const names = new Set(list.flatMap((c) => Object.keys(c)));
  const out: Record<string, number> = {};
  for (const name of names) out[name] = median(list.map((c) => c[name] ?? 0));
  return out;
}
