import assert from "node:assert/strict";
import {
  type DeliveryAttempt,
  findFailed,
  hookPath,
  listHookAttempts,
  parseDeliveryAttempt,
  redeliverAttempt,
} from "../../lib/github/hook_deliveries.ts";
import { createRestClient, GitHubApiError } from "../../lib/github/rest.ts";
import { rejection } from "./_helpers.ts";

const NOW = Date.parse("2025-06-02T12:00:00Z");
const MINUTE = 60_000;
const BASE = "https://api.github.com";

// Moved from tests/tools/redeliver_test.ts with the functions they test.
Deno.test("hookPath() encodes names into the REST path", () => {
  assert.equal(
    hookPath({ kind: "repo", owner: "octo", repo: "a.b_c-d", hookId: "1" }),
    "/repos/octo/a.b_c-d/hooks/1",
  );
  assert.equal(
    hookPath({ kind: "org", org: "o", hookId: "2" }),
    "/orgs/o/hooks/2",
  );
  assert.equal(hookPath({ kind: "app" }), "/app/hook");
});

Deno.test("findFailed() groups attempts by guid", async (t) => {
  const cutoff = NOW - 60 * MINUTE;
  const attempt = (
    id: number,
    guid: string,
    minutesAgo: number,
    statusCode: number,
  ): DeliveryAttempt => ({
    id,
    guid,
    deliveredAt: NOW - minutesAgo * MINUTE,
    redelivery: false,
    status: String(statusCode),
    statusCode,
    event: "push",
    action: null,
  });

  await t.step("a delivery with any 2xx attempt succeeded", () => {
    const report = findFailed([
      attempt(3, "a", 10, 500),
      attempt(2, "a", 20, 204),
      attempt(1, "a", 30, 500),
    ], cutoff);
    assert.deepEqual(report.failed, []);
    assert.equal(report.examined, 3);
    assert.equal(report.deliveries, 1);
  });

  await t.step(
    "an older attempt before the cutoff still proves success",
    () => {
      const report = findFailed([
        attempt(2, "a", 10, 503),
        attempt(1, "a", 120, 200),
      ], cutoff);
      assert.deepEqual(report.failed, []);
      assert.equal(report.examined, 1);
    },
  );

  await t.step("redeliver the latest attempt; oldest delivery first", () => {
    const report = findFailed([
      attempt(5, "b", 5, 0),
      attempt(4, "a", 10, 302),
      attempt(3, "b", 15, 404),
      attempt(2, "a", 40, 500),
      attempt(1, "c", 90, 500),
    ], cutoff);
    assert.deepEqual(
      report.failed.map((d) => [d.guid, d.latestId, d.attempts]),
      [["a", 4, 2], ["b", 5, 2]],
    );
    assert.equal(report.examined, 4);
    assert.equal(report.deliveries, 2);
  });
});

Deno.test("parseDeliveryAttempt() reads GitHub's item, with defaults", () => {
  assert.deepEqual(
    parseDeliveryAttempt({
      id: 7,
      guid: "g",
      delivered_at: "2025-06-02T11:00:00Z",
      redelivery: true,
      status: "OK",
      status_code: 200,
      event: "issues",
      action: "opened",
    }),
    {
      id: 7,
      guid: "g",
      deliveredAt: NOW - 60 * MINUTE,
      redelivery: true,
      status: "OK",
      statusCode: 200,
      event: "issues",
      action: "opened",
    },
  );
  assert.deepEqual(
    parseDeliveryAttempt({
      id: 8,
      guid: "h",
      delivered_at: "2025-06-02T11:00:00Z",
      status_code: 502,
      action: null,
    }),
    {
      id: 8,
      guid: "h",
      deliveredAt: NOW - 60 * MINUTE,
      redelivery: false,
      status: "502",
      statusCode: 502,
      event: "?",
      action: null,
    },
  );
});

Deno.test("parseDeliveryAttempt() returns null when an item lacks what is needed", async (t) => {
  const good = {
    id: 1,
    guid: "g",
    delivered_at: "2025-06-02T11:00:00Z",
    status_code: 0,
  };
  const cases: [string, unknown][] = [
    ["null", null],
    ["a string", "x"],
    ["no id", { ...good, id: undefined }],
    ["id 0", { ...good, id: 0 }],
    ["id not an integer", { ...good, id: 1.5 }],
    ["empty guid", { ...good, guid: "" }],
    ["no status_code", { ...good, status_code: "200" }],
    ["a bad date", { ...good, delivered_at: "yesterday" }],
  ];
  for (const [name, item] of cases) {
    await t.step(name, () => assert.equal(parseDeliveryAttempt(item), null));
  }
});

