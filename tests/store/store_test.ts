// The delivery store on real Deno KV (temp files and :memory:).

import assert from "node:assert/strict";
import type { IncomingDelivery } from "../../lib/store/types.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import { encoder, sha256Hex } from "../_helpers.ts";

const DAY = 86_400_000;

async function delivery(
  id: string,
  body: Uint8Array<ArrayBuffer> = encoder.encode(
    JSON.stringify({ id, zen: "z" }),
  ),
  receivedAt = 1_000,
): Promise<IncomingDelivery> {
  return {
    id,
    event: "push",
    action: undefined,
    hookId: "1",
    target: { type: "repository", id: "2" },
    headers: { "x-github-event": "push" },
    body,
    kind: "json",
    digest: await sha256Hex(body),
    receivedAt,
    repository: "octo/repo",
    sender: "octocat",
  };
}

async function tempKv(): Promise<
  { kv: Deno.Kv; path: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-kv-" });
  const path = `${dir}/test.kv`;
  const kv = await Deno.openKv(path);
  return {
    kv,
    path,
    async [Symbol.asyncDispose]() {
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("DeliveryStore.accept() stores a record and its body; a second accept is a duplicate", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: 7 * DAY,
    maxAttempts: 5,
    now: () => 1_000,
  });
  const d = await delivery("a");
  assert.deepEqual(await store.accept(d), { status: "queued", id: "a" });
  assert.deepEqual(await store.accept(d), { status: "duplicate", id: "a" });
  const record = await store.get("a");
  assert.equal(record?.status, "queued");
  assert.equal(record?.attempts, 0);
  assert.deepEqual(await store.readBody(record!), d.body);
  assert.deepEqual(await store.listDue(1_000, 10), ["a"]);
});

Deno.test("DeliveryStore.accept() answers duplicate for the same body under a new id", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  const body = encoder.encode('{"same":true}');
  assert.equal(
    (await store.accept(await delivery("first", body))).status,
    "queued",
  );
  assert.deepEqual(await store.accept(await delivery("second", body)), {
    status: "duplicate",
    id: "first",
  });
  assert.equal(await store.get("second"), null);
});

Deno.test("20 concurrent accepts of one delivery store it exactly once", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  const d = await delivery("race");
  const results = await Promise.all(
    Array.from({ length: 20 }, () => store.accept(d)),
  );
  assert.equal(results.filter((r) => r.status === "queued").length, 1);
  assert.equal(results.filter((r) => r.status === "duplicate").length, 19);
  let chunks = 0;
  for await (const _ of tmp.kv.list({ prefix: ["hookgate", "b"] })) chunks++;
  assert.equal(chunks, 1, "losing writers leave no body behind");
});

Deno.test("a 25 MiB body round-trips byte for byte through chunks", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  const body = new Uint8Array(25 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 65536) {
    crypto.getRandomValues(body.subarray(i, Math.min(i + 65536, body.length)));
  }
  assert.equal(
    (await store.accept(await delivery("big", body))).status,
    "queued",
  );
  const record = await store.get("big");
  assert.ok(record!.chunks > 400);
  const back = await store.readBody(record!);
  assert.equal(back.length, body.length);
  assert.equal(await sha256Hex(back), await sha256Hex(body));
  // A duplicate of a large body leaves no orphaned chunks.
  assert.equal(
    (await store.accept(await delivery("big", body))).status,
    "duplicate",
  );
  let uploads = 0;
  for await (const _ of tmp.kv.list({ prefix: ["hookgate", "upload"] })) {
    uploads++;
  }
  assert.equal(uploads, 0);
});

