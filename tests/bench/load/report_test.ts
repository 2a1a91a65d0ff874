import assert from "node:assert/strict";
import {
  fmtInt,
  fmtMb,
  fmtMs,
  fmtPct,
  fmtRatio,
  notesOf,
  table,
  targetLines,
  targets,
  threadTable,
} from "../../../bench/load/report.ts";
import { summarize } from "../../../bench/load/summary.ts";
import { ceilingOf, runOf } from "./_results.ts";

Deno.test("fmt helpers round as the tables show them", () => {
  assert.equal(fmtInt(1234567.5), "1,234,568");
  assert.equal(fmtMs(9.994), "9.99");
  assert.equal(fmtMs(12.34), "12.3");
  assert.equal(fmtMb(51 * 1048576), "51 MB");
  assert.equal(fmtPct(0.925), "93 %");
  assert.equal(fmtRatio(0.305), "0.30");
  assert.equal(fmtRatio(undefined), "—");
  assert.equal(fmtRatio(Infinity), "—");
});

Deno.test("table() gives ratios to (a) and (b) of the same mode", () => {
  const summaries = summarize([
    runOf("a", "good", 40_000),
    runOf("b", "good", 8_000),
    runOf("c", "good", 4_000),
    runOf("b", "bad", 10_000),
  ]);
  const rows = table(summaries, [ceilingOf(5000)]).split("\n");
  assert.equal(rows.length, 2 + 4 + 1);
  const cells = (row: string) => row.split(" | ");
  assert.deepEqual(cells(rows[4]!).slice(0, 5), [
    "| (c) hookgate, KV :memory:",
    "valid",
    "4,000",
    "0.10",
    "0.50",
  ]);
  // No (a) ran with invalid signatures: no ratio to it.
  assert.deepEqual(cells(rows[5]!).slice(2, 5), ["10,000", "—", "1.00"]);
  assert.match(
    rows[6]!,
    /^\| \(e\) KV ceiling, 32\/commit \| \(no HTTP\) \| 5,000 deliveries\/s \|/,
  );
});

Deno.test("notesOf() flags bodies repeated only for hookgate with valid signatures", () => {
  const [c] = summarize([
    runOf("c", "good", 100, {
      wrapped: true,
      statuses: { "202": 90, "200": 10 },
      duplicates: 10,
      backlog: 3,
    }),
  ]);
  assert.equal(
    notesOf(c!),
    "200: 10, 202: 90; duplicates 10; backlog at end 3; WRAPPED: bodies repeated, raise --requests",
  );
  const [b] = summarize([runOf("b", "good", 100, { wrapped: true })]);
  assert.equal(notesOf(b!), "");
});

Deno.test("notesOf() says what the non-2xx are and when wrk was the limit", () => {
  const [a, b] = summarize([
    runOf("a", "bad", 100, { wrkCpuShare: 0.9 }),
    runOf("b", "bad", 100, { socketErrors: 1200 }),
  ]);
  assert.equal(
    notesOf(a!),
    "signatures not checked; wrk near saturation: a lower bound",
  );
  assert.equal(
    notesOf(b!),
    "non-2xx are the expected 401s; socket errors 1,200",
  );
});

Deno.test("threadTable() puts main first, then the costliest threads, dropping those under 0.5 µs", () => {
  const summaries = summarize([
    runOf("b", "good", 10_000, {
      threadUsPerReq: { sw: 5, main: 50, tiny: 0.1, "tokio-runtime-w": 9 },
    }),
  ]);
  const rows = threadTable(summaries, []).split("\n");
  assert.equal(rows[0], "| server | main (JS) thread | tokio-runtime-w | sw |");
  assert.equal(rows[2], "| (b) minimal verify+parse, valid | 50 | 9 | 5 |");
});

Deno.test("targets() compares the medians when the runs are there", () => {
  const summaries = summarize([
    runOf("b", "good", 10_000),
    runOf("b", "bad", 10_000),
    runOf("c", "good", 6_000),
    runOf("c", "bad", 9_000),
    runOf("d", "good", 4_000, { p99Ms: 60 }),
  ]);
  const ts = targets(summaries, [ceilingOf(5_000)], { connections: 32 });
  assert.equal(
    targetLines(ts),
    [
      "- NOT met: invalid signatures: (c) ≥ 1.0 × (b) — 0.90 × (b)",
      "- met: valid deliveries: (c) ≥ 0.6 × (b) — 0.60 × (b)",
      "- met: valid deliveries: (d) ≥ 0.8 × (e) — 0.80 × (e)",
      "- NOT met: valid deliveries: (d) p99 ≤ 50 ms at 32 connections — 60.0 ms",
    ].join("\n"),
  );
});

Deno.test("targets() says not run when a side is missing", () => {
  const ts = targets(summarize([runOf("c", "bad", 1)]), [], {
    connections: 8,
  });
  assert.ok(ts.every((t) => t.met === null && t.value === "not run"));
  assert.match(ts[3]!.text, /at 8 connections$/);
});
