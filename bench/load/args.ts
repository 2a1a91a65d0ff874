/**
 * The load benchmark's command line: the usage text, and flags parsed and
 * validated into {@link LoadOptions}. Pure: it prints nothing and never
 * exits; `bench/load.ts` does that with the result.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Ceiling, CEILINGS, type Server, SERVERS } from "./common.ts";

/** Keep-alive connections of the remote-KV mode unless `--connections` says. */
export const REMOTE_CONNECTIONS = 256;

/** The KV Connect test server's limits: self-hosted denokv's or Deno Deploy's. */
export type KvServerLimits = "denokv" | "deploy";

/** The text `--help` prints, and every flag error ends with. */
export const USAGE = `deno task bench:load [options]

  --duration S      seconds of each measured run (default 10)
  --connections N   keep-alive connections (default 32; 256 with --remote-kv)
  --reps N          repetitions of every run (default 3)
  --only LIST       which of a,b,c,d,e,e1 to run (default all)
  --warmup S        seconds of warm-up before each run (default 1; 0: none)
  --requests N      distinct signed deliveries to prepare (default 300000)
  --threads N       wrk threads (default 1: wrk has one core)
  --event NAME      X-GitHub-Event sent (default push: the shipped handler)
  --cpu-prof        run the servers with --cpu-prof, print their hottest functions
  --no-record       do not write bench/RESULTS.md and bench/README-snippet.md
  --env NAME=VALUE  extra variable for hookgate (c, d), repeatable; implies
                    --no-record (e.g. --env MAX_CONCURRENCY=32)
  --parallel N      run hookgate (c, d) under deno serve --parallel with N
                    isolates on every core (shared with wrk); implies --no-record
  --remote-kv       instead of a..e1: hookgate on a KV Connect URL served by
                    tests/fixtures/kv_connect/server.ts with a delay a request
                    for each round trip of --rtt (issue 15); records its own
                    section in bench/RESULTS.md (not README-snippet.md)
  --rtt LIST        round trips in ms for --remote-kv (default 0,20,100)
  --kv-limits NAME  the KV server's limits for --remote-kv: denokv (10 checks
                    a commit, the default) or deploy (100)
  --telemetry       instead of a..e1: hookgate on a KV file (d) with valid
                    signatures, telemetry off and with OTEL_DENO=true
                    exporting to an OTLP sink on loopback, interleaved in
                    every repetition (issue 17); records its own section in
                    bench/RESULTS.md (not README-snippet.md)
  --baseline REF    with --telemetry: also run (d) from a git worktree of
                    commit REF (e.g. the commit before tracing)
  --help            this text

Needs wrk (Debian: apt-get install -y wrk) and taskset (util-linux).`;

/** Everything one benchmark run depends on, from its flags. */
export interface LoadOptions {
  /** Seconds of each measured run. */
  duration: number;
  /** wrk's keep-alive connections. */
  connections: number;
  /** Repetitions of every run. */
  reps: number;
  /** Seconds of warm-up before each run (0: none). */
  warmup: number;
  /** Distinct signed deliveries in the request file. */
  requests: number;
  /** wrk threads. */
  threads: number;
  /** The `X-GitHub-Event` sent. */
  event: string;
  /** Run the servers with `--cpu-prof` and print their hottest functions. */
  cpuProf: boolean;
  /** hookgate (c, d) under `deno serve --parallel` with this many isolates. */
  parallel: number;
  /** Write bench/RESULTS.md and bench/README-snippet.md. */
  record: boolean;
  /** Extra variables for hookgate (c, d): tuning knobs, e.g. MAX_CONCURRENCY=32. */
  extraEnv: Record<string, string>;
  /** The servers and ceilings to run. */
  only: ReadonlySet<Server | Ceiling>;
  /** Run the remote-KV rounds (issue 15) instead of the servers and ceilings. */
  remoteKv: boolean;
  /** The round trips of the remote-KV rounds, ms. */
  rtts: readonly number[];
  /** The KV Connect test server's limits in the remote-KV rounds. */
  kvLimits: KvServerLimits;
  /** Run the telemetry rounds (issue 17) instead of the servers and ceilings. */
  telemetry: boolean;
  /** With `telemetry`: the commit whose hookgate is run as well, or null. */
  baseline: string | null;
  /** Request-file entries kept for the warm-up (at the end of the file). */
  warmupEntries: number;
  /** Request-file entries the measured runs cycle through (from the start). */
  measuredEntries: number;
}

