import assert from "node:assert/strict";
import type { SinkCounts } from "../../../bench/load/otlp_sink.ts";
import {
  addBaselineTree,
  otelEnv,
  ratioOf,
  roundOrder,
  spreadOf,
  telemetryLine,
  telemetryRatios,
  type TelemetryRun,
  telemetrySection,
  telemetryTable,
  telemetryTargets,
  telemetryThreads,
  type Variant,
  variantsOf,
} from "../../../bench/load/telemetry.ts";
import { runOf } from "./_results.ts";

const NONE: SinkCounts = { posts: {}, bytes: {}, spans: 0, names: {} };

/** A run of `variant` in repetition `rep` at `rps` (CPU 1e6/rps µs a request); "on" exported 6 spans a delivery. */
function tel(
  variant: Variant,
  rep: number,
  rps: number,
  extra: { cpu?: number; exported?: number } = {},
): TelemetryRun {
  const accepted = rps * 10;
  const on = variant === "on" || extra.exported !== undefined;
  const posts = extra.exported ?? (on ? 40 : 0);
  const round: SinkCounts = on
    ? {
      posts: { "/v1/traces": posts },
      bytes: { "/v1/traces": posts * 1_000_000 },
      spans: accepted * 6,
      names: {
        "hookgate.verify": accepted,
        "hookgate.store": accepted,
        "hookgate.run": accepted / 2,
        "hookgate.handler": accepted,
      },
    }
    : NONE;
  return {
    variant,
    run: runOf("d", "good", rps, {
      rep,
      serverCpuUsPerReq: extra.cpu ?? 1e6 / rps,
      accepted,
      acceptedTotal: accepted,
      runsEnded: accepted / 2,
      statuses: { "202": accepted },
      duplicates: 0,
      backlog: 30,
    }),
    sink: {
      measured: round,
      round,
      cpuShare: on ? 0.03 : 0,
      seconds: 10,
    },
  };
}

/** Three repetitions of base, off and on. */
function threeReps(): TelemetryRun[] {
  return [
    tel("base", 1, 1000),
    tel("off", 1, 1010),
    tel("on", 1, 800),
    tel("off", 2, 900),
    tel("on", 2, 720),
    tel("base", 2, 950),
    tel("on", 3, 880),
    tel("base", 3, 1100),
    tel("off", 3, 1050),
  ];
}

Deno.test("variantsOf() adds the baseline only when there is one", () => {
  assert.deepEqual(variantsOf(null), ["off", "on"]);
  assert.deepEqual(variantsOf("c5a7af2"), ["base", "off", "on"]);
});

Deno.test("roundOrder() puts every variant first once in as many repetitions", () => {
  const vs = variantsOf("x");
  const orders = [1, 2, 3, 4].map((rep) => roundOrder(vs, rep));
  assert.deepEqual(orders[0], ["base", "off", "on"]);
  assert.deepEqual(orders[1], ["off", "on", "base"]);
  assert.deepEqual(orders[2], ["on", "base", "off"]);
  assert.deepEqual(orders[3], orders[0]);
  for (const order of orders) {
    assert.deepEqual([...order].sort(), [...vs].sort());
  }
  assert.deepEqual(roundOrder(["off", "on"], 2), ["on", "off"]);
  assert.deepEqual(roundOrder([], 3), []);
});

Deno.test("otelEnv() sets exactly Deno's switch, JSON and the endpoint", () => {
  assert.deepEqual(otelEnv("http://127.0.0.1:4318"), {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
  });
});

Deno.test("spreadOf() and ratioOf() give medians, and ratios paired by repetition", () => {
  const runs = threeReps();
  assert.deepEqual(spreadOf(runs, "off", "rps"), {
    median: 1010,
    min: 900,
    max: 1050,
  });
  assert.equal(spreadOf(runs, "base", "p99")?.median, 20);
  const r = ratioOf(runs, "off", "base", "rps")!;
  assert.equal(r.ratio, 1010 / 1000);
  // Per repetition: 1010/1000, 900/950, 1050/1100.
  assert.equal(r.min, 900 / 950);
  assert.equal(r.max, 1010 / 1000);
  assert.equal(
    ratioOf(runs.filter((t) => t.variant !== "base"), "off", "base", "rps"),
    undefined,
  );
  assert.equal(spreadOf([], "on", "cpu"), undefined);
});

