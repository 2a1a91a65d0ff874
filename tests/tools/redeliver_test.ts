import assert from "node:assert/strict";
import {
  main,
  parseRedeliverArgs,
  parseSince,
  type RedeliverDeps,
  USAGE,
} from "../../tools/redeliver.ts";
import { startFakeGitHub } from "../fixtures/fake_github.ts";

const TOKEN = "ghp_TESTtoken0123456789-never-print-me";
const NOW = Date.parse("2025-06-02T12:00:00Z");
const MINUTE = 60_000;
/** A `.env` that does not exist: the tests read no real one. */
const NO_DOTENV = "/nonexistent/hookgate-redeliver-test/.env";

/** One item of GitHub's list of deliveries, `minutesAgo` before {@link NOW}. */
function item(
  id: number,
  guid: string,
  minutesAgo: number,
  statusCode: number,
  extra: Record<string, unknown> = {},
) {
  return {
    id,
    guid,
    delivered_at: new Date(NOW - minutesAgo * MINUTE).toISOString()
      .replace(/\.000Z$/, "Z"),
    redelivery: false,
    duration: 0.27,
    status: statusCode === 200
      ? "OK"
      : statusCode === 0
      ? "We couldn't deliver this payload: timed out"
      : `Invalid HTTP Response: ${statusCode}`,
    status_code: statusCode,
    event: "issues",
    action: "opened",
    installation_id: null,
    repository_id: 1296269,
    ...extra,
  };
}

/**
 * Newest first, three a page: page 1 = 120–118, page 2 = 117–115, page 3 =
 * 114–112 (reaches past 24 h: paging stops), page 4 = 111 (never read).
 *
 * Failed within 24 h and not stored: g-timeout (latest attempt 119) and
 * g-500 (117). g-stored is in KV. g-ok-redelivered failed first, then a
 * redelivery got 200. g-old-failed and older are before the cutoff.
 */
const ITEMS = [
  item(120, "g-ok-redelivered", 5, 200, { redelivery: true }),
  item(119, "g-timeout", 10, 0, { redelivery: true }),
  item(118, "g-stored", 20, 503),
  item(117, "g-500", 60, 500, { event: "push", action: null }),
  item(116, "g-ok", 90, 200),
  item(115, "g-timeout", 120, 0),
  item(114, "g-ok-redelivered", 180, 503),
  item(113, "g-old-failed", 30 * 60, 502),
  item(112, "g-older", 40 * 60, 503),
  item(111, "g-never-fetched", 50 * 60, 503),
];

const ROUTE =
  /^(?:\/api\/v3)?\/(?:repos\/[^/]+\/[^/]+\/hooks\/\d+|orgs\/[^/]+\/hooks\/\d+|app\/hook)\/deliveries(?:\/(\d+)\/attempts)?$/;

interface Captured {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
}

interface FakeOptions {
  items?: ReturnType<typeof item>[];
  pageSize?: number;
  /** Answers given first, one per request, before the normal ones. */
  first?: (() => Response)[];
  /** Answers instead of the fake when it returns a response. */
  respond?: (req: Request, url: URL) => Response | undefined;
  /** The answer to a redelivery of this attempt id (default 202). */
  attemptStatus?: (id: number) => number;
}

