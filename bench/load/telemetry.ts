/**
 * The load benchmark's telemetry mode (issue 17, `--telemetry`): what
 * tracing costs hookgate, off and on. hookgate on a KV file (server (d),
 * valid signatures, wrk as in the other runs) in rounds, every repetition
 * running each variant once on a fresh process and a fresh KV, the order
 * rotated from one repetition to the next so that drift of the machine
 * reaches every variant alike:
 * - (d) telemetry off: no `OTEL_*` variable at all (servers get only the
 *   few variables Deno needs, servers.ts);
 * - (d-otel) `OTEL_DENO=true`, exporting OTLP/HTTP JSON to the sink
 *   (bench/load/otlp_sink.ts, a child on the load core beside wrk), whose
 *   counts say the spans were exported;
 * - with `--baseline REF`, (d-base): the same server run from a git
 *   worktree of commit REF (made under a temporary folder with
 *   `git worktree add --detach`, removed at the end), so that "off" is
 *   compared with the code before tracing existed.
 *
 * Reported: req/s, p50/p99, server CPU µs per request (each with its
 * spread over the repetitions), the ratios off ÷ base and on ÷ off (of the
 * medians, and the range of the ratios paired within each repetition),
 * and the sink's counts. Its text is made by pure functions here; it does
 * not touch lib/.
 *
 * @module
 */

import type { LoadOptions } from "./args.ts";
import { type Children, run, spawnListening, stopChild } from "./children.ts";
import { BENCH, LOAD_CORE, ROOT, type RunResult } from "./common.ts";
import { type SinkCounts, sinkDelta } from "./otlp_sink.ts";
import { type ProcStats, procStats } from "./proc.ts";
import {
  costTable,
  fmtInt,
  fmtMb,
  fmtMs,
  fmtPct,
  fmtRatio,
  notesOf,
  type Target,
  targetLines,
} from "./report.ts";
import { runServer } from "./runs.ts";
import { median, medianCosts } from "./summary.ts";

/** A telemetry round's server: the code before tracing, telemetry off, telemetry on. */
export type Variant = "base" | "off" | "on";

/** Every variant, in the order they are reported. */
export const VARIANTS: readonly Variant[] = ["base", "off", "on"];

/** The row label of every variant. */
export const VARIANT_LABELS: Readonly<Record<Variant, string>> = {
  base: "(d-base) hookgate at the baseline, KV file",
  off: "(d) hookgate, KV file, telemetry off",
  on: "(d-otel) hookgate, KV file, OTEL_DENO=true",
};

/** The short name of every variant (progress lines, wrk logs). */
export const VARIANT_NAMES: Readonly<Record<Variant, string>> = {
  base: "d-base",
  off: "d",
  on: "d-otel",
};

/** How long the sink may take to say it listens. */
const SINK_START_MS = 30_000;

/**
 * The variants a run has: (d-base) only with a baseline.
 *
 * @example
 * ```ts
 * import { variantsOf } from "./telemetry.ts";
 * variantsOf(null); // ["off", "on"]
 * variantsOf("c5a7af2"); // ["base", "off", "on"]
 * ```
 */
export function variantsOf(baseline: string | null): Variant[] {
  return baseline === null ? ["off", "on"] : [...VARIANTS];
}

/**
 * The order the variants run in repetition `rep` (from 1): rotated by one
 * a repetition, so that none is always first after the previous round.
 *
 * @example
 * ```ts
 * import { roundOrder } from "./telemetry.ts";
 * roundOrder(["base", "off", "on"], 2); // ["off", "on", "base"]
 * ```
 */
export function roundOrder(
  variants: readonly Variant[],
  rep: number,
): Variant[] {
  const k = variants.length ? (rep - 1) % variants.length : 0;
  return [...variants.slice(k), ...variants.slice(0, k)];
}

/**
 * The variables that turn Deno's OpenTelemetry on and export to the sink
 * at `endpoint`: exactly these three, nothing else of OpenTelemetry's.
 *
 * @example
 * ```ts
 * import { otelEnv } from "./telemetry.ts";
 * otelEnv("http://127.0.0.1:4318").OTEL_EXPORTER_OTLP_PROTOCOL; // "http/json"
 * ```
 */
