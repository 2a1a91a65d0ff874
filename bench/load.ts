/**
 * The load benchmark (issue 6): how close hookgate comes to the Deno HTTP
 * stack's ceiling and to Deno KV's write ceiling, on this machine, in one
 * run. Started by `deno task bench:load`; see the usage text below.
 *
 * Servers, each started fresh for every run, one after another, pinned to
 * core 0 (`taskset`):
 * - (a) `bench/servers/ceiling.ts`: `Deno.serve` reads the body, answers 200;
 * - (b) `bench/servers/minimal.ts`: body, WebCrypto HMAC verify, `JSON.parse`;
 * - (c) hookgate `main.ts` with `KV_PATH=:memory:`;
 * - (d) hookgate `main.ts` with a KV file in a temporary folder;
 * - (e) `bench/servers/kv_ceiling.ts`: the same records and bodies
 *   group-committed to a KV file, 32 per commit, no HTTP; (e1) the same, one
 *   delivery per commit.
 *
 * Load: `wrk` on core 1 with `bench/load.lua`, which cycles through a file of
 * distinct, pre-signed 7.7 KB push deliveries (bench/out/, made once with
 * WebCrypto and reused), each with its own `X-GitHub-Delivery`; valid and
 * invalid signatures are separate runs. A short warm-up (its own slice of
 * the file) precedes every measured run.
 *
 * Measured per run: requests a second, p50/p99 latency, non-2xx count (wrk),
 * server CPU per request (utime+stime from /proc), peak RSS (VmHWM), wrk's
 * own CPU, and for hookgate the /metrics counts (accepted, duplicates,
 * backlog). The table shows medians of the repetitions; ratios are to (a)
 * and (b) of the same run. A dated section goes to bench/RESULTS.md and a
 * summary to bench/README-snippet.md.
 *
 * Deno lets only `--allow-all` read /proc, so /proc files are read with
 * `cat` (hence `--allow-run`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BENCH_SECRET,
  BODY_BYTES,
  deliveryIdFor,
  nonceFor,
  pushTemplate,
  randomSalt,
} from "./servers/_payload.ts";

const USAGE = `deno task bench:load [options]

  --duration S      seconds of each measured run (default 10)
  --connections N   keep-alive connections (default 32)
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
  --help            this text

Needs wrk (Debian: apt-get install -y wrk) and taskset (util-linux).`;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
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
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(USAGE);
  Deno.exit(0);
}

function positive(name: string, value: string, zero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (zero ? 0 : 1)) {
    console.error(
      `Cannot run as '${name}' must be a ${
        zero ? "non-negative" : "positive"
      } integer: current value is ${value}\n\n${USAGE}`,
    );
    Deno.exit(2);
  }
  return n;
}

const DURATION = positive("duration", flags.duration);
const CONNECTIONS = positive("connections", flags.connections);
const REPS = positive("reps", flags.reps);
const WARMUP = positive("warmup", flags.warmup, true);
const REQUESTS = positive("requests", flags.requests);
const THREADS = positive("threads", flags.threads);
const EVENT = flags.event;
const CPU_PROF = flags["cpu-prof"];
/** hookgate (c, d) under `deno serve --parallel` with this many isolates. */
const PARALLEL = positive("parallel", flags.parallel);
const RECORD = !flags["no-record"] && flags.env.length === 0 && PARALLEL === 1;
/** Extra variables for hookgate (c, d): tuning knobs, e.g. MAX_CONCURRENCY=32. */
const EXTRA_ENV: Record<string, string> = {};
for (const pair of flags.env) {
  const eq = pair.indexOf("=");
  if (eq < 1) {
    console.error(
      `Cannot run as '--env' must be NAME=value: current value is ${pair}\n\n${USAGE}`,
    );
    Deno.exit(2);
  }
  EXTRA_ENV[pair.slice(0, eq)] = pair.slice(eq + 1);
}

type Server = "a" | "b" | "c" | "d";
type Ceiling = "e" | "e1";
type Mode = "good" | "bad";
const SERVERS: readonly Server[] = ["a", "b", "c", "d"];
const CEILINGS: readonly Ceiling[] = ["e", "e1"];
const MODES: readonly Mode[] = ["good", "bad"];
const only = new Set(flags.only.split(",").map((s) => s.trim()));
for (const name of only) {
  if (![...SERVERS, ...CEILINGS].includes(name as Server)) {
    console.error(`Cannot run as '--only' names unknown '${name}'\n\n${USAGE}`);
    Deno.exit(2);
  }
}