Deno.test("telemetryTable() gives a row a variant, base first, with spreads and the sink's notes", () => {
  const rows = telemetryTable(threeReps()).split("\n");
  assert.equal(rows.length, 2 + 3);
  const cells = (row: string) => row.split(" | ");
  assert.deepEqual(cells(rows[2]!).slice(0, 3), [
    "| (d-base) hookgate at the baseline, KV file",
    "1,000 (950–1,100)",
    "2.00",
  ]);
  assert.match(
    rows[3]!,
    /^\| \(d\) hookgate, KV file, telemetry off \| 1,010 \(900–1,050\) \|/,
  );
  assert.match(rows[3]!, /nothing exported/);
  assert.match(rows[3]!, /runs ended ÷ accepted 0\.50/);
  assert.match(
    rows[4]!,
    /^\| \(d-otel\) hookgate, KV file, OTEL_DENO=true \| 800 \(720–880\) \|/,
  );
  assert.match(
    rows[4]!,
    /6\.00 a delivery accepted: hookgate\.verify 1\.00, hookgate\.store 1\.00, hookgate\.run 0\.50, hookgate\.handler 1\.00/,
  );
  assert.match(rows[4]!, /OTLP JSON 4 MB\/s while measured; sink CPU 3 %/);
  const leaked = telemetryTable([tel("off", 1, 1000, { exported: 2 })]);
  assert.match(leaked, /EXPORTED 2 POSTs with telemetry off/);
});

Deno.test("telemetryRatios() gives off ÷ base and on ÷ off with the paired range", () => {
  const rows = telemetryRatios(threeReps()).split("\n");
  assert.equal(rows.length, 4);
  assert.deepEqual(rows[2]!.split(" | ").slice(0, 2), [
    "| off ÷ base: (d) ÷ (d-base)",
    "1.01 (0.95–1.01)",
  ]);
  // on ÷ off, by repetition: 800/1010, 720/900, 880/1050.
  assert.deepEqual(rows[3]!.split(" | ").slice(0, 2), [
    "| on ÷ off: (d-otel) ÷ (d)",
    "0.79 (0.79–0.84)",
  ]);
  assert.match(
    telemetryRatios(threeReps().filter((t) => t.variant !== "base")),
    /\| off ÷ base: \(d\) ÷ \(d-base\) \| — \| — \| — \| — \|/,
  );
});

Deno.test("telemetryTargets() finds off within the spread of the repetitions", () => {
  const [off, spans, cost] = telemetryTargets(threeReps());
  assert.equal(off!.met, true);
  assert.match(
    off!.value,
    /^req\/s 1\.01, CPU µs\/req 0\.99; spread between repetitions 15 % \(req\/s\), 16 % \(CPU\)$/,
  );
  assert.equal(spans!.met, true);
  assert.equal(
    spans!.value,
    "1.00 at least; 0 POSTs from the runs with it off",
  );
  assert.equal(cost!.met, null);
  assert.match(
    cost!.value,
    /^req\/s 0\.79, CPU µs\/req 1\.26 \(\d+ µs more a request\)$/,
  );
});

Deno.test("telemetryTargets() says NOT met when off is slower than the spread allows", () => {
  const runs = threeReps().map((t) =>
    t.variant === "off" ? tel("off", t.run.rep, t.run.rps * 0.7) : t
  );
  assert.equal(telemetryTargets(runs)[0]!.met, false);
});

Deno.test("telemetryTargets() has no verdict from one repetition or without a baseline", () => {
  const one = threeReps().filter((t) => t.run.rep === 1);
  assert.equal(telemetryTargets(one)[0]!.met, null);
  const noBase = threeReps().filter((t) => t.variant !== "base");
  assert.equal(telemetryTargets(noBase)[0]!.value, "not run");
  assert.equal(telemetryTargets([])[1]!.met, null);
});

