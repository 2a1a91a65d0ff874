import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createApp } from "../../lib/app.ts";
import { createStoreHealth } from "../../lib/store/health.ts";
import { READY_KEY } from "../../lib/store/keys.ts";
import { captureLogger, deliveryRequest, testConfig } from "../_helpers.ts";
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

Deno.test("createReadiness() with the store's health: not ready after failed writes, probing with a write of its own, ready once one works", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let clock = 1_000_000;
    const now = () => clock;
    const health = createStoreHealth({ now });
    const readiness = createReadiness({
      meta: null,
      kv,
      worker: { depth: 0 },
      isClosed: () => false,
      health,
      now,
    });
    // The first check has seen no write: it writes the probe key itself.
    assert.equal((await readiness()).ready, true);
    assert.equal((await kv.get(READY_KEY)).value, 1_000_000, "probe written");
    assert.equal(health.status().lastWriteAt, 1_000_000);

    // The accept path reports three failed writes.
    for (let i = 0; i < 3; i++) health.failed(new Error("disk I/O error"));
    const failing = await readiness();
    assert.deepEqual(failing, {
      ready: false,
      checks: {
        allowlist: { ready: true, mode: "off" },
        kv: {
          ready: false,
          writeFailures: 3,
          lastWriteError: "disk I/O error",
        },
        reason: "the delivery store (Deno KV) is failing writes",
        queueDepth: 0,
      },
    });
    assert.equal(
      (await kv.get(READY_KEY)).value,
      1_000_000,
      "no probe within a second of the last write",
    );

    // A second later the check probes; the write works, so it is ready.
    clock += 1_000;
    assert.deepEqual(await readiness(), {
      ready: true,
      checks: {
        allowlist: { ready: true, mode: "off" },
        kv: { ready: true },
        queueDepth: 0,
      },
    });
    assert.equal((await kv.get(READY_KEY)).value, 1_001_000);

    // While writes keep working, a probe only every idle period.
    clock += 29_000;
    await readiness();
    assert.equal((await kv.get(READY_KEY)).value, 1_001_000);
    clock += 1_000;
    await readiness();
    assert.equal((await kv.get(READY_KEY)).value, 1_031_000);
  } finally {
    kv.close();
  }
});

Deno.test("createReadiness() shows failed writes below the threshold but stays ready", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const health = createStoreHealth();
    health.succeeded();
    health.failed(new Error("disk I/O error"));
    const state = await createReadiness({
      meta: null,
      kv,
      worker: { depth: 0 },
      isClosed: () => false,
      health,
    })();
    assert.equal(state.ready, true);
    assert.deepEqual(state.checks.kv, {
      ready: true,
      writeFailures: 1,
      lastWriteError: "disk I/O error",
    });
  } finally {
    kv.close();
  }
});

Deno.test("/readyz of a real app turns 503 while its KV file refuses every write, and 200 once writes work again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-readyz-" });
  const path = `${dir}/hookgate.kv`;
  const kv = await Deno.openKv(path);
  let skew = 0;
  const app = await createApp({
    config: testConfig(),
    log: captureLogger("info").log,
    kv,
    registry: {},
    now: () => Date.now() + skew,
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) => app.fetch(request, info),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const readyz = async () => {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, body: await res.json() };
  };
  // Another connection to the same SQLite file makes every write of the
  // app's KV fail at once (as a failing disk would), while reads still work.
  const sqlite = new DatabaseSync(path);
  // The app writes at start too (its collector claim): wait for its lock.
  sqlite.exec("PRAGMA busy_timeout = 5000;");
  const failWrites = (on: boolean) =>
    sqlite.exec(
      ["INSERT", "UPDATE", "DELETE"].map((op) =>
        on
          ? `CREATE TRIGGER fail_${op} BEFORE ${op} ON kv BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END;`
          : `DROP TRIGGER IF EXISTS fail_${op};`
      ).join("\n"),
    );
  try {
    assert.equal((await readyz()).status, 200);
    failWrites(true);
    const posts = await Promise.all(
      [1, 2, 3].map(async () => {
        const res = await fetch(
          await deliveryRequest({ url: `${base}/webhook` }),
        );
        await res.body?.cancel();
        return res.status;
      }),
    );
    assert.deepEqual(posts, [503, 503, 503], "nothing stored, nothing acked");
    const failing = await readyz();
    assert.equal(failing.status, 503);
    assert.equal(failing.body.status, "not_ready");
    assert.equal(
      failing.body.reason,
      "the delivery store (Deno KV) is failing writes",
    );
    assert.equal(failing.body.kv.writeFailures, 3);
    assert.match(
      failing.body.kv.lastWriteError,
      /disk I\/O error \(injected\)/,
    );
    skew += 1_000;
    const still = await readyz();
    assert.equal(still.status, 503, "its own probe write failed too");
    assert.equal(still.body.kv.writeFailures, 4);

    failWrites(false);
    // No traffic comes to a receiver that is not ready: its own probe write,
    // a second later, finds that writes work again.
    skew += 1_000;
    const recovered = await readyz();
    assert.equal(recovered.status, 200, JSON.stringify(recovered.body));
    assert.deepEqual(recovered.body.kv, { ready: true });
    const res = await fetch(await deliveryRequest({ url: `${base}/webhook` }));
    assert.equal(res.status, 202);
    await res.body?.cancel();
  } finally {
    sqlite.close();
    stop.abort();
    await app.close(1000);
    await server.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
