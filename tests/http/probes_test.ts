import assert from "node:assert/strict";
import {
  allowlistCheck,
  type AllowlistStatus,
  createReadiness,
  healthResponse,
  metricsResponse,
  readyResponse,
} from "../../lib/http/probes.ts";

const LOADED: AllowlistStatus = {
  ready: true,
  ranges: 30,
  source: "network",
  fetchedAt: 1_000_000,
  lastError: null,
};

Deno.test("allowlistCheck() reports the list and its age in whole seconds", async (t) => {
  await t.step("a loaded list", () => {
    assert.deepEqual(allowlistCheck(LOADED, 1_000_000 + 61_400), {
      ready: true,
      ranges: 30,
      source: "network",
      ageSeconds: 61,
      lastError: null,
    });
  });
  await t.step("no list yet: no age", () => {
    assert.deepEqual(
      allowlistCheck(
        {
          ready: false,
          ranges: 0,
          source: "none",
          fetchedAt: null,
          lastError: "fetch failed: refused",
        },
        5,
      ),
      {
        ready: false,
        ranges: 0,
        source: "none",
        ageSeconds: null,
        lastError: "fetch failed: refused",
      },
    );
  });
});

Deno.test("createReadiness() is ready with the allowlist off and KV open", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const readiness = createReadiness({
      meta: null,
      kv,
      worker: { depth: 3 },
      isClosed: () => false,
    });
    assert.deepEqual(await readiness(), {
      ready: true,
      checks: {
        allowlist: { ready: true, mode: "off" },
        kv: { ready: true },
        queueDepth: 3,
      },
    });
  } finally {
    kv.close();
  }
});

Deno.test("createReadiness() is not ready while no allowlist is loaded", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let status: AllowlistStatus = { ...LOADED, ready: false, fetchedAt: null };
    const readiness = createReadiness({
      meta: { status: () => status },
      kv,
      worker: { depth: 0 },
      isClosed: () => false,
      now: () => 1_000_000 + 10_000,
    });
    assert.deepEqual(await readiness(), {
      ready: false,
      checks: {
        allowlist: {
          ready: false,
          ranges: 30,
          source: "network",
          ageSeconds: null,
          lastError: null,
        },
        reason: "GitHub's webhook IP ranges have not been loaded yet",
        kv: { ready: true },
        queueDepth: 0,
      },
    });
    status = LOADED;
    const later = await readiness();
    assert.equal(later.ready, true);
    assert.deepEqual(later.checks.allowlist, {
      ready: true,
      ranges: 30,
      source: "network",
      ageSeconds: 10,
      lastError: null,
    });
  } finally {
    kv.close();
  }
});

Deno.test("createReadiness() is not ready once the app has closed or KV fails", async (t) => {
  const kv = await Deno.openKv(":memory:");
  await t.step("closed: KV is not asked", async () => {
    const readiness = createReadiness({
      meta: null,
      kv,
      worker: { depth: 0 },
      isClosed: () => true,
    });
    const state = await readiness();
    assert.equal(state.ready, false);
    assert.deepEqual(state.checks.kv, { ready: false, error: "closed" });
    assert.equal(
      state.checks.reason,
      "the delivery store (Deno KV) is not available",
    );
  });
  kv.close();
  await t.step("KV closed under it", async () => {
    const readiness = createReadiness({
      meta: { status: () => ({ ...LOADED, ready: false }) },
      kv,
      worker: { depth: 0 },
      isClosed: () => false,
    });
    const state = await readiness();
    assert.equal(state.ready, false);
    assert.equal((state.checks.kv as { ready: boolean }).ready, false);
    assert.equal(
      state.checks.reason,
      "GitHub's webhook IP ranges have not been loaded yet",
      "the allowlist's reason comes first",
    );
  });
});

Deno.test("readyResponse() answers 200 ready or 503 not_ready with the checks", async (t) => {
  await t.step("no readiness: ready", async () => {
    const res = await readyResponse();
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ready" });
  });
  await t.step("ready", async () => {
    const res = await readyResponse(() => ({
      ready: true,
      checks: { kv: { ready: true } },
    }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: "ready",
      kv: { ready: true },
    });
  });
  await t.step("not ready", async () => {
    const res = await readyResponse(() =>
      Promise.resolve({ ready: false, checks: { reason: "why" } })
    );
    assert.equal(res.status, 503);
    assert.equal(
      res.headers.get("content-type"),
      "application/json; charset=utf-8",
    );
    assert.deepEqual(await res.json(), { status: "not_ready", reason: "why" });
  });
});

Deno.test("healthResponse() and metricsResponse() answer 200", async () => {
  const health = healthResponse();
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const metrics = metricsResponse("up 1\n");
  assert.equal(metrics.status, 200);
  assert.equal(
    metrics.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  assert.equal(await metrics.text(), "up 1\n");
});