/** What the flags asked for: the usage text, a flag error, or a run. */
export type ParsedArgs =
  | { kind: "help" }
  | { kind: "error"; message: string }
  | { kind: "run"; options: LoadOptions };

/**
 * `value` as an integer of at least 1 (or 0 with `zero`), or the message
 * saying why not.
 *
 * @example
 * ```ts
 * import { positiveInteger } from "./args.ts";
 * positiveInteger("reps", "3"); // 3
 * positiveInteger("reps", "0"); // "Cannot run as 'reps' must be a positive integer: current value is 0"
 * ```
 */
export function positiveInteger(
  name: string,
  value: string,
  zero = false,
): number | string {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (zero ? 0 : 1)) {
    return `Cannot run as '${name}' must be a ${
      zero ? "non-negative" : "positive"
    } integer: current value is ${value}`;
  }
  return n;
}

/**
 * `NAME=value` pairs as variables, or the message naming the first pair
 * that is not one.
 *
 * @example
 * ```ts
 * import { parseEnvPairs } from "./args.ts";
 * parseEnvPairs(["MAX_CONCURRENCY=32"]); // { MAX_CONCURRENCY: "32" }
 * ```
 */
export function parseEnvPairs(
  pairs: readonly string[],
): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq < 1) {
      return `Cannot run as '--env' must be NAME=value: current value is ${pair}`;
    }
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/**
 * The comma-separated servers and ceilings of `--only`, or the message
 * naming the first unknown one.
 *
 * @example
 * ```ts
 * import { parseOnly } from "./args.ts";
 * parseOnly("a, c"); // Set { "a", "c" }
 * ```
 */
export function parseOnly(list: string): Set<Server | Ceiling> | string {
  const names: readonly string[] = [...SERVERS, ...CEILINGS];
  const only = new Set<Server | Ceiling>();
  for (const name of list.split(",").map((s) => s.trim())) {
    if (!names.includes(name)) {
      return `Cannot run as '--only' names unknown '${name}'`;
    }
    only.add(name as Server | Ceiling);
  }
  return only;
}

/**
 * The comma-separated round trips of `--rtt` (ms, each a non-negative
 * integer), or the message naming the first that is not one.
 *
 * @example
 * ```ts
 * import { parseRtts } from "./args.ts";
 * parseRtts("0, 20,100"); // [0, 20, 100]
 * parseRtts("20,x"); // "Cannot run as '--rtt' names 'x', not a whole number of ms"
 * ```
 */
export function parseRtts(list: string): number[] | string {
  const out: number[] = [];
  for (const item of list.split(",").map((s) => s.trim())) {
    const n = Number(item);
    if (item === "" || !Number.isInteger(n) || n < 0) {
      return `Cannot run as '--rtt' names '${item}', not a whole number of ms`;
    }
    out.push(n);
  }
  return out;
}

/**
 * The `--baseline` commit as given, if it can only name a commit to git
 * (letters, digits and `._/~^-`, not starting with `-`, no `..`, at most
 * 100 characters), or the message saying why not. Whether it names one is
 * for git to say when the worktree is made.
 *
 * @example
 * ```ts
 * import { parseBaseline } from "./args.ts";
 * parseBaseline("c5a7af2"); // { ref: "c5a7af2" }
 * parseBaseline("--force"); // { message: "Cannot run as '--baseline' must name a commit: current value is --force" }
 * ```
 */
export function parseBaseline(ref: string): { ref: string } | {
  message: string;
} {
  if (
    ref.length > 100 || ref.includes("..") ||
    !/^[A-Za-z0-9_][A-Za-z0-9._\/~^-]*$/.test(ref)
  ) {
    return {
      message:
        `Cannot run as '--baseline' must name a commit: current value is ${ref}`,
    };
  }
  return { ref };
}

/**
 * How the request file is shared out: the warm-up gets its own entries at
 * the end (a fifth, at most 100,000; none without a warm-up), so that a
 * measured run never repeats a body the server stored during its warm-up.
 *
 * @example
 * ```ts
 * import { splitEntries } from "./args.ts";
 * splitEntries(300_000, 1); // { warmupEntries: 60000, measuredEntries: 240000 }
 * ```
 */
export function splitEntries(
  requests: number,
  warmup: number,
): { warmupEntries: number; measuredEntries: number } {
  const warmupEntries = warmup > 0
    ? Math.min(Math.floor(requests / 5), 100_000)
    : 0;
  return { warmupEntries, measuredEntries: requests - warmupEntries };
}

