import assert from "node:assert/strict";
import {
  isoTime,
  MAX_META_WAIT_MS,
  metaRetryAfterMs,
  parseRetryAfter,
  readServerWait,
  restRateLimit,
  type ServerWait,
} from "../../lib/github/rate_limit.ts";

const NOW = Date.parse("2025-06-02T12:00:00Z");

Deno.test("parseRetryAfter() reads delta seconds and HTTP dates", async (t) => {
  const cases: [string | null | undefined, number | null][] = [
    [null, null],
    [undefined, null],
    ["", null],
    ["soon", null],
    ["0", 0],
    ["120", 120_000],
    [" 30 ", 30_000],
    [new Date(NOW + 90_000).toUTCString(), 90_000],
    [new Date(NOW - 90_000).toUTCString(), 0],
  ];
  for (const [value, expected] of cases) {
    await t.step(String(JSON.stringify(value)), () => {
      assert.equal(parseRetryAfter(value, NOW), expected);
    });
  }
});

Deno.test("readServerWait() prefers Retry-After, then a spent primary limit", async (t) => {
  const spent = (reset?: number | string) => ({
    "x-ratelimit-remaining": "0",
    ...(reset === undefined ? {} : { "x-ratelimit-reset": String(reset) }),
  });
  const cases: [string, HeadersInit, ServerWait | null][] = [
    [
      "Retry-After wins",
      { "retry-after": " 7 ", ...spent(NOW / 1000 + 30) },
      { source: "retry-after", waitMs: 7000, value: "7" },
    ],
    [
      "an unreadable Retry-After falls through to the reset",
      { "retry-after": "later", ...spent(NOW / 1000 + 30) },
      { source: "reset", waitMs: 30_000, resetAtMs: NOW + 30_000 },
    ],
    [
      "a reset in the past waits nothing",
      spent(NOW / 1000 - 30),
      { source: "reset", waitMs: 0, resetAtMs: NOW - 30_000 },
    ],
    ["spent without a reset", spent(), { source: "exhausted" }],
    ["spent with an unreadable reset", spent("soon"), { source: "exhausted" }],
    ["nothing said", {}, null],
    [
      "a limit not spent",
      { "x-ratelimit-remaining": "12", "x-ratelimit-reset": "1" },
      null,
    ],
  ];
  for (const [name, headers, expected] of cases) {
    await t.step(name, () => {
      assert.deepEqual(readServerWait(new Headers(headers), NOW), expected);
    });
  }
});

Deno.test("metaRetryAfterMs() honours 403, 429 and 503 only, capped at an hour", async (t) => {
  const ra = (value: string) => new Headers({ "retry-after": value });
  await t.step("statuses", () => {
    assert.equal(metaRetryAfterMs(429, ra("120"), NOW), 120_000);
    assert.equal(metaRetryAfterMs(403, ra("120"), NOW), 120_000);
    assert.equal(metaRetryAfterMs(503, ra("120"), NOW), 120_000);
    assert.equal(metaRetryAfterMs(500, ra("120"), NOW), undefined);
    assert.equal(metaRetryAfterMs(404, ra("120"), NOW), undefined);
  });
  await t.step("the cap", () => {
    assert.equal(metaRetryAfterMs(429, ra("99999999"), NOW), MAX_META_WAIT_MS);
  });
  await t.step("a spent limit with a reset; without one, nothing", () => {
    const reset = new Headers({
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(NOW / 1000 + 600),
    });
    assert.equal(metaRetryAfterMs(403, reset, NOW), 600_000);
    const spent = new Headers({ "x-ratelimit-remaining": "0" });
    assert.equal(metaRetryAfterMs(403, spent, NOW), undefined);
  });
});

Deno.test("restRateLimit() decides what the REST client waits out", async (t) => {
  const fallback = 60_000;
  const wait = (status: number, headers: HeadersInit = {}, body = "") =>
    restRateLimit(status, new Headers(headers), body, NOW, fallback);

  await t.step("403 and 429 only", () => {
    assert.equal(wait(500, { "retry-after": "1" }), null);
    assert.equal(wait(503, { "retry-after": "1" }), null);
    assert.equal(wait(200, { "x-ratelimit-remaining": "0" }), null);
  });
  await t.step("Retry-After, uncapped", () => {
    assert.deepEqual(wait(429, { "retry-after": "1" }), {
      waitMs: 1000,
      reason: "Retry-After: 1",
    });
    assert.equal(wait(429, { "retry-after": "7200" })?.waitMs, 7_200_000);
  });
  await t.step("a spent limit: a second past the reset", () => {
    assert.deepEqual(
      wait(403, {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 + 30),
      }),
      {
        waitMs: 31_000,
        reason: "x-ratelimit-remaining: 0 until 2025-06-02T12:00:30Z",
      },
    );
    assert.equal(
      wait(403, {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 - 30),
      })?.waitMs,
      1000,
    );
  });
  await t.step("the fallback wait", () => {
    assert.deepEqual(wait(403, { "x-ratelimit-remaining": "0" }), {
      waitMs: fallback,
      reason: "x-ratelimit-remaining: 0",
    });
    assert.deepEqual(wait(429), {
      waitMs: fallback,
      reason: "429 without Retry-After",
    });
    assert.deepEqual(
      wait(403, {}, '{"message":"You have exceeded a secondary rate limit."}'),
      { waitMs: fallback, reason: "secondary rate limit" },
    );
  });
  await t.step("a 403 that is not a rate limit", () => {
    assert.equal(wait(403, {}, '{"message":"Must have admin rights"}'), null);
  });
});

Deno.test("isoTime() prints to the second", () => {
  assert.equal(isoTime(NOW + 30_250), "2025-06-02T12:00:30Z");
});
