/**
 * The load benchmark's remote-KV mode (issue 15, `--remote-kv`): hookgate
 * (`main.ts`, pinned to the server core) on a KV Connect URL served by the
 * test server `tests/fixtures/kv_connect/server.ts`, run as a child on the
 * load core beside wrk with denokv's limits (or Deploy's) and a fixed delay
 * added to every request (`--delay-ms`) standing in for the round trip;
 * wrk sends the same distinct signed deliveries as the other runs. For
 * every round trip, on a fresh KV server and a fresh hookgate: stored
 * deliveries a second (the `accepted` count of hookgate's /metrics over
 * the measured run: 202s whose commit succeeded), p50/p99 of the acks,
 * the KV server's counts (commits refused, the largest checks count of a
 * commit, atomic writes in flight at most) and every process's CPU. After
 * the run the delivery records in the KV are counted and must cover every
 * accepted delivery.
 *
 * The access token is random per round and is never printed. This module
 * does not touch lib/; the report's text is made by pure functions here.
 *
 * @module
 */

import type { KvServerLimits, LoadOptions } from "./args.ts";
import { type Children, spawnListening, stopChild } from "./children.ts";
import { LOAD_CORE, ROOT } from "./common.ts";
import { metricSum, runDeltas, scrape } from "./metrics.ts";
import { type ProcStats, procStats } from "./proc.ts";
import { printProfile } from "./profile.ts";
import { fmtInt, fmtMs, fmtPct, fmtRatio, type Target } from "./report.ts";
import { startServer, stopServer } from "./servers.ts";
import { median } from "./summary.ts";
import { runWrk } from "./wrk.ts";

/** The KV Connect test server's script. */
export const KV_SERVER = `${ROOT}tests/fixtures/kv_connect/server.ts`;
/** How long the KV server may take to say it listens. */
const KV_START_MS = 30_000;
/** The round trip of the issue's target, in ms. */
export const TARGET_RTT_MS = 100;
/** The issue's target at {@link TARGET_RTT_MS}: stored deliveries a second per process. */
export const TARGET_STORED_PER_SECOND = 1000;
/** The issue's target at {@link TARGET_RTT_MS}: p99 ack latency, ms. */
export const TARGET_P99_MS = 500;

/** What the KV Connect test server counts (`GET /_control/stats`). */
export interface KvServerStats {
  requests: Record<string, number>;
  commits: number;
  checkFailures: number;
  refused: number;
  refusals: Record<string, number>;
  maxChecks: number;
  maxMutations: number;
  maxReadRanges: number;
  inFlight: number;
  maxInFlight: number;
  watchers: number;
}

/** One measured round of hookgate on the remote KV at one round trip. */
export interface RemoteRound {
  rttMs: number;
  rep: number;
  seconds: number;
  /** Responses wrk counted. */
  answered: number;
  /** Deliveries accepted (202, stored) over the measured run, from /metrics. */
  stored: number;
  storedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  statuses: Record<string, number>;
  duplicates: number;
  backlog: number;
  /** Every delivery hookgate accepted in the round (warm-up too), from /metrics. */
  acceptedTotal: number;
  /** Delivery records found in the KV after the round. */
  recordsInKv: number;
  /** The KV server's counts at the end (warm-up included). */
  kv: KvServerStats;
  /** Atomic writes and snapshot reads over the measured run. */
  atomicWrites: number;
  /** Atomic writes whose checks failed, over the measured run. */
  checkFailures: number;
  /** Atomic writes in flight at the server, mean of samples every 100 ms of the measured run. */
  meanInFlight: number;
  snapshotReads: number;
  hookgateCpuShare: number;
  kvServerCpuShare: number;
  wrkCpuShare: number;
  /** hookgate's CPU µs per stored delivery. */
  hookgateUsPerStored: number;
  /** The KV server's CPU µs per stored delivery. */
  kvServerUsPerStored: number;
}

/**
 * The `taskset` arguments that run the KV Connect test server on the load
 * core, on a port of its choosing, with `token`, `limits` and `delayMs`.
 *
 * @example
 * ```ts
 * import { kvServerArgs } from "./remote_kv.ts";
 * kvServerArgs("t", "denokv", 100).slice(0, 2); // ["-c", "1"]
 * ```
 */