/** Items of GitHub's list, `minutesAgo` before NOW. */
function item(id: number, guid: string, minutesAgo: number, statusCode = 500) {
  return {
    id,
    guid,
    delivered_at: new Date(NOW - minutesAgo * MINUTE).toISOString(),
    status: String(statusCode),
    status_code: statusCode,
    event: "push",
    action: null,
  };
}

/** A fake GitHub answering each request in turn from `replies`. */
function fakeGitHub(replies: (() => Response)[]) {
  const calls: { method: string; url: string }[] = [];
  const fetch = ((input: string | URL | Request, init: RequestInit = {}) => {
    calls.push({ method: init.method ?? "GET", url: String(input) });
    const reply = replies[calls.length - 1];
    return Promise.resolve(
      reply ? reply() : Response.json({ message: "no more" }, { status: 500 }),
    );
  }) as typeof globalThis.fetch;
  return { calls, client: createRestClient({ baseUrl: BASE, fetch }) };
}

const HOOK = {
  kind: "repo",
  owner: "octo",
  repo: "hello",
  hookId: "42",
} as const;
const LIST = `${BASE}/repos/octo/hello/hooks/42/deliveries`;

Deno.test("listHookAttempts() pages back to the cutoff, telling each page", async () => {
  const next = (cursor: string) => ({
    headers: { link: `<${LIST}?per_page=100&cursor=${cursor}>; rel="next"` },
  });
  const { calls, client } = fakeGitHub([
    () => Response.json([item(3, "c", 1), item(2, "b", 2)], next("v1_2")),
    () => Response.json([item(1, "a", 90)], next("v1_3")),
    () => Response.json([item(0, "z", 200)]),
  ]);
  const pages: [number, number][] = [];
  const attempts = await listHookAttempts(client, HOOK, {
    cutoff: NOW - 60 * MINUTE,
    onPage: (page, items) => pages.push([page, items.length]),
  });
  assert.deepEqual(attempts.map((a) => a.id), [3, 2, 1]);
  assert.deepEqual(pages, [[1, 2], [2, 1]]);
  assert.deepEqual(calls.map((c) => c.url), [
    `${LIST}?per_page=100`,
    `${LIST}?per_page=100&cursor=v1_2`,
  ]);
});

Deno.test("listHookAttempts() stops at an empty page", async () => {
  const { calls, client } = fakeGitHub([
    () =>
      Response.json([], {
        headers: { link: `<${LIST}?cursor=x>; rel="next"` },
      }),
  ]);
  assert.deepEqual(await listHookAttempts(client, HOOK, { cutoff: 0 }), []);
  assert.equal(calls.length, 1);
});

Deno.test("listHookAttempts() refuses what it cannot use", async (t) => {
  const cases: [string, () => Response, Partial<GitHubApiError>][] = [
    [
      "a 404",
      () => Response.json({ message: "Not Found" }, { status: 404 }),
      { kind: "status", status: 404, githubMessage: "Not Found" },
    ],
    [
      "a 2xx other than 200",
      () => new Response(null, { status: 204 }),
      { kind: "status", status: 204 },
    ],
    [
      "not JSON",
      () => new Response("<html>"),
      {
        kind: "invalid",
        message:
          `GitHub's list of deliveries (page 1) is not JSON: Unexpected token '<', "<html>" is not valid JSON`,
      },
    ],
    [
      "an empty body",
      () => new Response(""),
      {
        kind: "invalid",
        message:
          "GitHub's list of deliveries (page 1) is not JSON: Unexpected end of JSON input",
      },
    ],
    [
      "not an array",
      () => Response.json({ deliveries: [] }),
      {
        kind: "invalid",
        message: "GitHub's list of deliveries (page 1) is not an array",
      },
    ],
    [
      "an item without a guid",
      () => Response.json([{ id: 1 }]),
      {
        kind: "invalid",
        message:
          "GitHub's list of deliveries (page 1, item 1) lacks id, guid, delivered_at or status_code",
      },
    ],
  ];
  for (const [name, reply, expected] of cases) {
    await t.step(name, async () => {
      const { client } = fakeGitHub([reply]);
      const err = await rejection(
        listHookAttempts(client, HOOK, { cutoff: 0 }),
      );
      for (const [key, value] of Object.entries(expected)) {
        assert.equal(err[key as keyof GitHubApiError], value, key);
      }
    });
  }
});

Deno.test("redeliverAttempt() posts to the attempt's redelivery route", async () => {
  const { calls, client } = fakeGitHub([
    () => Response.json({}, { status: 202 }),
  ]);
  const answer = await redeliverAttempt(client, { kind: "app" }, 12345);
  assert.equal(answer.status, 202);
  assert.deepEqual(calls, [{
    method: "POST",
    url: `${BASE}/app/hook/deliveries/12345/attempts`,
  }]);
});
