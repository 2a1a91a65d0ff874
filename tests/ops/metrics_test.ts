import assert from "node:assert/strict";
import {
  createMetrics,
  escapeLabel,
  foldLabels,
  HANDLER_BUCKETS,
  MAX_SERIES,
  Metrics,
  OTHER,
} from "../../lib/ops/metrics.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

/** The sample lines (not comments) of a rendering. */
function samples(text: string): string[] {
  return text.split("\n").filter((line) =>
    line !== "" && !line.startsWith("#")
  );
}

// A sample line of the text exposition format: name, optional labels, value.
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\\\|\\"|\\n|[^"\\\n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/;

Deno.test(
  "Metrics renders a declared counter with no series as HELP and TYPE only",
  SANITIZE,
  () => {
    const m = new Metrics();
    m.counter("jobs_total", "Jobs done.");
    assert.equal(
      m.render(),
      "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n",
    );
  },
);

Deno.test("Metrics renders an empty registry as one newline", SANITIZE, () => {
  assert.equal(new Metrics().render(), "\n");
});

Deno.test(
  "Metrics.inc() adds to one series per label set",
  SANITIZE,
  async (t) => {
    await t.step("default step and labels", () => {
      const m = new Metrics();
      m.counter("jobs_total", "Jobs done.");
      m.inc("jobs_total");
      m.inc("jobs_total");
      assert.equal(m.value("jobs_total"), 2);
      assert.deepEqual(samples(m.render()), ["jobs_total 2"]);
    });
    await t.step("labelled series", () => {
      const m = new Metrics();
      m.counter("req_total", "Requests.");
      m.inc("req_total", { status: "202" });
      m.inc("req_total", { status: "202" }, 4);
      m.inc("req_total", { status: "401" });
      assert.equal(m.value("req_total", { status: "202" }), 5);
      assert.equal(m.value("req_total", { status: "401" }), 1);
      assert.equal(m.value("req_total", { status: "500" }), 0);
      assert.deepEqual(samples(m.render()), [
        'req_total{status="202"} 5',
        'req_total{status="401"} 1',
      ]);
    });
    await t.step("several labels", () => {
      const m = new Metrics();
      m.inc("d_total", { event: "push", outcome: "accepted" });
      assert.deepEqual(samples(m.render()), [
        'd_total{event="push",outcome="accepted"} 1',
      ]);
    });
    await t.step(
      "an undeclared counter is created with its name as help",
      () => {
        const m = new Metrics();
        m.inc("surprise_total", {}, 3);
        assert.equal(
          m.render(),
          "# HELP surprise_total surprise_total\n# TYPE surprise_total counter\nsurprise_total 3\n",
        );
      },
    );
    await t.step("value() of an unknown counter is 0", () => {
      assert.equal(new Metrics().value("nope_total"), 0);
    });
  },
);

Deno.test(
  "Metrics.counter() keeps the first declaration and its series",
  SANITIZE,
  () => {
    const m = new Metrics();
    m.counter("c_total", "First.");
    m.inc("c_total");
    m.counter("c_total", "Second.");
    const text = m.render();
    assert.ok(text.includes("# HELP c_total First.\n"));
    assert.ok(!text.includes("Second."));
    assert.deepEqual(samples(text), ["c_total 1"]);
  },
);

Deno.test(
  "escapeLabel() escapes backslash, double quote and newline",
  SANITIZE,
  async (t) => {
    const table: [string, string][] = [
      ["plain", "plain"],
      ["a\\b", "a\\\\b"],
      ['say "hi"', 'say \\"hi\\"'],
      ["line1\nline2", "line1\\nline2"],
      ['\\"\n', '\\\\\\"\\n'],
      ["\\n", "\\\\n"],
      ["", ""],
    ];
    for (const [input, expected] of table) {
      await t.step(
        JSON.stringify(input),
        () => assert.equal(escapeLabel(input), expected),
      );
    }
  },
);