Deno.test("lease() lets exactly one of two stores take a due record", async () => {
  await using tmp = await tempKv();
  const other = await Deno.openKv(tmp.path);
  try {
    const a = new DeliveryStore({
      kv: tmp.kv,
      ttlMs: DAY,
      maxAttempts: 5,
      now: () => 5_000,
    });
    const b = new DeliveryStore({
      kv: other,
      ttlMs: DAY,
      maxAttempts: 5,
      now: () => 5_000,
    });
    await a.accept(await delivery("x"));
    const [ra, rb] = await Promise.all([
      a.lease("x", 9_000),
      b.lease("x", 9_000),
    ]);
    assert.equal([ra, rb].filter((r) => r !== null).length, 1);
    const record = await a.get("x");
    assert.equal(record?.status, "running");
    assert.equal(record?.attempts, 1);
    assert.deepEqual(await a.listDue(8_999, 10), [], "not due while leased");
    assert.deepEqual(
      await a.listDue(9_000, 10),
      ["x"],
      "due again when the lease expires",
    );
  } finally {
    other.close();
  }
});

Deno.test("collect() removes records past the TTL by the injected clock, and orphaned bodies", async () => {
  await using tmp = await tempKv();
  let now = 10 * DAY;
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: 7 * DAY,
    maxAttempts: 5,
    now: () => now,
  });
  await store.accept(await delivery("old", undefined, now));
  await store.accept(await delivery("new", undefined, now + 3 * DAY));
  // An orphan: a large body whose record commit never happened (a crash).
  await tmp.kv.set(["hookgate", "upload", now, "orphan"], "orphan");
  await tmp.kv.set(["hookgate", "b", "orphan", 0], new Uint8Array(10));

  now += 7 * DAY + 1;
  const collected = await store.collect();
  assert.deepEqual(collected, { records: 1, orphans: 1 });
  assert.equal(await store.get("old"), null);
  assert.notEqual(await store.get("new"), null);
  assert.equal((await tmp.kv.get(["hookgate", "b", "orphan", 0])).value, null);
  // The expired body digest no longer counts as a duplicate.
  assert.equal(
    (await store.accept(await delivery("old", undefined, now))).status,
    "queued",
  );
});

Deno.test("rearm() gives a dead record MAX_ATTEMPTS more attempts", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: DAY,
    maxAttempts: 2,
    now: () => 100,
  });
  await store.accept(await delivery("d"));
  const entry = await store.getEntry("d");
  await store.update(entry as Deno.KvEntry<never>, {
    ...entry.value!,
    status: "dead",
    attempts: 2,
    dueAt: null,
  });
  assert.deepEqual(await store.accept(await delivery("d")), {
    status: "queued",
    id: "d",
  });
  const record = await store.get("d");
  assert.equal(record?.status, "queued");
  assert.equal(record?.attemptLimit, 4);
  assert.equal(record?.replays, 1);
  assert.deepEqual(await store.listDue(100, 10), ["d"]);
});

Deno.test("DeliveryStore rejects a chunk size over KV's value limit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    assert.throws(
      () =>
        new DeliveryStore({
          kv,
          ttlMs: DAY,
          maxAttempts: 1,
          chunkSize: 70_000,
        }),
      RangeError,
    );
  } finally {
    kv.close();
  }
});

Deno.test("list() returns newest first", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DeliveryStore({ kv, ttlMs: DAY, maxAttempts: 1 });
    for (let i = 0; i < 15; i++) {
      await store.accept(await delivery(`d${i}`, undefined, 1000 + i));
    }
    const list = await store.list(12);
    assert.equal(list.length, 12);
    assert.equal(list[0]!.id, "d14");
    assert.equal(list[11]!.id, "d3");
  } finally {
    kv.close();
  }
});

Deno.test("group commit: concurrent deliveries share commits, each gets its own answer", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  const ds = await Promise.all(
    Array.from({ length: 64 }, (_, i) => delivery(`g${i}`)),
  );
  const results = await Promise.all(ds.map((d) => store.accept(d)));
  assert.ok(results.every((r, i) => r.status === "queued" && r.id === `g${i}`));
  assert.ok(
    store.recordCommits < 64 / 4,
    `${store.recordCommits} commits for 64 deliveries`,
  );
  for (const d of ds) {
    const record = await store.get(d.id);
    assert.deepEqual(await store.readBody(record!), d.body);
  }
});

