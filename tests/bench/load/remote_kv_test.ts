import assert from "node:assert/strict";
import {
  kvServerArgs,
  listeningPort,
  remoteRepTable,
  type RemoteRound,
  remoteRound,
  remoteSection,
  remoteTable,
  remoteTargets,
  type RoundInputs,
} from "../../../bench/load/remote_kv.ts";
import { runDeltas } from "../../../bench/load/metrics.ts";

function stats(extra: Record<string, unknown> = {}) {
  return {
    requests: {
      metadata: 1,
      snapshot_read: 10,
      atomic_write: 100,
      watch: 1,
      other: 0,
    },
    commits: 100,
    checkFailures: 0,
    refused: 0,
    refusals: {},
    maxChecks: 10,
    maxMutations: 40,
    maxReadRanges: 1,
    inFlight: 0,
    maxInFlight: 64,
    watchers: 1,
    ...extra,
  };
}

function inputs(extra: Partial<RoundInputs> = {}): RoundInputs {
  const before = new Map([
    ['webhook_requests_total{status="202"}', 100],
    ['webhook_deliveries_total{event="push",outcome="accepted"}', 100],
  ]);
  const after = new Map([
    ['webhook_requests_total{status="202"}', 2100],
    ['webhook_deliveries_total{event="push",outcome="accepted"}', 2100],
    ["webhook_queue_depth", 7],
  ]);
  return {
    rttMs: 100,
    rep: 1,
    wrk: {
      requests: 2000,
      durationUs: 2_000_000,
      p50Us: 150_000,
      p99Us: 300_000,
      non2xx: 0,
      socketErrors: 0,
      cpuSeconds: 0.2,
    },
    deltas: runDeltas(before, after),
    acceptedTotal: 2100,
    recordsInKv: 2100,
    kvBefore: stats(),
    kvAfter: stats({
      requests: {
        metadata: 1,
        snapshot_read: 30,
        atomic_write: 900,
        watch: 1,
        other: 0,
      },
      checkFailures: 3,
    }),
    inFlightSamples: [40, 50, 60],
    hookgateCpu: 1,
    kvServerCpu: 0.5,
    ...extra,
  };
}

function round(
  rttMs: number,
  storedPerSecond: number,
  extra: Partial<RemoteRound> = {},
): RemoteRound {
  return {
    ...remoteRound(inputs({ rttMs })),
    storedPerSecond,
    ...extra,
  };
}

Deno.test("kvServerArgs() pins the KV server to the load core with its flags", () => {
  const args = kvServerArgs("tok", "denokv", 20);
  assert.deepEqual(args.slice(0, 2), ["-c", "1"]);
  assert.match(args.find((a) => a.endsWith("server.ts"))!, /kv_connect/);
  assert.deepEqual(args.slice(-8), [
    "--port",
    "0",
    "--token",
    "tok",
    "--limits",
    "denokv",
    "--delay-ms",
    "20",
  ]);
});

Deno.test("listeningPort() reads only a listening line with a port", () => {
  assert.equal(listeningPort('{"listening":4321}'), 4321);
  assert.equal(listeningPort('{"listening":"4321"}'), null);
  assert.equal(listeningPort("{not json"), null);
  assert.equal(listeningPort("Check file:///server.ts"), null);
});

Deno.test("remoteRound() counts what the measured run changed", () => {
  const r = remoteRound(inputs());
  assert.equal(r.seconds, 2);
  assert.equal(r.stored, 2000);
  assert.equal(r.storedPerSecond, 1000);
  assert.equal(r.p50Ms, 150);
  assert.equal(r.p99Ms, 300);
  assert.deepEqual(r.statuses, { "202": 2000 });
  assert.equal(r.backlog, 7);
  assert.equal(r.atomicWrites, 800);
  assert.equal(r.snapshotReads, 20);
  assert.equal(r.checkFailures, 3);
  assert.equal(r.meanInFlight, 50);
  assert.equal(r.hookgateCpuShare, 0.5);
  assert.equal(r.kvServerCpuShare, 0.25);
  assert.equal(r.wrkCpuShare, 0.1);
  assert.equal(r.hookgateUsPerStored, 500);
  assert.equal(r.kvServerUsPerStored, 250);
});

