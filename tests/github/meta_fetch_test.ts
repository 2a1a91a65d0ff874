import assert from "node:assert/strict";
import {
  DEFAULT_META_USER_AGENT,
  fetchMeta,
  MAX_META_BODY_BYTES,
  type MetaFetchOptions,
} from "../../lib/github/meta_fetch.ts";

const URL_ = "https://api.github.com/meta";
const HOOKS = ["192.30.252.0/22", "2a0a:a440::/29"];
const NOW = 1_700_000_000_000;

/** A fake fetch answering `reply` and recording each request. */
function fakeFetch(reply: (init: RequestInit) => Response | Promise<Response>) {
  const calls: { url: string; headers: Headers; signal: AbortSignal }[] = [];
  const fetch = ((input: string | URL | Request, init: RequestInit = {}) => {
    calls.push({
      url: String(input),
      headers: new Headers(init.headers),
      signal: init.signal!,
    });
    return Promise.resolve(reply(init));
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

function options(
  fetch: typeof globalThis.fetch,
  extra: Partial<MetaFetchOptions> = {},
): MetaFetchOptions {
  return { url: URL_, fetch, now: () => NOW, ...extra };
}

Deno.test("fetchMeta() sends GitHub's headers, the ETag and the token", async (t) => {
  await t.step("no ETag, no token", async () => {
    const fake = fakeFetch(() => Response.json({ hooks: HOOKS }));
    await fetchMeta(options(fake.fetch));
    const { url, headers } = fake.calls[0]!;
    assert.equal(url, URL_);
    assert.equal(headers.get("accept"), "application/vnd.github+json");
    assert.equal(headers.get("x-github-api-version"), "2022-11-28");
    assert.equal(headers.get("user-agent"), DEFAULT_META_USER_AGENT);
    assert.equal(headers.get("if-none-match"), null);
    assert.equal(headers.get("authorization"), null);
  });
  await t.step("ETag, token, user agent", async () => {
    const fake = fakeFetch(() => Response.json({ hooks: HOOKS }));
    await fetchMeta(
      options(fake.fetch, { etag: '"v1"', token: "t0k", userAgent: "ua/1" }),
    );
    const { headers } = fake.calls[0]!;
    assert.equal(headers.get("if-none-match"), '"v1"');
    assert.equal(headers.get("authorization"), "Bearer t0k");
    assert.equal(headers.get("user-agent"), "ua/1");
  });
  await t.step("an empty token sends none", async () => {
    const fake = fakeFetch(() => Response.json({ hooks: HOOKS }));
    await fetchMeta(options(fake.fetch, { token: "" }));
    assert.equal(fake.calls[0]!.headers.get("authorization"), null);
  });
});

Deno.test("fetchMeta() answers a valid list with its ETag", async () => {
  const fake = fakeFetch(() =>
    Response.json({ hooks: HOOKS }, { headers: { etag: '"v2"' } })
  );
  const result = await fetchMeta(options(fake.fetch));
  assert.equal(result.kind, "ok");
  assert.ok(result.kind === "ok");
  assert.equal(result.status, 200);
  assert.deepEqual(result.list.hooks, HOOKS);
  assert.equal(result.list.cidrs.length, 2);
  assert.equal(result.etag, '"v2"');
});

Deno.test("fetchMeta() drops an over-long ETag", async () => {
  const etag = `"${"x".repeat(600)}"`;
  const ok = fakeFetch(() =>
    Response.json({ hooks: HOOKS }, { headers: { etag } })
  );
  const result = await fetchMeta(options(ok.fetch));
  assert.ok(result.kind === "ok");
  assert.equal(result.etag, null);
  const same = fakeFetch(() =>
    new Response(null, { status: 304, headers: { etag } })
  );
  assert.deepEqual(await fetchMeta(options(same.fetch)), {
    kind: "not_modified",
    status: 304,
    etag: null,
  });
});

Deno.test("fetchMeta() answers not_modified on a 304", async () => {
  const fake = fakeFetch(() =>
    new Response(null, { status: 304, headers: { etag: '"v3"' } })
  );
  assert.deepEqual(await fetchMeta(options(fake.fetch, { etag: '"v1"' })), {
    kind: "not_modified",
    status: 304,
    etag: '"v3"',
  });
});

Deno.test("fetchMeta() fails on a bad answer, saying why", async (t) => {
  const cases: [string, () => Response, Record<string, unknown>][] = [
    [
      "a 500",
      () => Response.json({ hooks: HOOKS }, { status: 500 }),
      { status: 500, error: "unexpected status 500" },
    ],
    [
      "a 429 with Retry-After",
      () =>
        new Response("slow", { status: 429, headers: { "retry-after": "7" } }),
      { status: 429, error: "unexpected status 429", retryAfterMs: 7000 },
    ],
    [
      "not JSON",
      () => new Response("<html>"),
      { status: 200, error: "answer is not JSON" },
    ],
    [
      "invalid UTF-8",
      () => new Response(new Uint8Array([0x7b, 0xff, 0x7d])),
      { status: 200, error: "answer is not JSON" },
    ],
    [
      "an invalid list",
      () => Response.json({ hooks: [] }),
      { status: 200, error: "hooks is empty" },
    ],
    [
      "a body over the cap",
      () => new Response(new Uint8Array(MAX_META_BODY_BYTES + 1)),
      { status: 200, error: `body larger than ${MAX_META_BODY_BYTES} bytes` },
    ],
  ];
  for (const [name, reply, expected] of cases) {
    await t.step(name, async () => {
      const fake = fakeFetch(reply);
      assert.deepEqual(await fetchMeta(options(fake.fetch)), {
        kind: "failed",
        ...expected,
      });
    });
  }
});

Deno.test("fetchMeta() fails softly when fetch rejects", async () => {
  const fetch =
    (() => Promise.reject(new TypeError("refused"))) as typeof globalThis.fetch;
  assert.deepEqual(await fetchMeta(options(fetch)), {
    kind: "failed",
    error: "fetch failed: TypeError: refused",
  });
});

Deno.test("fetchMeta() times out a fetch that never answers", async () => {
  const fetch =
    ((_: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => {
        init.signal!.addEventListener(
          "abort",
          () => reject(init.signal!.reason),
        );
      })) as typeof globalThis.fetch;
  const result = await fetchMeta(options(fetch, { timeoutMs: 20 }));
  assert.equal(result.kind, "failed");
  assert.match(
    (result as { error: string }).error,
    /^fetch failed: Error: timed out after 20 ms$/,
  );
});

Deno.test("fetchMeta() answers stopped when its signal aborts", async (t) => {
  await t.step("before the fetch: nothing is sent", async () => {
    const fake = fakeFetch(() => Response.json({ hooks: HOOKS }));
    const stop = new AbortController();
    stop.abort();
    assert.deepEqual(
      await fetchMeta(options(fake.fetch, { signal: stop.signal })),
      { kind: "stopped" },
    );
    assert.equal(fake.calls.length, 0);
  });
  await t.step("during the fetch", async () => {
    const stop = new AbortController();
    const fetch = ((_: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => {
        init.signal!.addEventListener("abort", () =>
          reject(init.signal!.reason));
        stop.abort();
      })) as typeof globalThis.fetch;
    assert.deepEqual(
      await fetchMeta(options(fetch, { signal: stop.signal })),
      { kind: "stopped" },
    );
  });
});
