// The admin API's pure parts; replays against a real store; and a real
// server for bursts of replays, ids no delivery could have and wrong tokens.
// The routes' everyday use, with the worker, is in tests/worker/worker_test.ts.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import type { HandlerRegistry } from "../../lib/dispatch.ts";
import {
  adminPathParts,
  bodyHeaders,
  createAdminRoute,
  createReplays,
  DEFAULT_LIMIT,
  deliveryDetail,
  isAdminPath,
  isDeliveryId,
  MAX_LIMIT,
  parseLimit,
  replayIsPending,
} from "../../lib/ops/admin.ts";
import { finishAttempt } from "../../lib/store/lifecycle.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type { DeliveryRecord } from "../../lib/store/types.ts";
import {
  captureLogger,
  deliveryRequest,
  sha256Hex,
  testConfig,
  waitFor,
} from "../_helpers.ts";

const RECEIVED = Date.UTC(2025, 0, 2, 3, 4, 5);

function record(overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id: "d-1",
    event: "issues",
    action: "opened",
    hookId: "481516",
    target: { type: "repository", id: "1296269" },
    headers: { "x-github-event": "issues" },
    repository: "octo-org/hello-world",
    sender: "monalisa",
    kind: "json",
    digest: "00",
    size: 362,
    upload: "u",
    chunks: 1,
    status: "done",
    attempts: 2,
    attemptLimit: 5,
    receivedAt: RECEIVED,
    updatedAt: RECEIVED + 900,
    startedAt: RECEIVED + 100,
    finishedAt: RECEIVED + 228,
    dueAt: null,
    durationMs: 128,
    error: null,
    replays: 1,
    ...overrides,
  };
}

/** The peer `Deno.serve` would report. */
const PEER = {
  remoteAddr: { hostname: "127.0.0.1", transport: "tcp" as const },
};

Deno.test("isAdminPath() is true for /deliveries and below only", async (t) => {
  const table: [string, boolean][] = [
    ["/deliveries", true],
    ["/deliveries/", true],
    ["/deliveries/abc/replay", true],
    ["/deliveriesx", false],
    ["/delivery", false],
    ["/", false],
    ["/dashboard", false],
  ];
  for (const [path, expected] of table) {
    await t.step(path, () => assert.equal(isAdminPath(path), expected));
  }
});

Deno.test("adminPathParts() decodes the segments after /deliveries", async (t) => {
  const table: [string, string[] | null][] = [
    ["/deliveries", []],
    ["/deliveries/", [""]],
    ["/deliveries/abc", ["abc"]],
    ["/deliveries/abc/body", ["abc", "body"]],
    ["/deliveries/a%2Fb/replay", ["a/b", "replay"]],
    ["/deliveries/a/b/c", ["a", "b", "c"]],
    ["/deliveries/%ZZ", null],
    ["/deliveries/ok/%E0%A4%A", null],
  ];
  for (const [path, expected] of table) {
    await t.step(path, () => assert.deepEqual(adminPathParts(path), expected));
  }
});

Deno.test("parseLimit() accepts integers from 1 to 1000 and defaults to 50", async (t) => {
  assert.equal(DEFAULT_LIMIT, 50);
  assert.equal(MAX_LIMIT, 1000);
  const table: [string | null, number | null][] = [
    [null, 50],
    ["1", 1],
    ["200", 200],
    ["1000", 1000],
    ["0001", 1],
    ["0", null],
    ["1001", null],
    ["9999", null],
    ["10000", null],
    ["", null],
    ["-1", null],
    ["1.5", null],
    ["1e2", null],
    [" 5", null],
    ["abc", null],
  ];
  for (const [raw, expected] of table) {
    await t.step(JSON.stringify(raw), () => {
      assert.equal(parseLimit(raw), expected);
    });
  }
});

