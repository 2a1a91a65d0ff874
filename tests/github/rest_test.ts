import assert from "node:assert/strict";
import {
  createRestClient,
  expandRoute,
  githubHeaders,
  githubMessageOf,
  parseApiUrl,
  parseNextLink,
  type RateLimitNotice,
  type RestClientOptions,
} from "../../lib/github/rest.ts";
import { rejection } from "./_helpers.ts";

const BASE = "https://api.github.com";
const NOW = Date.parse("2025-06-02T12:00:00Z");

interface Call {
  url: string;
  method: string;
  headers: Headers;
  body: string | undefined;
}

/** A fake fetch: `reply` answers each request; every request is recorded. */
function fakeGitHub(reply: (call: Call, n: number) => Response) {
  const calls: Call[] = [];
  const fetch = ((input: string | URL | Request, init: RequestInit = {}) => {
    const call: Call = {
      url: String(input),
      method: init.method ?? "GET",
      headers: new Headers(init.headers),
      body: init.body === undefined ? undefined : String(init.body),
    };
    calls.push(call);
    return Promise.resolve(reply(call, calls.length));
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

function client(
  fetch: typeof globalThis.fetch,
  extra: RestClientOptions = {},
) {
  const sleeps: number[] = [];
  const notices: RateLimitNotice[] = [];
  const github = createRestClient({
    baseUrl: BASE,
    token: "t0k3n",
    fetch,
    now: () => NOW,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    onRateLimit: (notice) => notices.push(notice),
    ...extra,
  });
  return { github, sleeps, notices };
}

Deno.test("githubHeaders() sends GitHub's headers and a bearer token", () => {
  const headers = githubHeaders("hookgate-test", "abc");
  assert.equal(headers.get("accept"), "application/vnd.github+json");
  assert.equal(headers.get("x-github-api-version"), "2022-11-28");
  assert.equal(headers.get("user-agent"), "hookgate-test");
  assert.equal(headers.get("authorization"), "Bearer abc");
  assert.equal(githubHeaders("ua", "").has("authorization"), false);
  assert.equal(githubHeaders("ua").has("authorization"), false);
});

Deno.test("expandRoute() fills placeholders and sends the rest as query or body", async (t) => {
  const base = new URL("https://ghe.example.com/api/v3/");
  await t.step("GET: placeholders encoded, the rest in the query", () => {
    const { method, url, body } = expandRoute(
      base,
      "GET /repos/{owner}/{repo}/issues",
      {
        owner: "octo",
        repo: "a b/c",
        state: "open",
        labels: ["x", "y"],
        skip: undefined,
      },
    );
    assert.equal(method, "GET");
    assert.equal(
      url.href,
      "https://ghe.example.com/api/v3/repos/octo/a%20b%2Fc/issues?state=open&labels=x%2Cy",
    );
    assert.equal(body, undefined);
  });
  await t.step(
    "POST: the rest as a JSON body; none when nothing is left",
    () => {
      const post = expandRoute(base, "POST /repos/{owner}/{repo}/issues", {
        owner: "o",
        repo: "r",
        title: "Hi",
      });
      assert.equal(post.url.pathname, "/api/v3/repos/o/r/issues");
      assert.equal(post.body, '{"title":"Hi"}');
      assert.equal(
        expandRoute(base, "POST /app/hook/deliveries/{id}/attempts", { id: 7 })
          .body,
        undefined,
      );
    },
  );
  await t.step("no method means GET; a query in the route is kept", () => {
    const { method, url } = expandRoute(new URL(BASE), "/meta?x=1", { y: 2 });
    assert.equal(method, "GET");
    assert.equal(url.href, `${BASE}/meta?x=1&y=2`);
  });
  await t.step("programmer errors throw", () => {
    assert.throws(() => expandRoute(base, "GET repos", {}), TypeError);
    assert.throws(
      () => expandRoute(base, "GET /repos/{owner}", {}),
      /'owner' is missing from params/,
    );
  });
});

Deno.test("parseApiUrl() allows https, and http on loopback only", async (t) => {
  const cases: [string, string | null][] = [
    ["https://api.github.com", null],
    ["https://ghe.example.com/api/v3", null],
    ["http://127.0.0.1:8080", null],
    ["http://localhost", null],
    ["http://[::1]:1", null],
    ["not a url", "must be an http(s) URL"],
    ["http://api.example.com", "must be an https URL"],
    ["ftp://127.0.0.1", "must be an https URL"],
    ["https://u:p@api.github.com", "must not carry credentials"],
    ["https://api.github.com/?x=1", "must not carry credentials"],
    ["https://api.github.com/#x", "must not carry credentials"],
  ];
  for (const [text, error] of cases) {
    await t.step(text, () => {
      const result = parseApiUrl(text);
      if (error === null) {
        assert.ok(result.ok);
        assert.equal(result.url.href, new URL(text).href);
      } else {
        assert.ok(!result.ok);
        assert.ok(result.error.includes(error), result.error);
      }
    });
  }
});

Deno.test("parseNextLink() finds rel=next among GitHub's links", async (t) => {
  const cases: [string | null, string | undefined][] = [
    [null, undefined],
    ["", undefined],
    ['<https://a/x?cursor=v1_2>; rel="next"', "https://a/x?cursor=v1_2"],
    [
      '<https://a/p>; rel="prev", <https://a/n?per_page=100&cursor=v1_9>; rel="next"',
      "https://a/n?per_page=100&cursor=v1_9",
    ],
    ["<https://a/n>; rel=next", "https://a/n"],
    ['<https://a/p>; rel="prev"', undefined],
    ['<https://a/f>; rel="first next"', "https://a/f"],
  ];
  for (const [header, expected] of cases) {
    await t.step(JSON.stringify(header), () => {
      assert.equal(parseNextLink(header), expected);
    });
  }
});

Deno.test("githubMessageOf() reads a string message only", () => {
  assert.equal(
    githubMessageOf({ message: "Bad credentials" }),
    "Bad credentials",
  );
  assert.equal(githubMessageOf({ message: 7 }), undefined);
  assert.equal(githubMessageOf(null), undefined);
  assert.equal(githubMessageOf("message"), undefined);
});

Deno.test("request() resolves a 2xx with status, headers and parsed data", async (t) => {
  await t.step("JSON", async () => {
    const fake = fakeGitHub(() =>
      Response.json({ id: 1 }, { status: 201, headers: { "x-a": "b" } })
    );
    const { github } = client(fake.fetch, { userAgent: "hookgate-test" });
    const answer = await github.request("POST /repos/{owner}/{repo}/issues", {
      owner: "o",
      repo: "r",
      title: "t",
    });
    assert.equal(answer.status, 201);
    assert.equal(answer.headers.get("x-a"), "b");
    assert.deepEqual(answer.data, { id: 1 });
    assert.equal(answer.url, `${BASE}/repos/o/r/issues`);
    const [call] = fake.calls;
    assert.equal(call!.method, "POST");
    assert.equal(call!.body, '{"title":"t"}');
    assert.equal(
      call!.headers.get("content-type"),
      "application/json; charset=utf-8",
    );
    assert.equal(call!.headers.get("authorization"), "Bearer t0k3n");
    assert.equal(call!.headers.get("user-agent"), "hookgate-test");
    assert.equal(call!.headers.get("x-github-api-version"), "2022-11-28");
  });
  await t.step(
    "an empty body is null; text that is not JSON stays text",
    async () => {
      const empty = client(
        fakeGitHub(() => new Response(null, { status: 204 })).fetch,
      );
      assert.equal((await empty.github.request("DELETE /x")).data, null);
      const html = client(fakeGitHub(() => new Response("<p>hi</p>")).fetch);
      assert.equal(
        (await html.github.request("POST /markdown")).data,
        "<p>hi</p>",
      );
    },
  );
  await t.step("GET sends no body and no content type", async () => {
    const fake = fakeGitHub(() => Response.json([]));
    await client(fake.fetch).github.request("GET /x", { a: 1 });
    assert.equal(fake.calls[0]!.body, undefined);
    assert.equal(fake.calls[0]!.headers.has("content-type"), false);
  });
});

Deno.test("request() asks getToken before each try, and sends no token without one", async () => {
  const fake = fakeGitHub((_, n) =>
    n === 1
      ? new Response("", { status: 429, headers: { "retry-after": "1" } })
      : Response.json({})
  );
  let minted = 0;
  const { github } = client(fake.fetch, {
    token: "ignored",
    getToken: () => Promise.resolve(`jwt-${++minted}`),
  });
  await github.request("GET /app");
  assert.deepEqual(
    fake.calls.map((c) => c.headers.get("authorization")),
    ["Bearer jwt-1", "Bearer jwt-2"],
  );
  const anonymous = fakeGitHub(() => Response.json({}));
  await client(anonymous.fetch, { token: undefined }).github.request(
    "GET /meta",
  );
  assert.equal(anonymous.calls[0]!.headers.has("authorization"), false);
});

Deno.test("request() rejects a non-2xx with status and GitHub's message", async () => {
  const fake = fakeGitHub(() =>
    Response.json({ message: "Not Found", documentation_url: "…" }, {
      status: 404,
    })
  );
  const err = await rejection(
    client(fake.fetch).github.request("GET /repos/{o}/{r}", { o: "a", r: "b" }),
  );
  assert.equal(err.kind, "status");
  assert.equal(err.status, 404);
  assert.equal(err.githubMessage, "Not Found");
  assert.equal(err.message, "GET /repos/a/b: GitHub answered 404: Not Found");
  assert.deepEqual(err.data, { message: "Not Found", documentation_url: "…" });
  assert.equal(err.name, "GitHubApiError");
  assert.ok(!err.message.includes("t0k3n"));
});

Deno.test("request() turns a failed fetch into a network error", async () => {
  const fetch = (() =>
    Promise.reject(
      new TypeError("connection refused"),
    )) as typeof globalThis.fetch;
  const err = await rejection(client(fetch).github.request("GET /x"));
  assert.equal(err.kind, "network");
  assert.equal(err.status, undefined);
  assert.equal(
    err.message,
    "Cannot reach https://api.github.com (GET /x): connection refused",
  );
});

Deno.test("request() waits out rate limits and retries", async (t) => {
  await t.step("429 with Retry-After, told through onRateLimit", async () => {
    const fake = fakeGitHub((_, n) =>
      n === 1
        ? new Response("", { status: 429, headers: { "retry-after": "3" } })
        : Response.json({ ok: true })
    );
    const { github, sleeps, notices } = client(fake.fetch);
    assert.deepEqual((await github.request("GET /x")).data, { ok: true });
    assert.deepEqual(sleeps, [3000]);
    assert.equal(fake.calls.length, 2);
    assert.deepEqual(notices, [{
      status: 429,
      reason: "Retry-After: 3",
      waitMs: 3000,
      retry: 1,
      maxRetries: 5,
      what: "GET /x",
      message:
        "Rate limited by GitHub (429, Retry-After: 3): waiting 3 s before retrying GET /x (retry 1 of 5)",
    }]);
  });
  await t.step("a 403 that is not a rate limit is an answer", async () => {
    const fake = fakeGitHub(() =>
      Response.json({ message: "Must have admin rights" }, { status: 403 })
    );
    const { github, sleeps } = client(fake.fetch);
    const err = await rejection(github.request("GET /x"));
    assert.equal(err.kind, "status");
    assert.equal(err.githubMessage, "Must have admin rights");
    assert.deepEqual(sleeps, []);
  });
  await t.step("gives up after maxRetries", async () => {
    const fake = fakeGitHub(() =>
      new Response("", { status: 429, headers: { "retry-after": "2" } })
    );
    const { github, sleeps } = client(fake.fetch, { maxRetries: 2 });
    const err = await rejection(github.request("GET /x"));
    assert.equal(err.kind, "rate_limited");
    assert.equal(err.status, 429);
    assert.equal(
      err.message,
      "Still rate limited by GitHub after 2 retries of GET /x (Retry-After: 2); run again later",
    );
    assert.deepEqual(sleeps, [2000, 2000]);
    assert.equal(fake.calls.length, 3);
  });
  await t.step("a wait past maxWaitMs fails at once", async () => {
    const fake = fakeGitHub(() =>
      new Response("", { status: 429, headers: { "retry-after": "7200" } })
    );
    const hour = client(fake.fetch);
    const err = await rejection(hour.github.request("GET /x"));
    assert.equal(err.kind, "rate_limited");
    assert.equal(
      err.message,
      "GitHub's rate limit (Retry-After: 7200) lifts at 2025-06-02T14:00:00Z, more than an hour away; run again then",
    );
    assert.deepEqual(hour.sleeps, []);
    const short = client(fake.fetch, { maxWaitMs: 90_000 });
    assert.match(
      (await rejection(short.github.request("GET /x"))).message,
      /more than 90 s away/,
    );
  });
  await t.step("the sleep gets the request's signal", async () => {
    const fake = fakeGitHub((_, n) =>
      n === 1
        ? new Response("", { status: 429, headers: { "retry-after": "1" } })
        : Response.json({})
    );
    const signals: (AbortSignal | undefined)[] = [];
    const github = createRestClient({
      fetch: fake.fetch,
      sleep: (_, signal) => {
        signals.push(signal);
        return Promise.resolve();
      },
    });
    const controller = new AbortController();
    await github.request("GET /x", {}, { signal: controller.signal });
    assert.deepEqual(signals, [controller.signal]);
  });
});

/** Pages of `[1, 2]`, `[3, 4]`, `[5]` linked by `rel="next"`. */
function pagedGitHub(
  link: (n: number) => string | undefined = (n) =>
    n < 3 ? `<${BASE}/items?per_page=2&page=${n + 1}>; rel="next"` : undefined,
) {
  return fakeGitHub((call) => {
    const n = Number(new URL(call.url).searchParams.get("page") ?? 1);
    const items = [[1, 2], [3, 4], [5]][n - 1] ?? [];
    const next = link(n);
    return Response.json(items, { headers: next ? { link: next } : {} });
  });
}

Deno.test("pages() follows rel=next and can stop early", async () => {
  const fake = pagedGitHub();
  const { github } = client(fake.fetch);
  const seen: unknown[] = [];
  for await (const page of github.pages("GET /items", { per_page: 2 })) {
    seen.push(page.data);
  }
  assert.deepEqual(seen, [[1, 2], [3, 4], [5]]);
  assert.deepEqual(fake.calls.map((c) => c.url), [
    `${BASE}/items?per_page=2`,
    `${BASE}/items?per_page=2&page=2`,
    `${BASE}/items?per_page=2&page=3`,
  ]);

  const early = pagedGitHub();
  for await (const _ of client(early.fetch).github.pages("GET /items")) break;
  assert.equal(early.calls.length, 1);
});

Deno.test("paginate() gathers every item, of arrays and search-style answers", async () => {
  const { github } = client(pagedGitHub().fetch);
  assert.deepEqual(await github.paginate("GET /items"), [1, 2, 3, 4, 5]);

  const search = fakeGitHub(() =>
    Response.json({
      total_count: 2,
      incomplete_results: false,
      items: ["a", "b"],
    })
  );
  assert.deepEqual(
    await client(search.fetch).github.paginate("GET /search/issues"),
    [
      "a",
      "b",
    ],
  );

  const single = fakeGitHub(() => Response.json({ id: 1 }));
  const err = await rejection(client(single.fetch).github.paginate("GET /x"));
  assert.equal(err.kind, "invalid");
  assert.match(err.message, /GitHub's answer to GET \/x is not a list/);
});

Deno.test("pages() never sends the token to another origin, and ends loops", async (t) => {
  await t.step("another origin", async () => {
    const fake = pagedGitHub(() =>
      '<https://evil.example.com/items>; rel="next"'
    );
    const err = await rejection(
      client(fake.fetch).github.paginate("GET /items"),
    );
    assert.equal(err.kind, "invalid");
    assert.equal(
      err.message,
      "Refusing to follow GitHub's next-page link to https://evil.example.com: the token is only sent to https://api.github.com",
    );
    assert.equal(fake.calls.length, 1);
  });
  await t.step("a link that is not a URL", async () => {
    const fake = pagedGitHub(() => '<http://[bad>; rel="next"');
    const err = await rejection(
      client(fake.fetch).github.paginate("GET /items"),
    );
    assert.match(err.message, /next-page link is not a URL: http:\/\/\[bad/);
  });
  await t.step("a link back to a page already read", async () => {
    const fake = pagedGitHub(() => `<${BASE}/items>; rel="next"`);
    const err = await rejection(
      client(fake.fetch).github.paginate("GET /items"),
    );
    assert.equal(
      err.message,
      "GitHub's pagination does not end (page 1 links back to a page already read)",
    );
  });
  await t.step("maxPages", async () => {
    const fake = pagedGitHub();
    const err = await rejection(
      client(fake.fetch, { maxPages: 2 }).github.paginate("GET /items"),
    );
    assert.match(err.message, /pagination does not end \(page 2/);
    assert.equal(fake.calls.length, 2);
  });
});

Deno.test("createRestClient() keeps a GHES base path and refuses a bad base", async () => {
  const fake = fakeGitHub(() => Response.json({}));
  const { github } = client(fake.fetch, {
    baseUrl: "https://ghe.example.com/api/v3/",
  });
  await github.request("GET /meta");
  assert.equal(fake.calls[0]!.url, "https://ghe.example.com/api/v3/meta");
  assert.equal(github.baseUrl.origin, "https://ghe.example.com");
  assert.throws(() => createRestClient({ baseUrl: "nope" }), TypeError);
});

Deno.test("request() asks getToken for a fresh token once after a 401, and retries once", async () => {
  const fake = fakeGitHub((call) =>
    call.headers.get("authorization") === "Bearer jwt-fresh"
      ? Response.json({ ok: true })
      : Response.json({ message: "Bad credentials" }, { status: 401 })
  );
  const asked: boolean[] = [];
  const { github } = client(fake.fetch, {
    getToken: ({ fresh }) => {
      asked.push(fresh);
      return fresh ? "jwt-fresh" : "jwt-stale";
    },
  });
  const { data } = await github.request("GET /app");
  assert.deepEqual(data, { ok: true });
  assert.deepEqual(asked, [false, true]);

  const refused = fakeGitHub(() =>
    Response.json({ message: "Bad credentials" }, { status: 401 })
  );
  const again: boolean[] = [];
  const err = await rejection(
    client(refused.fetch, {
      getToken: ({ fresh }) => {
        again.push(fresh);
        return "jwt";
      },
    }).github.request("GET /app"),
  );
  assert.equal(err.status, 401);
  assert.equal(err.githubMessage, "Bad credentials");
  assert.deepEqual(again, [false, true]);
  assert.equal(refused.calls.length, 2);

  const fixed = fakeGitHub(() =>
    Response.json({ message: "Bad credentials" }, { status: 401 })
  );
  await rejection(client(fixed.fetch).github.request("GET /app"));
  assert.equal(fixed.calls.length, 1, "a fixed token is not retried");
});

Deno.test("request() waits out a rate limit that lifts before the deadline, and fails at once past it", async () => {
  const limited = () =>
    fakeGitHub((_, n) =>
      n === 1
        ? Response.json({ message: "API rate limit exceeded" }, {
          status: 403,
          headers: {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": String(NOW / 1000 + 30),
          },
        })
        : Response.json({ ok: true })
    );
  const within = limited();
  const first = client(within.fetch);
  await first.github.request("GET /x", {}, { deadline: NOW + 60_000 });
  assert.equal(within.calls.length, 2);
  assert.equal(first.sleeps.length, 1);

  const past = limited();
  const second = client(past.fetch);
  const err = await rejection(
    second.github.request("GET /x", {}, { deadline: NOW + 10_000 }),
  );
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.status, 403);
  assert.equal(err.githubMessage, "API rate limit exceeded");
  assert.match(err.message, /after this call's deadline/);
  assert.equal(past.calls.length, 1);
  assert.deepEqual(second.sleeps, []);

  const paged = limited();
  await rejection(
    client(paged.fetch).github.paginate("GET /x", {}, {
      deadline: NOW + 10_000,
    }),
  );
  assert.equal(paged.calls.length, 1, "paginate() keeps the deadline");
});
