import assert from "node:assert/strict";
import {
  type Machine,
  resultsSection,
  snippet,
} from "../../../bench/load/record.ts";
import { summarize } from "../../../bench/load/summary.ts";
import { ceilingOf, runOf } from "./_results.ts";

const MACHINE: Machine = {
  date: "2026-01-02T03:04:05Z",
  nproc: "2",
  cpu: "Test CPU",
  deno: "2.0.0 (V8 13)",
  wrk: "wrk 4.1.0",
};

Deno.test("snippet() gives ratios within the run, ? where a side did not run", () => {
  const runs = [
    runOf("a", "good", 40_000, { wrkCpuShare: 0.9 }),
    runOf("b", "good", 8_000),
    runOf("c", "good", 4_000),
    runOf("b", "bad", 10_000),
    runOf("c", "bad", 12_000),
  ];
  const text = snippet(summarize(runs), [], MACHINE, { connections: 32 });
  assert.match(
    text,
    /^### Performance\n\nMeasured with `deno task bench:load` \(2026-01-02, 2 cores, Test CPU, Deno /,
  );
  assert.match(text, /rejects bad signatures at 1\.20 × its rate/);
  assert.match(
    text,
    /accepts valid deliveries at 0\.50 × with `KV_PATH=:memory:` and \? × with a KV file/,
  );
  assert.match(text, /reaches \? × the rate/);
  assert.match(
    text,
    /is 5\.00 × the minimal receiver \(at least: `wrk` saturated its core there\): that is the ceiling of the HTTP stack\.\n$/,
  );
});

Deno.test("snippet() says where a stored delivery's CPU goes when (d) and (e) ran", () => {
  const runs = [
    runOf("d", "good", 5_000, { threadUsPerReq: { main: 120, sw: 60 } }),
  ];
  const text = snippet(summarize(runs), [ceilingOf(10_000)], MACHINE, {
    connections: 32,
  });
  assert.match(text, /reaches 0\.50 × the rate/);
  assert.match(
    text,
    / On a KV file a delivery costs 200 µs of CPU, 60 µs of it in Deno KV's SQLite writer thread and 120 µs in JavaScript \(storing alone, group-committed: 150 µs and 50 µs\)\.\n$/,
  );
});

Deno.test("resultsSection() opens with the date, machine, commit and load", () => {
  const section = resultsSection(
    MACHINE,
    "abc1234",
    {
      threads: 1,
      connections: 32,
      duration: 10,
      warmup: 1,
      reps: 3,
      event: "ping",
    },
    { table: "TABLE", threads: "THREADS", targets: [] },
    [runOf("a", "good", 1000)],
    [],
  );
  const lines = section.split("\n");
  assert.equal(lines[0], "## 2026-01-02T03:04:05Z");
  assert.equal(
    lines[2],
    "Machine: 2 cores, Test CPU; Deno 2.0.0 (V8 13); wrk 4.1.0. Code: abc1234.",
  );
  assert.match(
    lines[3]!,
    /^Load: wrk, 1 thread on core 1, server on core 0 .* 32 keep-alive connections, 10 s per run after a 1 s warm-up, 3 repetitions .* event `ping`, other settings default\.$/,
  );
  assert.ok(section.includes("\n\nTABLE\n\n"));
  assert.ok(section.includes("\n\nTHREADS\n\nTargets (issue 6):\n\n"));
  assert.ok(
    section.endsWith(
      "| a valid #1 | 1,000 | 2.00 | 20.0 | 0 | 1000 | 40 % |\n\n</details>\n",
    ),
  );
});