Deno.test("deliveryDetail() is the summary plus headers, hook, target, kind, replays and start", () => {
  assert.deepEqual(deliveryDetail(record()), {
    id: "d-1",
    event: "issues",
    action: "opened",
    status: "done",
    attempts: 2,
    receivedAt: "2025-01-02T03:04:05.000Z",
    finishedAt: "2025-01-02T03:04:05.228Z",
    error: null,
    repository: "octo-org/hello-world",
    sender: "monalisa",
    durationMs: 128,
    size: 362,
    hookId: "481516",
    headers: { "x-github-event": "issues" },
    target: { type: "repository", id: "1296269" },
    contentKind: "json",
    replays: 1,
    startedAt: "2025-01-02T03:04:05.100Z",
    runs: [],
  });
});

Deno.test("deliveryDetail() shows what is missing as null", () => {
  const detail = deliveryDetail(record({
    action: undefined,
    hookId: undefined,
    target: undefined,
    repository: undefined,
    sender: undefined,
    kind: "form",
    status: "queued",
    startedAt: null,
    finishedAt: null,
    durationMs: null,
  }));
  assert.equal(detail.action, null);
  assert.equal(detail.hookId, null);
  assert.equal(detail.target, null);
  assert.equal(detail.repository, null);
  assert.equal(detail.sender, null);
  assert.equal(detail.contentKind, "form");
  assert.equal(detail.startedAt, null);
  assert.equal(detail.finishedAt, null);
  assert.equal(detail.durationMs, null);
});

Deno.test("bodyHeaders() names the download after the delivery and keeps the content type", async (t) => {
  await t.step("JSON", () => {
    assert.deepEqual(bodyHeaders({ id: "d-1", kind: "json" }), {
      "content-type": "application/json; charset=utf-8",
      "content-disposition": 'attachment; filename="d-1.json"',
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
  });
  await t.step("a form body", () => {
    assert.equal(
      bodyHeaders({ id: "d-1", kind: "form" })["content-type"],
      "application/x-www-form-urlencoded",
    );
  });
  await t.step("unsafe characters of the id become _", () => {
    assert.equal(
      bodyHeaders({ id: 'a/b"c\\d é.e_f-9', kind: "json" })[
        "content-disposition"
      ],
      'attachment; filename="a_b_c_d__.e_f-9.json"',
    );
  });
});

Deno.test("createAdminRoute() leaves other paths to the next route and hides itself without a token", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
    const other = new URL("http://x/dashboard");
    const route = createAdminRoute({ store, token: TOKEN });
    assert.equal(await route(new Request(other), other, PEER), null);
    const url = new URL("http://x/deliveries");
    for (const token of [undefined, ""]) {
      const hidden = createAdminRoute({ store, token });
      const res = await hidden(
        new Request(url, { headers: AUTH }),
        url,
        PEER,
      );
      assert.equal(res?.status, 404);
      assert.equal((await res.json()).error, "not_found");
    }
    const res = await route(new Request(url), url, PEER);
    assert.equal(res?.status, 401);
    assert.equal(
      res.headers.get("www-authenticate"),
      'Bearer realm="hookgate", Basic realm="hookgate"',
    );
    assert.deepEqual(await res.json(), {
      error: "unauthorized",
      message: "A valid admin token is required.",
    });
  } finally {
    kv.close();
  }
});

Deno.test("isDeliveryId() follows the webhook's X-GitHub-Delivery rule", async (t) => {
  const table: [string, boolean][] = [
    ["72d3162e-cc78-11e3-81ab-4c9367dc0958", true],
    ["a/b c", true],
    ["x".repeat(100), true],
    ["x".repeat(101), false],
    ["x".repeat(20_000), false],
    ["bad\u0001id", false],
    ["tab\there", false],
    ["del\u007f", false],
    ["", false],
  ];
  for (const [id, expected] of table) {
    await t.step(JSON.stringify(id.slice(0, 40)), () => {
      assert.equal(isDeliveryId(id), expected);
    });
  }
});

