import assert from "node:assert/strict";
import { META_KV_KEY } from "../../lib/store/keys.ts";
import { parseCidr, parseIp } from "../../lib/security/cidr.ts";
import type { IpAddress } from "../../lib/security/cidr.ts";
import { createLogger } from "../../lib/ops/log.ts";
import {
  createMetaRefresher,
  type MetaRefresherOptions,
  type RefreshResult,
} from "../../lib/github/meta.ts";

const HOOKS = ["192.30.252.0/22", "185.199.108.0/22", "2a0a:a440::/29"];
const START = 1_700_000_000_000;

function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  assert.ok(parsed, `test address ${text} parses`);
  return parsed;
}

type Reply = (request: Request) => Response | Promise<Response>;

/** A fake meta endpoint on loopback whose answers each test controls. */
interface FakeMeta {
  url: string;
  /** Headers of every request received, in order. */
  requests: Headers[];
  reply: Reply;
  close(): Promise<void>;
}

function startFake(reply: Reply = () => Response.json({ hooks: HOOKS })) {
  const requests: Headers[] = [];
  const fake: FakeMeta = {
    url: "",
    requests,
    reply,
    close: () => server.shutdown(),
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      requests.push(request.headers);
      return fake.reply(request);
    },
  );
  fake.url = `http://127.0.0.1:${server.addr.port}/meta`;
  return fake;
}

/** A fake clock the test moves by hand. */
function createClock(start = START) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

function options(
  fake: { url: string },
  extra: Partial<MetaRefresherOptions> = {},
): MetaRefresherOptions {
  return { url: fake.url, refreshSeconds: 3600, ...extra };
}