const LABELS: Record<Server | Ceiling, string> = {
  a: "(a) Deno.serve, body read",
  b: "(b) minimal verify+parse",
  c: "(c) hookgate, KV :memory:",
  d: "(d) hookgate, KV file",
  e: "(e) KV ceiling, 32/commit",
  e1: "(e1) KV, 1/commit",
};

const ROOT = new URL("..", import.meta.url).pathname;
const BENCH = `${ROOT}bench/`;
const OUT = `${BENCH}out/`;
const CLK_TCK = 100;
const SERVER_CORE = "0";
const LOAD_CORE = "1";
// Entries at the end of the file are the warm-up's, so that a measured run
// never repeats a body the server stored during its warm-up.
const WARMUP_ENTRIES = WARMUP > 0
  ? Math.min(Math.floor(REQUESTS / 5), 100_000)
  : 0;
const MEASURED_ENTRIES = REQUESTS - WARMUP_ENTRIES;

// ---------------------------------------------------------------------------
// Processes: every child is tracked and stopped, also on Ctrl-C.

const live = new Set<Deno.ChildProcess>();

function spawn(
  cmd: string,
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, ...options }).spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

function killAll(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`\n${signal}: stopping every benchmark process`);
    killAll();
    Deno.exit(130);
  });
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function have(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds of a process (all threads, and by thread) and its peak RSS. */
interface ProcStats {
  cpu: number;
  peakRss: number;
  /** CPU seconds by thread name; the main (JS) thread is `main`. */
  threads: Map<string, number>;
}

function statCpu(line: string): { tid: number; comm: string; cpu: number } {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  const fields = line.slice(close + 2).split(" ");
  return {
    tid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
  };
}

/** Reads /proc/<pid>/{stat,status} and every thread's stat, with `cat`. */
async function procStats(pid: number): Promise<ProcStats> {
  const text = await run("sh", [
    "-c",
    `cat /proc/${pid}/stat /proc/${pid}/status; echo ---; cat /proc/${pid}/task/*/stat 2>/dev/null || true`,
  ]);
  const [head = "", tasks = ""] = text.split("\n---\n");
  const cpu = statCpu(head.slice(0, head.indexOf("\n"))).cpu;
  const kb = /VmHWM:\s+(\d+) kB/.exec(head)?.[1];
  const threads = new Map<string, number>();
  for (const line of tasks.split("\n")) {
    if (line.trim() === "") continue;
    const t = statCpu(line);
    const name = t.tid === pid ? "main" : t.comm.replace(/[-\d]+$/, "");
    threads.set(name, (threads.get(name) ?? 0) + t.cpu);
  }
  return { cpu, peakRss: Number(kb ?? 0) * 1024, threads };
}

/** CPU per request by thread name between two samples (µs). */
function threadCosts(
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

/** Keeps the last lines a child printed (so its pipes never fill up). */
function drain(
  stream: ReadableStream<Uint8Array>,
  keep: string[],
  onLine?: (line: string) => void,
): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        keep.push(line);
        if (keep.length > 200) keep.shift();
        onLine?.(line);
      }
    }
    if (rest) {
      keep.push(rest);
      onLine?.(rest);
    }
  })();
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

