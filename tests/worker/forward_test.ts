import assert from "node:assert/strict";
import {
  forwardDelivery,
  forwardHeaders,
  forwardName,
  type ForwardSignatures,
  importForwardKeys,
  signForward,
} from "../../lib/worker/forward.ts";
import { type App, createApp } from "../../lib/app.ts";
import type { HandlerRegistry } from "../../lib/dispatch.ts";
import type { RunReport } from "../../lib/store/runs.ts";
import {
  captureLogger,
  deliveryRequest,
  encoder,
  freePort,
  SECRET,
  testConfig,
  waitFor,
} from "../_helpers.ts";

const FORWARD_SECRET = "the staging secret, not GitHub's";
const TOKEN = "forward-test-admin-token";

/** A body a re-serializer would change: odd whitespace, unicode, escapes. */
const ODD_BODY = encoder.encode(
  '{ "zen" :\t"Café ☕ \\u00e9 — 日本",\r\n  "n": 1.50,"hook_id":7 }\n\n',
);

interface Received {
  body: Uint8Array;
  headers: Headers;
}

/** A receiver on 127.0.0.1:0 answering with `answer(n)` for its n-th request (1-based). */
function receiver(
  answer: (n: number) => Response | Promise<Response> = () =>
    new Response("ok"),
) {
  const got: Received[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      got.push({
        body: new Uint8Array(await request.arrayBuffer()),
        headers: request.headers,
      });
      return await answer(got.length);
    },
  );
  const url = new URL(`http://127.0.0.1:${server.addr.port}/hook`);
  return { url, got, server, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Whether `header` is the `prefix=` HMAC of `body` under `secret` with `hash`. */
async function validSignature(
  header: string | null,
  prefix: "sha256" | "sha1",
  body: Uint8Array<ArrayBuffer>,
  secret: string,
): Promise<boolean> {
  if (header === null || !header.startsWith(`${prefix}=`)) return false;
  const hex = header.slice(prefix.length + 1);
  const bytes = Uint8Array.from(
    hex.match(/../g) ?? [],
    (pair) => parseInt(pair, 16),
  );
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: prefix === "sha256" ? "SHA-256" : "SHA-1" },
    false,
    ["verify"],
  );
  return await crypto.subtle.verify("HMAC", key, bytes, body);
}

const STORED = {
  "x-github-event": "push",
  "x-github-delivery": "d-1",
  "x-github-hook-id": "42",
  "content-type": "application/json",
  "content-length": String(ODD_BODY.byteLength),
  "user-agent": "GitHub-Hookshot/abc1234",
};

async function forwardTo(
  target: URL,
  timeoutMs = 2000,
  body: Uint8Array<ArrayBuffer> = ODD_BODY,
) {
  const keys = await importForwardKeys(FORWARD_SECRET);
  return await forwardDelivery({
    target,
    body,
    headers: STORED,
    signatures: await signForward(keys, body),
    timeoutMs,
    signal: new AbortController().signal,
  });
}

Deno.test("forwardHeaders() keeps X-GitHub-*, Content-Type and User-Agent, and only the fresh signatures", () => {
  const signatures: ForwardSignatures = {
    sha256: "sha256=new",
    sha1: "sha1=new",
  };
  const headers = forwardHeaders(
    {
      ...STORED,
      "X-Hub-Signature-256": "sha256=original",
      "x-hub-signature": "sha1=original",
      cookie: "a=b",
    },
    signatures,
  );
  assert.deepEqual(headers, {
    "x-github-event": "push",
    "x-github-delivery": "d-1",
    "x-github-hook-id": "42",
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/abc1234",
    "x-hub-signature-256": "sha256=new",
    "x-hub-signature": "sha1=new",
  });
});

Deno.test("signForward() matches GitHub's documented SHA-256 vector and a WebCrypto SHA-1", async () => {
  const body = encoder.encode("Hello, World!");
  const signatures = await signForward(await importForwardKeys(SECRET), body);
  assert.equal(
    signatures.sha256,
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
  );
  assert.ok(await validSignature(signatures.sha1, "sha1", body, SECRET));
  assert.ok(!await validSignature(signatures.sha1, "sha1", body, "other"));
});