/** A fake GitHub REST API on 127.0.0.1:0 that records every request. */
function startGitHub(options: FakeOptions = {}) {
  const {
    items = ITEMS,
    pageSize = 3,
    attemptStatus = () => 202,
  } = options;
  const first = [...(options.first ?? [])];
  const requests: Captured[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      requests.push({
        method: req.method,
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
      });
      const early = first.shift();
      if (early) return early();
      const custom = options.respond?.(req, url);
      if (custom) return custom;
      const match = ROUTE.exec(url.pathname);
      if (!match) {
        return Response.json({ message: "Not Found" }, { status: 404 });
      }
      if (match[1] === undefined && req.method === "GET") {
        const start = Number(url.searchParams.get("cursor")?.slice(3) ?? 0);
        const links: string[] = [];
        const self = `${url.origin}${url.pathname}?per_page=100`;
        if (start + pageSize < items.length) {
          links.push(`<${self}&cursor=v1_${start + pageSize}>; rel="next"`);
        }
        if (start > 0) links.push(`<${self}>; rel="prev"`);
        return Response.json(items.slice(start, start + pageSize), {
          headers: links.length > 0 ? { link: links.join(", ") } : {},
        });
      }
      if (match[1] !== undefined && req.method === "POST") {
        const status = attemptStatus(Number(match[1]));
        return status === 202
          ? Response.json({}, { status })
          : Response.json({ message: "Validation Failed" }, { status });
      }
      return Response.json({ message: "Not Found" }, { status: 404 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    requests,
    gets: () => requests.filter((r) => r.method === "GET"),
    posts: () => requests.filter((r) => r.method === "POST").map((r) => r.path),
    close: () => server.shutdown(),
  };
}

/**
 * Deps with a fixed clock, the token in the environment, captured output,
 * recorded sleeps, and an in-memory KV holding `stored` (closed by `main`).
 */
function testDeps(
  apiUrl: string,
  overrides: RedeliverDeps = {},
  stored: readonly string[] = ["g-stored"],
) {
  const out: string[] = [];
  const err: string[] = [];
  const sleeps: number[] = [];
  const kvPaths: string[] = [];
  const deps: RedeliverDeps = {
    env: { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: apiUrl },
    dotenvPath: NO_DOTENV,
    now: () => NOW,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    print: (text) => out.push(text),
    printError: (text) => err.push(text),
    openKv: async (path) => {
      kvPaths.push(path);
      const kv = await Deno.openKv(":memory:");
      for (const guid of stored) {
        await kv.set(["hookgate", "d", guid], { id: guid, status: "done" });
      }
      return kv;
    },
    ...overrides,
  };
  return {
    deps,
    sleeps,
    kvPaths,
    stdout: () => out.join("\n"),
    stderr: () => err.join("\n"),
  };
}

const REPO_ARGS = ["--repo", "octo/hello-world", "--hook-id", "42"];
const LIST_PATH = "/repos/octo/hello-world/hooks/42/deliveries";

Deno.test("redeliver main() redelivers each failed, unstored delivery once", async (t) => {
  const github = startGitHub();
  try {
    const { deps, stdout, stderr, sleeps, kvPaths } = testDeps(github.url);
    const status = await main([...REPO_ARGS, "--since", "24h"], deps);
    assert.equal(status, 0, stderr());

    await t.step("pagination followed through the Link cursor", () => {
      const gets = github.gets();
      assert.deepEqual(gets.map((r) => r.path), [
        LIST_PATH,
        LIST_PATH,
        LIST_PATH,
      ]);
      assert.deepEqual(gets.map((r) => r.query.get("cursor")), [
        null,
        "v1_3",
        "v1_6",
      ]);
      assert.ok(gets.every((r) => r.query.get("per_page") === "100"));
    });

    await t.step(
      "only failed, unstored guids are posted, oldest first, once",
      () => {
        assert.deepEqual(github.posts(), [
          `${LIST_PATH}/119/attempts`,
          `${LIST_PATH}/117/attempts`,
        ]);
      },
    );

    await t.step("GitHub's headers, the token as a bearer", () => {
      for (const r of github.requests) {
        assert.equal(r.headers.get("authorization"), `Bearer ${TOKEN}`);
        assert.equal(r.headers.get("accept"), "application/vnd.github+json");
        assert.equal(r.headers.get("x-github-api-version"), "2022-11-28");
        assert.match(r.headers.get("user-agent")!, /hookgate/);
      }
    });

    await t.step("the token is never printed", () => {
      assert.ok(!stdout().includes(TOKEN));
      assert.ok(!stderr().includes(TOKEN));
      assert.ok(!stdout().includes("ghp_"));
    });

    await t.step("progress and summary", () => {
      assert.match(stdout(), /Page 1: 3 deliveries/);
      assert.match(
        stdout(),
        /Page 3: 3 deliveries, back to 2025-05-31T20:00:00Z/,
      );
      assert.match(
        stdout(),
        /Examined 7 attempts of 5 deliveries .*: 3 failed/,
      );
      assert.match(stdout(), /g-stored .*stored here \(done\), skipped/);
      assert.match(stdout(), /g-timeout .*2 attempts.*redelivery accepted/);
      assert.match(
        stdout(),
        /Summary: examined 7, failed 3, already stored 1, redelivered 2, errors 0$/,
      );
    });

    await t.step(
      "redeliveries are a second apart; KV from the default path",
      () => {
        assert.deepEqual(sleeps, [1000]);
        assert.deepEqual(kvPaths, ["./data/hookgate.kv"]);
      },
    );
  } finally {
    await github.close();
  }
});

Deno.test("redeliver main() --since stops paging at the cutoff", async () => {
  const github = startGitHub();
  try {
    const { deps, stdout, stderr } = testDeps(github.url);
    assert.equal(
      await main([...REPO_ARGS, "--since", "30m"], deps),
      0,
      stderr(),
    );
    // Page 2 holds the first attempt older than 30 minutes: no page 3.
    assert.equal(github.gets().length, 2);
    // g-timeout's latest attempt is 10 minutes old; g-500 is an hour old.
    assert.deepEqual(github.posts(), [`${LIST_PATH}/119/attempts`]);
    assert.match(
      stdout(),
      /Summary: examined 3, failed 2, already stored 1, redelivered 1, errors 0$/,
    );
  } finally {
    await github.close();
  }
});

Deno.test("redeliver main() --dry-run lists and posts nothing", async () => {
  const github = startGitHub();
  try {
    const { deps, stdout, stderr, sleeps } = testDeps(github.url);
    assert.equal(await main([...REPO_ARGS, "--dry-run"], deps), 0, stderr());
    assert.deepEqual(github.posts(), []);
    assert.deepEqual(sleeps, []);
    assert.match(stdout(), /g-timeout .*would redeliver/);
    assert.match(
      stdout(),
      /g-500 push, 1 attempt, .*Invalid HTTP Response: 500: would redeliver/,
    );
    assert.match(
      stdout(),
      /Summary \(dry run\): examined 7, failed 3, already stored 1, would redeliver 2, errors 0$/,
    );
  } finally {
    await github.close();
  }
});

Deno.test("redeliver main() honours rate limits through the injected sleep", async (t) => {
  await t.step("429 with Retry-After: 1", async () => {
    const github = startGitHub({
      first: [() =>
        Response.json({ message: "slow down" }, {
          status: 429,
          headers: { "retry-after": "1" },
        })],
    });
    try {
      const { deps, stderr, sleeps } = testDeps(github.url);
      assert.equal(await main(REPO_ARGS, deps), 0, stderr());
      assert.equal(sleeps[0], 1000);
      assert.match(
        stderr(),
        /Rate limited by GitHub \(429, Retry-After: 1\): waiting 1 s/,
      );
      assert.equal(github.gets().length, 4); // the first page twice
      assert.equal(github.posts().length, 2);
    } finally {
      await github.close();
    }
  });

  await t.step(
    "403 with x-ratelimit-remaining: 0 waits past the reset",
    async () => {
      const reset = NOW / 1000 + 30;
      const github = startGitHub({
        first: [() =>
          Response.json({ message: "API rate limit exceeded" }, {
            status: 403,
            headers: {
              "x-ratelimit-remaining": "0",
              "x-ratelimit-reset": String(reset),
            },
          })],
      });
      try {
        const { deps, stderr, sleeps } = testDeps(github.url);
        assert.equal(await main(REPO_ARGS, deps), 0, stderr());
        assert.equal(sleeps[0], 31_000);
        assert.match(
          stderr(),
          /x-ratelimit-remaining: 0 until 2025-06-02T12:00:30Z/,
        );
      } finally {
        await github.close();
      }
    },
  );

  await t.step(
    "a 403 secondary rate limit without headers waits a minute",
    async () => {
      const github = startGitHub({
        first: [() =>
          Response.json({
            message: "You have exceeded a secondary rate limit.",
          }, { status: 403 })],
      });
      try {
        const { deps, stderr, sleeps } = testDeps(github.url);
        assert.equal(await main(REPO_ARGS, deps), 0, stderr());
        assert.equal(sleeps[0], 60_000);
      } finally {
        await github.close();
      }
    },
  );

  await t.step("gives up after 5 retries, exit 1", async () => {
    const github = startGitHub({
      respond: () =>
        new Response("", { status: 429, headers: { "retry-after": "2" } }),
    });
    try {
      const { deps, stderr, sleeps } = testDeps(github.url);
      assert.equal(await main(REPO_ARGS, deps), 1);
      assert.deepEqual(sleeps, [2000, 2000, 2000, 2000, 2000]);
      assert.equal(github.requests.length, 6);
      assert.match(stderr(), /Still rate limited by GitHub after 5 retries/);
    } finally {
      await github.close();
    }
  });

  await t.step("a wait past an hour ends the run", async () => {
    const github = startGitHub({
      respond: () =>
        new Response("", { status: 429, headers: { "retry-after": "7200" } }),
    });
    try {
      const { deps, stderr, sleeps } = testDeps(github.url);
      assert.equal(await main(REPO_ARGS, deps), 1);
      assert.deepEqual(sleeps, []);
      assert.match(stderr(), /more than an hour away/);
    } finally {
      await github.close();
    }
  });
});

Deno.test("redeliver main() explains GitHub's refusals and exits 1", async (t) => {
  const cases: [string, number, string[], RegExp][] = [
    [
      "401 bad credentials",
      401,
      REPO_ARGS,
      /GitHub answered 401: Bad credentials\. GITHUB_TOKEN was refused/,
    ],
    ["401 for --app names the JWT", 401, ["--app"], /must be a current JWT/],
    [
      "403 without a rate limit names the scopes",
      403,
      REPO_ARGS,
      /admin:repo_hook/,
    ],
    [
      "404 names the flags",
      404,
      REPO_ARGS,
      /check --repo\/--org and --hook-id/,
    ],
    ["500", 500, REPO_ARGS, /GitHub had a problem/],
  ];
  for (const [name, status, args, message] of cases) {
    await t.step(name, async () => {
      const github = startGitHub({
        respond: () =>
          Response.json({
            message: status === 401 ? "Bad credentials" : "Nope",
          }, { status }),
      });
      try {
        const { deps, stdout, stderr } = testDeps(github.url);
        assert.equal(await main(args, deps), 1);
        assert.match(stderr(), /Cannot list the hook's deliveries/);
        assert.match(stderr(), message);
        assert.deepEqual(github.posts(), []);
        assert.ok(!stdout().includes(TOKEN) && !stderr().includes(TOKEN));
      } finally {
        await github.close();
      }
    });
  }
});

Deno.test("redeliver main() counts a refused redelivery as an error", async (t) => {
  await t.step(
    "422 on one: the other is still redelivered, exit 1",
    async () => {
      const github = startGitHub({
        attemptStatus: (id) => id === 119 ? 422 : 202,
      });
      try {
        const { deps, stdout, stderr } = testDeps(github.url);
        assert.equal(await main(REPO_ARGS, deps), 1);
        assert.equal(github.posts().length, 2);
        assert.match(
          stderr(),
          /g-timeout: Cannot redeliver it: GitHub answered 422: Validation Failed/,
        );
        assert.match(stdout(), /redelivered 1, errors 1$/);
      } finally {
        await github.close();
      }
    },
  );

  await t.step("401 (an expired JWT) stops the run", async () => {
    const github = startGitHub({ attemptStatus: () => 401 });
    try {
      const { deps, stdout, stderr } = testDeps(github.url);
      assert.equal(await main(["--app"], deps), 1);
      assert.equal(github.posts().length, 1);
      assert.match(stderr(), /1 not attempted/);
      assert.match(stdout(), /redelivered 0, errors 1, not attempted 1$/);
    } finally {
      await github.close();
    }
  });
});

Deno.test("redeliver main() addresses repo, org and app hooks", async (t) => {
  const cases: [string, string[], string, string][] = [
    [
      "repo",
      ["--repo", "octo/hello.js", "--hook-id", "7"],
      "",
      "/repos/octo/hello.js/hooks/7",
    ],
    [
      "org",
      ["--org", "octo-org", "--hook-id", "8"],
      "",
      "/orgs/octo-org/hooks/8",
    ],
    ["app", ["--app"], "", "/app/hook"],
    [
      "GitHub Enterprise Server base path",
      ["--app"],
      "/api/v3/",
      "/api/v3/app/hook",
    ],
  ];
  for (const [name, args, basePath, path] of cases) {
    await t.step(name, async () => {
      const github = startGitHub();
      try {
        const { deps, stderr } = testDeps(github.url + basePath);
        assert.equal(await main(args, deps), 0, stderr());
        assert.equal(github.gets()[0]!.path, `${path}/deliveries`);
        assert.deepEqual(github.posts(), [
          `${path}/deliveries/119/attempts`,
          `${path}/deliveries/117/attempts`,
        ]);
      } finally {
        await github.close();
      }
    });
  }
});

Deno.test("redeliver main() reads GITHUB_TOKEN and KV_PATH from the environment and .env", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-redeliver-" });
  const github = startGitHub({ items: [] });
  try {
    const dotenvPath = `${dir}/.env`;
    await Deno.writeTextFile(
      dotenvPath,
      `GITHUB_TOKEN=from-dotenv\nGITHUB_API_URL=${github.url}\nKV_PATH=./from-dotenv.kv\n`,
    );

    await t.step(".env alone", async () => {
      const { deps, stderr, kvPaths } = testDeps(github.url, {
        env: {},
        dotenvPath,
      });
      assert.equal(await main(REPO_ARGS, deps), 0, stderr());
      assert.equal(
        github.requests.at(-1)!.headers.get("authorization"),
        "Bearer from-dotenv",
      );
      assert.deepEqual(kvPaths, ["./from-dotenv.kv"]);
    });

    await t.step("the real environment wins; --kv wins over both", async () => {
      const { deps, stderr, kvPaths } = testDeps(github.url, {
        env: { GITHUB_TOKEN: TOKEN, KV_PATH: ":memory:" },
        dotenvPath,
      });
      assert.equal(await main(REPO_ARGS, deps), 0, stderr());
      assert.equal(
        github.requests.at(-1)!.headers.get("authorization"),
        `Bearer ${TOKEN}`,
      );
      assert.deepEqual(kvPaths, [":memory:"]);
      assert.equal(await main([...REPO_ARGS, "--kv", "x.kv"], deps), 0);
      assert.deepEqual(kvPaths, [":memory:", "x.kv"]);
    });

    await t.step("--since past DELIVERY_TTL_DAYS warns", async () => {
      const { deps, stderr } = testDeps(github.url, {
        env: { GITHUB_TOKEN: TOKEN, DELIVERY_TTL_DAYS: "2" },
        dotenvPath,
      });
      assert.equal(await main([...REPO_ARGS, "--since", "3d"], deps), 0);
      assert.match(
        stderr(),
        /Warning: --since 3d reaches past DELIVERY_TTL_DAYS \(2\)/,
      );
      assert.equal(await main([...REPO_ARGS, "--since", "2d"], deps), 0);
      assert.equal(stderr().split("Warning").length, 2);
    });

    await t.step("no token: exit 1, nothing sent", async () => {
      const before = github.requests.length;
      const { deps, stderr, kvPaths } = testDeps(github.url, { env: {} });
      assert.equal(await main(REPO_ARGS, deps), 1);
      assert.match(stderr(), /GITHUB_TOKEN is not set/);
      assert.equal(github.requests.length, before);
      assert.deepEqual(kvPaths, []);
    });

    await t.step(
      "GITHUB_API_URL must not send the token in the clear",
      async () => {
        const { deps, stderr } = testDeps("http://api.example.com");
        assert.equal(await main(REPO_ARGS, deps), 1);
        assert.match(stderr(), /must be an https URL/);
      },
    );
  } finally {
    await github.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("redeliver main() opens a real KV file and skips what it stores", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-redeliver-" });
  const github = startGitHub();
  try {
    const path = `${dir}/hookgate.kv`;
    const kv = await Deno.openKv(path);
    await kv.set(["hookgate", "d", "g-500"], { id: "g-500", status: "dead" });
    kv.close();

    await t.step("--kv <file>", async () => {
      const { deps, stdout, stderr } = testDeps(github.url);
      delete deps.openKv;
      assert.equal(await main([...REPO_ARGS, "--kv", path], deps), 0, stderr());
      assert.deepEqual(github.posts(), [
        `${LIST_PATH}/119/attempts`,
        `${LIST_PATH}/118/attempts`,
      ]);
      assert.match(stdout(), /g-500 .*stored here \(dead\), skipped/);
    });

    await t.step("a missing file is refused, not created", async () => {
      const before = github.requests.length;
      const missing = `${dir}/nothing/hookgate.kv`;
      const { deps, stderr } = testDeps(github.url);
      delete deps.openKv;
      assert.equal(await main([...REPO_ARGS, "--kv", missing], deps), 1);
      assert.match(stderr(), /Cannot open hookgate's KV .*no such file/);
      assert.equal(github.requests.length, before);
      await assert.rejects(Deno.stat(`${dir}/nothing`), Deno.errors.NotFound);
    });
  } finally {
    await github.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("redeliver main() sends the token to the API origin only", async () => {
  const github = startGitHub({
    respond: (req) =>
      req.method === "GET"
        ? Response.json([item(1, "g-x", 1, 500)], {
          headers: {
            link:
              '<https://evil.example.com/deliveries?cursor=v1_1>; rel="next"',
          },
        })
        : undefined,
  });
  try {
    const { deps, stderr } = testDeps(github.url);
    assert.equal(await main(REPO_ARGS, deps), 1);
    assert.match(
      stderr(),
      /Refusing to follow GitHub's next-page link to https:\/\/evil\.example\.com/,
    );
    assert.deepEqual(github.posts(), []);
  } finally {
    await github.close();
  }
});

Deno.test("redeliver main() rejects an answer it does not understand", async () => {
  const github = startGitHub({
    respond: () => Response.json([{ id: 1, guid: "x" }]),
  });
  try {
    const { deps, stderr } = testDeps(github.url);
    assert.equal(await main(REPO_ARGS, deps), 1);
    assert.match(
      stderr(),
      /page 1, item 1\) lacks id, guid, delivered_at or status_code/,
    );
  } finally {
    await github.close();
  }
});

Deno.test("redeliver main() exits 2 on usage errors and 0 on --help", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["no hook", [], /Name the hook/],
    [
      "two hooks",
      ["--repo", "a/b", "--org", "c", "--hook-id", "1"],
      /Name one hook only/,
    ],
    ["repo without hook id", ["--repo", "a/b"], /--repo needs --hook-id/],
    [
      "bad hook id",
      ["--org", "c", "--hook-id", "12ab"],
      /--hook-id must be a positive integer/,
    ],
    [
      "zero hook id",
      ["--org", "c", "--hook-id", "0"],
      /--hook-id must be a positive integer/,
    ],
    [
      "app with hook id",
      ["--app", "--hook-id", "1"],
      /--app takes no --hook-id/,
    ],
    [
      "repo without owner",
      ["--repo", "b", "--hook-id", "1"],
      /--repo must be owner\/name/,
    ],
    [
      "repo with a path",
      ["--repo", "a/b/c", "--hook-id", "1"],
      /--repo must be owner\/name/,
    ],
    [
      "repo ..",
      ["--repo", "a/..", "--hook-id", "1"],
      /--repo must be owner\/name/,
    ],
    [
      "bad org",
      ["--org", "a b", "--hook-id", "1"],
      /--org must be an organization login/,
    ],
    [
      "since in seconds",
      ["--app", "--since", "90s"],
      /--since must be a number of minutes/,
    ],
    [
      "since over 30 days",
      ["--app", "--since", "31d"],
      /--since must be at most 30d/,
    ],
    ["since without a value", ["--app", "--since"], /--since needs a value/],
    [
      "flag with a value",
      ["--app", "--dry-run=yes"],
      /--dry-run takes no value/,
    ],
    ["unknown option", ["--app", "--force"], /Unknown option: --force/],
    ["positional", ["--app", "octo"], /Unexpected argument: "octo"/],
    ["a lone --", ["--app", "--"], /Unexpected argument: "--"/],
    ["empty --kv", ["--app", "--kv="], /--kv must not be empty/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const { deps, stderr, kvPaths } = testDeps("http://127.0.0.1:9", {
        fetch: () => Promise.reject(new Error("no request expected")),
      });
      assert.equal(await main(args, deps), 2);
      assert.match(stderr(), message);
      assert.ok(stderr().includes(USAGE));
      assert.deepEqual(kvPaths, []);
    });
  }

  await t.step("--help prints the usage to stdout", async () => {
    const { deps, stdout } = testDeps("http://127.0.0.1:9");
    assert.equal(await main(["--help"], deps), 0);
    assert.equal(stdout(), USAGE);
    assert.match(USAGE, /3 days/);
    assert.match(USAGE, /JWT/);
  });
});

Deno.test("parseRedeliverArgs() accepts --flag=value and defaults --since to 24h", () => {
  assert.deepEqual(
    parseRedeliverArgs([
      "--org=octo-org",
      "--hook-id=9",
      "--dry-run",
      "--kv",
      "a.kv",
    ]),
    {
      hook: { kind: "org", org: "octo-org", hookId: "9" },
      sinceMs: 86_400_000,
      since: "24h",
      dryRun: true,
      kvPath: "a.kv",
    },
  );
  assert.equal(parseRedeliverArgs(["-h"]), null);
});

Deno.test("parseSince() reads minutes, hours and days", async (t) => {
  const cases: [string, number | null][] = [
    ["30m", 30 * MINUTE],
    ["24h", 86_400_000],
    ["7d", 7 * 86_400_000],
    ["30d", 30 * 86_400_000],
    ["0h", null],
    ["1w", null],
    ["1.5h", null],
    ["-1h", null],
    [" 1h", null],
    ["h", null],
    ["", null],
  ];
  for (const [input, expected] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.equal(parseSince(input), expected);
    });
  }
});

/** An App key pair; the private key as PKCS#8 PEM text. */
async function appKey(): Promise<{ pem: string; publicKey: CryptoKey }> {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      hash: "SHA-256",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", privateKey),
  );
  const base64 = btoa(String.fromCharCode(...der)).replace(/(.{64})/g, "$1\n");
  return {
    pem: `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`,
    publicKey,
  };
}

/** The fixture fake GitHub serving the App's hook deliveries, on `clock`. */
async function startAppGitHub(publicKey: CryptoKey, clock: () => number) {
  const github = await startFakeGitHub({ appId: "777", publicKey, now: clock });
  github.route("GET /app/hook/deliveries", () => ({
    status: 200,
    body: ITEMS.slice(0, 7),
  }));
  github.route("POST /app/hook/deliveries/{id}/attempts", () => ({
    status: 202,
    body: {},
  }));
  return github;
}

Deno.test("redeliver main() --app signs and renews its own JWT from GITHUB_APP_ID and the key", async (t) => {
  const { pem, publicKey } = await appKey();
  for (
    const [name, keyEnv] of [
      ["PEM with \\n", { GITHUB_APP_PRIVATE_KEY: pem.replaceAll("\n", "\\n") }],
      ["base64 of the PEM", { GITHUB_APP_PRIVATE_KEY: btoa(pem) }],
      ["a key file", { GITHUB_APP_PRIVATE_KEY_PATH: "FILE" }],
    ] as const
  ) {
    await t.step(name, async () => {
      let now = NOW;
      await using github = await startAppGitHub(publicKey, () => now);
      const file = await Deno.makeTempFile({ suffix: ".pem" });
      try {
        await Deno.writeTextFile(file, pem);
        const env = Object.fromEntries(
          Object.entries(keyEnv).map(([k, v]) => [k, v === "FILE" ? file : v]),
        );
        const run = testDeps(github.url, {
          env: { GITHUB_APP_ID: "777", GITHUB_API_URL: github.url, ...env },
          now: () => now,
          // Each pause between redeliveries lasts 9 minutes here: the first
          // JWT has run out by the second redelivery.
          sleep: (ms) => {
            now += 9 * MINUTE;
            run.sleeps.push(ms);
            return Promise.resolve();
          },
        });
        assert.equal(await main(["--app"], run.deps), 0, run.stderr());
        const posts = github.requests.filter((r) => r.method === "POST");
        assert.deepEqual(posts.map((r) => r.path), [
          "/app/hook/deliveries/119/attempts",
          "/app/hook/deliveries/117/attempts",
        ]);
        assert.ok(github.requests.every((r) => r.auth.kind === "app"));
        const jwts = new Set(github.requests.map((r) => r.authorization));
        assert.equal(jwts.size, 2, "the JWT was renewed during the run");
        const printed = `${run.stdout()}\n${run.stderr()}`;
        for (const jwt of jwts) {
          assert.ok(!printed.includes(jwt!.slice(7)), "a JWT was printed");
        }
      } finally {
        await Deno.remove(file);
      }
    });
  }
});

Deno.test("redeliver main() --app explains an unusable App key without printing it", async (t) => {
  const { pem } = await appKey();
  const lines = pem.split("\n").filter((l) => l !== "" && !l.startsWith("-"));
  const truncated = pem.split("\n").slice(0, 8).join("\n") +
    "\n-----END PRIVATE KEY-----";
  const cases: [string, Record<string, string>, RegExp][] = [
    ["no key", {}, /GITHUB_APP_ID is set but the App's key is not/],
    [
      "a damaged key",
      { GITHUB_APP_PRIVATE_KEY: truncated },
      /GITHUB_APP_PRIVATE_KEY cannot be used: the key is cut off/,
    ],
    [
      "a missing key file",
      { GITHUB_APP_PRIVATE_KEY_PATH: "/nonexistent/app.pem" },
      /Cannot read GITHUB_APP_PRIVATE_KEY_PATH \(\/nonexistent\/app\.pem\)/,
    ],
  ];
  for (const [name, env, pattern] of cases) {
    await t.step(name, async () => {
      const run = testDeps("http://127.0.0.1:9", {
        env: {
          GITHUB_APP_ID: "777",
          GITHUB_API_URL: "http://127.0.0.1:9",
          ...env,
        },
      });
      assert.equal(await main(["--app"], run.deps), 1);
      assert.match(run.stderr(), pattern);
      for (const line of lines) assert.ok(!run.stderr().includes(line));
      assert.deepEqual(run.kvPaths, [], "nothing else was done");
    });
  }
});

Deno.test("redeliver main() --app with a key GitHub does not know says which variables to check", async () => {
  const { pem } = await appKey();
  const other = await appKey();
  const now = NOW;
  await using github = await startAppGitHub(other.publicKey, () => now);
  const run = testDeps(github.url, {
    env: {
      GITHUB_APP_ID: "777",
      GITHUB_APP_PRIVATE_KEY: pem,
      GITHUB_API_URL: github.url,
    },
    now: () => now,
  });
  assert.equal(await main(["--app"], run.deps), 1);
  assert.match(run.stderr(), /GitHub answered 401.*check GITHUB_APP_ID/);
  assert.equal(github.requests.length, 2, "one fresh JWT, then it gives up");
});
