/**
 * The load benchmark's tables and lines: the progress line of each run,
 * the summary table with its ratios to (a) and (b) and its notes, CPU by
 * thread, every repetition, and the issue's targets. Pure text from
 * results; writing RESULTS.md and README-snippet.md is record.ts's.
 *
 * @module
 */

import type { LoadOptions } from "./args.ts";
import {
  type CeilingResult,
  CEILINGS,
  isHookgate,
  LABELS,
  type RunResult,
} from "./common.ts";
import {
  ceilingRate,
  ceilingRuns,
  median,
  medianCosts,
  rpsOf,
  type Summary,
  summaryOf,
} from "./summary.ts";

/**
 * A count, rounded, with thousands separators.
 *
 * @example
 * ```ts
 * import { fmtInt } from "./report.ts";
 * fmtInt(12345.6); // "12,346"
 * ```
 */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * Milliseconds: two decimals under 10, one above.
 *
 * @example
 * ```ts
 * import { fmtMs } from "./report.ts";
 * fmtMs(2.345); // "2.35"
 * ```
 */
export function fmtMs(n: number): string {
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

/**
 * Bytes as whole MB (MiB).
 *
 * @example
 * ```ts
 * import { fmtMb } from "./report.ts";
 * fmtMb(52428800); // "50 MB"
 * ```
 */
export function fmtMb(n: number): string {
  return `${(n / 1048576).toFixed(0)} MB`;
}

/**
 * A share as a whole percentage.
 *
 * @example
 * ```ts
 * import { fmtPct } from "./report.ts";
 * fmtPct(0.934); // "93 %"
 * ```
 */
export function fmtPct(n: number): string {
  return `${(100 * n).toFixed(0)} %`;
}

/**
 * A ratio with two decimals, or a dash when there is none.
 *
 * @example
 * ```ts
 * import { fmtRatio } from "./report.ts";
 * fmtRatio(undefined); // "—"
 * ```
 */
export function fmtRatio(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? "—" : n.toFixed(2);
}

/** `valid` or `invalid`, for a mode. */
function signatures(mode: RunResult["mode"]): string {
  return mode === "good" ? "valid" : "invalid";
}

/**
 * The progress line of one server run.
 *
 * @example
 * ```ts
 * import { runLine } from "./report.ts";
 * // runLine(run) → "  rep 1 a good: 54,964 req/s, p99 2.85 ms, …"
 * ```
 */
export function runLine(r: RunResult): string {
  return `  rep ${r.rep} ${r.server} ${r.mode}: ${fmtInt(r.rps)} req/s, p99 ${
    fmtMs(r.p99Ms)
  } ms, non-2xx ${r.non2xx}, ${
    r.serverCpuUsPerReq.toFixed(0)
  } µs CPU/req, wrk CPU ${fmtPct(r.wrkCpuShare)}${
    r.statuses ? `, statuses ${JSON.stringify(r.statuses)}` : ""
  }`;
}

/**
 * The progress line of one ceiling run.
 *
 * @example
 * ```ts
 * import { ceilingLine } from "./report.ts";
 * // ceilingLine(c) → "  rep 1 e1: 1,332 deliveries/s, 499 µs CPU each"
 * ```
 */
export function ceilingLine(c: CeilingResult): string {
  return `  rep ${c.rep} ${c.kind}: ${fmtInt(c.perSecond)} deliveries/s, ${
    c.cpuUsPerDelivery.toFixed(0)
  } µs CPU each`;
}

/** hookgate's statuses (summed over the runs), duplicates and backlog. */
function hookgateNotes(s: Summary): string[] {
  const rs = s.runs;
  const statuses: Record<string, number> = {};
  for (const r of rs) {
    for (const [k, v] of Object.entries(r.statuses ?? {})) {
      statuses[k] = (statuses[k] ?? 0) + v;
    }
  }
  const notes = [
    Object.entries(statuses).map(([k, v]) => `${k}: ${fmtInt(v)}`).join(", "),
  ];
  if (s.mode === "good") {
    const duplicates = rs.reduce((acc, r) => acc + (r.duplicates ?? 0), 0);
    notes.push(`duplicates ${fmtInt(duplicates)}`);
    notes.push(
      `backlog at end ${fmtInt(median(rs.map((r) => r.backlog ?? 0)))}`,
    );
  }
  return notes;
}

/**
 * The notes column of a summary row: hookgate's statuses, duplicates and
 * backlog; what the non-2xx are; a saturated wrk; socket errors; bodies
 * repeated in a run.
 *
 * @example
 * ```ts
 * import { notesOf } from "./report.ts";
 * // notesOf(summary) → "non-2xx are the expected 401s"
 * ```
 */
export function notesOf(s: Summary): string {
  const rs = s.runs;
  const notes = isHookgate(s.server) ? hookgateNotes(s) : [];
  if (s.mode === "bad") {
    notes.push(
      s.server === "a"
        ? "signatures not checked"
        : "non-2xx are the expected 401s",
    );
  }
  const wrkBusy = median(rs.map((r) => r.wrkCpuShare));
  if (wrkBusy >= 0.85) {
    notes.push("wrk near saturation: a lower bound");
  }
  const socket = rs.reduce((acc, r) => acc + r.socketErrors, 0);
  if (socket > 0) notes.push(`socket errors ${fmtInt(socket)}`);
  if (rs.some((r) => r.wrapped) && s.mode === "good" && isHookgate(s.server)) {
    notes.push("WRAPPED: bodies repeated, raise --requests");
  }
  return notes.filter((n) => n !== "").join("; ");
}

/** A summary row of the main table. */
function summaryRow(s: Summary, summaries: readonly Summary[]): string {
  const a = summaryOf(summaries, "a", s.mode);
  const b = summaryOf(summaries, "b", s.mode);
  const rs = s.runs;
  return `| ${LABELS[s.server]} | ${signatures(s.mode)} | ${fmtInt(s.rps)} | ${
    fmtRatio(a && s.rps / a.rps)
  } | ${fmtRatio(b && s.rps / b.rps)} | ${fmtMs(s.p50Ms)} | ${
    fmtMs(s.p99Ms)
  } | ${fmtInt(rs.reduce((n, r) => n + r.non2xx, 0))} | ${
    median(rs.map((r) => r.serverCpuUsPerReq)).toFixed(0)
  } | ${fmtPct(median(rs.map((r) => r.serverCpuShare)))} | ${
    fmtMb(Math.max(...rs.map((r) => r.peakRssBytes)))
  } | ${fmtPct(median(rs.map((r) => r.wrkCpuShare)))} | ${notesOf(s)} |`;
}

/**
 * The main table: a row for every server and mode (medians, ratios to (a)
 * and (b) of the same mode) and one for every ceiling.
 *
 * @example
 * ```ts
 * import { table } from "./report.ts";
 * table([], []).split("\n").length; // 2: the header and its rule
 * ```
 */
export function table(
  summaries: readonly Summary[],
  ceilings: readonly CeilingResult[],
): string {
  const rows: string[] = [
    "| server | signatures | req/s | × (a) | × (b) | p50 ms | p99 ms | non-2xx | server CPU µs/req | server CPU | peak RSS | wrk CPU | notes |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const s of summaries) rows.push(summaryRow(s, summaries));
  for (const kind of CEILINGS) {
    const cs = ceilingRuns(ceilings, kind);
    if (cs.length === 0) continue;
    const per = ceilingRate(ceilings, kind)!;
    rows.push(
      `| ${LABELS[kind]} | (no HTTP) | ${
        fmtInt(per)
      } deliveries/s | | | | | | ${
        median(cs.map((c) => c.cpuUsPerDelivery)).toFixed(0)
      } | ${fmtPct(median(cs.map((c) => c.cpuShare)))} | ${
        fmtMb(Math.max(...cs.map((c) => c.peakRssBytes)))
      } | | ${
        kind === "e" ? "group commit of 32 deliveries" : "one commit a delivery"
      } |`,
    );
  }
  return rows.join("\n");
}

/**
 * Median server CPU per request by thread, for every server and ceiling:
 * a column for every thread that costs half a µs or more in all, `main`
 * first, then the costliest.
 *
 * @example
 * ```ts
 * import { threadTable } from "./report.ts";
 * threadTable([], []); // "| server |  |\n| --- |  |"
 * ```
 */
export function threadTable(
  summaries: readonly Summary[],
  ceilings: readonly CeilingResult[],
): string {
  const rows: { label: string; costs: Record<string, number> }[] = [];
  for (const s of summaries) {
    rows.push({
      label: `${LABELS[s.server]}, ${signatures(s.mode)}`,
      costs: medianCosts(s.runs.map((r) => r.threadUsPerReq)),
    });
  }
  for (const kind of CEILINGS) {
    const cs = ceilingRuns(ceilings, kind);
    if (cs.length) {
      rows.push({
        label: LABELS[kind],
        costs: medianCosts(cs.map((c) => c.threadUsPerReq)),
      });
    }
  }
  return costTable(rows);
}

/**
 * Per-thread CPU rows as a table: a column for every thread that costs
 * half a µs or more in all, `main` first, then the costliest.
 *
 * @example
 * ```ts
 * import { costTable } from "./report.ts";
 * costTable([{ label: "x", costs: { main: 10, sw: 0.1 } }]);
 * // "| server | main (JS) thread |\n| --- | ---: |\n| x | 10 |"
 * ```
 */
export function costTable(
  rows: readonly { label: string; costs: Record<string, number> }[],
): string {
  const totals = new Map<string, number>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.costs)) {
      totals.set(k, (totals.get(k) ?? 0) + v);
    }
  }
  const names = [...totals].filter(([, v]) => v >= 0.5).sort((a, b) =>
    a[0] === "main" ? -1 : b[0] === "main" ? 1 : b[1] - a[1]
  ).map(([k]) => k);
  const out = [
    `| server | ${
      names.map((n) => n === "main" ? "main (JS) thread" : n).join(" | ")
    } |`,
    `| --- | ${names.map(() => "---:").join(" | ")} |`,
  ];
  for (const r of rows) {
    out.push(
      `| ${r.label} | ${
        names.map((n) => (r.costs[n] ?? 0).toFixed(0)).join(" | ")
      } |`,
    );
  }
  return out.join("\n");
}