Deno.test("forwardDelivery() sends the body byte for byte, the GitHub headers and signatures under the forward secret", async () => {
  await using target = receiver(() => new Response(null, { status: 204 }));
  const report = await forwardTo(target.url);
  assert.deepEqual(report.ok, true);
  assert.equal(report.status, 204);
  assert.equal(report.handler, `forward:127.0.0.1:${target.url.port}`);
  assert.equal(target.got.length, 1);
  const { body, headers } = target.got[0]!;
  assert.deepEqual(body, ODD_BODY);
  assert.equal(headers.get("x-github-event"), "push");
  assert.equal(headers.get("x-github-delivery"), "d-1");
  assert.equal(headers.get("x-github-hook-id"), "42");
  assert.equal(headers.get("content-type"), "application/json");
  assert.equal(headers.get("user-agent"), "GitHub-Hookshot/abc1234");
  const sha256 = headers.get("x-hub-signature-256");
  const sha1 = headers.get("x-hub-signature");
  assert.ok(await validSignature(sha256, "sha256", ODD_BODY, FORWARD_SECRET));
  assert.ok(await validSignature(sha1, "sha1", ODD_BODY, FORWARD_SECRET));
  assert.ok(!await validSignature(sha256, "sha256", ODD_BODY, SECRET));
});

Deno.test("forwardDelivery() fails on a 500 and on a 302, which it does not follow", async () => {
  await using elsewhere = receiver();
  await using target = receiver((n) =>
    n === 1 ? new Response("no", { status: 500 }) : new Response(null, {
      status: 302,
      headers: { location: elsewhere.url.href },
    })
  );
  const first = await forwardTo(target.url);
  assert.equal(first.ok, false);
  assert.equal(first.status, 500);
  assert.equal(first.error, "answered 500");
  const second = await forwardTo(target.url);
  assert.equal(second.ok, false);
  assert.equal(second.status, 302);
  assert.match(second.error!, /answered 302 \(redirects are not followed\)/);
  assert.equal(elsewhere.got.length, 0);
});

Deno.test("forwardDelivery() cuts a target that hangs at the timeout", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using target = receiver(async () => {
    await released;
    return new Response("late");
  });
  try {
    const report = await forwardTo(target.url, 300);
    assert.equal(report.ok, false);
    assert.equal(report.timedOut, true);
    assert.equal(report.error, "timed out after 300 ms");
    assert.equal(target.got.length, 1);
  } finally {
    release();
  }
});

Deno.test("forwardDelivery() reports a refused connection without rejecting", async () => {
  const port = freePort();
  const report = await forwardTo(new URL(`http://127.0.0.1:${port}/hook`));
  assert.equal(report.ok, false);
  assert.equal(report.timedOut, false);
  assert.equal(report.status, undefined);
  assert.equal(report.handler, `forward:127.0.0.1:${port}`);
  assert.ok(report.error && report.error.length > 0);
});

Deno.test("forwardName() names a target by its host and port", () => {
  assert.equal(
    forwardName(new URL("https://staging.example.com/webhook?x=1")),
    "forward:staging.example.com",
  );
  assert.equal(
    forwardName(new URL("http://10.0.0.5:8000/")),
    "forward:10.0.0.5:8000",
  );
});

