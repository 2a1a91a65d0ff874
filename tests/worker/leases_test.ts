// The lease keeper: renewing what this process holds, on :memory: KV with an
// injected clock (renewal passes are called directly, no timer waits).

import assert from "node:assert/strict";
import { createLeaseKeeper } from "../../lib/worker/leases.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";
import { finishAttempt } from "../../lib/store/lifecycle.ts";
import { captureLogger } from "../_helpers.ts";

function incoming(id: string): IncomingDelivery {
  return {
    id,
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body: new TextEncoder().encode(`{"n":"${id}"}`),
    kind: "json",
    digest: id.padEnd(64, "0"),
    receivedAt: 1_000,
    repository: undefined,
    sender: undefined,
  };
}

async function setup() {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: 1_000 };
  const store = new DeliveryStore({
    kv,
    ttlMs: 60_000,
    maxAttempts: 3,
    now: () => clock.now,
  });
  const logs = captureLogger("info");
  const leases = createLeaseKeeper({ store, log: logs.log, leaseMs: 3_000 });
  async function held(id: string) {
    const result = await store.accept(incoming(id), { leaseUntil: 4_000 });
    assert.ok(result.status === "queued" && result.leased);
    return leases.hold(result.leased);
  }
  return {
    kv,
    clock,
    store,
    logs,
    leases,
    held,
    [Symbol.dispose]() {
      leases.stop();
      kv.close();
    },
  };
}

Deno.test("renew() moves every held lease to one lease length from now and keeps the new entry", async () => {
  using t = await setup();
  const a = await t.held("a");
  const b = await t.held("b");
  t.clock.now = 2_000;
  assert.equal(await t.leases.renew(), 2);
  for (const lease of [a, b]) {
    const entry = await t.store.getEntry(lease.leased.id);
    assert.equal(entry.value?.dueAt, 5_000);
    assert.equal(lease.entry.versionstamp, entry.versionstamp, "latest entry");
  }
  assert.deepEqual(await t.store.listDue(4_999, 10), []);
});

Deno.test("renew() renews against a fresh read when the record changed meanwhile (a replay)", async () => {
  using t = await setup();
  const a = await t.held("a");
  await t.store.rearm("a", "replay");
  t.clock.now = 2_000;
  assert.equal(await t.leases.renew(), 1);
  const record = await t.store.get("a");
  assert.equal(record?.dueAt, 5_000);
  assert.equal(record?.rerun, true, "the replay is kept");
  assert.equal(a.entry.value.rerun, true);
});

Deno.test("renew() stops renewing a lease whose outcome is recorded or that another worker took", async () => {
  using t = await setup();
  const a = await t.held("a");
  await t.held("b");
  // a: its outcome recorded (against the entry held).
  await t.store.update(
    a.entry,
    finishAttempt(a.entry.value, { outcome: "ok", ms: 1 }, {
      now: 1_500,
      backoff: { baseMs: 1, maxMs: 1 },
    }),
  );
  // b: lapsed, and leased by another process.
  t.clock.now = 4_000;
  const other = new DeliveryStore({
    kv: t.kv,
    ttlMs: 60_000,
    maxAttempts: 3,
    now: () => 4_000,
  });
  assert.ok(await other.lease("b", 7_000));
  assert.equal(await t.leases.renew(), 0);
  assert.equal(t.leases.size, 0, "neither is held any more");
  // b's run must stop: it goes on in the other process.
  const b = (await t.store.getEntry("b")).value;
  assert.equal(b?.owner, other.owner);
  assert.equal((await t.store.get("a"))?.status, "done");
  assert.equal((await t.store.get("b"))?.owner, other.owner, "left alone");
});

Deno.test("release() stops renewals; a release of an older hold leaves the newer one", async () => {
  using t = await setup();
  const a = await t.held("a");
  const again = t.leases.hold(a.entry);
  t.leases.release(a);
  assert.equal(t.leases.holds("a"), true, "the newer hold stays");
  t.leases.release(again);
  assert.equal(t.leases.holds("a"), false);
  assert.equal(await t.leases.renew(), 0);
});

Deno.test("giveBack() queues the record again, due now, without using its attempt", async () => {
  using t = await setup();
  const a = await t.held("a");
  t.clock.now = 2_000;
  await t.leases.giveBack(a);
  const record = (await t.store.get("a")) as DeliveryRecord;
  assert.equal(record.status, "queued");
  assert.equal(record.attempts, 0);
  assert.deepEqual(await t.store.listDue(2_000, 10), ["a"]);
  assert.equal(t.leases.holds("a"), false);
});

Deno.test("the renewal timer runs only while leases are held", async () => {
  using t = await setup();
  const leases = createLeaseKeeper({
    store: t.store,
    log: t.logs.log,
    leaseMs: 30,
  });
  const result = await t.store.accept(incoming("timed"), { leaseUntil: 1_030 });
  assert.ok(result.status === "queued" && result.leased);
  const lease = leases.hold(result.leased);
  t.clock.now = 1_010;
  const renewed = async () => (await t.store.get("timed"))?.dueAt === 1_040;
  for (let i = 0; i < 100 && !(await renewed()); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(await renewed(), "renewed by the timer");
  leases.release(lease);
  // With nothing held the timer ends on its own: the test's op sanitizer
  // would report one still pending.
  await new Promise((r) => setTimeout(r, 30));
});

Deno.test("a lease lost while held aborts its lost signal, so that its run stops", async () => {
  using t = await setup();
  const a = await t.held("a");
  assert.equal(a.lost.aborted, false);
  t.clock.now = 4_000;
  const other = new DeliveryStore({
    kv: t.kv,
    ttlMs: 60_000,
    maxAttempts: 3,
    now: () => 4_000,
  });
  assert.ok(await other.lease("a", 7_000));
  await t.leases.renew();
  assert.equal(a.lost.aborted, true);
  assert.match(String(a.lost.reason), /lost/);
});