export function kvServerArgs(
  token: string,
  limits: KvServerLimits,
  delayMs: number,
): string[] {
  return [
    "-c",
    LOAD_CORE,
    Deno.execPath(),
    "run",
    "--config",
    `${ROOT}deno.json`,
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-write",
    KV_SERVER,
    "--port",
    "0",
    "--token",
    token,
    "--limits",
    limits,
    "--delay-ms",
    String(delayMs),
  ];
}

/**
 * The port in the KV server's `{"listening":port}` line, or null for any
 * other line (children.ts's, kept here for the tests of this mode).
 */
export { listeningPort } from "./children.ts";

/** A running KV Connect test server. */
interface KvServer {
  child: Deno.ChildProcess;
  port: number;
  url: string;
  token: string;
  lines: string[];
}

/** Starts the KV Connect test server and waits for its `listening` line. */
async function startKvServer(
  children: Children,
  limits: KvServerLimits,
  delayMs: number,
): Promise<KvServer> {
  const token = crypto.randomUUID().replaceAll("-", "");
  const { child, port, lines } = await spawnListening(
    children,
    "the KV server",
    "taskset",
    kvServerArgs(token, limits, delayMs),
    KV_START_MS,
  );
  return { child, port, url: `http://127.0.0.1:${port}`, token, lines };
}

/** Stops the KV server (SIGTERM, then SIGKILL after 5 s). */
async function stopKvServer(kv: KvServer): Promise<void> {
  await stopChild(kv.child, 5000);
}

/** The KV server's counts. */
async function kvStats(kv: KvServer): Promise<KvServerStats> {
  const res = await fetch(`${kv.url}/_control/stats`, {
    headers: { authorization: `Bearer ${kv.token}` },
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`KV server stats: HTTP ${res.status}`);
  }
  return await res.json() as KvServerStats;
}

/** Samples the KV server's atomic writes in flight every 100 ms from `start()` to `stop()`. */
function sampleInFlight(kv: KvServer): {
  start(): void;
  stop(): void;
  samples: Promise<number[]>;
} {
  const { promise: started, resolve: start } = Promise.withResolvers<void>();
  let stopped = false;
  const samples = (async () => {
    const out: number[] = [];
    await started;
    while (!stopped) {
      out.push((await kvStats(kv)).inFlight);
      await new Promise((r) => setTimeout(r, 100));
    }
    return out;
  })();
  return {
    start: () => start(),
    stop: () => {
      stopped = true;
      start();
    },
    samples,
  };
}

/**
 * The delivery records (`["hookgate","d",id]`) in the remote KV, counted
 * with Deno's own KV Connect client.
 */
async function countRecords(kv: KvServer): Promise<number> {
  Deno.env.set("DENO_KV_ACCESS_TOKEN", kv.token);
  const db = await Deno.openKv(kv.url);
  try {
    let n = 0;
    const it = db.list({ prefix: ["hookgate", "d"] }, { batchSize: 1000 });
    for await (const _ of it) n++;
    return n;
  } finally {
    db.close();
    Deno.env.delete("DENO_KV_ACCESS_TOKEN");
  }
}

/** CPU seconds between two readings, 0 if either is missing. */
function cpuBetween(s0: ProcStats | undefined, s1: ProcStats): number {
  return s0 === undefined ? 0 : s1.cpu - s0.cpu;
}

/** What {@link remoteRound} puts together. */
export interface RoundInputs {
  rttMs: number;
  rep: number;
  wrk: {
    requests: number;
    durationUs: number;
    p50Us: number;
    p99Us: number;
    non2xx: number;
    socketErrors: number;
    cpuSeconds: number;
  };
  deltas: ReturnType<typeof runDeltas>;
  acceptedTotal: number;
  recordsInKv: number;
  kvBefore: KvServerStats;
  kvAfter: KvServerStats;
  /** Atomic writes in flight, sampled during the measured run. */
  inFlightSamples: readonly number[];
  hookgateCpu: number;
  kvServerCpu: number;
}

