// End to end: the IP allowlist of a real main.ts subprocess, on a dual-stack
// `HOST=::` listener (IPv4 peers arrive as ::ffff:127.0.0.1), fed by a fake
// GitHub meta server on loopback whose answers the test changes.

import assert from "node:assert/strict";
import { postDelivery, startServer, waitFor } from "../_helpers.ts";

type MetaAnswer =
  | { kind: "down" }
  | { kind: "hooks"; hooks: string[]; etag: string }
  | { kind: "garbage"; body: string };

interface FakeMeta {
  url: string;
  answer: MetaAnswer;
  hits: {
    ifNoneMatch: string | null;
    status: number;
    userAgent: string | null;
  }[];
  close(): Promise<void>;
}

function startFakeMeta(): FakeMeta {
  const meta: FakeMeta = {
    url: "",
    answer: { kind: "down" },
    hits: [],
    close: () => server.shutdown(),
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const a = meta.answer;
      let response: Response;
      if (a.kind === "down") {
        response = new Response("unavailable", { status: 503 });
      } else if (a.kind === "garbage") {
        response = new Response(a.body, {
          headers: { "content-type": "application/json" },
        });
      } else if (request.headers.get("if-none-match") === a.etag) {
        response = new Response(null, {
          status: 304,
          headers: { etag: a.etag },
        });
      } else {
        response = Response.json({ hooks: a.hooks, web: ["1.2.3.0/24"] }, {
          headers: { etag: a.etag },
        });
      }
      meta.hits.push({
        ifNoneMatch: request.headers.get("if-none-match"),
        status: response.status,
        userAgent: request.headers.get("user-agent"),
      });
      return response;
    },
  );
  meta.url = `http://127.0.0.1:${server.addr.port}/meta`;
  return meta;
}

const GITHUB_ONLY = ["192.30.252.0/22", "185.199.108.0/22", "2a0a:a440::/29"];
const WITH_LOOPBACK = [...GITHUB_ONLY, "127.0.0.0/8"];

Deno.test("the allowlist follows GitHub's meta list end to end (HOST=::)", async (t) => {
  const meta = startFakeMeta();
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-allow-" });
  const env = {
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    IP_ALLOWLIST: "github",
    GITHUB_META_URL: meta.url,
    GITHUB_META_REFRESH_SECONDS: "1",
    HOST: "::",
    KV_PATH: "./data/hookgate.kv",
    LOG_LEVEL: "debug",
  };
  let server = await startServer(env, { cwd });
  let n = 0;
  const post = async () =>
    (await postDelivery(server.url, { event: "ping", id: `allow-${++n}` }))
      .status;
  const ready = async () => {
    const res = await fetch(`${server.url}/readyz`);
    return { status: res.status, body: await res.json() };
  };

  try {
    await t.step(
      "meta down at start: 503 not_ready and /readyz 503",
      async () => {
        const res = await postDelivery(server.url, { event: "ping" });
        assert.equal(res.status, 503);
        assert.equal(res.body.error, "not_ready");
        const r = await ready();
        assert.equal(r.status, 503);
        assert.equal(r.body.status, "not_ready");
        assert.match(String(r.body.reason), /IP ranges/);
      },
    );

    await t.step(
      "meta recovers with loopback listed: the IPv4-mapped peer gets in",
      async () => {
        meta.answer = { kind: "hooks", hooks: WITH_LOOPBACK, etag: '"v1"' };
        await waitFor(
          async () => (await post()) === 202,
          15_000,
          "202 after recovery",
        );
        const r = await ready();
        assert.equal(r.status, 200);
        assert.equal(r.body.allowlist.ranges, 4);
        assert.equal(typeof r.body.allowlist.ageSeconds, "number");
        assert.ok(
          server.lines.some((l) => l.includes('"url":"http://[::]:')),
          "listens on ::",
        );
      },
    );

    await t.step(
      "304s are used: the ETag is sent back and the list is kept",
      async () => {
        await waitFor(
          () =>
            meta.hits.some((h) => h.status === 304 && h.ifNoneMatch === '"v1"'),
          5000,
          "a 304",
        );
        assert.ok(
          meta.hits.every((h) => h.userAgent && h.userAgent.length > 0),
        );
        assert.equal(await post(), 202);
      },
    );

    await t.step("loopback removed from the list: 403", async () => {
      meta.answer = { kind: "hooks", hooks: GITHUB_ONLY, etag: '"v2"' };
      await waitFor(
        async () => (await post()) === 403,
        5000,
        "403 after the list changed",
      );
      // The rejection names the peer as the dual-stack listener saw it.
      const rejected = server.lines.find((l) =>
        l.includes('"reason":"ip_not_allowed"')
      );
      assert.ok(rejected, "the rejection is logged at debug");
      assert.equal(JSON.parse(rejected).peer, "::ffff:127.0.0.1");
    });

    await t.step("loopback back: 202 again", async () => {
      meta.answer = { kind: "hooks", hooks: WITH_LOOPBACK, etag: '"v3"' };
      await waitFor(async () => (await post()) === 202, 5000, "202 again");
    });

    await t.step("garbage answers never replace the good list", async () => {
      for (
        const body of [
          '{"hooks":[]}',
          '{"hooks":["0.0.0.0/0"]}',
          '{"hooks":["not a cidr"]}',
          "not json",
        ]
      ) {
        meta.answer = { kind: "garbage", body };
        const before = meta.hits.length;
        await waitFor(
          () => meta.hits.length > before,
          8000,
          `meta hit for ${body}`,
        );
        assert.equal(await post(), 202, `still allowed after ${body}`);
      }
    });

    await t.step(
      "after a restart with meta down, the persisted list serves at once",
      async () => {
        meta.answer = { kind: "down" };
        assert.equal((await server.stop()).code, 0);
        server = await startServer({ ...env, PORT: String(server.port) }, {
          cwd,
        });
        assert.equal(await post(), 202);
        const r = await ready();
        assert.equal(r.status, 200);
        assert.equal(r.body.allowlist.source, "kv");
      },
    );
  } finally {
    await server.stop();
    await meta.close();
    await Deno.remove(cwd, { recursive: true });
  }
});
