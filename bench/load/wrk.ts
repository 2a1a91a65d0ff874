/**
 * The load generator: `wrk` with bench/load.lua on the load core, sending
 * a slice of the request file, and the `BENCH {json}` summary line that
 * load.lua prints at the end. It neither starts servers nor reads /proc.
 *
 * @module
 */

import type { LoadOptions } from "./args.ts";
import type { Children } from "./children.ts";
import { drain } from "./children.ts";
import { BENCH, LOAD_CORE, type Mode } from "./common.ts";

/** What bench/load.lua's `done()` reports of one wrk run. */
export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: {
    connect: number;
    read: number;
    write: number;
    status: number;
    timeout: number;
  };
  latencyUs: {
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
  };
  cpuSeconds: number;
}

/** One wrk run: where to send what, and for how long. */
export interface WrkRun {
  port: number;
  dataFile: string;
  mode: Mode;
  /** The first request-file entry sent. */
  first: number;
  /** How many entries, from `first`, are cycled through. */
  count: number;
  seconds: number;
}

/**
 * The `taskset` arguments that run wrk with load.lua on the load core.
 *
 * @example
 * ```ts
 * import { wrkArgs } from "./wrk.ts";
 * const args = wrkArgs({ threads: 1, connections: 32, event: "push" }, {
 *   port: 8000, dataFile: "r.txt", mode: "good", first: 0, count: 10, seconds: 2,
 * });
 * // ["-c", "1", "wrk", "-t1", "-c32", "-d2s", …]
 * ```
 */
export function wrkArgs(
  options: Pick<LoadOptions, "threads" | "connections" | "event">,
  r: WrkRun,
): string[] {
  return [
    "-c",
    LOAD_CORE,
    "wrk",
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${r.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    `${BENCH}load.lua`,
    `http://127.0.0.1:${r.port}/webhook`,
    "--",
    r.dataFile,
    r.mode,
    String(r.first),
    String(r.count),
    options.event,
    String(options.threads),
  ];
}

/**
 * The summary in wrk's output (the line `BENCH {json}`), or `null` when
 * there is none.
 *
 * @example
 * ```ts
 * import { parseWrkOutput } from "./wrk.ts";
 * parseWrkOutput(["LOADED", 'BENCH {"requests":5}'])?.requests; // 5
 * ```
 */
export function parseWrkOutput(lines: readonly string[]): WrkResult | null {
  const line = lines.find((l) => l.startsWith("BENCH "));
  return line === undefined ? null : JSON.parse(line.slice(6)) as WrkResult;
}

/**
 * Runs wrk to its end and returns its summary, its output saved to
 * `logFile` if given. load.lua prints `LOADED` once a thread has read the
 * data file: `onLoaded` is called when the last one has, as the clock
 * starts.
 *
 * @example
 * ```ts
 * import { runWrk } from "./wrk.ts";
 * // const result = await runWrk(children, options, run, null);
 * ```
 */
export async function runWrk(
  children: Children,
  options: Pick<LoadOptions, "threads" | "connections" | "event">,
  r: WrkRun,
  logFile: string | null,
  onLoaded?: () => void,
): Promise<WrkResult> {
  const child = children.spawn("taskset", wrkArgs(options, r), {
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const lines: string[] = [];
  let loaded = 0;
  const pumps = Promise.all([
    drain(child.stdout, lines, (line) => {
      if (line === "LOADED" && ++loaded === options.threads) onLoaded?.();
    }),
    drain(child.stderr, lines),
  ]);
  const status = await child.status;
  await pumps;
  const text = lines.join("\n");
  if (logFile) await Deno.writeTextFile(logFile, text);
  const result = parseWrkOutput(lines);
  if (!status.success || !result) throw new Error(`wrk failed:\n${text}`);
  return result;
}