/**
 * One round's figures from wrk's summary, hookgate's /metrics deltas, the
 * KV server's counts before and after the measured run, and CPU seconds.
 *
 * @example
 * ```ts
 * import { remoteRound } from "./remote_kv.ts";
 * // remoteRound({ rttMs: 100, rep: 1, wrk, deltas, … }).storedPerSecond
 * ```
 */
export function remoteRound(i: RoundInputs): RemoteRound {
  const seconds = i.wrk.durationUs / 1e6;
  const stored = i.deltas.accepted;
  const per = (cpu: number) => stored > 0 ? cpu * 1e6 / stored : 0;
  return {
    rttMs: i.rttMs,
    rep: i.rep,
    seconds,
    answered: i.wrk.requests,
    stored,
    storedPerSecond: stored / seconds,
    p50Ms: i.wrk.p50Us / 1000,
    p99Ms: i.wrk.p99Us / 1000,
    non2xx: i.wrk.non2xx,
    socketErrors: i.wrk.socketErrors,
    statuses: i.deltas.statuses,
    duplicates: i.deltas.duplicates,
    backlog: i.deltas.backlog,
    acceptedTotal: i.acceptedTotal,
    recordsInKv: i.recordsInKv,
    kv: i.kvAfter,
    atomicWrites: (i.kvAfter.requests.atomic_write ?? 0) -
      (i.kvBefore.requests.atomic_write ?? 0),
    checkFailures: i.kvAfter.checkFailures - i.kvBefore.checkFailures,
    meanInFlight: i.inFlightSamples.length
      ? i.inFlightSamples.reduce((a, b) => a + b, 0) /
        i.inFlightSamples.length
      : 0,
    snapshotReads: (i.kvAfter.requests.snapshot_read ?? 0) -
      (i.kvBefore.requests.snapshot_read ?? 0),
    hookgateCpuShare: i.hookgateCpu / seconds,
    kvServerCpuShare: i.kvServerCpu / seconds,
    wrkCpuShare: i.wrk.cpuSeconds / seconds,
    hookgateUsPerStored: per(i.hookgateCpu),
    kvServerUsPerStored: per(i.kvServerCpu),
  };
}

/**
 * Runs one round: a fresh KV server with `rttMs` of delay, hookgate on it,
 * wrk's warm-up and measured run, and every count read around them.
 */
export async function runRemoteRound(
  children: Children,
  options: LoadOptions,
  rttMs: number,
  rep: number,
  dataFile: string,
  logDir: string,
): Promise<RemoteRound> {
  const label = `remote-${rttMs}ms-${rep}`;
  const kv = await startKvServer(children, options.kvLimits, rttMs);
  try {
    const started = await startServer(
      children,
      {
        ...options,
        extraEnv: {
          ...options.extraEnv,
          KV_PATH: kv.url,
          KV_LIMITS: options.kvLimits,
          DENO_KV_ACCESS_TOKEN: kv.token,
        },
      },
      "d",
      label,
    );
    try {
      return await measureRound(
        children,
        options,
        { kv, started, rttMs, rep, dataFile, logDir, label },
      );
    } finally {
      await stopServer(started);
      if (started.profDir) printProfile(started.profDir, label);
    }
  } finally {
    await stopKvServer(kv);
  }
}