/** `--baseline` checked against `--telemetry` and `--remote-kv`: the commit (or null), or the problem. */
function telemetryFlags(
  telemetry: boolean,
  remoteKv: boolean,
  baseline: string | undefined,
): { ref: string | null } | { message: string } {
  if (telemetry && remoteKv) {
    return {
      message: "Cannot run as '--telemetry' and '--remote-kv' are both given",
    };
  }
  if (baseline === undefined) return { ref: null };
  if (!telemetry) {
    return { message: "Cannot run as '--baseline' needs '--telemetry'" };
  }
  return parseBaseline(baseline);
}

/**
 * Parses and validates the benchmark's flags. Flag values that are wrong
 * give the first problem's message (checked in the order of the usage
 * text's numbers, then `--env`, `--only`, `--rtt`, `--kv-limits`,
 * `--telemetry` with `--remote-kv`, and `--baseline`);
 * unknown flags throw, as `parseArgs` does.
 *
 * @example
 * ```ts
 * import { parseLoadArgs } from "./args.ts";
 * const parsed = parseLoadArgs(["--only", "a,b", "--duration", "2"]);
 * if (parsed.kind === "run") parsed.options.duration; // 2
 * ```
 */
export function parseLoadArgs(args: readonly string[]): ParsedArgs {
  const { values: flags } = parseArgs({
    args: [...args],
    options: {
      duration: { type: "string", default: "10" },
      connections: { type: "string" },
      reps: { type: "string", default: "3" },
      only: { type: "string", default: "a,b,c,d,e,e1" },
      warmup: { type: "string", default: "1" },
      requests: { type: "string", default: "300000" },
      threads: { type: "string", default: "1" },
      event: { type: "string", default: "push" },
      "cpu-prof": { type: "boolean", default: false },
      "no-record": { type: "boolean", default: false },
      env: { type: "string", multiple: true, default: [] },
      parallel: { type: "string", default: "1" },
      "remote-kv": { type: "boolean", default: false },
      rtt: { type: "string", default: "0,20,100" },
      "kv-limits": { type: "string", default: "denokv" },
      telemetry: { type: "boolean", default: false },
      baseline: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (flags.help) return { kind: "help" };
  const problems: string[] = [];
  const int = (name: string, value: string, zero = false): number => {
    const n = positiveInteger(name, value, zero);
    if (typeof n === "number") return n;
    problems.push(n);
    return 0;
  };
  const duration = int("duration", flags.duration);
  const remoteKv = flags["remote-kv"];
  const connections = int(
    "connections",
    flags.connections ?? (remoteKv ? String(REMOTE_CONNECTIONS) : "32"),
  );
  const reps = int("reps", flags.reps);
  const warmup = int("warmup", flags.warmup, true);
  const requests = int("requests", flags.requests);
  const threads = int("threads", flags.threads);
  const parallel = int("parallel", flags.parallel);
  if (problems[0] !== undefined) return { kind: "error", message: problems[0] };
  const extraEnv = parseEnvPairs(flags.env);
  if (typeof extraEnv === "string") return { kind: "error", message: extraEnv };
  const only = parseOnly(flags.only);
  if (typeof only === "string") return { kind: "error", message: only };
  const rtts = parseRtts(flags.rtt);
  if (typeof rtts === "string") return { kind: "error", message: rtts };
  const kvLimits = flags["kv-limits"];
  if (kvLimits !== "denokv" && kvLimits !== "deploy") {
    return {
      kind: "error",
      message:
        `Cannot run as '--kv-limits' must be denokv or deploy: current value is ${kvLimits}`,
    };
  }
  const telemetry = flags.telemetry;
  const baseline = telemetryFlags(telemetry, remoteKv, flags.baseline);
  if ("message" in baseline) {
    return { kind: "error", message: baseline.message };
  }
  return {
    kind: "run",
    options: {
      duration,
      connections,
      reps,
      warmup,
      requests,
      threads,
      event: flags.event,
      cpuProf: flags["cpu-prof"],
      parallel,
      record: !flags["no-record"] && flags.env.length === 0 && parallel === 1,
      extraEnv,
      only,
      remoteKv,
      rtts,
      kvLimits,
      telemetry,
      baseline: baseline.ref,
      ...splitEntries(requests, warmup),
    },
  };
}