Deno.test("Metrics escapes label values in rendered series", SANITIZE, () => {
  const m = new Metrics();
  m.inc("rej_total", { reason: 'a\\b"c\nd' });
  const lines = samples(m.render());
  assert.deepEqual(lines, ['rej_total{reason="a\\\\b\\"c\\nd"} 1']);
  assert.match(lines[0]!, SAMPLE);
});

Deno.test(
  "Metrics renders a histogram with cumulative buckets, +Inf, _sum and _count",
  SANITIZE,
  () => {
    const m = new Metrics();
    m.histogram("dur_seconds", "Durations.", [0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 2, 20]) m.observe("dur_seconds", v);
    assert.equal(
      m.render(),
      [
        "# HELP dur_seconds Durations.",
        "# TYPE dur_seconds histogram",
        'dur_seconds_bucket{le="0.1"} 2',
        'dur_seconds_bucket{le="1"} 3',
        'dur_seconds_bucket{le="10"} 4',
        'dur_seconds_bucket{le="+Inf"} 5',
        "dur_seconds_sum 22.65",
        "dur_seconds_count 5",
        "",
      ].join("\n"),
    );
  },
);

Deno.test("Metrics keeps histogram series apart by label", SANITIZE, () => {
  const m = new Metrics();
  m.histogram("h", "H.", [1]);
  m.observe("h", 0.5, { event: "push" });
  m.observe("h", 5, { event: "ping" });
  m.observe("h", 0.5, { event: "push" });
  assert.deepEqual(samples(m.render()), [
    'h_bucket{event="push",le="1"} 2',
    'h_bucket{event="push",le="+Inf"} 2',
    'h_sum{event="push"} 1',
    'h_count{event="push"} 2',
    'h_bucket{event="ping",le="1"} 0',
    'h_bucket{event="ping",le="+Inf"} 1',
    'h_sum{event="ping"} 5',
    'h_count{event="ping"} 1',
  ]);
});

Deno.test(
  "Metrics buckets are monotonic for the handler buckets",
  SANITIZE,
  () => {
    const m = new Metrics();
    m.histogram("h", "H.", HANDLER_BUCKETS);
    for (const v of [0, 0.0005, 0.001, 0.003, 0.04, 0.7, 3, 45, 60, 61, 1e6]) {
      m.observe("h", v);
    }
    const counts = samples(m.render())
      .filter((l) => l.startsWith("h_bucket"))
      .map((l) => Number(l.split(" ")[1]));
    assert.equal(counts.length, HANDLER_BUCKETS.length + 1);
    for (let i = 1; i < counts.length; i++) {
      assert.ok(counts[i]! >= counts[i - 1]!, `${counts}`);
    }
    assert.equal(counts[0], 3); // 0, 0.0005 and 0.001 (upper bounds are inclusive)
    assert.equal(counts.at(-2), 9); // everything up to 60
    assert.equal(counts.at(-1), 11);
  },
);

Deno.test(
  "Metrics.observe() throws for an undeclared histogram",
  SANITIZE,
  () => {
    assert.throws(() => new Metrics().observe("nope", 1), RangeError);
  },
);

Deno.test("Metrics.histogram() keeps the first declaration", SANITIZE, () => {
  const m = new Metrics();
  m.histogram("h", "First.", [1]);
  m.observe("h", 0.5);
  m.histogram("h", "Second.", [2, 3]);
  const text = m.render();
  assert.ok(text.includes("# HELP h First."));
  assert.ok(text.includes('h_bucket{le="1"} 1'));
  assert.ok(!text.includes('le="2"'));
});