Deno.test("telemetryTargets() fails the export check when a receipt is missing or off exported", () => {
  const missing = threeReps().map((t) => {
    if (t.variant !== "on" || t.run.rep !== 2) return t;
    const names = {
      ...t.sink.round.names,
      "hookgate.store": t.run.accepted! * 0.9,
    };
    return { ...t, sink: { ...t.sink, round: { ...t.sink.round, names } } };
  });
  assert.equal(telemetryTargets(missing)[1]!.met, false);
  assert.match(telemetryTargets(missing)[1]!.value, /^0\.90 at least/);
  const leaked = [...threeReps(), tel("off", 4, 1000, { exported: 1 })];
  assert.equal(telemetryTargets(leaked)[1]!.met, false);
});

Deno.test("telemetryThreads() and telemetryLine() name the variants", () => {
  const threads = telemetryThreads(threeReps()).split("\n");
  assert.equal(threads.length, 5);
  assert.match(
    threads[4]!,
    /^\| \(d-otel\) hookgate, KV file, OTEL_DENO=true \| 1,?\d+ \|/,
  );
  assert.match(
    telemetryLine(tel("on", 2, 1000)),
    /^ {2}rep 2 d-otel: 1,000 req\/s, .* spans 60,000 in the round \(6\.00 a delivery; hookgate\.store 1\.00, hookgate\.run 0\.50\), sink POSTs 40, sink CPU 3 %$/,
  );
});

Deno.test("telemetrySection() names the commits, the load and every run", () => {
  const runs = threeReps();
  const text = telemetrySection(
    {
      date: "2026-12-04T03:00:00Z",
      machine: "2 cores, CPU; Deno 2.9.6; wrk 4.2.0 (1 thread)",
      commit: "abc1234",
      baseline: { commit: "c5a7af2", subject: "Metrics for alerting" },
      loadStart: "1.00 0.90 0.80 1/100 1",
      loadEnd: "1.50 1.00 0.90 1/100 2",
    },
    { connections: 32, duration: 10, warmup: 1, reps: 3, event: "push" },
    runs,
  );
  assert.match(
    text,
    /^## Issue 17: telemetry off and on \(2026-12-04T03:00:00Z\)\n/,
  );
  assert.match(
    text,
    /Code: abc1234\. Load average \(`\/proc\/loadavg`\) at the start: 1\.00 0\.90 0\.80 1\/100 1; at the end: 1\.50/,
  );
  assert.match(text, /`deno task bench:load --telemetry --baseline c5a7af2`/);
  assert.match(text, /a git worktree of c5a7af2 \("Metrics for alerting"\)/);
  assert.match(text, /- met: telemetry off costs nothing measurable/);
  const every = text.slice(text.indexOf("<details>"));
  for (const t of runs) {
    const name = { base: "d-base", off: "d", on: "d-otel" }[t.variant];
    assert.match(every, new RegExp(`\\n\\| ${name} #${t.run.rep} \\|`));
  }
  assert.equal(every.split("\n").filter((l) => l.startsWith("| d")).length, 9);
  const cells = every.split("\n").find((l) => l.startsWith("| d-otel #1 |"))!
    .split(" | ");
  const header = every.split("\n").find((l) => l.startsWith("| run |"))!
    .split(" | ");
  assert.equal(cells.length, header.length);
  const noBase = telemetrySection(
    {
      date: "d",
      machine: "m",
      commit: "c",
      baseline: null,
      loadStart: "1",
      loadEnd: "2",
    },
    { connections: 32, duration: 10, warmup: 1, reps: 1, event: "push" },
    runs.filter((t) => t.variant !== "base"),
  );
  assert.match(noBase, /`deno task bench:load --telemetry`:/);
  assert.doesNotMatch(noBase, /worktree/);
});

Deno.test("addBaselineTree() refuses a ref that names no commit, making no worktree", async () => {
  await assert.rejects(
    () => addBaselineTree("no-such-ref-of-hookgate-7f3e"),
    /--baseline no-such-ref-of-hookgate-7f3e names no commit of /,
  );
});
