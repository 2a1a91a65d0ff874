// Record writes and how they share commits, on :memory: KV.

import assert from "node:assert/strict";
import {
  createGroupCommit,
  expireInOf,
  takeBatch,
} from "../../lib/store/group_commit.ts";
import { lockSafe } from "../../lib/store/kv.ts";
import { memoryKv } from "./_kv.ts";
import { deliveryKeys } from "../../lib/store/keys.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";

function accept(id: string, digest = id, bytes = 10) {
  return { delivery: { id, digest, body: new Uint8Array(bytes) } };
}
function update(id: string) {
  return { entry: { value: { id } } };
}

const SETTINGS = { ttlMs: 60_000, maxAttempts: 3, now: () => 1_000 };

function delivery(id: string): IncomingDelivery {
  return {
    id,
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body: new TextEncoder().encode(`{"id":"${id}"}`),
    kind: "json",
    digest: id.padEnd(64, "0"),
    receivedAt: 1_000,
    repository: undefined,
    sender: undefined,
  };
}

Deno.test("takeBatch() takes acceptances up to batchMax, in order", () => {
  const items = ["a", "b", "c", "d"].map((id) => accept(id));
  const batch = takeBatch(items, [], 3);
  assert.deepEqual(batch.accepts, items.slice(0, 3));
  assert.deepEqual(batch.restAccepts, items.slice(3));
});

Deno.test("takeBatch() keeps two acceptances of one id or one body apart", () => {
  const items = [accept("a", "x"), accept("a", "y"), accept("b", "x")];
  const batch = takeBatch(items, [], 32);
  assert.deepEqual(batch.accepts, [items[0]]);
  assert.deepEqual(batch.restAccepts, items.slice(1));
});

Deno.test("takeBatch() stops at the bytes one commit may carry", () => {
  const items = [accept("a", "a", 330_000), accept("b", "b", 330_000)];
  const batch = takeBatch(items, [], 32);
  assert.equal(batch.accepts.length, 1);
  assert.equal(batch.restAccepts.length, 1);
});

Deno.test("takeBatch() fills the checks acceptances left with updates, one per id", () => {
  const accepts = Array.from({ length: 49 }, (_, i) => accept(`a${i}`));
  const updates = [update("u1"), update("a0"), update("u2"), update("u3")];
  const batch = takeBatch(accepts, updates, 50);
  // 49 acceptances make 98 checks: room for two updates.
  assert.deepEqual(batch.updates, [updates[0], updates[2]]);
  assert.deepEqual(batch.restUpdates, [updates[1], updates[3]]);
  const two = takeBatch([], [update("u"), update("u")], 32);
  assert.equal(two.updates.length, 1, "two updates of one record wait");
});

Deno.test("expireInOf() counts from the receive time and keeps at least a second", () => {
  assert.equal(expireInOf({ receivedAt: 1_000 }, 10_000, 2_000), 9_000);
  assert.equal(expireInOf({ receivedAt: 0 }, 10_000, 60_000), 1_000);
});

Deno.test("createGroupCommit() rejects a batchMax or chunkSize KV cannot take", () => {
  const kv = lockSafe({} as Deno.Kv);
  const base = { kv, ttlMs: 1, maxAttempts: 1, now: Date.now };
  for (const batchMax of [0, 51, 1.5]) {
    assert.throws(
      () => createGroupCommit({ ...base, batchMax }),
      /'batchMax' must be an integer from 1 to 50/,
    );
  }
  for (const chunkSize of [0, 65_537]) {
    assert.throws(
      () => createGroupCommit({ ...base, chunkSize }),
      /'chunkSize' must be 1 to 65536/,
    );
  }
});

Deno.test("GroupCommit: acceptances and updates that wait share one commit", async () => {
  using mem = await memoryKv();
  const { safe: kv } = mem;
  const commits = createGroupCommit({ ...SETTINGS, kv });
  const first = await commits.accept(delivery("first"), undefined);
  assert.equal(first?.status, "queued");
  const entry = await kv.get<DeliveryRecord>(deliveryKeys.record("first"));
  const before = commits.commits;
  const [a, b, u] = await Promise.all([
    commits.accept(delivery("a"), { until: 9_000 }),
    commits.accept(delivery("b"), undefined),
    commits.update(entry as Deno.KvEntry<DeliveryRecord>, {
      ...entry.value!,
      dueAt: 5_000,
    }),
  ]);
  assert.ok(commits.commits - before <= 2, `${commits.commits - before}`);
  assert.equal(a?.leased?.value.status, "running");
  assert.deepEqual(a?.leased?.key, deliveryKeys.record("a"));
  assert.equal(b?.leased, undefined);
  assert.equal(u?.value.dueAt, 5_000);
  assert.equal(
    (await kv.get(deliveryKeys.due(1_000, "first"))).value,
    null,
    "the old work index entry went",
  );
  assert.equal(
    (await kv.get(deliveryKeys.due(5_000, "first"))).value,
    "first",
  );
});