Deno.test("Metrics reads gauges at render time", SANITIZE, async (t) => {
  await t.step("a number", () => {
    const m = new Metrics();
    let depth = 3;
    m.gauge("queue_depth", "Queued.", () => depth);
    assert.deepEqual(samples(m.render()), ["queue_depth 3"]);
    depth = 7;
    assert.deepEqual(samples(m.render()), ["queue_depth 7"]);
    assert.ok(m.render().includes("# TYPE queue_depth gauge\n"));
  });
  await t.step("labelled series", () => {
    const m = new Metrics();
    m.gauge("ranges", "Ranges.", () => [
      { labels: { family: "ipv4" }, value: 10 },
      { labels: { family: "ipv6" }, value: 4 },
    ]);
    assert.deepEqual(samples(m.render()), [
      'ranges{family="ipv4"} 10',
      'ranges{family="ipv6"} 4',
    ]);
  });
  await t.step("an empty list", () => {
    const m = new Metrics();
    m.gauge("none", "None.", () => []);
    assert.deepEqual(samples(m.render()), []);
  });
  await t.step("special numbers", () => {
    const m = new Metrics();
    m.gauge("inf", "I.", () => Infinity);
    m.gauge("ninf", "N.", () => -Infinity);
    m.gauge("nan", "N.", () => NaN);
    m.gauge("ts", "T.", () => 1_700_000_000.5);
    assert.deepEqual(samples(m.render()), [
      "inf +Inf",
      "ninf -Inf",
      "nan NaN",
      "ts 1700000000.5",
    ]);
  });
  await t.step("registering again replaces the reader", () => {
    const m = new Metrics();
    m.gauge("g", "G.", () => 1);
    m.gauge("g", "G.", () => 2);
    assert.deepEqual(samples(m.render()), ["g 2"]);
  });
});

Deno.test(
  "Metrics skips a gauge whose reader throws and renders the rest",
  SANITIZE,
  () => {
    const m = new Metrics();
    m.inc("c_total");
    m.gauge("broken", "Broken.", () => {
      throw new Error("kv closed");
    });
    m.gauge("fine", "Fine.", () => 1);
    const text = m.render();
    assert.deepEqual(samples(text), ["c_total 1", "fine 1"]);
  },
);

Deno.test("Metrics adds constant labels to every series", SANITIZE, () => {
  const m = new Metrics({ isolate: "a1" });
  assert.deepEqual(m.constLabels, { isolate: "a1" });
  m.inc("c_total", { status: "200" });
  m.inc("plain_total");
  m.histogram("h", "H.", [1]);
  m.observe("h", 0.5);
  m.gauge("g", "G.", () => 2);
  assert.deepEqual(samples(m.render()), [
    'c_total{status="200",isolate="a1"} 1',
    'plain_total{isolate="a1"} 1',
    'h_bucket{le="1",isolate="a1"} 1',
    'h_bucket{le="+Inf",isolate="a1"} 1',
    'h_sum{isolate="a1"} 0.5',
    'h_count{isolate="a1"} 1',
    'g{isolate="a1"} 2',
  ]);
});

Deno.test(
  "createMetrics() declares the contract's counters and histogram",
  SANITIZE,
  async (t) => {
    const text = createMetrics().render();
    const families: [string, string][] = [
      ["webhook_requests_total", "counter"],
      ["webhook_deliveries_total", "counter"],
      ["webhook_rejections_total", "counter"],
      ["webhook_handler_runs_total", "counter"],
      ["webhook_handler_duration_seconds", "histogram"],
    ];
    for (const [name, type] of families) {
      await t.step(name, () => {
        assert.ok(text.includes(`# TYPE ${name} ${type}\n`), text);
        assert.match(text, new RegExp(`^# HELP ${name} \\S.*$`, "m"));
      });
    }
    await t.step(
      "no samples before the first request",
      () => assert.deepEqual(samples(text), []),
    );
  },
);

Deno.test(
  "createMetrics() renders valid sample lines once used",
  SANITIZE,
  () => {
    const m = createMetrics({ isolate: "x" });
    m.inc("webhook_requests_total", { status: "202" });
    m.inc("webhook_deliveries_total", { event: "push", outcome: "accepted" });
    m.inc("webhook_deliveries_total", { event: "push", outcome: "duplicate" });
    m.inc("webhook_rejections_total", { reason: "bad_signature" });
    m.inc("webhook_handler_runs_total", { event: "push", result: "timeout" });
    m.observe("webhook_handler_duration_seconds", 0.02, { event: "push" });
    const lines = samples(m.render());
    assert.equal(lines.length, 5 + HANDLER_BUCKETS.length + 3);
    for (const line of lines) assert.match(line, SAMPLE);
    assert.ok(
      lines.includes('webhook_requests_total{status="202",isolate="x"} 1'),
    );
    assert.ok(
      lines.includes(
        'webhook_handler_duration_seconds_bucket{event="push",le="0.025",isolate="x"} 1',
      ),
    );
    assert.ok(
      lines.includes(
        'webhook_handler_duration_seconds_bucket{event="push",le="0.01",isolate="x"} 0',
      ),
    );
  },
);