export function otelEnv(endpoint: string): Record<string, string> {
  return {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  };
}

/** What the sink received around one run. */
export interface SinkFigures {
  /** Between wrk's clock starting and wrk finishing. */
  measured: SinkCounts;
  /** From before the server started to after it exited (warm-up and exit flush included). */
  round: SinkCounts;
  /** The sink's CPU over the measured run, as a share of a core. */
  cpuShare: number;
  /** Seconds between the sink's readings around the measured run. */
  seconds: number;
}

/** One run of one variant. */
export interface TelemetryRun {
  variant: Variant;
  run: RunResult;
  sink: SinkFigures;
}

/** A git worktree of the baseline commit. */
export interface BaselineTree {
  /** The worktree, with a trailing slash. */
  root: string;
  /** The commit, abbreviated, and its subject. */
  commit: string;
  subject: string;
  /** Removes the worktree and its temporary folder. */
  remove(): Promise<void>;
  /** The same, synchronously (for a signal handler). */
  removeSync(): void;
}

/**
 * Makes a detached git worktree of `ref` (of the checkout this benchmark
 * is in) under a new temporary folder; throws if `ref` names no commit or
 * the commit has no main.ts.
 */
export async function addBaselineTree(ref: string): Promise<BaselineTree> {
  const git = (...args: string[]) => run("git", ["-C", ROOT, ...args]);
  const full = await git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`)
    .catch(() => {
      throw new Error(`--baseline ${ref} names no commit of ${ROOT}`);
    });
  const [commit = "", ...rest] =
    (await git("log", "-1", "--format=%h %s", full.trim()))
      .trim().split(" ");
  const dir = await Deno.makeTempDir({ prefix: "hookgate-baseline-" });
  const tree = `${dir}/tree`;
  const removeSync = () => {
    new Deno.Command("git", {
      args: ["-C", ROOT, "worktree", "remove", "--force", tree],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* gone */ }
  };
  const remove = async () => {
    await git("worktree", "remove", "--force", tree).catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await git("worktree", "add", "--detach", tree, full.trim());
    await Deno.stat(`${tree}/main.ts`);
  } catch (err) {
    await remove();
    throw new Error(`--baseline ${ref}: no worktree with a main.ts`, {
      cause: err,
    });
  }
  return {
    root: `${tree}/`,
    commit,
    subject: rest.join(" "),
    remove,
    removeSync,
  };
}

/** A running OTLP sink. */
interface RunningSink {
  child: Deno.ChildProcess;
  url: string;
}

/** Starts the OTLP sink on the load core and waits for its `listening` line. */
async function startSink(children: Children): Promise<RunningSink> {
  const { child, port } = await spawnListening(
    children,
    "the OTLP sink",
    "taskset",
    [
      "-c",
      LOAD_CORE,
      Deno.execPath(),
      "run",
      "--config",
      `${ROOT}deno.json`,
      "--allow-net=127.0.0.1",
      `${BENCH}load/otlp_sink.ts`,
    ],
    SINK_START_MS,
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

/** The sink's counts. */
async function sinkCounts(sink: RunningSink): Promise<SinkCounts> {
  const res = await fetch(`${sink.url}/_stats`);
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`OTLP sink stats: HTTP ${res.status}`);
  }
  return await res.json() as SinkCounts;
}

/** The sink's counts, its /proc reading and the time (ms), at one moment. */
interface SinkMark {
  counts: SinkCounts;
  proc: ProcStats;
  at: number;
}

/** Reads the sink now. */
async function sinkMark(sink: RunningSink): Promise<SinkMark> {
  const at = performance.now();
  const [counts, proc] = await Promise.all([
    sinkCounts(sink),
    procStats(sink.child.pid),
  ]);
  return { counts, proc, at };
}

/** Runs one variant once: a fresh (d) under wrk, the sink read around it. */
async function runVariant(
  children: Children,
  options: LoadOptions,
  r: {
    variant: Variant;
    rep: number;
    sink: RunningSink;
    baseline: BaselineTree | null;
    dataFile: string;
    logDir: string;
  },
): Promise<TelemetryRun> {
  const marks: Promise<SinkMark>[] = [];
  const before = await sinkCounts(r.sink);
  const extraEnv = r.variant === "on"
    ? { ...options.extraEnv, ...otelEnv(r.sink.url) }
    : options.extraEnv;
  const root = r.variant === "base" ? r.baseline?.root : undefined;
  const result = await runServer(
    children,
    { ...options, extraEnv },
    "d",
    "good",
    r.rep,
    r.dataFile,
    r.logDir,
    {
      name: VARIANT_NAMES[r.variant],
      ...(root === undefined ? {} : { root }),
      onMeasure: () => marks.push(sinkMark(r.sink)),
    },
  );
  const after = await sinkCounts(r.sink);
  const [m0, m1] = await Promise.all(marks);
  if (m0 === undefined || m1 === undefined) {
    throw new Error("the sink was not read around the measured run");
  }
  const seconds = Math.max(0.001, (m1.at - m0.at) / 1000);
  return {
    variant: r.variant,
    run: result,
    sink: {
      measured: sinkDelta(m0.counts, m1.counts),
      round: sinkDelta(before, after),
      cpuShare: (m1.proc.cpu - m0.proc.cpu) / seconds,
      seconds,
    },
  };
}

/**
 * Every repetition of every variant, each repetition in its rotated order,
 * with a progress line on stderr each. The sink runs from the first round
 * to the last; the baseline worktree is made first and removed at the end
 * (`onCleanup` gets, while it exists, a function that removes it at once,
 * for a signal handler).
 */
export async function runAllTelemetry(
  children: Children,
  options: LoadOptions,
  dataFile: string,
  logDir: string,
  onCleanup: (cleanup: (() => void) | null) => void,
): Promise<{ runs: TelemetryRun[]; baseline: BaselineTree | null }> {
  const baseline = options.baseline === null
    ? null
    : await addBaselineTree(options.baseline);
  if (baseline) onCleanup(baseline.removeSync);
  const runs: TelemetryRun[] = [];
  try {
    const sink = await startSink(children);
    try {
      for (let rep = 1; rep <= options.reps; rep++) {
        for (const variant of roundOrder(variantsOf(options.baseline), rep)) {
          const t = await runVariant(children, options, {
            variant,
            rep,
            sink,
            baseline,
            dataFile,
            logDir,
          });
          runs.push(t);
          console.error(telemetryLine(t));
        }
      }
    } finally {
      await stopChild(sink.child, 5000);
    }
  } finally {
    await baseline?.remove();
    onCleanup(null);
  }
  return { runs, baseline };
}

/** The sink's bytes to /v1/traces. */
function traceBytes(c: SinkCounts): number {
  return c.bytes["/v1/traces"] ?? 0;
}

/** Every POST the sink got, on any path. */
function allPosts(c: SinkCounts): number {
  return Object.values(c.posts).reduce((a, b) => a + b, 0);
}

/**
 * Spans exported over the whole round (the flush at exit included), in
 * all or of one hookgate span name, per delivery the process accepted
 * (warm-up included).
 */
function perDelivery(t: TelemetryRun, name?: string): number {
  const n = name === undefined
    ? t.sink.round.spans
    : t.sink.round.names[name] ?? 0;
  return n / Math.max(1, t.run.acceptedTotal ?? 0);
}

/**
 * The progress line of one run.
 *
 * @example
 * ```ts
 * import { telemetryLine } from "./telemetry.ts";
 * // telemetryLine(t) → "  rep 1 d-otel: 2,345 req/s, p50 …, spans 61,000 in the round (4.50 a delivery; …), …"
 * ```
 */
export function telemetryLine(t: TelemetryRun): string {
  const r = t.run;
  return `  rep ${r.rep} ${VARIANT_NAMES[t.variant]}: ${
    fmtInt(r.rps)
  } req/s, p50 ${fmtMs(r.p50Ms)} ms, p99 ${fmtMs(r.p99Ms)} ms, non-2xx ${
    fmtInt(r.non2xx)
  }, ${r.serverCpuUsPerReq.toFixed(0)} µs CPU/req, wrk CPU ${
    fmtPct(r.wrkCpuShare)
  }, runs ended ÷ accepted ${runsPerDelivery(t).toFixed(2)}, spans ${
    fmtInt(t.sink.round.spans)
  } in the round (${perDelivery(t).toFixed(2)} a delivery; hookgate.store ${
    perDelivery(t, "hookgate.store").toFixed(2)
  }, hookgate.run ${perDelivery(t, "hookgate.run").toFixed(2)}), sink POSTs ${
    fmtInt(allPosts(t.sink.round))
  }, sink CPU ${fmtPct(t.sink.cpuShare)}`;
}

/** The runs of `variant`, in order. */
function runsOf(
  runs: readonly TelemetryRun[],
  variant: Variant,
): TelemetryRun[] {
  return runs.filter((t) => t.variant === variant);
}

/** The figures the ratios compare, and which way is a cost. */
const METRICS = {
  rps: (r: RunResult) => r.rps,
  p50: (r: RunResult) => r.p50Ms,
  p99: (r: RunResult) => r.p99Ms,
  cpu: (r: RunResult) => r.serverCpuUsPerReq,
} as const;

/** A figure the ratios compare. */
export type Metric = keyof typeof METRICS;

/**
 * The median of `metric` over the runs of `variant`, with the smallest and
 * largest; undefined when it did not run.
 *
 * @example
 * ```ts
 * import { spreadOf } from "./telemetry.ts";
 * spreadOf([], "off", "rps"); // undefined
 * ```
 */
export function spreadOf(
  runs: readonly TelemetryRun[],
  variant: Variant,
  metric: Metric,
): { median: number; min: number; max: number } | undefined {
  const xs = runsOf(runs, variant).map((t) => METRICS[metric](t.run));
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/**
 * `metric` of `num` ÷ `den`: the ratio of their medians, and the range of
 * the ratios within each repetition where both ran; undefined when either
 * did not run.
 *
 * @example
 * ```ts
 * import { ratioOf } from "./telemetry.ts";
 * ratioOf([], "on", "off", "cpu"); // undefined
 * ```
 */
export function ratioOf(
  runs: readonly TelemetryRun[],
  num: Variant,
  den: Variant,
  metric: Metric,
): { ratio: number; min: number; max: number } | undefined {
  const a = spreadOf(runs, num, metric);
  const b = spreadOf(runs, den, metric);
  if (!a || !b) return undefined;
  const paired: number[] = [];
  for (const t of runsOf(runs, num)) {
    const d = runsOf(runs, den).find((u) => u.run.rep === t.run.rep);
    if (d) paired.push(METRICS[metric](t.run) / METRICS[metric](d.run));
  }
  return {
    ratio: a.median / b.median,
    min: paired.length ? Math.min(...paired) : NaN,
    max: paired.length ? Math.max(...paired) : NaN,
  };
}

/** `median (min–max)` of a spread, each cell formatted by `fmt`. */
function spreadCell(
  s: { median: number; min: number; max: number } | undefined,
  fmt: (n: number) => string,
): string {
  if (s === undefined) return "—";
  return s.min === s.max
    ? fmt(s.median)
    : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

/** Delivery runs that ended over the measured run per delivery accepted in it. */
function runsPerDelivery(t: TelemetryRun): number {
  return (t.run.runsEnded ?? 0) / Math.max(1, t.run.accepted ?? 0);
}

/** What the sink says of a variant's runs, for the notes column. */
function sinkNote(rs: readonly TelemetryRun[], variant: Variant): string {
  const posts = rs.reduce((n, t) => n + allPosts(t.sink.round), 0);
  if (variant !== "on") {
    return posts === 0
      ? "nothing exported"
      : `EXPORTED ${fmtInt(posts)} POSTs with telemetry off`;
  }
  const m = (f: (t: TelemetryRun) => number) => median(rs.map(f)).toFixed(2);
  const seconds = rs.reduce((n, t) => n + t.sink.seconds, 0);
  return `${
    fmtInt(rs.reduce((n, t) => n + t.sink.round.spans, 0))
  } spans exported (${
    m((t) => perDelivery(t))
  } a delivery accepted: hookgate.verify ${
    m((t) => perDelivery(t, "hookgate.verify"))
  }, hookgate.store ${
    m((t) => perDelivery(t, "hookgate.store"))
  }, hookgate.run ${
    m((t) => perDelivery(t, "hookgate.run"))
  }, hookgate.handler ${
    m((t) => perDelivery(t, "hookgate.handler"))
  }); OTLP JSON ${
    fmtMb(
      rs.reduce((n, t) => n + traceBytes(t.sink.measured), 0) /
        Math.max(1, seconds),
    )
  }/s while measured; sink CPU ${
    fmtPct(median(rs.map((t) => t.sink.cpuShare)))
  }`;
}

/**
 * The telemetry table: a row for every variant (medians of its
 * repetitions, the smallest and largest in brackets).
 *
 * @example
 * ```ts
 * import { telemetryTable } from "./telemetry.ts";
 * telemetryTable([]).split("\n").length; // 2: the header and its rule
 * ```
 */
export function telemetryTable(runs: readonly TelemetryRun[]): string {
  const rows = [
    "| server | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/req | server CPU | peak RSS | wrk CPU | notes |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const variant of VARIANTS) {
    const ts = runsOf(runs, variant);
    if (ts.length === 0) continue;
    const rs = ts.map((t) => t.run);
    const s = (m: Metric) => spreadOf(runs, variant, m);
    const notes = notesOf({
      server: "d",
      mode: "good",
      runs: rs,
      rps: s("rps")!.median,
      p50Ms: s("p50")!.median,
      p99Ms: s("p99")!.median,
    });
    rows.push(
      `| ${VARIANT_LABELS[variant]} | ${spreadCell(s("rps"), fmtInt)} | ${
        spreadCell(s("p50"), fmtMs)
      } | ${spreadCell(s("p99"), fmtMs)} | ${
        fmtInt(rs.reduce((n, r) => n + r.non2xx, 0))
      } | ${spreadCell(s("cpu"), (n) => n.toFixed(0))} | ${
        fmtPct(median(rs.map((r) => r.serverCpuShare)))
      } | ${fmtMb(Math.max(...rs.map((r) => r.peakRssBytes)))} | ${
        fmtPct(median(rs.map((r) => r.wrkCpuShare)))
      } | ${
        [
          notes,
          `runs ended ÷ accepted ${median(ts.map(runsPerDelivery)).toFixed(2)}`,
          sinkNote(ts, variant),
        ].filter(Boolean).join("; ")
      } |`,
    );
  }
  return rows.join("\n");
}

/** `ratio (min–max)` of a ratio, or a dash. */
function ratioCell(
  r: { ratio: number; min: number; max: number } | undefined,
): string {
  if (r === undefined) return "—";
  return `${fmtRatio(r.ratio)} (${fmtRatio(r.min)}–${fmtRatio(r.max)})`;
}

/**
 * The ratios off ÷ base and on ÷ off of every figure: of the medians, and
 * in brackets the range of the ratios paired within each repetition.
 *
 * @example
 * ```ts
 * import { telemetryRatios } from "./telemetry.ts";
 * telemetryRatios([]).split("\n").length; // 4: header, rule, two rows
 * ```
 */
export function telemetryRatios(runs: readonly TelemetryRun[]): string {
  const rows = [
    "| ratio | req/s | p50 ms | p99 ms | server CPU µs/req |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  const pairs: [string, Variant, Variant][] = [
    ["off ÷ base: (d) ÷ (d-base)", "off", "base"],
    ["on ÷ off: (d-otel) ÷ (d)", "on", "off"],
  ];
  for (const [label, num, den] of pairs) {
    rows.push(
      `| ${label} | ${
        (["rps", "p50", "p99", "cpu"] as const).map((m) =>
          ratioCell(ratioOf(runs, num, den, m))
        ).join(" | ")
      } |`,
    );
  }
  return rows.join("\n");
}

/**
 * Median server CPU per request by thread, for every variant.
 *
 * @example
 * ```ts
 * import { telemetryThreads } from "./telemetry.ts";
 * telemetryThreads([]); // "| server |  |\n| --- |  |"
 * ```
 */
export function telemetryThreads(runs: readonly TelemetryRun[]): string {
  return costTable(
    VARIANTS.filter((v) => runsOf(runs, v).length > 0).map((v) => ({
      label: VARIANT_LABELS[v],
      costs: medianCosts(runsOf(runs, v).map((t) => t.run.threadUsPerReq)),
    })),
  );
}

/** The largest spread of `metric` over the repetitions of `variants`, relative to its median. */
function noiseOf(
  runs: readonly TelemetryRun[],
  variants: readonly Variant[],
  metric: Metric,
): number {
  return Math.max(
    ...variants.map((v) => {
      const s = spreadOf(runs, v, metric);
      return s ? (s.max - s.min) / s.median : 0;
    }),
  );
}

/**
 * Issue 17's figures: telemetry off costs nothing measurable (off ÷ base
 * of req/s and of server CPU per request differ from 1 by no more than the
 * spread between repetitions of the same code); telemetry on exports
 * spans, off exports nothing; and what on costs.
 *
 * @example
 * ```ts
 * import { telemetryTargets } from "./telemetry.ts";
 * telemetryTargets([])[0]!.value; // "not run"
 * ```
 */
export function telemetryTargets(runs: readonly TelemetryRun[]): Target[] {
  const rps = ratioOf(runs, "off", "base", "rps");
  const cpu = ratioOf(runs, "off", "base", "cpu");
  const reps = new Set(runs.map((t) => t.run.rep)).size;
  const noiseRps = noiseOf(runs, ["base", "off"], "rps");
  const noiseCpu = noiseOf(runs, ["base", "off"], "cpu");
  const off: Target = {
    text:
      "telemetry off costs nothing measurable: (d) ÷ (d-base) of req/s and of server CPU µs/req differ from 1 by no more than the spread between repetitions of the same code",
    value: rps && cpu
      ? `req/s ${fmtRatio(rps.ratio)}, CPU µs/req ${
        fmtRatio(cpu.ratio)
      }; spread between repetitions ${fmtPct(noiseRps)} (req/s), ${
        fmtPct(noiseCpu)
      } (CPU)`
      : "not run",
    met: rps && cpu && reps > 1
      ? Math.abs(rps.ratio - 1) <= noiseRps &&
        Math.abs(cpu.ratio - 1) <= noiseCpu
      : null,
  };
  const on = runsOf(runs, "on");
  const quiet = runs.filter((t) => t.variant !== "on");
  const receipts = on.map((t) => perDelivery(t, "hookgate.store"));
  const silent = quiet.every((t) => allPosts(t.sink.round) === 0);
  const spans: Target = {
    text:
      "with telemetry on every accepted delivery's receipt is exported (hookgate.store spans ÷ deliveries accepted ≥ 0.99 in every run); with it off nothing is",
    value: on.length
      ? `${fmtRatio(Math.min(...receipts))} at least; ${
        fmtInt(quiet.reduce((n, t) => n + allPosts(t.sink.round), 0))
      } POSTs from the runs with it off`
      : "not run",
    met: on.length ? Math.min(...receipts) >= 0.99 && silent : null,
  };
  const onRps = ratioOf(runs, "on", "off", "rps");
  const onCpu = ratioOf(runs, "on", "off", "cpu");
  const offCpu = spreadOf(runs, "off", "cpu");
  const onCpuAbs = spreadOf(runs, "on", "cpu");
  const cost: Target = {
    text: "what telemetry on costs: (d-otel) ÷ (d)",
    value: onRps && onCpu && offCpu && onCpuAbs
      ? `req/s ${fmtRatio(onRps.ratio)}, CPU µs/req ${fmtRatio(onCpu.ratio)} (${
        (onCpuAbs.median - offCpu.median).toFixed(0)
      } µs more a request)`
      : "not run",
    met: null,
  };
  return [off, spans, cost];
}

/** Every run, one row each. */
function telemetryRepTable(runs: readonly TelemetryRun[]): string {
  const rows = [
    "| run | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | wrk CPU | runs ended ÷ accepted | accepted (round) | spans (round) | a delivery | hookgate.store a delivery | hookgate.run a delivery | sink POSTs (round) | OTLP JSON (round) | sink CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const t of runs) {
    const r = t.run;
    rows.push(
      `| ${VARIANT_NAMES[t.variant]} #${r.rep} | ${fmtInt(r.rps)} | ${
        fmtMs(r.p50Ms)
      } | ${fmtMs(r.p99Ms)} | ${fmtInt(r.non2xx)} | ${
        r.serverCpuUsPerReq.toFixed(0)
      } | ${fmtPct(r.wrkCpuShare)} | ${runsPerDelivery(t).toFixed(2)} | ${
        fmtInt(r.acceptedTotal ?? 0)
      } | ${fmtInt(t.sink.round.spans)} | ${perDelivery(t).toFixed(2)} | ${
        perDelivery(t, "hookgate.store").toFixed(2)
      } | ${perDelivery(t, "hookgate.run").toFixed(2)} | ${
        fmtInt(allPosts(t.sink.round))
      } | ${fmtMb(traceBytes(t.sink.round))} | ${fmtPct(t.sink.cpuShare)} |`,
    );
  }
  return rows.join("\n");
}

/** Where the telemetry section says it was measured. */
export interface TelemetryContext {
  /** ISO time of the run. */
  date: string;
  machine: string;
  commit: string;
  /** The baseline commit, abbreviated, and its subject; null without one. */
  baseline: { commit: string; subject: string } | null;
  /** /proc/loadavg at the start and at the end of the run. */
  loadStart: string;
  loadEnd: string;
}

/**
 * What the telemetry mode prints at the end and records: the table, the
 * ratios, CPU by thread and the figures of issue 17.
 *
 * @example
 * ```ts
 * import { telemetryReport } from "./telemetry.ts";
 * telemetryReport([]).includes("Ratios"); // true
 * ```
 */
export function telemetryReport(runs: readonly TelemetryRun[]): string {
  return `${telemetryTable(runs)}

