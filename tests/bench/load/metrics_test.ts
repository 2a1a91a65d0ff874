import assert from "node:assert/strict";
import {
  metricSum,
  parseMetrics,
  runDeltas,
  statusCounts,
} from "../../../bench/load/metrics.ts";

const BEFORE = parseMetrics(`# HELP webhook_requests_total Requests.
# TYPE webhook_requests_total counter
webhook_requests_total{status="202"} 10
webhook_requests_total{status="401"} 4
webhook_deliveries_total{outcome="accepted",event="push"} 10
webhook_deliveries_total{outcome="duplicate",event="push"} 1
webhook_queue_depth 7
`);
const AFTER = parseMetrics(`webhook_requests_total{status="200"} 5
webhook_requests_total{status="202"} 30
webhook_requests_total{status="401"} 4
webhook_deliveries_total{outcome="accepted",event="push"} 30
webhook_deliveries_total{outcome="duplicate",event="push"} 6
webhook_queue_depth 2
`);

Deno.test("parseMetrics() keeps values by name and labels, skipping comments", () => {
  assert.equal(BEFORE.get('webhook_requests_total{status="202"}'), 10);
  assert.equal(BEFORE.get("webhook_queue_depth"), 7);
  assert.equal(BEFORE.size, 5);
});

Deno.test("metricSum() sums the label sets that match, not other names with the prefix", () => {
  const m = new Map([
    ["x", 1],
    ['x{a="1"}', 2],
    ['x_total{a="1"}', 100],
  ]);
  assert.equal(metricSum(m, "x"), 3);
  assert.equal(metricSum(m, "x", (l) => l.includes('a="1"')), 2);
});

Deno.test("statusCounts() reads webhook_requests_total by status", () => {
  assert.deepEqual(statusCounts(AFTER), { "200": 5, "202": 30, "401": 4 });
});

Deno.test("runDeltas() keeps the statuses that changed and the backlog left", () => {
  assert.deepEqual(runDeltas(BEFORE, AFTER), {
    statuses: { "200": 5, "202": 20 },
    accepted: 20,
    duplicates: 5,
    backlog: 2,
  });
});