Deno.test("group commit: a duplicate inside a batch falls back to one commit each", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  await store.accept(await delivery("seen"));
  const same = encoder.encode('{"same":"body"}');
  const batch = [
    await delivery("n1"),
    await delivery("seen"),
    await delivery("n2"),
    await delivery("twin-a", same),
    await delivery("twin-b", same),
    await delivery("n3"),
  ];
  const results = await Promise.all(batch.map((d) => store.accept(d)));
  assert.deepEqual(results.map((r) => r.status), [
    "queued",
    "duplicate",
    "queued",
    "queued",
    "duplicate",
    "queued",
  ]);
  assert.equal(results[1]!.id, "seen");
  assert.equal(results[4]!.id, "twin-a");
  assert.equal(await store.get("twin-b"), null);
});

Deno.test("group commit can be turned off and rejects a batchMax over KV's limit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DeliveryStore({
      kv,
      ttlMs: DAY,
      maxAttempts: 1,
      batchMax: 1,
    });
    const ds = await Promise.all(
      Array.from({ length: 10 }, (_, i) => delivery(`s${i}`)),
    );
    await Promise.all(ds.map((d) => store.accept(d)));
    assert.equal(store.recordCommits, 10);
    assert.throws(
      () => new DeliveryStore({ kv, ttlMs: DAY, maxAttempts: 1, batchMax: 51 }),
      RangeError,
    );
  } finally {
    kv.close();
  }
});

Deno.test("claim() gives a periodic job to one claimant until it expires", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let now = 1_000;
    const store = new DeliveryStore({
      kv,
      ttlMs: DAY,
      maxAttempts: 1,
      now: () => now,
    });
    const claims = await Promise.all(
      ["a", "b", "c"].map((o) => store.claim("collect", o, 500)),
    );
    assert.equal(claims.filter(Boolean).length, 1);
    const winner = ["a", "b", "c"][claims.indexOf(true)]!;
    const loser = winner === "a" ? "b" : "a";
    assert.equal(await store.claim("collect", loser, 500), false);
    assert.equal(
      await store.claim("collect", winner, 500),
      true,
      "the holder renews",
    );
    now += 501;
    assert.equal(
      await store.claim("collect", loser, 500),
      true,
      "an expired claim is free",
    );
  } finally {
    kv.close();
  }
});

Deno.test("accept() with a lease stores the delivery running, attempt 1, due when the lease ends", async () => {
  await using tmp = await tempKv();
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: DAY,
    maxAttempts: 5,
    now: () => 1_000,
  });
  const results = await Promise.all([
    store.accept(await delivery("l1"), { leaseUntil: 9_000 }),
    store.accept(await delivery("l2")),
    store.accept(await delivery("l3"), { leaseUntil: 9_000 }),
  ]);
  assert.ok(results[0]!.status === "queued" && results[0]!.leased);
  assert.ok(results[1]!.status === "queued" && !("leased" in results[1]!));
  const entry = await store.getEntry("l1");
  assert.equal(entry.value?.status, "running");
  assert.equal(entry.value?.attempts, 1);
  assert.equal(entry.value?.dueAt, 9_000);
  assert.equal(
    results[0]!.status === "queued" && results[0]!.leased?.versionstamp,
    entry.versionstamp,
    "the returned versionstamp is the stored one",
  );
  assert.deepEqual(await store.listDue(8_999, 10), ["l2"]);
  assert.deepEqual((await store.listDue(9_000, 10)).sort(), ["l1", "l2", "l3"]);
});

Deno.test("upload ids start with the time, so body chunks are written in key order", async () => {
  await using tmp = await tempKv();
  let now = 1_000;
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: 7 * DAY,
    maxAttempts: 5,
    now: () => now,
  });
  const ids = ["u1", "u2", "u3"];
  for (const id of ids) {
    await store.accept(await delivery(id));
    now += 1;
  }
  // 36 ** 8 ms is 89 years: a later time is a longer id unless padded.
  now = 36 ** 8 + 5;
  await store.accept(await delivery("u4"));
  const uploads = [];
  for (const id of [...ids, "u4"]) uploads.push((await store.get(id))!.upload);
  assert.ok(uploads[0]!.startsWith("0000000rs-"), uploads[0]);
  assert.equal(new Set(uploads).size, 4);
  const chunkOrder = [];
  for await (const entry of tmp.kv.list({ prefix: ["hookgate", "b"] })) {
    chunkOrder.push(entry.key[2]);
  }
  assert.deepEqual(chunkOrder, uploads);
});

