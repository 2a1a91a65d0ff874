/**
 * The load benchmark (issue 6): how close hookgate comes to the Deno HTTP
 * stack's ceiling and to Deno KV's write ceiling, on this machine, in one
 * run. Started by `deno task bench:load`; see the usage text in
 * bench/load/args.ts. This file is only the entry: it parses the flags,
 * checks the tools, runs everything and reports; importing it does nothing.
 *
 * Servers, each started fresh for every run, one after another, pinned to
 * core 0 (`taskset`; bench/load/servers.ts):
 * - (a) `bench/servers/ceiling.ts`: `Deno.serve` reads the body, answers 200;
 * - (b) `bench/servers/minimal.ts`: body, WebCrypto HMAC verify, `JSON.parse`;
 * - (c) hookgate `main.ts` with `KV_PATH=:memory:`;
 * - (d) hookgate `main.ts` with a KV file in a temporary folder;
 * - (e) `bench/servers/kv_ceiling.ts`: the same records and bodies
 *   group-committed to a KV file, 32 per commit, no HTTP; (e1) the same, one
 *   delivery per commit.
 *
 * Load: `wrk` on core 1 with `bench/load.lua` (bench/load/wrk.ts), which
 * cycles through a file of distinct, pre-signed 7.7 KB push deliveries
 * (bench/out/, made once with WebCrypto and reused; bench/load/deliveries.ts),
 * each with its own `X-GitHub-Delivery`; valid and invalid signatures are
 * separate runs. A short warm-up (its own slice of the file) precedes every
 * measured run.
 *
 * Measured per run (bench/load/runs.ts): requests a second, p50/p99
 * latency, non-2xx count (wrk), server CPU per request (utime+stime from
 * /proc), peak RSS (VmHWM), wrk's own CPU, and for hookgate the /metrics
 * counts (accepted, duplicates, backlog). The table shows medians of the
 * repetitions; ratios are to (a) and (b) of the same run
 * (bench/load/report.ts). A dated section goes to bench/RESULTS.md and a
 * summary to bench/README-snippet.md (bench/load/record.ts).
 *
 * With `--remote-kv` (issue 15) it runs instead hookgate on a KV Connect
 * URL served by the test server `tests/fixtures/kv_connect/server.ts` at
 * each round trip of `--rtt` (bench/load/remote_kv.ts), and records its
 * own section of bench/RESULTS.md.
 *
 * With `--telemetry` (issue 17) it runs instead (d) with telemetry off and
 * with `OTEL_DENO=true` exporting to an OTLP sink on loopback, and with
 * `--baseline REF` also (d) from a git worktree of REF, interleaved in
 * every repetition (bench/load/telemetry.ts), and records its own section
 * of bench/RESULTS.md.
 *
 * Deno lets only `--allow-all` read /proc, so /proc files are read with
 * `cat` (hence `--allow-run`; bench/load/proc.ts).
 *
 * @module
 */

import { type LoadOptions, parseLoadArgs, USAGE } from "./load/args.ts";
import { type Children, createChildren, have, run } from "./load/children.ts";
import { OUT } from "./load/common.ts";
import { prepareRequests } from "./load/deliveries.ts";
import {
  gitHead,
  type Machine,
  machine,
  resultsSection,
  snippet,
  writeRecord,
} from "./load/record.ts";
import {
  consoleReport,
  table,
  targetLines,
  targets,
  threadTable,
} from "./load/report.ts";
import {
  remoteSection,
  remoteTable,
  remoteTargets,
  runAllRemote,
} from "./load/remote_kv.ts";
import { runAll } from "./load/runs.ts";
import {
  runAllTelemetry,
  telemetryReport,
  telemetrySection,
} from "./load/telemetry.ts";
import { summarize } from "./load/summary.ts";

/** The tools the benchmark runs, and how to get each. */
const TOOLS = [
  ["wrk", "install it: apt-get install -y wrk (Debian/Ubuntu)"],
  ["taskset", "install util-linux"],
  ["cat", "coreutils"],
] as const;

/** This machine, once the tools and the two cores are there; `null` (said on stderr) if not. */
async function checkMachine(): Promise<Machine | null> {
  for (const [cmd, hint] of TOOLS) {
    if (!(await have(cmd))) {
      console.error(`bench:load needs ${cmd}: ${hint}`);
      return null;
    }
  }
  const m = await machine();
  if (Number(m.nproc) < 2) {
    console.error(
      "bench:load needs 2 cores (server on core 0, wrk on core 1)",
    );
    return null;
  }
  return m;
}