/** A closed loopback port: connecting to it is refused. */
function closedUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return `http://127.0.0.1:${port}/meta`;
}

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("refresh() loads the hooks list and isAllowed() follows it", async (t) => {
  const fake = startFake();
  const clock = createClock();
  try {
    const meta = createMetaRefresher(options(fake, { now: clock.now }));

    await t.step("nothing is allowed before the first fetch", () => {
      assert.equal(meta.isReady(), false);
      assert.equal(meta.isAllowed(ip("192.30.252.1")), false);
      assert.deepEqual(meta.status(), {
        ready: false,
        ranges: 0,
        lastSuccess: null,
        fetchedAt: null,
        etag: null,
        lastError: null,
        consecutiveFailures: 0,
        source: "none",
      });
    });

    await t.step("the first fetch makes it ready", async () => {
      const result = await meta.refresh();
      assert.deepEqual(result, { ok: true, status: 200, changed: true });
      assert.equal(meta.isReady(), true);
      const status = meta.status();
      assert.equal(status.ranges, 3);
      assert.equal(status.lastSuccess, START);
      assert.equal(status.fetchedAt, START);
      assert.equal(status.source, "network");
    });

    await t.step("addresses in and out of the ranges", () => {
      assert.equal(meta.isAllowed(ip("192.30.252.1")), true);
      assert.equal(meta.isAllowed(ip("185.199.111.255")), true);
      assert.equal(meta.isAllowed(ip("::ffff:192.30.252.1")), true);
      assert.equal(meta.isAllowed(ip("2a0a:a440::1")), true);
      assert.equal(meta.isAllowed(ip("192.30.251.255")), false);
      assert.equal(meta.isAllowed(ip("10.0.0.1")), false);
      assert.equal(meta.isAllowed(ip("2001:db8::1")), false);
    });

    await t.step("the request carries the GitHub API headers", () => {
      assert.equal(fake.requests.length, 1);
      const headers = fake.requests[0]!;
      assert.equal(headers.get("accept"), "application/vnd.github+json");
      assert.equal(headers.get("x-github-api-version"), "2022-11-28");
      assert.match(headers.get("user-agent") ?? "", /^hookgate\//);
      assert.equal(headers.get("authorization"), null);
      assert.equal(headers.get("if-none-match"), null);
    });

    await t.step("a new list replaces the old one", async () => {
      fake.reply = () => Response.json({ hooks: ["140.82.112.0/20"] });
      const result = await meta.refresh();
      assert.deepEqual(result, { ok: true, status: 200, changed: true });
      assert.equal(meta.isAllowed(ip("140.82.112.9")), true);
      assert.equal(meta.isAllowed(ip("192.30.252.1")), false);
      assert.equal(meta.status().ranges, 1);
    });

    await t.step("the same list again is not a change", async () => {
      const result = await meta.refresh();
      assert.deepEqual(result, { ok: true, status: 200, changed: false });
    });
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() sends the ETag back and keeps the list on 304", async () => {
  const fake = startFake((request) => {
    if (request.headers.get("if-none-match") === '"v1"') {
      return new Response(null, { status: 304, headers: { etag: '"v1"' } });
    }
    return Response.json({ hooks: HOOKS }, { headers: { etag: '"v1"' } });
  });
  const clock = createClock();
  try {
    const meta = createMetaRefresher(options(fake, { now: clock.now }));
    assert.equal((await meta.refresh()).status, 200);
    assert.equal(meta.status().etag, '"v1"');

    clock.t += 60_000;
    const result = await meta.refresh();
    assert.equal(fake.requests[1]?.get("if-none-match"), '"v1"');
    assert.deepEqual(result, { ok: true, status: 304, changed: false });
    assert.equal(meta.isAllowed(ip("192.30.252.1")), true);
    const status = meta.status();
    assert.equal(status.ranges, 3);
    assert.equal(status.lastSuccess, START + 60_000);
    assert.equal(status.fetchedAt, START + 60_000);
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() treats a 304 without a held list as a failure", async () => {
  const fake = startFake(() => new Response(null, { status: 304 }));
  try {
    const meta = createMetaRefresher(options(fake));
    const result = await meta.refresh();
    assert.equal(result.ok, false);
    assert.equal(result.status, 304);
    assert.equal(meta.isReady(), false);
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() sends the token only when one is set", async (t) => {
  const fake = startFake();
  try {
    await t.step(
      "with a token: Authorization: Bearer, never logged",
      async () => {
        const lines: string[] = [];
        const log = createLogger({
          level: "debug",
          write: (l) => lines.push(l),
        });
        const meta = createMetaRefresher(
          options(fake, { token: "ghp_s3cret", log }),
        );
        assert.equal((await meta.refresh()).ok, true);
        fake.reply = () => new Response("nope", { status: 401 });
        assert.equal((await meta.refresh()).ok, false);
        assert.equal(
          fake.requests.at(-2)?.get("authorization"),
          "Bearer ghp_s3cret",
        );
        assert.ok(lines.length >= 2);
        assert.ok(lines.every((line) => !line.includes("ghp_s3cret")));
      },
    );

    await t.step("without a token, or an empty one: no header", async () => {
      fake.reply = () => Response.json({ hooks: HOOKS });
      for (const token of [undefined, ""]) {
        const meta = createMetaRefresher(options(fake, { token }));
        assert.equal((await meta.refresh()).ok, true);
        assert.equal(fake.requests.at(-1)?.get("authorization"), null);
      }
    });
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() keeps the last good list on a bad answer", async (t) => {
  const json = (value: unknown) => () => Response.json(value);
  const many = Array.from(
    { length: 1001 },
    (_, i) => `10.${i >> 8}.${i & 255}.0/24`,
  );
  const cases: [string, Reply][] = [
    ["not JSON", () => new Response("<html>rate limited</html>")],
    ["invalid UTF-8", () => new Response(new Uint8Array([0x7b, 0xff, 0x7d]))],
    ["an empty body", () => new Response(null)],
    ["a JSON array", json([HOOKS])],
    ["JSON null", json(null)],
    ["hooks missing", json({ web: HOOKS })],
    ["hooks not an array", json({ hooks: "192.30.252.0/22" })],
    ["hooks empty", json({ hooks: [] })],
    ["1,001 entries", json({ hooks: many })],
    ["an entry not a string", json({ hooks: [...HOOKS, 42] })],
    ["an invalid CIDR", json({ hooks: [...HOOKS, "192.30.252.0/33"] })],
    ["garbage text", json({ hooks: ["not-a-cidr"] })],
    ["0.0.0.0/0", json({ hooks: [...HOOKS, "0.0.0.0/0"] })],
    ["::/0", json({ hooks: [...HOOKS, "::/0"] })],
    ["10.0.0.0/7", json({ hooks: [...HOOKS, "10.0.0.0/7"] })],
    ["2001::/16", json({ hooks: [...HOOKS, "2001::/16"] })],
    ["::ffff:0.0.0.0/96", json({ hooks: [...HOOKS, "::ffff:0.0.0.0/96"] })],
    [
      "status 500 with a valid body",
      () => Response.json({ hooks: HOOKS }, { status: 500 }),
    ],
    ["status 404", () => new Response("not found", { status: 404 })],
    [
      "status 301 without a Location",
      () => new Response(null, { status: 301 }),
    ],
    ["a body over 5 MB", () => {
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent > 6 * 1024 * 1024) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      return new Response(body);
    }],
  ];

  const fake = startFake();
  try {
    const meta = createMetaRefresher(options(fake));
    const first = await meta.refresh();
    assert.equal(first.ok, true);

    let failures = 0;
    for (const [name, reply] of cases) {
      await t.step(`${name} is a failure`, async () => {
        fake.reply = reply;
        const result = await meta.refresh();
        failures++;
        assert.equal(result.ok, false);
        assert.equal(typeof result.error, "string");
        assert.equal(result.failures, failures);
        assert.equal(meta.isReady(), true);
        assert.equal(meta.isAllowed(ip("192.30.252.1")), true);
        assert.equal(meta.isAllowed(ip("10.1.2.3")), false);
        assert.equal(meta.isAllowed(ip("2001:db8::1")), false);
        const status = meta.status();
        assert.equal(status.ranges, 3);
        assert.equal(status.lastError, result.error);
        assert.equal(status.consecutiveFailures, failures);
      });
    }

    await t.step("a later good answer resets the failures", async () => {
      fake.reply = () => Response.json({ hooks: HOOKS });
      assert.equal((await meta.refresh()).ok, true);
      assert.equal(meta.status().consecutiveFailures, 0);
      assert.equal(meta.status().lastError, null);
    });

    await t.step("ranges exactly /8 and /24 are accepted", async () => {
      fake.reply = json({ hooks: ["10.0.0.0/8", "2001:d00::/24"] });
      assert.equal((await meta.refresh()).ok, true);
      assert.equal(meta.isAllowed(ip("10.200.0.1")), true);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() trusts no Content-Length over 5 MB", async () => {
  let pulls = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(new Uint8Array(1024));
    },
    cancel() {
      cancelled = true;
    },
  });
  const meta = createMetaRefresher({
    url: "http://127.0.0.1:1/meta",
    refreshSeconds: 3600,
    fetch: () =>
      Promise.resolve(
        new Response(body, { headers: { "content-length": String(6 << 20) } }),
      ),
  });
  const result = await meta.refresh();
  assert.equal(result.ok, false);
  assert.match(result.error ?? "", /larger than/);
  assert.equal(cancelled, true);
  assert.ok(pulls <= 1);
});

Deno.test("refresh() gives up on a body that stalls", async () => {
  let cancelled = false;
  const fake = startFake(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"hooks":['));
        },
        cancel() {
          cancelled = true;
        },
      }),
    )
  );
  try {
    const meta = createMetaRefresher(options(fake, { timeoutMs: 100 }));
    const result = await meta.refresh();
    assert.equal(result.ok, false);
    assert.match(result.error ?? "", /^body failed: .*timed out after 100 ms/);
    await waitFor(() => cancelled);
  } finally {
    await fake.close();
  }
});

Deno.test("refresh() fails softly when the meta server is down", async () => {
  const meta = createMetaRefresher(options({ url: closedUrl() }));
  const result = await meta.refresh();
  assert.equal(result.ok, false);
  assert.equal(result.status, undefined);
  assert.match(result.error ?? "", /^fetch failed/);
  assert.equal(meta.isReady(), false);
  assert.equal(meta.isAllowed(ip("192.30.252.1")), false);
  assert.equal(meta.status().consecutiveFailures, 1);
});

Deno.test("refresh() gives up on a server that never answers", async () => {
  let release = () => {};
  const hung = new Promise<void>((resolve) => release = resolve);
  const fake = startFake(async () => {
    await hung;
    return Response.json({ hooks: HOOKS });
  });
  try {
    const meta = createMetaRefresher(options(fake, { timeoutMs: 50 }));
    const result = await meta.refresh();
    assert.equal(result.ok, false);
    assert.match(result.error ?? "", /timed out after 50 ms/);
  } finally {
    release();
    await fake.close();
  }
});

Deno.test("load() restores the persisted list after a restart", async (t) => {
  const kv = await Deno.openKv(":memory:");
  const fake = startFake(() =>
    Response.json({ hooks: HOOKS }, { headers: { etag: 'W/"abc"' } })
  );
  const clock = createClock();
  try {
    await t.step("a refresher without KV loads nothing", async () => {
      const meta = createMetaRefresher(options(fake));
      assert.equal(await meta.load(), false);
    });

    await t.step("an empty KV loads nothing", async () => {
      const meta = createMetaRefresher(options(fake, { kv }));
      assert.equal(await meta.load(), false);
      assert.equal(meta.isReady(), false);
    });

    await t.step("a successful refresh persists the list", async () => {
      const meta = createMetaRefresher(options(fake, { kv, now: clock.now }));
      assert.equal((await meta.refresh()).ok, true);
      const entry = await kv.get(META_KV_KEY);
      assert.deepEqual(entry.value, {
        hooks: HOOKS,
        etag: 'W/"abc"',
        fetchedAt: START,
      });
    });

    await t.step("a second refresher is ready before any fetch", async () => {
      const before = fake.requests.length;
      const meta = createMetaRefresher(options(fake, { kv, now: clock.now }));
      assert.equal(await meta.load(), true);
      assert.equal(fake.requests.length, before);
      assert.equal(meta.isReady(), true);
      assert.equal(meta.isAllowed(ip("192.30.252.1")), true);
      const status = meta.status();
      assert.equal(status.source, "kv");
      assert.equal(status.fetchedAt, START);
      assert.equal(status.lastSuccess, null);
      assert.equal(status.etag, 'W/"abc"');

      fake.reply = () => new Response(null, { status: 304 });
      clock.t += 5000;
      const result = await meta.refresh();
      assert.equal(fake.requests.at(-1)?.get("if-none-match"), 'W/"abc"');
      assert.equal(result.status, 304);
      assert.equal(
        (await kv.get<{ fetchedAt: number }>(META_KV_KEY)).value?.fetchedAt,
        START + 5000,
      );
    });

    await t.step("an invalid persisted entry is ignored", async () => {
      const bad: unknown[] = [
        "nope",
        { hooks: ["0.0.0.0/0"], etag: null, fetchedAt: START },
        { hooks: HOOKS, etag: 7, fetchedAt: START },
        { hooks: HOOKS, etag: null },
      ];
      for (const value of bad) {
        await kv.set(META_KV_KEY, value);
        const meta = createMetaRefresher(options(fake, { kv }));
        assert.equal(await meta.load(), false);
        assert.equal(meta.isReady(), false);
      }
    });
  } finally {
    await fake.close();
    kv.close();
  }
});

Deno.test("isAllowed() always allows the extra CIDRs", async () => {
  const extraCidrs = ["203.0.113.0/24"].map((c) => parseCidr(c)!);
  const meta = createMetaRefresher(
    options({ url: closedUrl() }, { extraCidrs }),
  );
  assert.equal(meta.isReady(), false);
  assert.equal(meta.isAllowed(ip("203.0.113.7")), true);
  assert.equal(meta.isAllowed(ip("::ffff:203.0.113.7")), true);
  assert.equal(meta.isAllowed(ip("192.30.252.1")), false);
  await meta.refresh(); // fails: the extra ranges stay allowed
  assert.equal(meta.isAllowed(ip("203.0.113.7")), true);
});

Deno.test("nextDelayMs() schedules refreshes and backoff", async (t) => {
  const url = "http://127.0.0.1:1/meta";

  await t.step("after a success: the refresh period", () => {
    const meta = createMetaRefresher({ url, refreshSeconds: 3600 });
    assert.equal(meta.nextDelayMs({ ok: true, status: 200 }), 3_600_000);
  });

  await t.step("the first retry comes within a few seconds", () => {
    for (const r of [0, 0.5, 0.999]) {
      const meta = createMetaRefresher({
        url,
        refreshSeconds: 3600,
        random: () => r,
      });
      const delay = meta.nextDelayMs({ ok: false, failures: 1 });
      assert.ok(delay >= 1000 && delay <= 3000, `first retry ${delay} ms`);
    }
  });

  await t.step("failures grow exponentially, capped at 5 minutes", () => {
    const meta = createMetaRefresher({
      url,
      refreshSeconds: 3600,
      random: () => 0.5,
    });
    const delays = [1, 2, 3, 4, 5, 6].map((failures) =>
      meta.nextDelayMs({ ok: false, failures })
    );
    for (let i = 1; i < delays.length; i++) {
      assert.equal(delays[i], 2 * delays[i - 1]!);
    }
    const late = meta.nextDelayMs({ ok: false, failures: 200 });
    assert.ok(late <= 300_000 && late >= 150_000, `late retry ${late} ms`);
  });

  await t.step("jitter spreads the delay", () => {
    const low = createMetaRefresher({
      url,
      refreshSeconds: 3600,
      random: () => 0,
    });
    const high = createMetaRefresher({
      url,
      refreshSeconds: 3600,
      random: () => 0.999,
    });
    const a = low.nextDelayMs({ ok: false, failures: 4 });
    const b = high.nextDelayMs({ ok: false, failures: 4 });
    assert.ok(a < b, `${a} < ${b}`);
    assert.ok(a >= b / 2);
  });

  await t.step("the same result always gets the same delay", () => {
    let n = 0;
    const meta = createMetaRefresher({
      url,
      refreshSeconds: 3600,
      random: () => (n++ % 10) / 10,
    });
    const result: RefreshResult = { ok: false, failures: 3 };
    assert.equal(meta.nextDelayMs(result), meta.nextDelayMs(result));
  });

  await t.step("backoff never exceeds the refresh period", () => {
    const meta = createMetaRefresher({
      url,
      refreshSeconds: 1,
      random: () => 0.999,
    });
    for (const failures of [1, 2, 10]) {
      assert.ok(meta.nextDelayMs({ ok: false, failures }) <= 1000);
    }
  });

  await t.step("refresh() failures feed the backoff", async () => {
    const meta = createMetaRefresher({
      url: closedUrl(),
      refreshSeconds: 3600,
      random: () => 0.5,
    });
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      delays.push(meta.nextDelayMs(await meta.refresh()));
    }
    assert.deepEqual(delays, [1500, 3000, 6000]);
  });
});