/** A real app on 127.0.0.1 forwarding to `urls`, with a push handler counting its calls. */
async function withApp(
  env: Record<string, string>,
  fn: (s: { app: App; base: string; calls: () => number }) => Promise<void>,
): Promise<void> {
  let calls = 0;
  const registry: HandlerRegistry = {
    push: {
      default() {
        calls++;
      },
    },
  };
  const dir = await Deno.makeTempDir({ prefix: "hookgate-forward-" });
  const kv = await Deno.openKv(`${dir}/hookgate.kv`);
  const app = await createApp({
    config: testConfig({
      ADMIN_TOKEN: TOKEN,
      FORWARD_SECRET,
      HANDLER_TIMEOUT_MS: "300",
      ...env,
    }),
    log: captureLogger("info").log,
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
    await fn({
      app,
      base: `http://127.0.0.1:${server.addr.port}`,
      calls: () => calls,
    });
  } finally {
    stop.abort();
    await app.close(2000);
    await server.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function postPush(base: string, id: string): Promise<void> {
  const res = await fetch(
    await deliveryRequest({
      url: `${base}/webhook`,
      id,
      event: "push",
      body: ODD_BODY,
      headers: { "x-github-hook-id": "77" },
    }),
  );
  await res.body?.cancel();
  assert.equal(res.status, 202);
}

async function runsOf(base: string, id: string): Promise<RunReport[]> {
  const res = await fetch(`${base}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).runs;
}

Deno.test("a forward target answering 500 then 200 is retried to success; the handlers ran once", async () => {
  await using target = receiver((n) =>
    n === 1 ? new Response("down", { status: 500 }) : new Response("ok")
  );
  await withApp(
    { FORWARD_URLS: target.url.href },
    async ({ app, base, calls }) => {
      await postPush(base, "fwd-retry");
      const done = await waitFor(
        async () => {
          const record = await app.store.get("fwd-retry");
          return record?.status === "done" ? record : null;
        },
        5000,
        "the delivery done",
      );
      assert.equal(done.attempts, 2);
      assert.equal(done.settled, undefined);
      assert.equal(calls(), 1);
      assert.equal(target.got.length, 2);
      for (const { body, headers } of target.got) {
        assert.deepEqual(body, ODD_BODY);
        assert.equal(headers.get("x-github-event"), "push");
        assert.equal(headers.get("x-github-delivery"), "fwd-retry");
        assert.equal(headers.get("x-github-hook-id"), "77");
        assert.equal(headers.get("content-type"), "application/json");
        assert.ok(
          await validSignature(
            headers.get("x-hub-signature-256"),
            "sha256",
            ODD_BODY,
            FORWARD_SECRET,
          ),
        );
        assert.ok(
          await validSignature(
            headers.get("x-hub-signature"),
            "sha1",
            ODD_BODY,
            FORWARD_SECRET,
          ),
        );
      }
      const name = `forward:127.0.0.1:${target.url.port}`;
      const runs = await runsOf(base, "fwd-retry");
      assert.deepEqual(
        runs.map((r) => [r.attempt, r.kind, r.handler, r.ok, r.status]),
        [
          [1, "handler", "push", true, undefined],
          [1, "forward", name, false, 500],
          [2, "forward", name, true, 200],
        ],
      );
      assert.equal(runs[1]!.error, "answered 500");
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(
          `webhook_handler_runs_total\\{[^}]*handler="${name}"[^}]*result="ok"[^}]*\\} 1`,
        ),
      );
    },
  );
});

Deno.test("a refused forward target fails only itself: the other target and the handlers are not re-run", async () => {
  await using good = receiver();
  const closed = freePort();
  const refused = `http://127.0.0.1:${closed}/hook`;
  await withApp(
    { FORWARD_URLS: `${good.url.href},${refused}`, MAX_ATTEMPTS: "2" },
    async ({ app, base, calls }) => {
      await postPush(base, "fwd-refused");
      const dead = await waitFor(
        async () => {
          const record = await app.store.get("fwd-refused");
          return record?.status === "dead" ? record : null;
        },
        5000,
        "the delivery dead",
      );
      assert.match(
        dead.error!,
        new RegExp(`^forward:127\\.0\\.0\\.1:${closed}: `),
      );
      assert.deepEqual(dead.settled, [
        "handlers",
        `forward:127.0.0.1:${good.url.port}`,
      ]);
      assert.equal(calls(), 1);
      assert.equal(good.got.length, 1);
      assert.deepEqual(good.got[0]!.body, ODD_BODY);
      const runs = await runsOf(base, "fwd-refused");
      assert.deepEqual(
        runs.map((r) => [r.attempt, r.handler, r.ok]),
        [
          [1, "push", true],
          [1, `forward:127.0.0.1:${good.url.port}`, true],
          [1, `forward:127.0.0.1:${closed}`, false],
          [2, `forward:127.0.0.1:${closed}`, false],
        ],
      );
      // Replaying the dead delivery retries only the refused target.
      await app.store.rearm("fwd-refused", "replay");
      app.worker.wake();
      await waitFor(
        async () => {
          const record = await app.store.get("fwd-refused");
          return record?.status === "dead" && record.attempts === 4;
        },
        5000,
        "dead again after the replay's attempts",
      );
      assert.equal(calls(), 1, "the handlers did not run again");
      assert.equal(good.got.length, 1, "the good target got no second copy");
    },
  );
});

Deno.test("a forward target that hangs is cut at HANDLER_TIMEOUT_MS and the attempt is a timeout", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using target = receiver(async (n) => {
    if (n === 1) await released;
    return new Response("ok");
  });
  try {
    await withApp(
      { FORWARD_URLS: target.url.href },
      async ({ app, base, calls }) => {
        await postPush(base, "fwd-hang");
        await waitFor(
          async () => (await app.store.get("fwd-hang"))?.status === "done",
          5000,
          "done",
        );
        assert.equal(calls(), 1);
        const runs = await runsOf(base, "fwd-hang");
        const forwards = runs.filter((r) => r.kind === "forward");
        assert.deepEqual(
          forwards.map((r) => [r.attempt, r.ok, r.error]),
          [[1, false, "timed out after 300 ms"], [2, true, undefined]],
        );
      },
    );
  } finally {
    release();
  }
});