Deno.test("remoteRound() gives no CPU per delivery and no mean in flight when there are none", () => {
  const none = inputs({ inFlightSamples: [] });
  none.deltas = { ...none.deltas, accepted: 0 };
  const r = remoteRound(none);
  assert.equal(r.hookgateUsPerStored, 0);
  assert.equal(r.meanInFlight, 0);
});

Deno.test("remoteTable() has a row per round trip with the ratio to the first", () => {
  const rows = remoteTable([
    round(0, 2000),
    round(100, 1000),
    round(0, 4000, { rep: 2 }),
  ]).split("\n");
  assert.equal(rows.length, 4);
  assert.match(rows[2]!, /^\| 0 ms \| 3,000 \| 1\.00 \|/);
  assert.match(rows[3]!, /^\| 100 ms \| 1,000 \| 0\.33 \|/);
});

Deno.test("remoteTargets() is met at 1,000 a second and p99 under 500 ms with nothing refused", () => {
  const met = remoteTargets([round(0, 5000), round(100, 1000)], 10);
  assert.deepEqual(met.map((t) => t.met), [true, true, true, true, true]);
});

Deno.test("remoteTargets() is missed on a slow round, a refusal, too many checks or a lost record", () => {
  const kv = { ...stats(), refused: 2, maxChecks: 12 };
  const missed = remoteTargets([
    round(100, 999, { p99Ms: 500, kv, recordsInKv: 2099 }),
  ], 10);
  assert.deepEqual(missed.map((t) => t.met), [
    false,
    false,
    false,
    false,
    false,
  ]);
  assert.equal(missed[2]!.value, "2 refused");
  assert.equal(missed[3]!.value, "largest 12");
});

Deno.test("remoteTargets() says not run when 100 ms was not measured", () => {
  const t = remoteTargets([round(20, 3000)], 10);
  assert.equal(t[0]!.met, null);
  assert.equal(t[0]!.value, "not run");
  assert.equal(t[1]!.met, null);
  assert.equal(remoteTargets([], 10)[2]!.met, null);
});

Deno.test("remoteSection() is headed for issue 15 with the load average and every round", () => {
  const text = remoteSection(
    {
      date: "2026-12-04T00:00:00Z",
      machine: "2 cores",
      commit: "abc1234",
      loadStart: "1.00 0.50 0.25 1/90 1",
      loadEnd: "2.00 1.00 0.50 1/90 2",
    },
    {
      connections: 256,
      duration: 10,
      warmup: 1,
      reps: 1,
      event: "push",
      kvLimits: "denokv",
    },
    [round(100, 1200)],
  );
  assert.match(text, /^## Issue 15: remote KV \(2026-12-04T00:00:00Z\)/);
  assert.match(text, /at the start: 1\.00 0\.50 0\.25/);
  assert.match(text, /- met: at 100 ms: ≥ 1000 stored/);
  assert.match(text, /at most 10 checks/);
  assert.equal(
    text.split("\n").filter((l) => l.startsWith("| 100 ms")).length,
    2,
  );
});

Deno.test("remoteRepTable() lists every round with a cell for every column", () => {
  const rows = remoteRepTable([round(0, 1), round(100, 2)]).split("\n");
  assert.equal(rows.length, 4);
  const cells = (row: string) => row.split(" | ").length;
  for (const row of rows) assert.equal(cells(row), cells(rows[0]!));
  assert.match(rows[2]!, /\| 800 \| 3 \| 20 \|/);
});

Deno.test("remoteTable() has a cell for every column", () => {
  const rows = remoteTable([round(0, 1)]).split("\n");
  const cells = (row: string) => row.split(" | ").length;
  assert.equal(cells(rows[2]!), cells(rows[0]!));
});