Ratios (of the medians; in brackets the range of the ratios within each repetition; for req/s below 1 is a cost, for the others above 1):

${telemetryRatios(runs)}

Server CPU µs per request by thread (median):

${telemetryThreads(runs)}

Issue 17:
${targetLines(telemetryTargets(runs))}`;
}

/**
 * The section the telemetry mode appends to bench/RESULTS.md.
 *
 * @example
 * ```ts
 * import { telemetrySection } from "./telemetry.ts";
 * // telemetrySection(context, options, runs)
 * ```
 */
export function telemetrySection(
  c: TelemetryContext,
  options: Pick<
    LoadOptions,
    "connections" | "duration" | "warmup" | "reps" | "event"
  >,
  runs: readonly TelemetryRun[],
): string {
  const base = c.baseline
    ? `; (d-base) the same from a git worktree of ${c.baseline.commit} ("${c.baseline.subject}")`
    : "";
  return `## Issue 17: telemetry off and on (${c.date})

Machine: ${c.machine}. Code: ${c.commit}. Load average (\`/proc/loadavg\`) at the start: ${c.loadStart}; at the end: ${c.loadEnd}.
\`deno task bench:load --telemetry${
    c.baseline ? ` --baseline ${c.baseline.commit}` : ""
  }\`: hookgate (\`main.ts\`, KV file, pinned to core 0), valid signatures only; (d) with no \`OTEL_*\` variable; (d-otel) with \`OTEL_DENO=true\`, \`OTEL_EXPORTER_OTLP_PROTOCOL=http/json\` and \`OTEL_EXPORTER_OTLP_ENDPOINT\` the OTLP sink (\`bench/load/otlp_sink.ts\`, on core 1 beside wrk: it reads and discards every body and answers 200 \`{}\`)${base}. Every repetition runs each once on a fresh process and a fresh KV, in an order rotated from one repetition to the next. wrk: ${options.connections} keep-alive connections, ${options.duration} s per run after a ${options.warmup} s warm-up, ${options.reps} repetition(s) (medians shown, the smallest and largest in brackets), distinct signed \`${options.event}\` deliveries. Spans are counted by the sink from before each server starts to after it has exited (Deno exports in batches and flushes at exit), against every delivery the process accepted (warm-up included); a delivery still queued when the server stops has no run span yet (its run is left to the next process).

${telemetryReport(runs)}

<details><summary>Every run</summary>

${telemetryRepTable(runs)}

</details>
`;
}