/** The warm-up and the measured run of a round whose processes are up. */
async function measureRound(
  children: Children,
  options: LoadOptions,
  r: {
    kv: KvServer;
    started: Awaited<ReturnType<typeof startServer>>;
    rttMs: number;
    rep: number;
    dataFile: string;
    logDir: string;
    label: string;
  },
): Promise<RemoteRound> {
  const { port } = r.started;
  if (options.warmup > 0) {
    await runWrk(children, options, {
      port,
      dataFile: r.dataFile,
      mode: "good",
      first: options.measuredEntries,
      count: options.warmupEntries,
      seconds: options.warmup,
    }, null);
  }
  const before = await scrape(port);
  const kvBefore = await kvStats(r.kv);
  const pids = [r.started.child.pid, r.kv.child.pid];
  let marks: Promise<ProcStats[]> | null = null;
  const sampler = sampleInFlight(r.kv);
  const result = await runWrk(
    children,
    options,
    {
      port,
      dataFile: r.dataFile,
      mode: "good",
      first: 0,
      count: options.measuredEntries,
      seconds: options.duration,
    },
    `${r.logDir}/${r.label}.txt`,
    () => {
      marks = Promise.all(pids.map(procStats));
      sampler.start();
    },
  ).finally(() => sampler.stop());
  const [h1, k1] = await Promise.all(pids.map(procStats));
  if (marks === null) throw new Error("wrk never said LOADED");
  const [h0, k0] = await (marks as Promise<ProcStats[]>);
  const after = await scrape(port);
  const kvAfter = await kvStats(r.kv);
  const recordsInKv = await countRecords(r.kv);
  const e = result.errors;
  return remoteRound({
    rttMs: r.rttMs,
    rep: r.rep,
    wrk: {
      requests: result.requests,
      durationUs: result.durationUs,
      p50Us: result.latencyUs.p50,
      p99Us: result.latencyUs.p99,
      non2xx: e.status,
      socketErrors: e.connect + e.read + e.write + e.timeout,
      cpuSeconds: result.cpuSeconds,
    },
    deltas: runDeltas(before, after),
    acceptedTotal: metricSum(
      after,
      "webhook_deliveries_total",
      (l) => l.includes('outcome="accepted"'),
    ),
    recordsInKv,
    kvBefore,
    kvAfter,
    inFlightSamples: await sampler.samples,
    hookgateCpu: cpuBetween(h0, h1!),
    kvServerCpu: cpuBetween(k0, k1!),
  });
}

/**
 * The progress line of one round.
 *
 * @example
 * ```ts
 * import { remoteLine } from "./remote_kv.ts";
 * // remoteLine(round) → "  rep 1 100 ms: 1,234 stored/s, p50 …"
 * ```
 */
export function remoteLine(r: RemoteRound): string {
  return `  rep ${r.rep} ${r.rttMs} ms: ${
    fmtInt(r.storedPerSecond)
  } stored/s, p50 ${fmtMs(r.p50Ms)} ms, p99 ${fmtMs(r.p99Ms)} ms, non-2xx ${
    fmtInt(r.non2xx)
  }, refused ${r.kv.refused}, check failures ${r.checkFailures}, max checks ${r.kv.maxChecks}, max in flight ${r.kv.maxInFlight}, mean in flight ${
    r.meanInFlight.toFixed(1)
  }, ${
    (r.stored / Math.max(1, r.atomicWrites)).toFixed(2)
  } stored/commit, hookgate CPU ${fmtPct(r.hookgateCpuShare)}, KV server CPU ${
    fmtPct(r.kvServerCpuShare)
  }, wrk CPU ${fmtPct(r.wrkCpuShare)}, records ${fmtInt(r.recordsInKv)}/${
    fmtInt(r.acceptedTotal)
  } accepted`;
}

/** The rounds at `rttMs`, in order. */
function roundsAt(rounds: readonly RemoteRound[], rttMs: number) {
  return rounds.filter((r) => r.rttMs === rttMs);
}

/** The round trips measured, in the order first seen. */
function rttsOf(rounds: readonly RemoteRound[]): number[] {
  return [...new Set(rounds.map((r) => r.rttMs))];
}

/** Median stored deliveries a second at `rttMs`, undefined if not run. */
function storedAt(
  rounds: readonly RemoteRound[],
  rttMs: number,
): number | undefined {
  const rs = roundsAt(rounds, rttMs);
  return rs.length ? median(rs.map((r) => r.storedPerSecond)) : undefined;
}

/**
 * The remote-KV table: a row for every round trip (medians of its
 * repetitions; refusals summed, checks and commits in flight the largest
 * seen), stored deliveries a second also as a ratio to the first round
 * trip measured.
 *
 * @example
 * ```ts
 * import { remoteTable } from "./remote_kv.ts";
 * remoteTable([]).split("\n").length; // 2: the header and its rule
 * ```
 */