Deno.test("GroupCommit: an acceptance of a stored id or body, and a stale update, answer null", async () => {
  using mem = await memoryKv();
  const { safe: kv } = mem;
  const commits = createGroupCommit({ ...SETTINGS, kv });
  await commits.accept(delivery("x"), undefined);
  const stale = await kv.get<DeliveryRecord>(deliveryKeys.record("x"));
  const same = { ...delivery("y"), digest: delivery("x").digest };
  const [again, twin, fresh] = await Promise.all([
    commits.accept(delivery("x"), undefined),
    commits.accept(same, undefined),
    commits.accept(delivery("z"), undefined),
  ]);
  assert.equal(again, null);
  assert.equal(twin, null);
  assert.equal(fresh?.status, "queued", "the rest of the batch is stored");
  const next = { ...stale.value!, updatedAt: 2 };
  assert.ok(
    await commits.updateAlone(stale as Deno.KvEntry<DeliveryRecord>, next),
  );
  assert.equal(
    await commits.update(stale as Deno.KvEntry<DeliveryRecord>, next),
    null,
  );
});

/** A delivery whose body digest is its own. */
function unique(id: string): IncomingDelivery {
  return { ...delivery(id), digest: id.padStart(64, "x") };
}

/**
 * A KV whose commits are counted: checks and mutations of each, how many
 * are in flight at once (each commit held for `delayMs`, as a round trip).
 */
function countingKv(kv: Deno.Kv, delayMs: number) {
  const seen = { commits: 0, mostChecks: 0, mostMutations: 0, mostInFlight: 0 };
  let inFlight = 0;
  const safe = lockSafe(kv);
  const atomic = () => {
    const op = kv.atomic();
    let checks = 0;
    let mutations = 0;
    const counted: Deno.AtomicOperation = new Proxy(op, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "check") checks += args.length;
          else if (name === "commit") {
            seen.commits++;
            seen.mostChecks = Math.max(seen.mostChecks, checks);
            seen.mostMutations = Math.max(seen.mostMutations, mutations);
            seen.mostInFlight = Math.max(seen.mostInFlight, ++inFlight);
            return new Promise((r) => setTimeout(r, delayMs))
              .then(() => target.commit())
              .finally(() => inFlight--);
          } else mutations++;
          value.apply(target, args);
          return counted;
        };
      },
    });
    return counted;
  };
  return { kv: { ...safe, atomic }, seen };
}

Deno.test("under self-hosted denokv's limits no commit carries more than 10 checks, and many are in flight at once", async () => {
  using mem = await memoryKv();
  const { kv, seen } = countingKv(mem.raw, 20);
  const { KV_LIMITS } = await import("../../lib/store/limits.ts");
  const commits = createGroupCommit({
    kv,
    ...SETTINGS,
    limits: KV_LIMITS.denokv,
  });
  const stored = await Promise.all(
    Array.from(
      { length: 300 },
      (_, i) => commits.accept(unique(`d${i}`), undefined),
    ),
  );
  assert.equal(stored.filter((s) => s?.status === "queued").length, 300);
  // Acceptances and updates waiting together still share the 10 checks.
  const entries = await Promise.all(
    stored.slice(0, 250).map((s) =>
      mem.raw.get<DeliveryRecord>(deliveryKeys.record(s!.id))
    ),
  );
  const updated = await Promise.all([
    ...Array.from(
      { length: 100 },
      (_, i) => commits.accept(unique(`m${i}`), undefined),
    ),
    ...entries.map((e) =>
      commits.update(e as Deno.KvEntry<DeliveryRecord>, {
        ...e.value!,
        error: "x",
      })
    ),
  ]);
  assert.equal(updated.filter((u) => u !== null).length, 350);
  assert.ok(seen.mostChecks <= 10, `${seen.mostChecks} checks in one commit`);
  assert.ok(seen.mostChecks >= 2);
  assert.ok(seen.mostInFlight > 1, "several commits in flight");
  assert.ok(seen.mostInFlight <= KV_LIMITS.denokv.inFlight);
  // Locally: one commit in flight, grouping up to 32.
  const local = countingKv(mem.raw, 20);
  const one = createGroupCommit({ kv: local.kv, ...SETTINGS });
  await Promise.all(
    Array.from(
      { length: 100 },
      (_, i) => one.accept(unique(`l${i}`), undefined),
    ),
  );
  assert.equal(local.seen.mostInFlight, 1);
  assert.ok(
    local.seen.mostChecks > 10,
    "grouped beyond denokv's limit locally",
  );
});

Deno.test("takeBatch() keeps to the checks and mutations it is given, and holds back an order key in flight", () => {
  const accepts = Array.from({ length: 8 }, (_, i) => accept(`a${i}`));
  const small = takeBatch(accepts, [update("u1"), update("u2")], 32, {
    maxChecks: 10,
  });
  assert.equal(small.accepts.length, 5);
  assert.equal(small.updates.length, 0, "no check left for updates");
  const three = takeBatch(
    accepts.slice(0, 3),
    [update("u1"), update("u2"), update("u3"), update("u4"), update("u5")],
    32,
    {
      maxChecks: 10,
    },
  );
  assert.deepEqual([three.accepts.length, three.updates.length], [3, 4]);
  const mutations = takeBatch(accepts, [], 32, { maxMutations: 13 });
  assert.equal(mutations.accepts.length, 1);
  const ordered = [
    { delivery: { ...accept("k1").delivery, orderKey: "o/r" } },
    { delivery: { ...accept("k2").delivery, orderKey: "o/other" } },
  ];
  const held = takeBatch(ordered, [], 32, { busy: new Set(["o/r"]) });
  assert.deepEqual(held.accepts.map((a) => a.delivery.id), ["k2"]);
  assert.deepEqual(held.restAccepts.map((a) => a.delivery.id), ["k1"]);
});
