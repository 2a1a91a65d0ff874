/**
 * What a recorded run leaves behind: a dated section appended to
 * bench/RESULTS.md (machine, code, load, the tables, the targets, every
 * run) and bench/README-snippet.md (the README's performance paragraph),
 * both then aligned with `deno fmt`. The text is made by pure functions;
 * only {@link writeRecord} writes, and only when the run is recorded.
 *
 * @module
 */

import { BODY_BYTES } from "../servers/_payload.ts";
import type { LoadOptions } from "./args.ts";
import { run } from "./children.ts";
import {
  BENCH,
  type CeilingResult,
  LOAD_CORE,
  type Mode,
  ROOT,
  type RunResult,
  type Server,
  SERVER_CORE,
} from "./common.ts";
import { fmtMs, repTable, type Target, targetLines } from "./report.ts";
import {
  ceilingRate,
  ceilingRuns,
  median,
  medianCosts,
  rpsOf,
  type Summary,
  summaryOf,
} from "./summary.ts";

/** Where and with what the run was measured. */
export interface Machine {
  /** ISO time of the run, to the second. */
  date: string;
  nproc: string;
  cpu: string;
  deno: string;
  wrk: string;
}

/**
 * This machine: cores, CPU model, Deno and wrk versions, and the time.
 *
 * @example
 * ```ts
 * import { machine } from "./record.ts";
 * const m = await machine();
 * ```
 */
export async function machine(): Promise<Machine> {
  const cpuinfo = await run("cat", ["/proc/cpuinfo"]);
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  const nproc = (await run("nproc", [])).trim();
  const wrkVersion = (await new Deno.Command("wrk", { args: ["--version"] })
    .output().then((o) => new TextDecoder().decode(o.stdout)))
    .split("\n")[0]!.replace(/ Copyright.*/, "").trim();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    nproc,
    cpu: model,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    wrk: wrkVersion,
  };
}

/**
 * The commit measured, with a note when main.ts or lib/ have uncommitted
 * changes; `unknown` outside a git checkout.
 *
 * @example
 * ```ts
 * import { gitHead } from "./record.ts";
 * const commit = await gitHead();
 * ```
 */