/** The remote-KV rounds (issue 15): runs them, prints the report and records it; the exit code. */
async function benchRemote(
  children: Children,
  options: LoadOptions,
  m: Machine,
  dataFile: string,
  logDir: string,
): Promise<number> {
  const loadStart = (await run("cat", ["/proc/loadavg"])).trim();
  console.error(
    `hookgate remote-KV benchmark: round trips ${
      options.rtts.join(", ")
    } ms, ${options.kvLimits} limits, ${options.duration} s × ${options.reps} reps, ${options.connections} connections, warm-up ${options.warmup} s; load average ${loadStart}; wrk output in ${logDir}`,
  );
  const rounds = await runAllRemote(children, options, dataFile, logDir)
    .finally(() => children.killAll());
  const loadEnd = (await run("cat", ["/proc/loadavg"])).trim();
  const maxChecks = options.kvLimits === "denokv" ? 10 : 100;
  console.log(
    `\n${remoteTable(rounds)}\n\nTargets (issue 15):\n${
      targetLines(remoteTargets(rounds, maxChecks))
    }\n\nload average at the end: ${loadEnd}`,
  );
  if (!options.record) return 0;
  const context = {
    date: m.date,
    machine: `${m.nproc} cores, ${m.cpu}; Deno ${m.deno}; ${m.wrk} (1 thread)`,
    commit: await gitHead(),
    loadStart,
    loadEnd,
  };
  await writeRecord(remoteSection(context, options, rounds), null);
  return 0;
}

/** What a signal handler must undo at once (e.g. a git worktree), set while it exists. */
interface Cleanup {
  now: (() => void) | null;
}

/** The telemetry rounds (issue 17): runs them, prints the report and records it; the exit code. */
async function benchTelemetry(
  children: Children,
  options: LoadOptions,
  m: Machine,
  files: { dataFile: string; logDir: string },
  cleanup: Cleanup,
): Promise<number> {
  const loadStart = (await run("cat", ["/proc/loadavg"])).trim();
  console.error(
    `hookgate telemetry benchmark: (d) off, on${
      options.baseline ? `, and at ${options.baseline}` : ""
    }; ${options.duration} s × ${options.reps} reps, ${options.connections} connections, warm-up ${options.warmup} s; load average ${loadStart}; wrk output in ${files.logDir}`,
  );
  const { runs, baseline } = await runAllTelemetry(
    children,
    options,
    files.dataFile,
    files.logDir,
    (now) => cleanup.now = now,
  ).finally(() => children.killAll());
  const loadEnd = (await run("cat", ["/proc/loadavg"])).trim();
  console.log(
    `\n${telemetryReport(runs)}\n\nload average at the end: ${loadEnd}`,
  );
  if (!options.record) return 0;
  const context = {
    date: m.date,
    machine: `${m.nproc} cores, ${m.cpu}; Deno ${m.deno}; ${m.wrk} (1 thread)`,
    commit: await gitHead(),
    baseline: baseline &&
      { commit: baseline.commit, subject: baseline.subject },
    loadStart,
    loadEnd,
  };
  await writeRecord(telemetrySection(context, options, runs), null);
  return 0;
}

/** Runs the benchmark `options` ask for, prints the report and records it; the exit code. */
async function bench(
  children: Children,
  options: LoadOptions,
  cleanup: Cleanup,
): Promise<number> {
  const m = await checkMachine();
  if (m === null) return 1;
  const dataFile = await prepareRequests(OUT, options.requests);
  const stamp = m.date.replace(/[:]/g, "-");
  const logDir = `${OUT}${stamp}`;
  await Deno.mkdir(logDir, { recursive: true });
  if (options.remoteKv) {
    return await benchRemote(children, options, m, dataFile, logDir);
  }
  if (options.telemetry) {
    return await benchTelemetry(
      children,
      options,
      m,
      { dataFile, logDir },
      cleanup,
    );
  }
  const commit = await gitHead();
  console.error(
    `hookgate load benchmark: ${options.duration} s × ${options.reps} reps, ${options.connections} connections, warm-up ${options.warmup} s, event ${options.event}; wrk output in ${logDir}`,
  );
  const { runs, ceilings } = await runAll(children, options, dataFile, logDir)
    .finally(() => children.killAll());
  const summaries = summarize(runs);
  const report = {
    table: table(summaries, ceilings),
    threads: threadTable(summaries, ceilings),
    targets: targets(summaries, ceilings, options),
  };
  console.log(consoleReport(report.table, report.threads, report.targets));
  if (!options.record) return 0;
  await writeRecord(
    resultsSection(m, commit, options, report, runs, ceilings),
    snippet(summaries, ceilings, m, options),
  );
  return 0;
}

/**
 * Parses `args`, runs the benchmark with every child stopped at the end
 * (and on SIGINT or SIGTERM), and returns the exit code: 0, 1 when it
 * could not run or failed, 2 for a wrong flag.
 */
export async function main(args: readonly string[]): Promise<number> {
  const parsed = parseLoadArgs(args);
  if (parsed.kind === "help") {
    console.log(USAGE);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const children = createChildren();
  const cleanup: Cleanup = { now: null };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`\n${signal}: stopping every benchmark process`);
      children.killAll();
      cleanup.now?.();
      Deno.exit(130);
    });
  }
  try {
    return await bench(children, parsed.options, cleanup);
  } catch (err) {
    console.error(err instanceof Error ? err.stack ?? err.message : err);
    return 1;
  } finally {
    children.killAll();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
