import assert from "node:assert/strict";
import {
  createErrorResponder,
  errorPartsResponse,
  errorResponse,
  jsonHeaders,
  jsonResponse,
} from "../../lib/http/responses.ts";

const JSON_TYPE = "application/json; charset=utf-8";

Deno.test("jsonHeaders() adds headers to the JSON content type without changing the shared list", () => {
  const plain = jsonHeaders({});
  assert.deepEqual(plain, [["content-type", JSON_TYPE]]);
  assert.equal(jsonHeaders({}), plain, "no new list without headers");
  const extra = jsonHeaders({ "retry-after": "5", connection: "close" });
  assert.deepEqual(extra, [
    ["content-type", JSON_TYPE],
    ["retry-after", "5"],
    ["connection", "close"],
  ]);
  assert.deepEqual(jsonHeaders({}), [["content-type", JSON_TYPE]]);
});

Deno.test("errorResponse() answers the contract's JSON error body", async () => {
  const res = errorResponse(405, "method_not_allowed", "POST only.", {
    allow: "POST",
  });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("content-type"), JSON_TYPE);
  assert.equal(res.headers.get("allow"), "POST");
  assert.equal(
    await res.text(),
    '{"error":"method_not_allowed","message":"POST only."}',
  );
});

Deno.test("createErrorResponder() answers exactly as errorResponse() does, again and again", async (t) => {
  const cached = createErrorResponder();
  const table: [number, string, string, Record<string, string>?][] = [
    [404, "not_found", "Nothing here."],
    [503, "unavailable", "Later.", { "retry-after": "5" }],
    [400, "bad_header", 'A "quoted"\nmessage.'],
  ];
  for (const [status, error, message, headers] of table) {
    await t.step(error, async () => {
      for (let i = 0; i < 3; i++) {
        const got = cached(status, error, message, headers);
        const want = errorResponse(status, error, message, headers);
        assert.equal(got.status, want.status);
        assert.deepEqual([...got.headers], [...want.headers]);
        assert.equal(await got.text(), await want.text());
      }
    });
  }
  await t.step(
    "the same code with another message is another body",
    async () => {
      const a = await cached(400, "x", "one").json();
      const b = await cached(400, "x", "two").json();
      assert.deepEqual([a, b], [
        { error: "x", message: "one" },
        { error: "x", message: "two" },
      ]);
    },
  );
  await t.step("past 256 distinct bodies it still answers right", async () => {
    for (let i = 0; i < 300; i++) {
      const res = cached(400, "code", `message ${i}`);
      assert.deepEqual(await res.json(), {
        error: "code",
        message: `message ${i}`,
      });
    }
  });
});

Deno.test("jsonResponse() serialises its body with the JSON content type", async () => {
  const res = jsonResponse(202, { status: "queued", delivery: "abc" });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("content-type"), JSON_TYPE);
  assert.deepEqual(await res.json(), { status: "queued", delivery: "abc" });
  const other = jsonResponse(200, [1], { "x-extra": "y" });
  assert.equal(other.headers.get("x-extra"), "y");
});

Deno.test("errorPartsResponse() answers the parts' status, JSON body and headers", async () => {
  const res = errorPartsResponse({
    status: 401,
    error: "unauthorized",
    message: "sign in",
    headers: { "www-authenticate": 'Basic realm="hookgate"' },
  });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Basic realm="hookgate"');
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.deepEqual(await res.json(), {
    error: "unauthorized",
    message: "sign in",
  });
});