export function remoteTable(rounds: readonly RemoteRound[]): string {
  const rows = [
    "| round trip | stored/s per process | × first row | p50 ack ms | p99 ack ms | non-2xx | refused commits | largest checks | commits in flight at most | mean in flight | stored per commit | KV reads per stored | hookgate CPU | hookgate µs/stored | KV server CPU | wrk CPU | records in KV ÷ accepted |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const base = rttsOf(rounds)[0];
  for (const rtt of rttsOf(rounds)) {
    const rs = roundsAt(rounds, rtt);
    const m = (f: (r: RemoteRound) => number) => median(rs.map(f));
    const stored = storedAt(rounds, rtt)!;
    const baseStored = base === undefined ? undefined : storedAt(rounds, base);
    rows.push(
      `| ${rtt} ms | ${fmtInt(stored)} | ${
        fmtRatio(baseStored && stored / baseStored)
      } | ${fmtMs(m((r) => r.p50Ms))} | ${fmtMs(m((r) => r.p99Ms))} | ${
        fmtInt(rs.reduce((n, r) => n + r.non2xx, 0))
      } | ${rs.reduce((n, r) => n + r.kv.refused, 0)} | ${
        Math.max(...rs.map((r) => r.kv.maxChecks))
      } | ${Math.max(...rs.map((r) => r.kv.maxInFlight))} | ${
        m((r) => r.meanInFlight).toFixed(1)
      } | ${m((r) => r.stored / Math.max(1, r.atomicWrites)).toFixed(2)} | ${
        m((r) => r.snapshotReads / Math.max(1, r.stored)).toFixed(2)
      } | ${fmtPct(m((r) => r.hookgateCpuShare))} | ${
        m((r) => r.hookgateUsPerStored).toFixed(0)
      } | ${fmtPct(m((r) => r.kvServerCpuShare))} | ${
        fmtPct(m((r) => r.wrkCpuShare))
      } | ${
        fmtRatio(
          Math.min(
            ...rs.map((r) => r.recordsInKv / Math.max(1, r.acceptedTotal)),
          ),
        )
      } |`,
    );
  }
  return rows.join("\n");
}

/**
 * Issue 15's targets, from the medians of the rounds: at 100 ms, stored
 * deliveries a second and p99; at every round trip, no commit refused and
 * at most the limit's checks in a commit, and every accepted delivery's
 * record in the KV.
 *
 * @example
 * ```ts
 * import { remoteTargets } from "./remote_kv.ts";
 * remoteTargets([], 10)[0]!.value; // "not run"
 * ```
 */
export function remoteTargets(
  rounds: readonly RemoteRound[],
  maxChecks: number,
): Target[] {
  const at = roundsAt(rounds, TARGET_RTT_MS);
  const stored = storedAt(rounds, TARGET_RTT_MS);
  const p99 = at.length ? median(at.map((r) => r.p99Ms)) : undefined;
  const any = rounds.length > 0;
  const refused = rounds.reduce((n, r) => n + r.kv.refused, 0);
  const checks = any ? Math.max(...rounds.map((r) => r.kv.maxChecks)) : 0;
  const lost = rounds.filter((r) => r.recordsInKv < r.acceptedTotal).length;
  return [
    {
      text:
        `at ${TARGET_RTT_MS} ms: ≥ ${TARGET_STORED_PER_SECOND} stored deliveries a second per process`,
      value: stored === undefined ? "not run" : `${fmtInt(stored)} a second`,
      met: stored === undefined ? null : stored >= TARGET_STORED_PER_SECOND,
    },
    {
      text: `at ${TARGET_RTT_MS} ms: p99 ack < ${TARGET_P99_MS} ms`,
      value: p99 === undefined ? "not run" : `${fmtMs(p99)} ms`,
      met: p99 === undefined ? null : p99 < TARGET_P99_MS,
    },
    {
      text: "no commit refused (every round trip)",
      value: any ? `${refused} refused` : "not run",
      met: any ? refused === 0 : null,
    },
    {
      text: `at most ${maxChecks} checks in a commit`,
      value: any ? `largest ${checks}` : "not run",
      met: any ? checks <= maxChecks : null,
    },
    {
      text: "every accepted delivery's record is in the KV",
      value: any ? `${lost} round(s) short` : "not run",
      met: any ? lost === 0 : null,
    },
  ];
}

/**
 * Every round, one row each.
 *
 * @example
 * ```ts
 * import { remoteRepTable } from "./remote_kv.ts";
 * remoteRepTable([]).split("\n").length; // 2
 * ```
 */
export function remoteRepTable(rounds: readonly RemoteRound[]): string {
  const rows = [
    "| round trip | rep | answered | stored/s | p50 ms | p99 ms | statuses | atomic writes | check failures | snapshot reads | refused | max checks | max in flight | backlog at end (counted to 10,000) | records / accepted |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const r of rounds) {
    rows.push(
      `| ${r.rttMs} ms | ${r.rep} | ${fmtInt(r.answered)} | ${
        fmtInt(r.storedPerSecond)
      } | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${
        Object.entries(r.statuses).map(([k, v]) => `${k}: ${fmtInt(v)}`)
          .join(", ")
      } | ${fmtInt(r.atomicWrites)} | ${fmtInt(r.checkFailures)} | ${
        fmtInt(r.snapshotReads)
      } | ${r.kv.refused} | ${r.kv.maxChecks} | ${r.kv.maxInFlight} | ${
        fmtInt(r.backlog)
      } | ${fmtInt(r.recordsInKv)} / ${fmtInt(r.acceptedTotal)} |`,
    );
  }
  return rows.join("\n");
}

/**
 * Every repetition of every round trip of `options.rtts`, in order, with a
 * progress line on stderr each.
 */
export async function runAllRemote(
  children: Children,
  options: LoadOptions,
  dataFile: string,
  logDir: string,
): Promise<RemoteRound[]> {
  const rounds: RemoteRound[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const rtt of options.rtts) {
      const r = await runRemoteRound(
        children,
        options,
        rtt,
        rep,
        dataFile,
        logDir,
      );
      rounds.push(r);
      console.error(remoteLine(r));
    }
  }
  return rounds;
}