Deno.test("leases carry the store's owner: at acceptance and when taken", async () => {
  await using tmp = await tempKv();
  let now = 1_000;
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: DAY,
    maxAttempts: 5,
    now: () => now,
    owner: "p1",
  });
  assert.equal(store.owner, "p1");
  await store.accept(await delivery("fast"), { leaseUntil: 9_000 });
  assert.equal((await store.get("fast"))?.owner, "p1");
  await store.accept(await delivery("slow"));
  assert.equal((await store.get("slow"))?.owner, undefined);
  now = 2_000;
  assert.equal((await store.lease("slow", 9_000))?.value.owner, "p1");
  const other = new DeliveryStore({ kv: tmp.kv, ttlMs: DAY, maxAttempts: 5 });
  assert.notEqual(other.owner, store.owner, "a random id by default");
});

Deno.test("lease() gives up a lapsed run that had used its last attempt: dead, committed, not leased", async () => {
  await using tmp = await tempKv();
  let now = 1_000;
  const store = new DeliveryStore({
    kv: tmp.kv,
    ttlMs: DAY,
    maxAttempts: 2,
    now: () => now,
  });
  // Stored leased (attempt 1); the process dies; leased again (attempt 2);
  // that process dies too.
  await store.accept(await delivery("doomed"), { leaseUntil: 2_000 });
  now = 2_000;
  assert.equal((await store.lease("doomed", 3_000))?.value.attempts, 2);
  now = 3_000;
  const entry = await store.lease("doomed", 4_000);
  assert.equal(entry?.value.status, "dead", "given up, not run a third time");
  const record = await store.get("doomed");
  assert.equal(record?.status, "dead");
  assert.equal(record?.attempts, 2);
  assert.match(record?.error ?? "", /given up after 2 attempts/);
  assert.deepEqual(await store.listDue(1e12, 10), [], "nothing due any more");
});

Deno.test("takeSeat() answers who had the seat before; reclaim() makes that owner's leases due now", async () => {
  await using tmp = await tempKv();
  let now = 1_000;
  const options = { kv: tmp.kv, ttlMs: DAY, maxAttempts: 5, now: () => now };
  const dead = new DeliveryStore({ ...options, owner: "dead" });
  const alive = new DeliveryStore({ ...options, owner: "alive" });
  assert.equal(await dead.takeSeat("host 0.0.0.0:8000 /kv"), null, "empty");
  assert.equal(await dead.takeSeat("host 0.0.0.0:8000 /kv"), null, "its own");
  for (const id of ["r1", "r2"]) {
    await dead.accept(await delivery(id), { leaseUntil: 16_000 });
  }
  await dead.accept(await delivery("q1")); // queued: due already
  await alive.accept(await delivery("other"), { leaseUntil: 16_000 });

  now = 2_000;
  const restarted = new DeliveryStore({ ...options, owner: "restarted" });
  assert.equal(await restarted.takeSeat("host 0.0.0.0:8000 /kv"), "dead");
  assert.equal(await restarted.takeSeat("host 0.0.0.0:9000 /kv"), null);
  assert.equal(await restarted.reclaim("dead", 15_000), 2);
  assert.deepEqual((await restarted.listDue(2_000, 10)).sort(), [
    "q1",
    "r1",
    "r2",
  ]);
  assert.equal((await restarted.get("other"))?.dueAt, 16_000, "not touched");
  const taken = await restarted.lease("r1", 17_000);
  assert.equal(taken?.value.attempts, 2);
  assert.equal(taken?.value.owner, "restarted");
  assert.equal(await restarted.reclaim("dead", 15_000), 0, "nothing left");
});