Deno.test("refresh() honours Retry-After and rate-limit resets", async (t) => {
  const clock = createClock();
  const fake = startFake();
  try {
    const meta = createMetaRefresher(
      options(fake, { now: clock.now, random: () => 0 }),
    );

    await t.step("429 with Retry-After in seconds", async () => {
      fake.reply = () =>
        new Response("slow down", {
          status: 429,
          headers: { "retry-after": "120" },
        });
      const result = await meta.refresh();
      assert.equal(result.status, 429);
      assert.equal(result.retryAfterMs, 120_000);
      assert.equal(meta.nextDelayMs(result), 120_000);
    });

    await t.step("403 with Retry-After as an HTTP date", async () => {
      const date = new Date(START + 90_000).toUTCString();
      fake.reply = () =>
        new Response("forbidden", {
          status: 403,
          headers: { "retry-after": date },
        });
      const result = await meta.refresh();
      assert.equal(result.retryAfterMs, 90_000);
      assert.equal(meta.nextDelayMs(result), 90_000);
    });

    await t.step("403 with x-ratelimit-remaining: 0", async () => {
      fake.reply = () =>
        new Response("rate limited", {
          status: 403,
          headers: {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": String(START / 1000 + 600),
          },
        });
      const result = await meta.refresh();
      assert.equal(result.retryAfterMs, 600_000);
      assert.equal(meta.nextDelayMs(result), 600_000);
    });

    await t.step(
      "a shorter Retry-After does not shorten the backoff",
      async () => {
        fake.reply = () =>
          new Response("slow down", {
            status: 429,
            headers: { "retry-after": "0" },
          });
        const result = await meta.refresh();
        assert.equal(result.retryAfterMs, 0);
        assert.ok(meta.nextDelayMs(result) > 0);
      },
    );

    await t.step("an absurd Retry-After is capped at an hour", async () => {
      fake.reply = () =>
        new Response("go away", {
          status: 429,
          headers: { "retry-after": "99999999" },
        });
      const result = await meta.refresh();
      assert.equal(meta.nextDelayMs(result), 3_600_000);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("start() refreshes at once and stops promptly on abort", async () => {
  const fake = startFake();
  try {
    const meta = createMetaRefresher(options(fake));
    const controller = new AbortController();
    const running = meta.start(controller.signal);
    await waitFor(() => meta.isReady());
    assert.equal(fake.requests.length, 1);
    controller.abort();
    await running; // the hour-long sleep is cancelled: no timer leaks
    assert.equal(fake.requests.length, 1);
  } finally {
    await fake.close();
  }
});

Deno.test("start() retries a failure with backoff", async () => {
  let calls = 0;
  const fake = startFake(() =>
    ++calls === 1
      ? new Response("oops", { status: 502 })
      : Response.json({ hooks: HOOKS })
  );
  try {
    const meta = createMetaRefresher(
      options(fake, { refreshSeconds: 1, random: () => 0 }),
    );
    const controller = new AbortController();
    const running = meta.start(controller.signal);
    await waitFor(() => meta.isReady());
    controller.abort();
    await running;
    assert.equal(calls, 2);
  } finally {
    await fake.close();
  }
});

Deno.test("start() aborts an in-flight fetch when stopped", async () => {
  let release = () => {};
  const hung = new Promise<void>((resolve) => release = resolve);
  const fake = startFake(async () => {
    await hung;
    return Response.json({ hooks: HOOKS });
  });
  try {
    const meta = createMetaRefresher(options(fake));
    const controller = new AbortController();
    const running = meta.start(controller.signal);
    await waitFor(() => fake.requests.length === 1);
    const stoppedAt = Date.now();
    controller.abort();
    await running;
    assert.ok(Date.now() - stoppedAt < 1000);
    assert.equal(meta.isReady(), false);
    assert.equal(meta.status().consecutiveFailures, 0);
  } finally {
    release();
    await fake.close();
  }
});

Deno.test("maybeRefresh() fetches once when stale, never when fresh", async (t) => {
  const clock = createClock();
  const fake = startFake();
  try {
    const meta = createMetaRefresher(options(fake, { now: clock.now }));

    await t.step(
      "not ready: one fetch, however often it is called",
      async () => {
        for (let i = 0; i < 5; i++) meta.maybeRefresh();
        await meta.idle();
        assert.equal(fake.requests.length, 1);
        assert.equal(meta.isReady(), true);
      },
    );

    await t.step("fresh: no fetch", async () => {
      clock.t += 3_599_000;
      meta.maybeRefresh();
      await meta.idle();
      assert.equal(fake.requests.length, 1);
    });

    await t.step("older than the period: one fetch", async () => {
      clock.t += 1000;
      meta.maybeRefresh();
      meta.maybeRefresh();
      await meta.idle();
      assert.equal(fake.requests.length, 2);
    });

    await t.step("within backoff after a failure: no fetch", async () => {
      fake.reply = () => new Response("down", { status: 503 });
      clock.t += 3_600_000;
      meta.maybeRefresh();
      await meta.idle();
      assert.equal(fake.requests.length, 3);
      meta.maybeRefresh();
      await meta.idle();
      assert.equal(fake.requests.length, 3);
      clock.t += 3_000;
      meta.maybeRefresh();
      await meta.idle();
      assert.equal(fake.requests.length, 4);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("maybeRefresh() adopts a fresher list from KV instead of fetching", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = createClock();
  const fake = startFake();
  try {
    const meta = createMetaRefresher(
      options(fake, { kv, now: clock.now }),
    );
    await kv.set(META_KV_KEY, {
      hooks: ["140.82.112.0/20"],
      etag: null,
      fetchedAt: START - 1000,
    });
    meta.maybeRefresh();
    await meta.idle();
    assert.equal(fake.requests.length, 0);
    assert.equal(meta.isAllowed(ip("140.82.112.1")), true);
    assert.equal(meta.status().source, "kv");

    clock.t += 3_600_000; // the KV copy is stale too: fetch
    meta.maybeRefresh();
    await meta.idle();
    assert.equal(fake.requests.length, 1);
    assert.equal(meta.status().source, "network");
  } finally {
    await fake.close();
    kv.close();
  }
});

Deno.test("createMetaRefresher() rejects bad options", () => {
  assert.throws(
    () => createMetaRefresher({ url: "http://x/", refreshSeconds: 0 }),
    RangeError,
  );
  assert.throws(
    () => createMetaRefresher({ url: "not a url", refreshSeconds: 1 }),
    TypeError,
  );
});

Deno.test("start() on several refreshers sharing one KV fetches from GitHub once", async () => {
  const fake = startFake();
  const kv = await Deno.openKv(":memory:");
  const controller = new AbortController();
  try {
    const metas = Array.from(
      { length: 4 },
      () => createMetaRefresher(options(fake, { kv, refreshSeconds: 60 })),
    );
    const running = metas.map((m) => m.start(controller.signal));
    await waitFor(() => metas.every((m) => m.isReady()), 5000);
    assert.equal(fake.requests.length, 1, "one fetch for four isolates");
    assert.ok(metas.filter((m) => m.status().source === "kv").length >= 3);
    controller.abort();
    await Promise.all(running);
  } finally {
    controller.abort();
    kv.close();
    await fake.close();
  }
});
