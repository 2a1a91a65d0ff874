// The admin API's pure parts. The routes themselves, against a real store
// and worker, are tested in tests/worker/worker_test.ts.

import assert from "node:assert/strict";
import {
  adminPathParts,
  bodyHeaders,
  createAdminRoute,
  DEFAULT_LIMIT,
  deliveryDetail,
  isAdminPath,
  MAX_LIMIT,
  parseLimit,
} from "../../lib/ops/admin.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type { DeliveryRecord } from "../../lib/store/types.ts";

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
    const route = createAdminRoute({ store, token: "s3cret" });
    assert.equal(await route(new Request(other), other), null);
    const url = new URL("http://x/deliveries");
    for (const token of [undefined, ""]) {
      const hidden = createAdminRoute({ store, token });
      const res = await hidden(
        new Request(url, { headers: { authorization: "Bearer s3cret" } }),
        url,
      );
      assert.equal(res?.status, 404);
      assert.equal((await res.json()).error, "not_found");
    }
    const res = await route(new Request(url), url);
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