/** Where the remote-KV section says it was measured. */
export interface RemoteContext {
  /** ISO time of the run. */
  date: string;
  machine: string;
  commit: string;
  /** /proc/loadavg at the start and at the end of the run. */
  loadStart: string;
  loadEnd: string;
}

/**
 * The section the remote-KV mode appends to bench/RESULTS.md.
 *
 * @example
 * ```ts
 * import { remoteSection } from "./remote_kv.ts";
 * // remoteSection(context, options, rounds)
 * ```
 */
export function remoteSection(
  c: RemoteContext,
  options: Pick<
    LoadOptions,
    "connections" | "duration" | "warmup" | "reps" | "event" | "kvLimits"
  >,
  rounds: readonly RemoteRound[],
): string {
  const maxChecks = options.kvLimits === "denokv" ? 10 : 100;
  return `## Issue 15: remote KV (${c.date})

Machine: ${c.machine}. Code: ${c.commit}. Load average (\`/proc/loadavg\`) at the start: ${c.loadStart}; at the end: ${c.loadEnd}.
\`deno task bench:load --remote-kv\`: hookgate (\`main.ts\`, pinned to core 0) with \`KV_PATH\` the URL of the KV Connect test server (\`tests/fixtures/kv_connect/server.ts\`, ${options.kvLimits} limits, pinned to core 1 beside wrk), a fresh server and a fresh hookgate for every round; the server waits the round trip before it handles each request. wrk: ${options.connections} keep-alive connections, ${options.duration} s per round after a ${options.warmup} s warm-up, ${options.reps} repetition(s) (medians shown), distinct signed \`${options.event}\` deliveries. "Stored" is /metrics' accepted count over the measured run (every one a 202 sent after its commit), the KV server's counts are its own (warm-up included), and after each round the delivery records in the KV were counted against every delivery accepted.

${remoteTable(rounds)}

Targets (issue 15):
${
    remoteTargets(rounds, maxChecks).map((t) =>
      `- ${
        t.met === null ? "–" : t.met ? "met" : "NOT met"
      }: ${t.text} — ${t.value}`
    ).join("\n")
  }

<details><summary>Every round</summary>

${remoteRepTable(rounds)}

</details>
`;
}
