// The durable fast path's wiring of store and worker, with fakes for both,
// and its reports to the store's write health, with a real store.

import assert from "node:assert/strict";
import { createAccept } from "../../lib/worker/accept.ts";
import { createStoreHealth } from "../../lib/store/health.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type {
  AcceptResult,
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";

const delivery = {
  id: "d1",
  body: new Uint8Array([123, 125]),
  payload: {},
} as unknown as IncomingDelivery;

const leased: Deno.KvEntry<DeliveryRecord> = {
  key: ["k"],
  value: { id: "d1" } as DeliveryRecord,
  versionstamp: "v",
};

function fakes(
  reserve: number | null,
  answer: () => Promise<AcceptResult>,
) {
  const calls: string[] = [];
  const options: unknown[] = [];
  const accept = createAccept({
    store: {
      accept(_d, opts) {
        options.push(opts);
        return answer();
      },
    },
    worker: {
      reserve:
        () => (calls.push("reserve"),
          reserve === null ? null : { leaseUntil: reserve, waiting: false }),
      runLeased: (entry, local) => {
        calls.push("runLeased");
        assert.equal(entry, leased);
        assert.equal(local.body, delivery.body);
        assert.equal(local.payload, delivery.payload);
      },
      release: () => void calls.push("release"),
      wake: () => void calls.push("wake"),
    },
  });
  return { accept, calls, options };
}

Deno.test("createAccept() runs a delivery stored leased from memory", async () => {
  const f = fakes(
    9_000,
    () => Promise.resolve({ status: "queued", id: "d1", leased }),
  );
  assert.deepEqual(await f.accept(delivery), {
    status: "queued",
    id: "d1",
    leased,
  });
  assert.deepEqual(f.options, [{ leaseUntil: 9_000, waiting: false }]);
  assert.deepEqual(f.calls, ["reserve", "runLeased"]);
});

Deno.test("createAccept() stores it queued and wakes the worker when no run was reserved", async () => {
  const f = fakes(null, () => Promise.resolve({ status: "queued", id: "d1" }));
  await f.accept(delivery);
  assert.deepEqual(f.options, [{ leaseUntil: undefined }]);
  assert.deepEqual(f.calls, ["reserve", "wake"]);
});

Deno.test("createAccept() frees the reservation of a duplicate and does not wake", async () => {
  const f = fakes(
    9_000,
    () => Promise.resolve({ status: "duplicate", id: "first" }),
  );
  assert.deepEqual(await f.accept(delivery), {
    status: "duplicate",
    id: "first",
  });
  assert.deepEqual(f.calls, ["reserve", "release"]);
});

Deno.test("createAccept() frees the reservation of a re-armed dead duplicate and wakes", async () => {
  const f = fakes(9_000, () => Promise.resolve({ status: "queued", id: "d1" }));
  await f.accept(delivery);
  assert.deepEqual(f.calls, ["reserve", "release", "wake"]);
});

Deno.test("createAccept() rejects as the store does, with the reservation freed", async () => {
  for (const reserve of [9_000, null]) {
    const f = fakes(reserve, () => Promise.reject(new Error("kv down")));
    await assert.rejects(() => f.accept(delivery), /kv down/);
    assert.deepEqual(
      f.calls,
      reserve === null ? ["reserve"] : ["reserve", "release"],
    );
  }
});

Deno.test("createAccept() tells the store's health of each write, as a real store on KV answers", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
  const health = createStoreHealth({ failuresToUnready: 2 });
  const accept = createAccept({
    store,
    worker: {
      reserve: () => null,
      runLeased: () => {},
      release: () => {},
      wake: () => {},
    },
    health,
  });
  const incoming = (id: string): IncomingDelivery => ({
    id,
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body: new TextEncoder().encode(`{"n":"${id}"}`),
    kind: "json",
    digest: id.padEnd(64, "0"),
    receivedAt: Date.now(),
    repository: undefined,
    sender: undefined,
  });
  assert.equal((await accept(incoming("a"))).status, "queued");
  assert.equal((await accept(incoming("a"))).status, "duplicate");
  assert.equal(health.status().consecutiveFailures, 0);
  kv.close(); // every write now fails for real
  for (const id of ["b", "c"]) {
    await assert.rejects(() => accept(incoming(id)));
  }
  const status = health.status();
  assert.equal(status.healthy, false);
  assert.equal(status.consecutiveFailures, 2);
  assert.ok(status.lastError);
});
