/**
 * The measured runs: one server under wrk (a fresh server, an optional
 * warm-up, the measured run with /proc readings around it, hookgate's
 * /metrics before and after), one KV write ceiling, and every repetition
 * of those the flags ask for. It formats nothing but the progress lines.
 *
 * @module
 */

import { inheritedEnv } from "../_subprocess.ts";
import type { LoadOptions } from "./args.ts";
import { type Children, drain } from "./children.ts";
import {
  BENCH,
  type Ceiling,
  type CeilingResult,
  CEILINGS,
  isHookgate,
  type Mode,
  MODES,
  ROOT,
  type RunResult,
  type Server,
  SERVER_CORE,
  SERVERS,
} from "./common.ts";
import { metricSum, runDeltas, scrape } from "./metrics.ts";
import { type ProcStats, procStats, threadCosts } from "./proc.ts";
import { printProfile } from "./profile.ts";
import { ceilingLine, runLine } from "./report.ts";
import { type CodeTree, startServer, stopServer } from "./servers.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

/**
 * One run's figures from wrk's summary and the server's /proc readings
 * when the clock started (`s0`) and stopped (`s1`).
 *
 * @example
 * ```ts
 * import { runResult } from "./runs.ts";
 * // runResult("a", "good", 1, wrkResult, s0, s1, { connections: 32, measuredEntries: 1000 });
 * ```
 */
export function runResult(
  server: Server,
  mode: Mode,
  rep: number,
  result: WrkResult,
  s0: ProcStats,
  s1: ProcStats,
  options: Pick<LoadOptions, "connections" | "measuredEntries">,
): RunResult {
  const seconds = result.durationUs / 1e6;
  return {
    server,
    mode,
    rep,
    rps: result.requests / seconds,
    p50Ms: result.latencyUs.p50 / 1000,
    p99Ms: result.latencyUs.p99 / 1000,
    non2xx: result.errors.status,
    socketErrors: result.errors.connect + result.errors.read +
      result.errors.write + result.errors.timeout,
    serverCpuUsPerReq: (s1.cpu - s0.cpu) * 1e6 / result.requests,
    threadUsPerReq: threadCosts(s0, s1, result.requests),
    serverCpuShare: (s1.cpu - s0.cpu) / seconds,
    peakRssBytes: s1.peakRss,
    wrkCpuShare: result.cpuSeconds / seconds,
    // wrk may have sent up to one request a connection more than answered.
    wrapped: result.requests + options.connections > options.measuredEntries,
  };
}

/** How a run differs from the plain run of its server (the telemetry rounds' variants). */
export interface RunVariant extends CodeTree {
  /** The run's name in its label (wrk log, profile folder). @default the server's letter */
  name?: string;
  /**
   * Called as wrk's clock starts (`"start"`) and once wrk has finished
   * (`"end"`), beside the server's /proc readings.
   */
  onMeasure?: (phase: "start" | "end") => void;
}

/** Runs `server` under wrk once (after its warm-up) on a fresh process. */
export async function runServer(
  children: Children,
  options: LoadOptions,
  server: Server,
  mode: Mode,
  rep: number,
  dataFile: string,
  logDir: string,
  variant: RunVariant = {},
): Promise<RunResult> {
  const label = `${variant.name ?? server}-${mode}-${rep}`;
  const started = await startServer(
    children,
    variant.root === undefined ? options : { ...options, root: variant.root },
    server,
    label,
  );
  const { port } = started;
  try {
    const hookgate = isHookgate(server);
    if (options.warmup > 0) {
      const warm = {
        port,
        dataFile,
        mode,
        first: options.measuredEntries,
        count: options.warmupEntries,
        seconds: options.warmup,
      };
      await runWrk(children, options, warm, null);
    }
    const before = hookgate ? await scrape(port) : null;
    const pid = started.child.pid;
    const marks: Promise<ProcStats>[] = [];
    const measured = {
      port,
      dataFile,
      mode,
      first: 0,
      count: options.measuredEntries,
      seconds: options.duration,
    };
    const result = await runWrk(
      children,
      options,
      measured,
      `${logDir}/${label}.txt`,
      () => {
        marks.push(procStats(pid));
        variant.onMeasure?.("start");
      },
    );
    variant.onMeasure?.("end");
    const s1 = await procStats(pid);
    if (marks[0] === undefined) throw new Error("wrk never said LOADED");
    const s0 = await marks[0];
    const run = runResult(server, mode, rep, result, s0, s1, options);
    if (hookgate && before) {
      const after = await scrape(port);
      const outcomes = "webhook_delivery_outcomes_total";
      Object.assign(run, runDeltas(before, after), {
        acceptedTotal: metricSum(
          after,
          "webhook_deliveries_total",
          (l) => l.includes('outcome="accepted"'),
        ),
        runsEnded: metricSum(after, outcomes) - metricSum(before, outcomes),
      });
    }
    return run;
  } finally {
    await stopServer(started);
    if (started.profDir) printProfile(started.profDir, label);
  }
}

