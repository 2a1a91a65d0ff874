// The deploy/ tests' PromQL reader (tests/deploy/_promql.ts) on its own.

import assert from "node:assert/strict";
import { readExpr } from "./_promql.ts";

Deno.test("readExpr() finds the series and labels of PromQL, leaving out functions, keywords, strings and variables", async (t) => {
  const table: Array<[string, string[], string[]]> = [
    [
      'sum by (status) (rate(webhook_requests_total{instance=~"$instance"}[$__rate_interval]))',
      ["webhook_requests_total"],
      ["status"],
    ],
    [
      "histogram_quantile(0.95, sum by (le, event) (rate(h_seconds_bucket[5m])))",
      ["h_seconds_bucket"],
      ["le", "event"],
    ],
    ["time() - (meta_ts > 0)", ["meta_ts"], []],
    [
      "a_total / on(instance) group_left(version) b_info offset 5m",
      ["a_total", "b_info"],
      ["instance", "version"],
    ],
    ['{__name__="up", job="x"}', ["up"], []],
    ["count(up) > bool 1e3 and sum without() (x:rule:rate5m)", [
      "up",
      "x:rule:rate5m",
    ], []],
    [
      'label_replace(up, "dst", "$1 sum(fake_total)", "src", "(.*)")',
      ["up"],
      [],
    ],
    ["max_over_time(q_depth[1h:5m]) * 2 + inf", ["q_depth"], []],
    [
      "sum by(event)(rate(c_total{a='x',b!~`y|z`}[${__interval}]))",
      ["c_total"],
      ["event"],
    ],
  ];
  for (const [expr, metrics, grouping] of table) {
    await t.step(expr, () => {
      const names = readExpr(expr);
      assert.deepEqual(names.selectors.map((s) => s.metric), metrics);
      assert.deepEqual(names.grouping, grouping);
    });
  }
  await t.step("matchers are read with their operator and value", () => {
    const [s] =
      readExpr('x{instance=~"$instance", status!="2\\"00"}').selectors;
    assert.deepEqual([...s!.matchers], [["instance", '=~"$instance"'], [
      "status",
      '!="2\\"00"',
    ]]);
  });
  await t.step("a malformed matcher is an error, not a pass", () => {
    assert.throws(() => readExpr("x{status}"), SyntaxError);
    assert.throws(() => readExpr('x{a="b"'), SyntaxError);
  });
});
