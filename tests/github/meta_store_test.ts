import assert from "node:assert/strict";
import { META_KV_KEY } from "../../lib/store/keys.ts";
import {
  loadPersistedHooks,
  persistHooks,
} from "../../lib/github/meta_store.ts";

const HOOKS = ["192.30.252.0/22", "2a0a:a440::/29"];

Deno.test("persistHooks() then loadPersistedHooks() round-trips the list", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    assert.deepEqual(await loadPersistedHooks(kv), { kind: "none" });
    const saved = await persistHooks(kv, {
      hooks: HOOKS,
      etag: 'W/"abc"',
      fetchedAt: 42,
    });
    assert.deepEqual(saved, { ok: true });
    assert.deepEqual((await kv.get(META_KV_KEY)).value, {
      hooks: HOOKS,
      etag: 'W/"abc"',
      fetchedAt: 42,
    });
    const loaded = await loadPersistedHooks(kv);
    assert.ok(loaded.kind === "ok");
    assert.deepEqual(loaded.list.hooks, HOOKS);
    assert.deepEqual(loaded.list.cidrs.map((c) => c.text), HOOKS);
    assert.equal(loaded.etag, 'W/"abc"');
    assert.equal(loaded.fetchedAt, 42);
  } finally {
    kv.close();
  }
});

Deno.test("loadPersistedHooks() refuses an invalid entry, saying why", async (t) => {
  const kv = await Deno.openKv(":memory:");
  try {
    const cases: [string, unknown, string][] = [
      ["not an object", "nope", "answer is not a JSON object"],
      [
        "a too-wide range",
        { hooks: ["0.0.0.0/0"], etag: null, fetchedAt: 1 },
        "hooks[0] 0.0.0.0/0 is wider than /8",
      ],
      [
        "a bad etag",
        { hooks: HOOKS, etag: 7, fetchedAt: 1 },
        "bad etag or fetchedAt",
      ],
      ["no fetchedAt", { hooks: HOOKS, etag: null }, "bad etag or fetchedAt"],
      [
        "fetchedAt not finite",
        { hooks: HOOKS, etag: null, fetchedAt: Infinity },
        "bad etag or fetchedAt",
      ],
    ];
    for (const [name, value, error] of cases) {
      await t.step(name, async () => {
        await kv.set(META_KV_KEY, value);
        assert.deepEqual(await loadPersistedHooks(kv), {
          kind: "invalid",
          error,
        });
      });
    }
  } finally {
    kv.close();
  }
});

Deno.test("loadPersistedHooks() and persistHooks() never throw for a KV failure", async () => {
  const broken = {
    get: () => Promise.reject(new Error("kv gone")),
    set: () => Promise.reject(new Error("kv gone")),
  } as unknown as Deno.Kv;
  assert.deepEqual(await loadPersistedHooks(broken), {
    kind: "unreadable",
    error: "Error: kv gone",
  });
  assert.deepEqual(
    await persistHooks(broken, { hooks: HOOKS, etag: null, fetchedAt: 1 }),
    { ok: false, error: "Error: kv gone" },
  );
});