Deno.test("replayIsPending() is true when a replay would change nothing the worker does", async (t) => {
  const table: [string, Partial<DeliveryRecord>, boolean][] = [
    ["queued and due", { status: "queued", dueAt: 10 }, true],
    ["queued, due later", { status: "queued", dueAt: 11 }, false],
    ["failed and due", { status: "failed", dueAt: 10 }, true],
    ["failed, retry later", { status: "failed", dueAt: 500 }, false],
    ["running", { status: "running", dueAt: 90 }, false],
    ["running, to run again", { status: "running", rerun: true }, true],
    ["done", { status: "done", dueAt: null }, false],
    ["dead", { status: "dead", dueAt: null }, false],
    ["skipped", { status: "skipped", dueAt: null }, false],
  ];
  for (const [name, fields, expected] of table) {
    await t.step(name, () => {
      assert.equal(replayIsPending(record(fields), 10), expected);
    });
  }
});

Deno.test("createReplays() joins concurrent replays of one delivery in one re-arm", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
    await storeDone(store, "d-1");
    let rearms = 0;
    const replay = createReplays({
      now: () => store.now(),
      rearm: (id, why) => (rearms++, store.rearm(id, why)),
    });
    const done = (await store.get("d-1"))!;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () => replay(done)),
    );
    assert.equal(rearms, 1, "one store write for the burst");
    assert.ok(outcomes.every((o) => o.status === "queued" && o.replays === 1));
    const queued = (await store.get("d-1"))!;
    assert.equal(queued.status, "queued");
    assert.equal(queued.replays, 1);
    // Queued and due: a later replay needs no write at all.
    assert.deepEqual(await replay(queued), { status: "queued", replays: 1 });
    assert.equal(rearms, 1);
    // Once it has finished again, a replay re-arms it again.
    assert.equal((await replay(done)).status, "queued");
    assert.equal(rearms, 2);
  } finally {
    kv.close();
  }
});

Deno.test("createReplays() answers unavailable when the re-arm cannot be stored, and missing when the record is gone", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
  await storeDone(store, "d-1");
  const done = (await store.get("d-1"))!;
  const replay = createReplays(store);
  assert.deepEqual(await replay({ ...done, id: "gone" }), {
    status: "missing",
  });
  kv.close(); // every read and write fails for real
  const outcome = await replay(done);
  assert.equal(outcome.status, "unavailable");
});

/** A delivery stored, then leased and finished `done`, as the worker would. */
async function storeDone(store: DeliveryStore, id: string): Promise<void> {
  const body = new TextEncoder().encode(`{"id":"${id}"}`);
  const result = await store.accept({
    id,
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body,
    kind: "json",
    digest: await sha256Hex(body),
    receivedAt: store.now(),
    repository: undefined,
    sender: undefined,
  }, { leaseUntil: store.now() + 60_000 });
  assert.ok(result.status === "queued" && result.leased);
  const next = finishAttempt(result.leased.value, { outcome: "ok", ms: 1 }, {
    now: store.now(),
    backoff: { baseMs: 10, maxMs: 10 },
    interrupted: false,
  });
  assert.ok(await store.update(result.leased, next));
}