Deno.test("HANDLER_BUCKETS rise from 1 ms to 60 s", SANITIZE, () => {
  assert.equal(HANDLER_BUCKETS[0], 0.001);
  assert.equal(HANDLER_BUCKETS.at(-1), 60);
  for (let i = 1; i < HANDLER_BUCKETS.length; i++) {
    assert.ok(HANDLER_BUCKETS[i]! > HANDLER_BUCKETS[i - 1]!);
  }
});

Deno.test('5,000 distinct event names give a bounded /metrics: 1,000 series per family, the rest in one "other" series', () => {
  const metrics = createMetrics();
  for (let i = 0; i < 5000; i++) {
    const event = `event-${i}`;
    metrics.inc("webhook_deliveries_total", { event, outcome: "accepted" });
    metrics.inc("webhook_handler_runs_total", { event, result: "ok" });
    metrics.observe("webhook_handler_duration_seconds", 0.002, { event });
  }
  // And again: a folded label set never gets a series of its own later.
  for (let i = 0; i < 5000; i++) {
    metrics.inc("webhook_deliveries_total", {
      event: `event-${i}`,
      outcome: "accepted",
    });
  }
  const text = metrics.render();
  const lines = text.split("\n");
  const series = (prefix: string) =>
    lines.filter((l) => l.startsWith(prefix)).length;
  assert.equal(series("webhook_deliveries_total{"), MAX_SERIES + 1);
  assert.equal(series("webhook_handler_runs_total{"), MAX_SERIES + 1);
  assert.equal(
    series("webhook_handler_duration_seconds_count{"),
    MAX_SERIES + 1,
  );
  assert.ok(
    lines.includes(
      'webhook_deliveries_total{event="other",outcome="other"} 8000',
    ),
  );
  assert.ok(
    lines.includes(
      'webhook_deliveries_total{event="event-999",outcome="accepted"} 2',
    ),
  );
  assert.ok(!text.includes('event="event-1000"'));
  assert.ok(
    lines.includes(
      'webhook_handler_duration_seconds_count{event="other"} 4000',
    ),
  );
  // Bounded: twice the events, the same lines (only "other" counts more).
  for (let i = 5000; i < 10_000; i++) {
    metrics.inc("webhook_deliveries_total", {
      event: `event-${i}`,
      outcome: "duplicate",
    });
    metrics.observe("webhook_handler_duration_seconds", 0.002, {
      event: `event-${i}`,
    });
  }
  assert.equal(metrics.render().split("\n").length, lines.length);
  // Summed across isolates, the same cap holds.
  const merged = metrics.render([metrics.snapshot()]).split("\n");
  assert.equal(
    merged.filter((l) => l.startsWith("webhook_deliveries_total{")).length,
    MAX_SERIES + 1,
  );
});

Deno.test('foldLabels() makes every label value "other"', () => {
  assert.deepEqual(foldLabels({ event: "x", outcome: "accepted" }), {
    event: OTHER,
    outcome: OTHER,
  });
  assert.deepEqual(foldLabels({}), {});
});

Deno.test("Metrics keeps at most maxSeries label sets, whatever the family", () => {
  const metrics = new Metrics({}, 2);
  for (const status of ["200", "202", "400", "401"]) {
    metrics.inc("webhook_requests_total", { status });
  }
  assert.equal(metrics.value("webhook_requests_total", { status: "202" }), 1);
  assert.equal(metrics.value("webhook_requests_total", { status: "401" }), 0);
  assert.equal(metrics.value("webhook_requests_total", { status: OTHER }), 2);
  metrics.inc("webhook_requests_total", { status: "200" });
  assert.equal(metrics.value("webhook_requests_total", { status: "200" }), 2);
});
