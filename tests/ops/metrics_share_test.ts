// Summing counters across isolates over a BroadcastChannel.

import assert from "node:assert/strict";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { createMetricsShare } from "../../lib/ops/metrics_share.ts";
import { waitFor } from "../_helpers.ts";

Deno.test("createMetricsShare() sums the counters and histograms of live peers", async () => {
  const a = createMetrics();
  const b = createMetrics();
  const controller = new AbortController();
  const shareA = createMetricsShare({
    metrics: a,
    intervalMs: 20,
    channel: "test-share",
  });
  const shareB = createMetricsShare({
    metrics: b,
    intervalMs: 20,
    channel: "test-share",
  });
  try {
    a.inc("webhook_requests_total", { status: "202" }, 3);
    b.inc("webhook_requests_total", { status: "202" }, 4);
    b.inc("webhook_requests_total", { status: "401" });
    b.observe("webhook_handler_duration_seconds", 0.002, { event: "push" });
    a.observe("webhook_handler_duration_seconds", 0.2, { event: "push" });
    shareA.start(controller.signal);
    shareB.start(controller.signal);
    await waitFor(
      () => shareA.isolates() === 2 && shareB.isolates() === 2,
      2000,
      "peers",
    );
    const text = shareA.render();
    assert.match(text, /^webhook_requests_total\{status="202"\} 7$/m);
    assert.match(text, /^webhook_requests_total\{status="401"\} 1$/m);
    assert.match(
      text,
      /^webhook_handler_duration_seconds_count\{event="push"\} 2$/m,
    );
    assert.match(
      text,
      /^webhook_handler_duration_seconds_bucket\{event="push",le="0.005"\} 1$/m,
    );
    // The sum does not change the isolate's own counters.
    assert.equal(a.value("webhook_requests_total", { status: "202" }), 3);
  } finally {
    controller.abort();
  }
  // A peer that left is no longer summed.
  assert.match(a.render(), /^webhook_requests_total\{status="202"\} 3$/m);
});
