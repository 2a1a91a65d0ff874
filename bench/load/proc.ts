/**
 * A benchmark process's readings from /proc: CPU seconds (all threads, and
 * by thread name) and peak RSS, and CPU per request between two readings.
 * Deno lets only `--allow-all` read /proc, so the files are read with
 * `cat` (hence `--allow-run`); the parsing is pure.
 *
 * @module
 */

import { run } from "./children.ts";

/** Clock ticks a second of /proc/<pid>/stat's utime and stime. */
const CLK_TCK = 100;

/** CPU seconds of a process (all threads, and by thread) and its peak RSS. */
export interface ProcStats {
  cpu: number;
  peakRss: number;
  /** CPU seconds by thread name; the main (JS) thread is `main`. */
  threads: Map<string, number>;
}

/**
 * The id, name and CPU seconds (utime + stime) of one /proc `stat` line.
 *
 * @example
 * ```ts
 * import { statCpu } from "./proc.ts";
 * statCpu("7 (deno) S 1 7 7 0 -1 0 0 0 0 0 150 50 0 0");
 * // { tid: 7, comm: "deno", cpu: 2 }
 * ```
 */
export function statCpu(
  line: string,
): { tid: number; comm: string; cpu: number } {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  const fields = line.slice(close + 2).split(" ");
  return {
    tid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
  };
}

/**
 * A field of /proc/<pid>/status given in kB (e.g. `VmHWM`), in bytes; 0
 * when it is missing.
 *
 * @example
 * ```ts
 * import { statusBytes } from "./proc.ts";
 * statusBytes("VmHWM:\t  2048 kB\n", "VmHWM"); // 2097152
 * ```
 */
export function statusBytes(status: string, name: string): number {
  const kb = new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

/**
 * Parses what {@link procStats} reads: the process's `stat` and `status`,
 * a `---` line, then every thread's `stat`. Threads are summed by name,
 * with trailing digits and dashes dropped; the main thread is `main`.
 *
 * @example
 * ```ts
 * import { parseProcStats } from "./proc.ts";
 * const text = "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 150 50\nVmHWM: 4 kB\n---\n" +
 *   "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 100 0\n8 (sw) S 1 7 7 0 -1 0 0 0 0 0 90 10\n";
 * parseProcStats(7, text).threads; // Map { "main" => 1, "sw" => 1 }
 * ```
 */
export function parseProcStats(pid: number, text: string): ProcStats {
  const [head = "", tasks = ""] = text.split("\n---\n");
  const cpu = statCpu(head.slice(0, head.indexOf("\n"))).cpu;
  const threads = new Map<string, number>();
  for (const line of tasks.split("\n")) {
    if (line.trim() === "") continue;
    const t = statCpu(line);
    const name = t.tid === pid ? "main" : t.comm.replace(/[-\d]+$/, "");
    threads.set(name, (threads.get(name) ?? 0) + t.cpu);
  }
  return { cpu, peakRss: statusBytes(head, "VmHWM"), threads };
}

/**
 * Reads /proc/<pid>/{stat,status} and every thread's stat, with `cat`.
 *
 * @example
 * ```ts
 * import { procStats } from "./proc.ts";
 * const { cpu, peakRss } = await procStats(Deno.pid);
 * ```
 */
export async function procStats(pid: number): Promise<ProcStats> {
  const text = await run("sh", [
    "-c",
    `cat /proc/${pid}/stat /proc/${pid}/status; echo ---; cat /proc/${pid}/task/*/stat 2>/dev/null || true`,
  ]);
  return parseProcStats(pid, text);
}

/**
 * CPU per request by thread name between two readings (µs); CPU of
 * threads that ended in between is `(ended threads)`.
 *
 * @example
 * ```ts
 * import { threadCosts } from "./proc.ts";
 * const s0 = { cpu: 0, peakRss: 0, threads: new Map([["main", 0]]) };
 * const s1 = { cpu: 1, peakRss: 0, threads: new Map([["main", 1]]) };
 * threadCosts(s0, s1, 1000); // { main: 1000 }
 * ```
 */
export function threadCosts(
  s0: ProcStats,
  s1: ProcStats,
  requests: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  let named = 0;
  for (const [name, cpu] of s1.threads) {
    const d = Math.max(0, cpu - (s0.threads.get(name) ?? 0));
    out[name] = d * 1e6 / requests;
    named += d;
  }
  // Threads that ended between the samples are only in the process total.
  const rest = s1.cpu - s0.cpu - named;
  if (rest > 0.005) out["(ended threads)"] = rest * 1e6 / requests;
  return out;
}