/** The `taskset` arguments that run the KV ceiling `kind` on a KV file in `dir`. */
function ceilingArgs(kind: Ceiling, dir: string, duration: number): string[] {
  return [
    "-c",
    SERVER_CORE,
    Deno.execPath(),
    "run",
    "--config",
    `${ROOT}deno.json`,
    `--allow-read=${dir},${ROOT}examples`,
    `--allow-write=${dir}`,
    `${BENCH}servers/kv_ceiling.ts`,
    "--path",
    `${dir}/ceiling.kv`,
    "--duration",
    String(duration),
    "--batch",
    kind === "e" ? "32" : "1",
  ];
}

/**
 * Runs the KV ceiling `kind` once: /proc is read when it says it started
 * and again once it has printed its result, before its stdin is closed
 * and it exits.
 */
export async function runCeiling(
  children: Children,
  options: Pick<LoadOptions, "duration">,
  kind: Ceiling,
  rep: number,
): Promise<CeilingResult> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-kv-ceiling-" });
  const lines: string[] = [];
  try {
    const child = children.spawn(
      "taskset",
      ceilingArgs(kind, dir, options.duration),
      {
        env: { ...inheritedEnv(), NO_COLOR: "1" },
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      },
    );
    let s0: Promise<ProcStats> | null = null;
    let done!: (value: string) => void;
    const result = new Promise<string>((resolve) => done = resolve);
    const pumping = drain(child.stdout, lines, (line) => {
      if (line.includes('"started"')) s0 = procStats(child.pid);
      else if (line.includes('"perSecond"')) done(line);
    });
    drain(child.stderr, lines);
    const line = await Promise.race([
      result,
      child.status.then(() => pumping).then(() => {
        throw new Error(`KV ceiling failed:\n${lines.join("\n")}`);
      }),
    ]);
    const s1 = await procStats(child.pid);
    await child.stdin.close();
    await child.status;
    const r = JSON.parse(line) as { deliveries: number; seconds: number };
    const first = await s0!;
    const cpu = s1.cpu - first.cpu;
    return {
      kind,
      rep,
      perSecond: r.deliveries / r.seconds,
      cpuUsPerDelivery: cpu * 1e6 / r.deliveries,
      threadUsPerReq: threadCosts(first, s1, r.deliveries),
      cpuShare: cpu / r.seconds,
      peakRssBytes: s1.peakRss,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Every repetition of every server (both modes) and ceiling that
 * `options.only` names, in order, with a progress line on stderr each.
 */
export async function runAll(
  children: Children,
  options: LoadOptions,
  dataFile: string,
  logDir: string,
): Promise<{ runs: RunResult[]; ceilings: CeilingResult[] }> {
  const runs: RunResult[] = [];
  const ceilings: CeilingResult[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const server of SERVERS) {
      if (!options.only.has(server)) continue;
      for (const mode of MODES) {
        const r = await runServer(
          children,
          options,
          server,
          mode,
          rep,
          dataFile,
          logDir,
        );
        runs.push(r);
        console.error(runLine(r));
      }
    }
    for (const kind of CEILINGS) {
      if (!options.only.has(kind)) continue;
      const c = await runCeiling(children, options, kind, rep);
      ceilings.push(c);
      console.error(ceilingLine(c));
    }
  }
  return { runs, ceilings };
}