export async function gitHead(): Promise<string> {
  try {
    const head =
      (await run("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]))
        .trim();
    const dirty = (await run("git", [
      "-C",
      ROOT,
      "status",
      "--porcelain",
      "--",
      "main.ts",
      "lib",
    ]))
      .trim() !== "";
    return dirty ? `${head} + uncommitted changes in main.ts/lib` : head;
  } catch {
    return "unknown";
  }
}

/** Where a stored delivery's CPU goes, from the per-thread figures. */
function cpuSentence(
  summaries: readonly Summary[],
  ceilings: readonly CeilingResult[],
): string {
  const d = summaryOf(summaries, "d", "good");
  const es = ceilingRuns(ceilings, "e");
  if (!d || es.length === 0) return "";
  const dCosts = medianCosts(d.runs.map((r) => r.threadUsPerReq));
  const eCosts = medianCosts(es.map((c) => c.threadUsPerReq));
  const us = (costs: Record<string, number>, name: string) =>
    (costs[name] ?? 0).toFixed(0);
  return ` On a KV file a delivery costs ${
    median(d.runs.map((r) => r.serverCpuUsPerReq)).toFixed(0)
  } µs of CPU, ${
    us(dCosts, "sw")
  } µs of it in Deno KV's SQLite writer thread and ${
    us(dCosts, "main")
  } µs in JavaScript (storing alone, group-committed: ${
    us(eCosts, "sw")
  } µs and ${us(eCosts, "main")} µs).`;
}

/**
 * bench/README-snippet.md: the README's performance paragraph, ratios
 * within this run only.
 *
 * @example
 * ```ts
 * import { snippet } from "./record.ts";
 * // await Deno.writeTextFile("bench/README-snippet.md", snippet(summaries, ceilings, m, options));
 * ```
 */
export function snippet(
  summaries: readonly Summary[],
  ceilings: readonly CeilingResult[],
  m: Machine,
  options: Pick<LoadOptions, "connections">,
): string {
  const rps = (server: Server, mode: Mode) => rpsOf(summaries, server, mode);
  const r = (x: number | undefined, y: number | undefined) =>
    x && y ? (x / y).toFixed(2) : "?";
  const e = ceilingRate(ceilings, "e");
  const d = summaryOf(summaries, "d", "good");
  const a = summaryOf(summaries, "a", "good");
  const aBound = a !== undefined &&
    median(a.runs.map((r) => r.wrkCpuShare)) >= 0.85;
  return `### Performance

Measured with \`deno task bench:load\` (${
    m.date.slice(0, 10)
  }, ${m.nproc} cores, ${m.cpu}, Deno ${Deno.version.deno}; server on one core, \`wrk\` on the other, ${options.connections} keep-alive connections, distinct signed ${
    (BODY_BYTES / 1000).toFixed(1)
  } KB push deliveries; figures move ±30 % between runs, so only ratios within one run are given, see \`bench/RESULTS.md\`). Against a minimal Deno receiver that only verifies the signature and parses the JSON, hookgate rejects bad signatures at ${
    r(rps("c", "bad"), rps("b", "bad"))
  } × its rate and accepts valid deliveries at ${
    r(rps("c", "good"), rps("b", "good"))
  } × with \`KV_PATH=:memory:\` and ${
    r(rps("d", "good"), rps("b", "good"))
  } × with a KV file, where every \`202\` is sent only after the delivery is durably stored. With a KV file it reaches ${
    r(d?.rps, e)
  } × the rate at which Deno KV itself can store the same records and bodies group-committed 32 at a time (no HTTP), with a p99 latency of ${
    d ? fmtMs(d.p99Ms) : "?"
  } ms. A bare \`Deno.serve\` that reads the body and answers 200 is ${
    r(rps("a", "good"), rps("b", "good"))
  } × the minimal receiver${
    aBound ? " (at least: `wrk` saturated its core there)" : ""
  }: that is the ceiling of the HTTP stack.${cpuSentence(summaries, ceilings)}
`;
}

/** The tables and targets a section shows, made once for stdout and the record. */
export interface Report {
  table: string;
  threads: string;
  targets: readonly Target[];
}

/**
 * The dated section appended to bench/RESULTS.md.
 *
 * @example
 * ```ts
 * import { resultsSection } from "./record.ts";
 * // resultsSection(m, commit, options, report, runs, ceilings)
 * ```
 */
export function resultsSection(
  m: Machine,
  commit: string,
  options: Pick<
    LoadOptions,
    "threads" | "connections" | "duration" | "warmup" | "reps" | "event"
  >,
  report: Report,
  runs: readonly RunResult[],
  ceilings: readonly CeilingResult[],
): string {
  const { threads, connections, duration, warmup, reps, event } = options;
  return `## ${m.date}

Machine: ${m.nproc} cores, ${m.cpu}; Deno ${m.deno}; ${m.wrk}. Code: ${commit}.
Load: wrk, ${threads} thread on core ${LOAD_CORE}, server on core ${SERVER_CORE} (\`taskset\`), ${connections} keep-alive connections, ${duration} s per run after a ${warmup} s warm-up, ${reps} repetitions (medians shown; each run on a fresh server process and fresh KV), distinct ${BODY_BYTES}-byte push bodies each with its own \`X-GitHub-Delivery\` and a valid (or, for "invalid", a wrong but well-formed) \`X-Hub-Signature-256\`. hookgate: \`IP_ALLOWLIST=off\`, \`LOG_LEVEL=warn\`, event \`${event}\`${
    event === "push"
      ? " (the shipped push handler runs in the worker, logging at info, i.e. nothing)"
      : ""
  }, other settings default.

${report.table}

Server CPU µs per request by thread (median; \`main\` runs the JavaScript, \`tokio-runtime-w\` the HTTP I/O and blocking ops, \`sw\` is Deno KV's SQLite writer, \`V8 DefaultWorke\` V8's GC and compiler helpers):

${report.threads}

Targets (issue 6):
${targetLines(report.targets)}

<details><summary>Every run</summary>

${repTable(runs, ceilings)}

</details>
`;
}

/** The header bench/RESULTS.md starts with, written with its first section. */
export const RESULTS_HEADER = "# Load benchmark results\n\n" +
  "Appended by `deno task bench:load` (`bench/load.ts`), oldest first. " +
  "Figures move ±30 % between runs on shared machines: compare ratios " +
  "within one run.\n";

/**
 * Appends `section` to `bench` + RESULTS.md (with its header if the file
 * is new), writes README-snippet.md there (unless `snippetText` is null),
 * and aligns both with `deno fmt` (so that `deno task ok` stays clean).
 *
 * @example
 * ```ts
 * import { writeRecord } from "./record.ts";
 * // await writeRecord(section, snippetText);
 * ```
 */
export async function writeRecord(
  section: string,
  snippetText: string | null,
  bench: string = BENCH,
): Promise<void> {
  const resultsPath = `${bench}RESULTS.md`;
  const snippetPath = `${bench}README-snippet.md`;
  let exists = true;
  try {
    await Deno.stat(resultsPath);
  } catch {
    exists = false;
  }
  await Deno.writeTextFile(
    resultsPath,
    `${exists ? "" : RESULTS_HEADER}\n${section}`,
    { append: true },
  );
  if (snippetText !== null) await Deno.writeTextFile(snippetPath, snippetText);
  const written = snippetText === null
    ? [resultsPath]
    : [resultsPath, snippetPath];
  await run(Deno.execPath(), [
    "fmt",
    "--config",
    `${ROOT}deno.json`,
    ...written,
  ]);
  console.error(`\nwrote ${written.join(" and ")}`);
}