/** A real app served on 127.0.0.1, with the admin API on, for `fn`. */
async function withServer(
  env: Record<string, string>,
  registry: HandlerRegistry,
  fn: (s: {
    app: App;
    base: string;
    logs: ReturnType<typeof captureLogger>;
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-admin-" });
  const kv = await Deno.openKv(`${dir}/hookgate.kv`);
  const logs = captureLogger("info");
  const app = await createApp({
    config: testConfig({ ADMIN_TOKEN: TOKEN, ...env }),
    log: logs.log,
    kv,
    registry,
    worker: { pollMs: 20, retryBaseMs: 10 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) => app.fetch(request, info),
  );
  try {
    await fn({ app, base: `http://127.0.0.1:${server.addr.port}`, logs });
  } finally {
    stop.abort();
    await app.close(2000);
    await server.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const TOKEN = "admin-token-for-the-tests";
const AUTH = { authorization: `Bearer ${TOKEN}` };

Deno.test("300 concurrent replays of one delivery over HTTP: no 500, one re-arm at a time, and the worker's outcome still recorded", async () => {
  let runs = 0;
  await withServer({}, {
    push: { default: () => void runs++ },
  }, async ({ app, base, logs }) => {
    const res = await fetch(
      await deliveryRequest({
        id: "hot",
        event: "push",
        url: `${base}/webhook`,
      }),
    );
    assert.equal(res.status, 202);
    await res.body?.cancel();
    await waitFor(async () => (await app.store.get("hot"))?.status === "done");

    const statuses = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const res = await fetch(`${base}/deliveries/hot/replay`, {
          method: "POST",
          headers: AUTH,
        });
        await res.body?.cancel();
        return res.status;
      }),
    );
    const counts: Record<number, number> = {};
    for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
    assert.ok(
      statuses.every((s) => s === 202 || s === 503),
      JSON.stringify(counts),
    );
    assert.ok((counts[202] ?? 0) >= 295, JSON.stringify(counts));

    await waitFor(
      async () => {
        const r = await app.store.get("hot");
        return r?.status === "done" && r.attempts >= 2;
      },
      5000,
      "the replayed run done",
    );
    const record = (await app.store.get("hot"))!;
    assert.ok(record.replays >= 1, "re-armed");
    assert.ok(runs >= 2, "ran again");
    const trouble = logs.lines.filter((l) =>
      /could not record the outcome|lease lost/.test(String(l.msg))
    );
    assert.deepEqual(trouble, [], "each outcome recorded at the first lease");
  });
});

Deno.test("an id no delivery could have is 404, never 500, for the record, its body and a replay", async () => {
  await withServer({}, {}, async ({ base }) => {
    for (
      const id of ["x".repeat(20_000), "x".repeat(101), "bad%01id", "%7F"]
    ) {
      for (
        const [path, method] of [
          [`/deliveries/${id}`, "GET"],
          [`/deliveries/${id}/body`, "GET"],
          [`/deliveries/${id}/replay`, "POST"],
        ] as const
      ) {
        const res = await fetch(`${base}${path}`, { method, headers: AUTH });
        assert.equal(res.status, 404, `${method} ${path.slice(0, 60)}`);
        const body = await res.json();
        assert.equal(body.error, "not_found");
        assert.ok(!JSON.stringify(body).includes("xxxxxxxxxx"), "not echoed");
      }
    }
  });
});

Deno.test("wrong admin tokens: 401 and a rate-limited warning, then 429 with Retry-After per client; other clients and the right token unaffected", async () => {
  await withServer(
    { TRUSTED_PROXIES: "127.0.0.1/32" },
    {},
    async ({ base, logs }) => {
      const as = (client: string, token: string | null) =>
        fetch(`${base}/deliveries`, {
          headers: {
            "x-forwarded-for": client,
            ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          },
        }).then(async (res) => {
          await res.body?.cancel();
          return res;
        });
      // No credential at all (a browser's first visit) counts for nothing.
      for (let i = 0; i < 12; i++) {
        assert.equal((await as("203.0.113.7", null)).status, 401);
      }
      for (let i = 1; i <= 10; i++) {
        const res = await as("203.0.113.7", `guess-${i}`);
        assert.equal(res.status, 401, `guess ${i}`);
      }
      const limited = await as("203.0.113.7", `guess-11`);
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
      assert.equal(
        (await as("203.0.113.7", TOKEN)).status,
        429,
        "not even compared until the window ends",
      );
      assert.equal((await as("198.51.100.2", TOKEN)).status, 200);
      assert.equal((await as("198.51.100.2", "nope")).status, 401);

      const warnings = logs.lines.filter((l) =>
        l.msg === "admin authentication failed"
      );
      assert.equal(warnings.length, 1, "one line per 10 s, not per guess");
      assert.equal(warnings[0]!.level, "warn");
      assert.equal(warnings[0]!.client, "203.0.113.7");
      assert.ok(
        !logs.raw.some((line) => /guess-|nope|admin-token-for/.test(line)),
        "no token, right or wrong, in the log",
      );
    },
  );
});