/**
 * A row for every repetition of every run and ceiling.
 *
 * @example
 * ```ts
 * import { repTable } from "./report.ts";
 * repTable([], []).split("\n").length; // 2
 * ```
 */
export function repTable(
  runs: readonly RunResult[],
  ceilings: readonly CeilingResult[],
): string {
  const rows = [
    "| run | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | wrk CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of runs) {
    rows.push(
      `| ${r.server} ${signatures(r.mode)} #${r.rep} | ${fmtInt(r.rps)} | ${
        fmtMs(r.p50Ms)
      } | ${fmtMs(r.p99Ms)} | ${fmtInt(r.non2xx)} | ${
        r.serverCpuUsPerReq.toFixed(0)
      } | ${fmtPct(r.wrkCpuShare)} |`,
    );
  }
  for (const c of ceilings) {
    rows.push(
      `| ${c.kind} #${c.rep} | ${fmtInt(c.perSecond)} | | | | ${
        c.cpuUsPerDelivery.toFixed(0)
      } | |`,
    );
  }
  return rows.join("\n");
}

/** One of issue 6's targets, and how this run measured up. */
export interface Target {
  text: string;
  value: string;
  /** `null`: what it compares did not run. */
  met: boolean | null;
}

/**
 * Issue 6's targets, from the medians of this run.
 *
 * @example
 * ```ts
 * import { targets } from "./report.ts";
 * targets([], [], { connections: 32 })[0]!.value; // "not run"
 * ```
 */
