// Recording a run's outcome through the store, on :memory: KV.

import assert from "node:assert/strict";
import {
  countOutcome,
  countRun,
  recordOutcome,
  reportsOf,
} from "../../lib/worker/outcome.ts";
import { withForwards } from "../../lib/worker/run.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { INTERRUPTED_ERROR } from "../../lib/store/lifecycle.ts";
import type { DispatchResult } from "../../lib/dispatch.ts";
import { captureLogger } from "../_helpers.ts";

const backoff = { baseMs: 1_000, maxMs: 8_000, random: () => 0 };

async function leasedOne(maxAttempts = 3) {
  const kv = await Deno.openKv(":memory:");
  const store = new DeliveryStore({
    kv,
    ttlMs: 60_000,
    maxAttempts,
    now: () => 10_000,
  });
  const delivery: IncomingDelivery = {
    id: "d1",
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body: new Uint8Array([123, 125]),
    kind: "json",
    digest: "0".repeat(64),
    receivedAt: 10_000,
    repository: undefined,
    sender: undefined,
  };
  const result = await store.accept(delivery, { leaseUntil: 20_000 });
  assert.ok(result.status === "queued" && result.leased);
  const logs = captureLogger("info");
  const options = { store, backoff, shutdown: new AbortController().signal };
  return { kv, store, leased: result.leased, logs, options };
}

Deno.test("countRun() counts each handler and script run with its duration, not skipped deliveries", () => {
  const metrics = createMetrics();
  countRun(metrics, "push", {
    outcome: "ok",
    ms: 3,
    runs: [
      { handler: "*", result: "ok", ms: 1 },
      { handler: "push", result: "ok", ms: 2 },
    ],
  });
  countRun(metrics, "push", { outcome: "skipped", ms: 1, runs: [] });
  countRun(metrics, "push", {
    outcome: "timeout",
    ms: 1,
    error: "t",
    handler: "push",
    runs: [{ handler: "push", result: "timeout", ms: 1 }],
  });
  // An isolate that ended before reporting: counted under its step.
  countRun(metrics, "push", {
    outcome: "error",
    ms: 1,
    error: "gone",
    handler: "(isolate)",
  });
  countRun(metrics, "push", {
    outcome: "error",
    ms: 9,
    error: "script push-app-main: exit status 1",
    handler: "push-app-main",
    runs: [{ handler: "push", result: "ok", ms: 1 }],
    scripts: [{
      handler: "push-app-main",
      ok: false,
      exitCode: 1,
      signal: null,
      timedOut: false,
      ms: 8,
      output: new Uint8Array(),
    }],
  });
  const runs = (handler: string, result: string) =>
    metrics.value("webhook_handler_runs_total", {
      event: "push",
      handler,
      result,
    });
  assert.equal(runs("push", "ok"), 2);
  assert.equal(runs("*", "ok"), 1);
  assert.equal(runs("push", "timeout"), 1);
  assert.equal(runs("(isolate)", "error"), 1);
  assert.equal(runs("push-app-main", "error"), 1);
  countRun(undefined, "push", { outcome: "ok", ms: 1 }); // no metrics: no-op
});