Deno.test("ordered deliveries: the first stored is the head whatever the clocks say; a later one waits for it, then runs once it is final", async () => {
  await using t = await tempKv();
  // Two processes, the second with a clock an hour behind.
  const ahead = new DeliveryStore({
    kv: t.kv,
    ttlMs: DAY,
    maxAttempts: 3,
    now: () => 10_000_000,
  });
  const behind = new DeliveryStore({
    kv: t.kv,
    ttlMs: DAY,
    maxAttempts: 3,
    now: () => 6_400_000,
  });
  await ahead.accept({
    ...await delivery("first", undefined, 10_000_000),
    orderKey: "octo/repo",
  });
  await behind.accept({
    ...await delivery("second", undefined, 6_400_000),
    orderKey: "octo/repo",
  });
  assert.equal(await behind.lease("second", 6_500_000), null);
  const waiting = await behind.get("second");
  assert.equal(waiting?.status, "queued");
  assert.equal(waiting?.after, "first");
  assert.equal(waiting?.attempts, 0);
  const leased = await ahead.lease("first", 10_100_000);
  assert.equal(leased?.value.status, "running");
  // The first ends: the second is due again at once, and may run.
  const done = {
    ...leased!.value,
    status: "done" as const,
    dueAt: null,
    finishedAt: 10_000_000,
  };
  assert.ok(await ahead.update(leased!, done));
  const woken = await behind.get("second");
  assert.equal(woken?.after, undefined);
  assert.ok(woken!.dueAt! <= 6_400_000);
  assert.equal(
    (await behind.lease("second", 6_500_000))?.value.status,
    "running",
  );
});

/** An ordered delivery of octo/repo received at `receivedAt`. */
async function ordered(
  id: string,
  receivedAt: number,
): Promise<IncomingDelivery> {
  return {
    ...await delivery(id, undefined, receivedAt),
    orderKey: "octo/repo",
  };
}

Deno.test("ordered: a head hidden behind 100 entries of a clock behind still keeps the key (the key's lease)", async () => {
  await using t = await tempKv();
  const ahead = new DeliveryStore({
    kv: t.kv,
    ttlMs: DAY,
    maxAttempts: 3,
    now: () => 10_000_000,
  });
  const behind = new DeliveryStore({
    kv: t.kv,
    ttlMs: DAY,
    maxAttempts: 3,
    now: () => 6_400_000,
  });
  await ahead.accept(await ordered("first", 10_000_000));
  assert.equal(
    (await ahead.lease("first", 10_100_000))?.value.status,
    "running",
  );
  for (let i = 0; i < 101; i++) {
    await behind.accept(
      await ordered(`later-${String(i).padStart(3, "0")}`, 6_400_000 + i),
    );
  }
  assert.equal(
    await behind.lease("later-000", 6_500_000),
    null,
    "later-000 waits for first",
  );
  assert.equal((await behind.get("later-000"))?.after, "first");
});

Deno.test("ordered: 100 replayed deliveries join the end of the queue, behind the running head", async () => {
  await using t = await tempKv();
  let now = 1_000;
  const store = new DeliveryStore({
    kv: t.kv,
    ttlMs: DAY,
    maxAttempts: 3,
    now: () => now,
  });
  for (let i = 0; i < 100; i++) {
    const id = `old-${String(i).padStart(3, "0")}`;
    await store.accept(await ordered(id, now++));
    const leased = await store.lease(id, now + 60_000);
    assert.ok(
      await store.update(leased!, {
        ...leased!.value,
        status: "done",
        dueAt: null,
        finishedAt: now,
      }),
    );
  }
  now = 500_000;
  await store.accept(await ordered("head", now));
  assert.equal(
    (await store.lease("head", now + 60_000))?.value.status,
    "running",
  );
  now++;
  for (let i = 0; i < 100; i++) {
    await store.rearm(`old-${String(i).padStart(3, "0")}`, "replay");
  }
  assert.equal(
    await store.lease("old-000", now + 60_000),
    null,
    "a replay waits for the running head",
  );
  assert.equal((await store.get("old-000"))?.after, "head");
});