export function targets(
  summaries: readonly Summary[],
  ceilings: readonly CeilingResult[],
  options: Pick<LoadOptions, "connections">,
): Target[] {
  const out: Target[] = [];
  const cb = rpsOf(summaries, "c", "bad");
  const bb = rpsOf(summaries, "b", "bad");
  out.push({
    text: "invalid signatures: (c) ≥ 1.0 × (b)",
    value: cb && bb ? `${(cb / bb).toFixed(2)} × (b)` : "not run",
    met: cb && bb ? cb / bb >= 1.0 : null,
  });
  const cg = rpsOf(summaries, "c", "good");
  const bg = rpsOf(summaries, "b", "good");
  out.push({
    text: "valid deliveries: (c) ≥ 0.6 × (b)",
    value: cg && bg ? `${(cg / bg).toFixed(2)} × (b)` : "not run",
    met: cg && bg ? cg / bg >= 0.6 : null,
  });
  const d = summaryOf(summaries, "d", "good");
  const e = ceilingRate(ceilings, "e");
  out.push({
    text: "valid deliveries: (d) ≥ 0.8 × (e)",
    value: d && e ? `${(d.rps / e).toFixed(2)} × (e)` : "not run",
    met: d && e ? d.rps / e >= 0.8 : null,
  });
  out.push({
    text:
      `valid deliveries: (d) p99 ≤ 50 ms at ${options.connections} connections`,
    value: d ? `${fmtMs(d.p99Ms)} ms` : "not run",
    met: d ? d.p99Ms <= 50 : null,
  });
  return out;
}

/**
 * The targets as a Markdown list.
 *
 * @example
 * ```ts
 * import { targetLines } from "./report.ts";
 * targetLines([{ text: "x", value: "not run", met: null }]); // "- –: x — not run"
 * ```
 */
export function targetLines(ts: readonly Target[]): string {
  return ts.map((t) =>
    `- ${
      t.met === null ? "–" : t.met ? "met" : "NOT met"
    }: ${t.text} — ${t.value}`
  ).join("\n");
}

/**
 * What the run prints on stdout at the end: the table, CPU by thread and
 * the targets.
 *
 * @example
 * ```ts
 * import { consoleReport } from "./report.ts";
 * // console.log(consoleReport(tbl, threads, ts));
 * ```
 */
export function consoleReport(
  tbl: string,
  threads: string,
  ts: readonly Target[],
): string {
  return `\n${tbl}\n\nServer CPU µs per request by thread (median):\n\n${threads}\n\nTargets (ratios of medians from this run):\n${
    targetLines(ts)
  }`;
}