Deno.test("store.oldestDue() is the earliest work index entry's due time, null when empty", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    assert.equal(await store.oldestDue(), 20_000, "the lease's expiry");
    await recordOutcome(leased, { outcome: "ok", ms: 4 }, logs.log, options);
    assert.equal(await store.oldestDue(), null);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() commits the next state against the leased entry and logs it", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    await recordOutcome(leased, { outcome: "ok", ms: 4 }, logs.log, options);
    assert.equal((await store.get("d1"))?.status, "done");
    assert.deepEqual(logs.lines.map((l) => [l.level, l.msg, l.status]), [
      ["info", "delivery done", "done"],
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() logs a failure with its retry delay, and the last one dead", async () => {
  const { kv, store, leased, logs, options } = await leasedOne(2);
  try {
    const error: DispatchResult = {
      outcome: "error",
      ms: 1,
      error: "boom",
      handler: "push",
    };
    await recordOutcome(leased, error, logs.log, options);
    assert.equal(logs.lines[0]?.msg, "delivery failed");
    assert.equal(logs.lines[0]?.retryInMs, 500);
    const again = await store.lease("d1", 30_000);
    assert.equal(again, null, "not due before its backoff");
    const entry = await store.getEntry("d1");
    const second = await store.update(entry as Deno.KvEntry<DeliveryRecord>, {
      ...entry.value!,
      status: "running",
      attempts: 2,
      startedAt: 10_500,
    });
    const metrics = createMetrics();
    const dead = await recordOutcome(second!, error, logs.log, {
      ...options,
      metrics,
    });
    assert.equal(dead?.status, "dead");
    assert.equal((await store.get("d1"))?.status, "dead");
    const outcomes = (status: string) =>
      metrics.value("webhook_delivery_outcomes_total", {
        event: "push",
        status,
      });
    assert.equal(outcomes("dead"), 1);
    assert.equal(outcomes("failed"), 0, "the first attempt had no metrics");
    const fresh = createMetrics();
    countOutcome(fresh, { event: "ping", status: "done" } as DeliveryRecord);
    assert.match(
      fresh.render(),
      /webhook_delivery_outcomes_total\{event="ping",status="dead"\} 0/,
      "the dead series is there, at 0, before the first dead delivery",
    );
    assert.equal(logs.lines[1]?.level, "error");
    assert.equal(logs.lines[1]?.msg, "delivery dead");
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() retries against a fresh read when the record changed meanwhile", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    await store.rearm("d1", "replay"); // a replay while it ran
    await recordOutcome(leased, { outcome: "ok", ms: 1 }, logs.log, options);
    const record = await store.get("d1");
    assert.equal(record?.status, "queued", "it runs again");
    assert.equal(record?.rerun, false);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() writes nothing when the lease was lost to another worker", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    const entry = await store.getEntry("d1");
    await store.update(entry as Deno.KvEntry<DeliveryRecord>, {
      ...entry.value!,
      startedAt: 15_000,
      attempts: 2,
    });
    await recordOutcome(leased, { outcome: "ok", ms: 1 }, logs.log, options);
    assert.equal((await store.get("d1"))?.status, "running");
    assert.match(String(logs.lines[0]?.msg), /lease lost/);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() does not count a failure during a shutdown", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    const stop = new AbortController();
    stop.abort();
    await recordOutcome(
      leased,
      { outcome: "error", ms: 1, error: "aborted", handler: "push" },
      logs.log,
      { ...options, shutdown: stop.signal },
    );
    const record = await store.get("d1");
    assert.equal(record?.status, "queued");
    assert.equal(record?.attempts, 0);
    assert.equal(record?.error, INTERRUPTED_ERROR);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() logs a run cut short by a shutdown as interrupted at info, never as dead", async () => {
  const { kv, leased, logs, options } = await leasedOne(1);
  try {
    const stop = new AbortController();
    stop.abort();
    await recordOutcome(
      leased,
      { outcome: "error", ms: 1, error: "aborted", handler: "push" },
      logs.log,
      { ...options, shutdown: stop.signal },
    );
    assert.deepEqual(logs.lines.map((l) => [l.level, l.msg, l.status]), [
      [
        "info",
        "delivery interrupted by the shutdown; it runs again",
        "queued",
      ],
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("recordOutcome() logs a run replayed while it ran at info: it runs again", async () => {
  const { kv, store, leased, logs, options } = await leasedOne();
  try {
    await store.rearm("d1", "replay");
    await recordOutcome(leased, { outcome: "ok", ms: 1 }, logs.log, options);
    assert.deepEqual(logs.lines.map((l) => [l.level, l.msg]), [
      ["info", "delivery replayed while it ran; it runs again"],
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("reportsOf() and countRun() report each forward target as itself, never as a handler", () => {
  const ok = {
    handler: "forward:a.test",
    ok: true,
    status: 200,
    ms: 3.4,
    timedOut: false,
  };
  const late = {
    handler: "forward:b.test",
    ok: false,
    ms: 300,
    timedOut: true,
    error: "timed out after 300 ms",
  };
  // The handlers were settled in an earlier attempt: only forwards ran.
  const result = withForwards({ outcome: "ok", ms: 0 }, [ok, late], [
    "handlers",
    "forward:a.test",
  ]);
  assert.equal(result.outcome, "timeout");
  assert.deepEqual(reportsOf(result), [
    {
      handler: "forward:a.test",
      kind: "forward",
      ok: true,
      ms: 3,
      status: 200,
    },
    {
      handler: "forward:b.test",
      kind: "forward",
      ok: false,
      ms: 300,
      error: "timed out after 300 ms",
    },
  ]);
  const metrics = createMetrics();
  countRun(metrics, "push", result);
  const value = (handler: string, result: string) =>
    metrics.value("webhook_handler_runs_total", {
      event: "push",
      handler,
      result,
    });
  assert.equal(value("forward:a.test", "ok"), 1);
  assert.equal(value("forward:b.test", "timeout"), 1);
  // A body that did not load is still counted under its step.
  const load = withForwards(
    { outcome: "error", ms: 1, error: "gone", handler: "(load)" },
    [ok],
    ["forward:a.test"],
  );
  assert.equal(load.outcome, "error");
  assert.equal(reportsOf(load)[0]!.handler, "(load)");
  countRun(metrics, "push", load);
  assert.equal(value("(load)", "error"), 1);
});

Deno.test("withForwards() keeps a skipped delivery skipped only when nothing was forwarded", () => {
  const ok = { handler: "forward:a.test", ok: true, ms: 1, timedOut: false };
  assert.equal(
    withForwards({ outcome: "skipped", ms: 1 }, [ok], []).outcome,
    "ok",
  );
  assert.equal(
    withForwards({ outcome: "skipped", ms: 1 }, [], []).outcome,
    "skipped",
  );
  const failed = { ...ok, ok: false, status: 302, error: "answered 302" };
  const result = withForwards({ outcome: "ok", ms: 1 }, [failed], ["handlers"]);
  assert.equal(result.outcome, "error");
  assert.equal(
    (result as { error: string }).error,
    "forward:a.test: answered 302",
  );
});
