// Collecting expired records and orphaned bodies, on :memory: KV.

import assert from "node:assert/strict";
import { collectExpired, ORPHAN_AFTER_MS } from "../../lib/store/collect.ts";
import { memoryKv } from "./_kv.ts";
import { deliveryKeys } from "../../lib/store/keys.ts";

/** A clock well past the epoch (the orphan range starts an hour back). */
const T = 10 * ORPHAN_AFTER_MS;

Deno.test("collectExpired() drops listing entries whose record is gone, keeps what is not past the TTL", async () => {
  using mem = await memoryKv();
  const { raw, safe: kv } = mem;
  await raw.set(deliveryKeys.listed(T + 10, "gone"), "gone");
  await raw.set(deliveryKeys.listed(T + 20, "young"), "young");
  await raw.set(deliveryKeys.record("young"), { receivedAt: T + 20 });
  assert.deepEqual(
    await collectExpired(kv, { now: T + 1_015, ttlMs: 1_000 }),
    {
      records: 0,
      orphans: 0,
    },
  );
  assert.equal(
    (await raw.get(deliveryKeys.listed(T + 10, "gone"))).value,
    null,
  );
  assert.equal(
    (await raw.get(deliveryKeys.listed(T + 20, "young"))).value,
    "young",
  );
});

Deno.test("collectExpired() leaves a body upload alone for an hour", async () => {
  using mem = await memoryKv();
  const { raw, safe: kv } = mem;
  await raw.set(deliveryKeys.upload(T, "up"), "up");
  await raw.set(deliveryKeys.chunk("up", 0), new Uint8Array(1));
  const at = { ttlMs: 1_000 };
  assert.equal(
    (await collectExpired(kv, { ...at, now: T + ORPHAN_AFTER_MS })).orphans,
    0,
  );
  assert.equal(
    (await collectExpired(kv, { ...at, now: T + ORPHAN_AFTER_MS + 1 }))
      .orphans,
    1,
  );
  assert.equal((await raw.get(deliveryKeys.chunk("up", 0))).value, null);
  assert.equal((await raw.get(deliveryKeys.upload(T, "up"))).value, null);
});
