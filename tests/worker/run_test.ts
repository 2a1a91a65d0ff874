// Running one delivery: payload from memory, a held body or the store; the
// handler run as plain data.

import assert from "node:assert/strict";
import {
  createInlineRunner,
  type HandlerJob,
  runDelivery,
  runHandlerJob,
} from "../../lib/worker/run.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";
import type { HandlerContext, HandlerRegistry } from "../../lib/dispatch.ts";
import { createDeadlines } from "../../lib/_util/deadline.ts";
import { NULL_LOGGER } from "../../lib/ops/log.ts";
import { encoder, sha256Hex } from "../_helpers.ts";

const job: HandlerJob = {
  event: "issues",
  action: "opened",
  delivery: "d1",
  attempt: 2,
  body: new TextEncoder().encode('{"action":"opened","issue":{"number":1}}'),
  kind: "json",
  timeoutMs: 1_000,
};

function host(registry: HandlerRegistry) {
  return {
    registry,
    deadlines: createDeadlines(),
    signal: new AbortController().signal,
  };
}

Deno.test("runHandlerJob() takes a structured clone of its job and gives plain data back", async () => {
  let seen: HandlerContext | undefined;
  const result = await runHandlerJob(
    structuredClone(job),
    NULL_LOGGER,
    host({ issues: { opened: (ctx: HandlerContext) => void (seen = ctx) } }),
  );
  assert.equal(result.outcome, "ok");
  assert.deepEqual(structuredClone(result), result);
  assert.equal(seen?.attempt, 2);
  assert.deepEqual(seen?.payload, { action: "opened", issue: { number: 1 } });
});

Deno.test("runHandlerJob() reports a body that does not decode as an error of (load)", async () => {
  const result = await runHandlerJob(
    { ...job, body: new TextEncoder().encode("{") },
    NULL_LOGGER,
    host({ issues: { opened() {} } }),
  );
  assert.ok(result.outcome === "error" && result.handler === "(load)");
});

Deno.test("runHandlerJob() times a hanging handler out", async () => {
  const result = await runHandlerJob(
    { ...job, timeoutMs: 20 },
    NULL_LOGGER,
    host({ issues: { opened: () => new Promise(() => {}) } }),
  );
  assert.equal(result.outcome, "timeout");
  assert.deepEqual(structuredClone(result), result);
});

async function stored(body: string) {
  const kv = await Deno.openKv(":memory:");
  const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
  const bytes = encoder.encode(body);
  const delivery: IncomingDelivery = {
    id: "d1",
    event: "issues",
    action: "opened",
    hookId: undefined,
    target: undefined,
    headers: {},
    body: bytes,
    kind: "json",
    digest: await sha256Hex(bytes),
    receivedAt: Date.now(),
    repository: undefined,
    sender: undefined,
  };
  await store.accept(delivery);
  const record = (await store.get("d1"))!;
  return { kv, store, record, bytes };
}

function context(store: DeliveryStore, registry: HandlerRegistry) {
  const { deadlines, signal } = host(registry);
  return {
    store,
    timeoutMs: 1_000,
    runner: createInlineRunner(registry, deadlines),
    signal,
  };
}

Deno.test("runDelivery() gets its payload from memory, the held body or the store", async () => {
  const { kv, store, record, bytes } = await stored('{"from":"body"}');
  try {
    const payloads: unknown[] = [];
    const ctx = context(store, {
      issues: { default: (c: HandlerContext) => void payloads.push(c.payload) },
    });
    await runDelivery(
      record,
      { body: bytes, payload: { from: "memory" } },
      NULL_LOGGER,
      ctx,
    );
    await runDelivery(
      record,
      { body: encoder.encode('{"from":"held"}') },
      NULL_LOGGER,
      ctx,
    );
    await runDelivery(record, undefined, NULL_LOGGER, ctx);
    assert.deepEqual(payloads, [
      { from: "memory" },
      { from: "held" },
      { from: "body" },
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("runDelivery() reports a body it cannot decode or read as an error of (load)", async () => {
  const { kv, store, record } = await stored('{"ok":true}');
  try {
    const ctx = context(store, { issues: { default() {} } });
    const bad = await runDelivery(
      record,
      { body: encoder.encode("{") },
      NULL_LOGGER,
      ctx,
    );
    assert.equal(bad.outcome, "error");
    assert.ok(bad.outcome === "error" && bad.handler === "(load)");
    const missing: DeliveryRecord = { ...record, upload: "nowhere" };
    const gone = await runDelivery(missing, undefined, NULL_LOGGER, ctx);
    assert.ok(gone.outcome === "error" && /incomplete/.test(gone.error));
  } finally {
    kv.close();
  }
});