// ---------------------------------------------------------------------------
// The deliveries: distinct bodies, signed once, cached in bench/out/.

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function prepareRequests(): Promise<string> {
  const template = await pushTemplate();
  const tag = (await sha256Hex(
    `v2\n${template.prefix}\n${template.suffix}\n${BENCH_SECRET}`,
  )).slice(0, 12);
  const path = `${OUT}requests-${REQUESTS}-${tag}.txt`;
  try {
    await Deno.stat(path);
    return path;
  } catch { /* make it */ }
  await Deno.mkdir(OUT, { recursive: true });
  const started = performance.now();
  console.error(`preparing ${REQUESTS} signed deliveries in ${path} …`);
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(BENCH_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const encoder = new TextEncoder();
  const salt = randomSalt();
  const tmp = `${path}.partial`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    await file.write(
      encoder.encode(`${template.prefix}\n${template.suffix}\n`),
    );
    const BATCH = 256;
    for (let i = 0; i < REQUESTS; i += BATCH) {
      const lines = await Promise.all(
        Array.from({ length: Math.min(BATCH, REQUESTS - i) }, async (_, j) => {
          const n = i + j;
          const nonce = nonceFor(salt, n);
          const body = encoder.encode(
            template.prefix + nonce + template.suffix,
          );
          const mac = new Uint8Array(
            await crypto.subtle.sign("HMAC", key, body),
          );
          const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0"))
            .join("");
          // Fixed width, no separators: see bench/load.lua.
          const record = deliveryIdFor(salt, n) + hex + nonce;
          if (record.length !== 140) throw new Error(`bad record ${record}`);
          return record;
        }),
      );
      const bytes = encoder.encode(lines.join(""));
      for (let off = 0; off < bytes.byteLength;) {
        off += await file.write(bytes.subarray(off));
      }
    }
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  console.error(
    `prepared in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return path;
}

// ---------------------------------------------------------------------------
// One server under load.

interface WrkResult {
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

interface RunResult {
  server: Server;
  mode: Mode;
  rep: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  serverCpuUsPerReq: number;
  /** Server CPU per request by thread name (µs). */
  threadUsPerReq: Record<string, number>;
  serverCpuShare: number;
  peakRssBytes: number;
  wrkCpuShare: number;
  wrapped: boolean;
  /** hookgate only: /metrics deltas over the measured run. */
  statuses?: Record<string, number>;
  accepted?: number;
  duplicates?: number;
  backlog?: number;
}

interface CeilingResult {
  kind: Ceiling;
  rep: number;
  perSecond: number;
  cpuUsPerDelivery: number;
  threadUsPerReq: Record<string, number>;
  cpuShare: number;
  peakRssBytes: number;
}

function inherited(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["HOME", "DENO_DIR", "PATH", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

interface Started {
  child: Deno.ChildProcess;
  port: number;
  lines: string[];
  cwd: string;
  profDir: string | null;
}

async function startServer(server: Server, label: string): Promise<Started> {
  const port = freePort();
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-load-" });
  const lines: string[] = [];
  let args: string[];
  let profDir: string | null = null;
  const prof: string[] = [];
  if (CPU_PROF) {
    profDir = `${OUT}prof/${label}`;
    await Deno.remove(profDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(profDir, { recursive: true });
    prof.push("--cpu-prof", `--cpu-prof-dir=${profDir}`);
  }
  const env: Record<string, string> = {
    ...inherited(),
    NO_COLOR: "1",
    PORT: String(port),
  };
  if (server === "a" || server === "b") {
    const file = server === "a" ? "ceiling.ts" : "minimal.ts";
    args = [
      "run",
      "--config",
      `${ROOT}deno.json`,
      ...prof,
      "--allow-net=127.0.0.1",
      "--allow-env=PORT",
      `--allow-read=${ROOT}examples`,
      `${BENCH}servers/${file}`,
    ];
  } else {
    // As `deno task start` runs it, in a fresh working directory.
    Object.assign(env, {
      HOST: "127.0.0.1",
      GITHUB_WEBHOOK_SECRET: BENCH_SECRET,
      IP_ALLOWLIST: "off",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
      KV_PATH: server === "c" ? ":memory:" : "./data/hookgate.kv",
      ...EXTRA_ENV,
    });
    const serve = PARALLEL > 1
      ? ["serve", "--parallel", "--port", String(port), "--host", "127.0.0.1"]
      : ["run"];
    if (PARALLEL > 1) env.DENO_JOBS = String(PARALLEL);
    args = [
      ...serve,
      "--config",
      `${ROOT}deno.json`,
      ...prof,
      "--allow-net",
      "--allow-env",
      "--allow-read=.env,./data",
      "--allow-write=./data",
      PARALLEL > 1 ? `${ROOT}serve.ts` : `${ROOT}main.ts`,
    ];
  }
  // Under --parallel, hookgate gets every core (sharing the load
  // generator's): the point is to see what a second isolate buys.
  const cores = PARALLEL > 1 && (server === "c" || server === "d")
    ? `0-${Math.max(1, navigator.hardwareConcurrency - 1)}`
    : SERVER_CORE;
  const child = spawn(
    "taskset",
    ["-c", cores, Deno.execPath(), ...args],
    {
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  );
  drain(child.stdout, lines);
  drain(child.stderr, lines);
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 30_000;
  while (true) {
    if (exited) {
      throw new Error(`${label} exited at start:\n${lines.join("\n")}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.body?.cancel();
      if (res.status < 500) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      throw new Error(`${label} did not listen:\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, lines, cwd, profDir };
}

async function stopServer(started: Started): Promise<void> {
  const { child } = started;
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 20_000);
  await child.status;
  clearTimeout(timer);
  await Deno.remove(started.cwd, { recursive: true }).catch(() => {});
}

async function wrk(
  port: number,
  dataFile: string,
  mode: Mode,
  first: number,
  count: number,
  seconds: number,
  logFile: string | null,
  onLoaded?: () => void,
): Promise<WrkResult> {
  const child = spawn("taskset", [
    "-c",
    LOAD_CORE,
    "wrk",
    `-t${THREADS}`,
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    "--timeout",
    "10s",
    "-s",
    `${BENCH}load.lua`,
    `http://127.0.0.1:${port}/webhook`,
    "--",
    dataFile,
    mode,
    String(first),
    String(count),
    EVENT,
    String(THREADS),
  ], { stdin: "null", stdout: "piped", stderr: "piped" });
  // load.lua prints LOADED once a thread has read the data file; the clock
  // starts right after the last one.
  const lines: string[] = [];
  let loaded = 0;
  const pumps = Promise.all([
    drain(child.stdout, lines, (line) => {
      if (line === "LOADED" && ++loaded === THREADS) onLoaded?.();
    }),
    drain(child.stderr, lines),
  ]);
  const status = await child.status;
  await pumps;
  const text = lines.join("\n");
  if (logFile) await Deno.writeTextFile(logFile, text);
  const line = lines.find((l) => l.startsWith("BENCH "));
  if (!status.success || !line) throw new Error(`wrk failed:\n${text}`);
  return JSON.parse(line.slice(6)) as WrkResult;
}

/** Prometheus counters of hookgate's /metrics, by name and label set. */
async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

function metricSum(
  m: Map<string, number>,
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

function statusCounts(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of m) {
    const s = /^webhook_requests_total\{status="(\d+)"\}$/.exec(key)?.[1];
    if (s) out[s] = value;
  }
  return out;
}

async function runServer(
  server: Server,
  mode: Mode,
  rep: number,
  dataFile: string,
  logDir: string,
): Promise<RunResult> {
  const label = `${server}-${mode}-${rep}`;
  const started = await startServer(server, label);
  try {
    const hookgate = server === "c" || server === "d";
    if (WARMUP > 0) {
      await wrk(
        started.port,
        dataFile,
        mode,
        MEASURED_ENTRIES,
        WARMUP_ENTRIES,
        WARMUP,
        null,
      );
    }
    const before = hookgate ? await scrape(started.port) : null;
    const pid = started.child.pid;
    const marks: Promise<ProcStats>[] = [];
    const result = await wrk(
      started.port,
      dataFile,
      mode,
      0,
      MEASURED_ENTRIES,
      DURATION,
      `${logDir}/${label}.txt`,
      () => marks.push(procStats(pid)),
    );
    const s1 = await procStats(pid);
    if (marks[0] === undefined) throw new Error("wrk never said LOADED");
    const s0 = await marks[0];
    const seconds = result.durationUs / 1e6;
    const run: RunResult = {
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
      wrapped: result.requests + CONNECTIONS > MEASURED_ENTRIES,
    };
    if (hookgate && before) {
      const after = await scrape(started.port);
      const delta = (name: string, match?: (l: string) => boolean) =>
        metricSum(after, name, match) - metricSum(before, name, match);
      const s0c = statusCounts(before);
      const s1c = statusCounts(after);
      run.statuses = {};
      for (const [status, n] of Object.entries(s1c)) {
        const d = n - (s0c[status] ?? 0);
        if (d > 0) run.statuses[status] = d;
      }
      run.accepted = delta(
        "webhook_deliveries_total",
        (l) => l.includes('outcome="accepted"'),
      );
      run.duplicates = delta(
        "webhook_deliveries_total",
        (l) => l.includes('outcome="duplicate"'),
      );
      run.backlog = metricSum(after, "webhook_queue_depth");
    }
    return run;
  } finally {
    await stopServer(started);
    if (started.profDir) printProfile(started.profDir, label);
  }
}

async function runCeiling(kind: Ceiling, rep: number): Promise<CeilingResult> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-kv-ceiling-" });
  const lines: string[] = [];
  try {
    const child = spawn("taskset", [
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
      String(DURATION),
      "--batch",
      kind === "e" ? "32" : "1",
    ], {
      env: { ...inherited(), NO_COLOR: "1" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
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

// ---------------------------------------------------------------------------
// CPU profiles (--cpu-prof): self time by function.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

function printTop(title: string, counts: Map<string, number>, busy: number) {
  console.log(title);
  for (
    const [name, hits] of [...counts].sort((x, y) => y[1] - x[1]).slice(0, 20)
  ) {
    console.log(`  ${(100 * hits / busy).toFixed(1).padStart(5)} %  ${name}`);
  }
}

/**
 * Prints the main thread's hottest functions: self time, and self time
 * charged to the nearest function of this project on the stack (so that
 * `verify` or `op_kv_atomic_write` count for their caller), as shares of
 * the non-idle samples.
 */
function printProfile(dir: string, label: string): void {
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const profile = JSON.parse(
      Deno.readTextFileSync(`${dir}/${entry.name}`),
    ) as { nodes: ProfileNode[] };
    const parent = new Map<number, ProfileNode>();
    for (const node of profile.nodes) {
      for (const child of node.children ?? []) parent.set(child, node);
    }
    const name = (node: ProfileNode) => {
      const { functionName, url, lineNumber } = node.callFrame;
      return `${functionName || "(anonymous)"} ${
        url.replace(`file://${ROOT}`, "")
      }:${lineNumber + 1}`;
    };
    const self = new Map<string, number>();
    const charged = new Map<string, number>();
    let busy = 0;
    let idle = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      if (node.callFrame.functionName === "(idle)") {
        idle += hits;
        continue;
      }
      busy += hits;
      self.set(name(node), (self.get(name(node)) ?? 0) + hits);
      let at: ProfileNode | undefined = node;
      while (at && !at.callFrame.url.startsWith(`file://${ROOT}`)) {
        at = parent.get(at.id);
      }
      const key = at ? name(at) : `(runtime) ${name(node)}`;
      charged.set(key, (charged.get(key) ?? 0) + hits);
    }
    console.log(
      `\nCPU profile of ${label} (${dir}/${entry.name}): main thread busy in ${
        (100 * busy / (busy + idle)).toFixed(0)
      } % of samples; shares of the busy samples.`,
    );
    printTop("self time:", self, busy);
    printTop("charged to the nearest project function:", charged, busy);
  }
}

// ---------------------------------------------------------------------------
// Report.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
const fmtMs = (n: number) => n < 10 ? n.toFixed(2) : n.toFixed(1);
const fmtMb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
const fmtPct = (n: number) => `${(100 * n).toFixed(0)} %`;
const fmtRatio = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? "—" : n.toFixed(2);

interface Summary {
  server: Server;
  mode: Mode;
  runs: RunResult[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function summarize(runs: RunResult[]): Summary[] {
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

function notesOf(s: Summary): string {
  const notes: string[] = [];
  const rs = s.runs;
  const sum = (f: (r: RunResult) => number | undefined) =>
    rs.reduce((acc, r) => acc + (f(r) ?? 0), 0);
  if (s.server === "c" || s.server === "d") {
    const statuses: Record<string, number> = {};
    for (const r of rs) {
      for (const [k, v] of Object.entries(r.statuses ?? {})) {
        statuses[k] = (statuses[k] ?? 0) + v;
      }
    }
    notes.push(
      Object.entries(statuses).map(([k, v]) => `${k}: ${fmtInt(v)}`).join(
        ", ",
      ),
    );
    if (s.mode === "good") {
      notes.push(`duplicates ${fmtInt(sum((r) => r.duplicates))}`);
      notes.push(
        `backlog at end ${fmtInt(median(rs.map((r) => r.backlog ?? 0)))}`,
      );
    }
  }
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
  const socket = sum((r) => r.socketErrors);
  if (socket > 0) notes.push(`socket errors ${fmtInt(socket)}`);
  if (
    rs.some((r) => r.wrapped) && s.mode === "good" &&
    (s.server === "c" || s.server === "d")
  ) {
    notes.push("WRAPPED: bodies repeated, raise --requests");
  }
  return notes.filter((n) => n !== "").join("; ");
}

function table(summaries: Summary[], ceilings: CeilingResult[]): string {
  const find = (server: Server, mode: Mode) =>
    summaries.find((s) => s.server === server && s.mode === mode);
  const rows: string[] = [
    "| server | signatures | req/s | × (a) | × (b) | p50 ms | p99 ms | non-2xx | server CPU µs/req | server CPU | peak RSS | wrk CPU | notes |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const s of summaries) {
    const a = find("a", s.mode);
    const b = find("b", s.mode);
    const rs = s.runs;
    rows.push(
      `| ${LABELS[s.server]} | ${s.mode === "good" ? "valid" : "invalid"} | ${
        fmtInt(s.rps)
      } | ${fmtRatio(a && s.rps / a.rps)} | ${fmtRatio(b && s.rps / b.rps)} | ${
        fmtMs(s.p50Ms)
      } | ${fmtMs(s.p99Ms)} | ${
        fmtInt(rs.reduce((n, r) => n + r.non2xx, 0))
      } | ${median(rs.map((r) => r.serverCpuUsPerReq)).toFixed(0)} | ${
        fmtPct(median(rs.map((r) => r.serverCpuShare)))
      } | ${fmtMb(Math.max(...rs.map((r) => r.peakRssBytes)))} | ${
        fmtPct(median(rs.map((r) => r.wrkCpuShare)))
      } | ${notesOf(s)} |`,
    );
  }
  for (const kind of CEILINGS) {
    const cs = ceilings.filter((c) => c.kind === kind);
    if (cs.length === 0) continue;
    const per = median(cs.map((c) => c.perSecond));
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

/** Median server CPU per request by thread, for every server and ceiling. */
function threadTable(summaries: Summary[], ceilings: CeilingResult[]): string {
  const rows: { label: string; costs: Record<string, number> }[] = [];
  const medianCosts = (list: Record<string, number>[]) => {
    const names = new Set(list.flatMap((c) => Object.keys(c)));
    const out: Record<string, number> = {};
    for (const name of names) out[name] = median(list.map((c) => c[name] ?? 0));
    return out;
  };
  for (const s of summaries) {
    rows.push({
      label: `${LABELS[s.server]}, ${s.mode === "good" ? "valid" : "invalid"}`,
      costs: medianCosts(s.runs.map((r) => r.threadUsPerReq)),
    });
  }
  for (const kind of CEILINGS) {
    const cs = ceilings.filter((c) => c.kind === kind);
    if (cs.length) {
      rows.push({
        label: LABELS[kind],
        costs: medianCosts(cs.map((c) => c.threadUsPerReq)),
      });
    }
  }
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

function repTable(runs: RunResult[], ceilings: CeilingResult[]): string {
  const rows = [
    "| run | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | wrk CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of runs) {
    rows.push(
      `| ${r.server} ${r.mode === "good" ? "valid" : "invalid"} #${r.rep} | ${
        fmtInt(r.rps)
      } | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${fmtInt(r.non2xx)} | ${
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

interface Target {
  text: string;
  value: string;
  met: boolean | null;
}

function targets(summaries: Summary[], ceilings: CeilingResult[]): Target[] {
  const rps = (server: Server, mode: Mode) =>
    summaries.find((s) => s.server === server && s.mode === mode)?.rps;
  const out: Target[] = [];
  const cb = rps("c", "bad");
  const bb = rps("b", "bad");
  out.push({
    text: "invalid signatures: (c) ≥ 1.0 × (b)",
    value: cb && bb ? `${(cb / bb).toFixed(2)} × (b)` : "not run",
    met: cb && bb ? cb / bb >= 1.0 : null,
  });
  const cg = rps("c", "good");
  const bg = rps("b", "good");
  out.push({
    text: "valid deliveries: (c) ≥ 0.6 × (b)",
    value: cg && bg ? `${(cg / bg).toFixed(2)} × (b)` : "not run",
    met: cg && bg ? cg / bg >= 0.6 : null,
  });
  const d = summaries.find((s) => s.server === "d" && s.mode === "good");
  const es = ceilings.filter((c) => c.kind === "e");
  const e = es.length ? median(es.map((c) => c.perSecond)) : undefined;
  out.push({
    text: "valid deliveries: (d) ≥ 0.8 × (e)",
    value: d && e ? `${(d.rps / e).toFixed(2)} × (e)` : "not run",
    met: d && e ? d.rps / e >= 0.8 : null,
  });
  out.push({
    text: `valid deliveries: (d) p99 ≤ 50 ms at ${CONNECTIONS} connections`,
    value: d ? `${fmtMs(d.p99Ms)} ms` : "not run",
    met: d ? d.p99Ms <= 50 : null,
  });
  return out;
}

function targetLines(ts: Target[]): string {
  return ts.map((t) =>
    `- ${
      t.met === null ? "–" : t.met ? "met" : "NOT met"
    }: ${t.text} — ${t.value}`
  ).join("\n");
}

interface Machine {
  date: string;
  nproc: string;
  cpu: string;
  deno: string;
  wrk: string;
}

async function machine(): Promise<Machine> {
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

async function gitHead(): Promise<string> {
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

function snippet(
  summaries: Summary[],
  ceilings: CeilingResult[],
  m: Machine,
): string {
  const rps = (server: Server, mode: Mode) =>
    summaries.find((s) => s.server === server && s.mode === mode)?.rps;
  const r = (x: number | undefined, y: number | undefined) =>
    x && y ? (x / y).toFixed(2) : "?";
  const es = ceilings.filter((c) => c.kind === "e");
  const e = es.length ? median(es.map((c) => c.perSecond)) : undefined;
  const d = summaries.find((s) => s.server === "d" && s.mode === "good");
  const a = summaries.find((s) => s.server === "a" && s.mode === "good");
  const aBound = a !== undefined &&
    median(a.runs.map((r) => r.wrkCpuShare)) >= 0.85;
  return `### Performance

Measured with \`deno task bench:load\` (${
    m.date.slice(0, 10)
  }, ${m.nproc} cores, ${m.cpu}, Deno ${Deno.version.deno}; server on one core, \`wrk\` on the other, ${CONNECTIONS} keep-alive connections, distinct signed ${
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

/** Where a stored delivery's CPU goes, from the per-thread figures. */
function cpuSentence(summaries: Summary[], ceilings: CeilingResult[]): string {
  const d = summaries.find((s) => s.server === "d" && s.mode === "good");
  const es = ceilings.filter((c) => c.kind === "e");
  if (!d || es.length === 0) return "";
  const thread = (list: Record<string, number>[], name: string) =>
    median(list.map((c) => c[name] ?? 0));
  const dCosts = d.runs.map((r) => r.threadUsPerReq);
  const eCosts = es.map((c) => c.threadUsPerReq);
  return ` On a KV file a delivery costs ${
    median(d.runs.map((r) => r.serverCpuUsPerReq)).toFixed(0)
  } µs of CPU, ${
    thread(dCosts, "sw").toFixed(0)
  } µs of it in Deno KV's SQLite writer thread and ${
    thread(dCosts, "main").toFixed(0)
  } µs in JavaScript (storing alone, group-committed: ${
    thread(eCosts, "sw").toFixed(0)
  } µs and ${thread(eCosts, "main").toFixed(0)} µs).`;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  for (
    const [cmd, hint] of [
      ["wrk", "install it: apt-get install -y wrk (Debian/Ubuntu)"],
      ["taskset", "install util-linux"],
      ["cat", "coreutils"],
    ]
  ) {
    if (!(await have(cmd!))) {
      console.error(`bench:load needs ${cmd}: ${hint}`);
      Deno.exit(1);
    }
  }
  const m = await machine();
  if (Number(m.nproc) < 2) {
    console.error(
      "bench:load needs 2 cores (server on core 0, wrk on core 1)",
    );
    Deno.exit(1);
  }
  const dataFile = await prepareRequests();
  const stamp = m.date.replace(/[:]/g, "-");
  const logDir = `${OUT}${stamp}`;
  await Deno.mkdir(logDir, { recursive: true });
  const commit = await gitHead();
  console.error(
    `hookgate load benchmark: ${DURATION} s × ${REPS} reps, ${CONNECTIONS} connections, warm-up ${WARMUP} s, event ${EVENT}; wrk output in ${logDir}`,
  );

  const runs: RunResult[] = [];
  const ceilings: CeilingResult[] = [];
  try {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const server of SERVERS) {
        if (!only.has(server)) continue;
        for (const mode of MODES) {
          const r = await runServer(server, mode, rep, dataFile, logDir);
          runs.push(r);
          console.error(
            `  rep ${rep} ${server} ${mode}: ${fmtInt(r.rps)} req/s, p99 ${
              fmtMs(r.p99Ms)
            } ms, non-2xx ${r.non2xx}, ${
              r.serverCpuUsPerReq.toFixed(0)
            } µs CPU/req, wrk CPU ${fmtPct(r.wrkCpuShare)}${
              r.statuses ? `, statuses ${JSON.stringify(r.statuses)}` : ""
            }`,
          );
        }
      }
      for (const kind of CEILINGS) {
        if (!only.has(kind)) continue;
        const c = await runCeiling(kind, rep);
        ceilings.push(c);
        console.error(
          `  rep ${rep} ${kind}: ${fmtInt(c.perSecond)} deliveries/s, ${
            c.cpuUsPerDelivery.toFixed(0)
          } µs CPU each`,
        );
      }
    }
  } finally {
    killAll();
  }

  const summaries = summarize(runs);
  const tbl = table(summaries, ceilings);
  const ts = targets(summaries, ceilings);
  const threads = threadTable(summaries, ceilings);
  console.log(
    `\n${tbl}\n\nServer CPU µs per request by thread (median):\n\n${threads}\n\nTargets (ratios of medians from this run):\n${
      targetLines(ts)
    }`,
  );

  if (!RECORD) return;
  const section = `## ${m.date}

Machine: ${m.nproc} cores, ${m.cpu}; Deno ${m.deno}; ${m.wrk}. Code: ${commit}.
Load: wrk, ${THREADS} thread on core ${LOAD_CORE}, server on core ${SERVER_CORE} (\`taskset\`), ${CONNECTIONS} keep-alive connections, ${DURATION} s per run after a ${WARMUP} s warm-up, ${REPS} repetitions (medians shown; each run on a fresh server process and fresh KV), distinct ${BODY_BYTES}-byte push bodies each with its own \`X-GitHub-Delivery\` and a valid (or, for "invalid", a wrong but well-formed) \`X-Hub-Signature-256\`. hookgate: \`IP_ALLOWLIST=off\`, \`LOG_LEVEL=warn\`, event \`${EVENT}\`${
    EVENT === "push"
      ? " (the shipped push handler runs in the worker, logging at info, i.e. nothing)"
      : ""
  }, other settings default.

${tbl}

Server CPU µs per request by thread (median; \`main\` runs the JavaScript, \`tokio-runtime-w\` the HTTP I/O and blocking ops, \`sw\` is Deno KV's SQLite writer, \`V8 DefaultWorke\` V8's GC and compiler helpers):

${threads}

Targets (issue 6):
${targetLines(ts)}

<details><summary>Every run</summary>

${repTable(runs, ceilings)}

</details>
`;
  const resultsPath = `${BENCH}RESULTS.md`;
  let exists = true;
  try {
    await Deno.stat(resultsPath);
  } catch {
    exists = false;
  }
  const header = "# Load benchmark results\n\n" +
    "Appended by `deno task bench:load` (`bench/load.ts`), oldest first. " +
    "Figures move ±30 % between runs on shared machines: compare ratios " +
    "within one run.\n";
  await Deno.writeTextFile(
    resultsPath,
    `${exists ? "" : header}\n${section}`,
    { append: true },
  );
  await Deno.writeTextFile(
    `${BENCH}README-snippet.md`,
    snippet(summaries, ceilings, m),
  );
  // Keep `deno fmt --check` (deno task ok) happy: tables get aligned.
  await run(Deno.execPath(), [
    "fmt",
    "--config",
    `${ROOT}deno.json`,
    resultsPath,
    `${BENCH}README-snippet.md`,
  ]);
  console.error(`\nwrote ${resultsPath} and ${BENCH}README-snippet.md`);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  code = 1;
} finally {
  killAll();
}
Deno.exit(code);
