// The webhook endpoint, row by row of the contract's table, through
// createHandler() with a stub `info` (no socket).

import assert from "node:assert/strict";
import { parseIp } from "../../lib/security/cidr.ts";
import type {
  AcceptDelivery,
  IncomingDelivery,
} from "../../lib/store/types.ts";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { createBodyBudget } from "../../lib/http/body.ts";
import {
  type Allowlist,
  createHandler,
  pathOf,
  type ServerDeps,
} from "../../lib/http/server.ts";
import { importSecrets, signBody } from "../../lib/security/signature.ts";
import {
  captureLogger,
  deliveryRequest,
  encoder,
  fakeInfo,
  SECRET,
  testConfig,
} from "../_helpers.ts";

/** The secret a rotation moves to ("old" stays the previous one). */
const NEW_SECRET = "the-new-secret-after-rotation";

interface Harness {
  handle: (request: Request, ip?: string) => Promise<Response>;
  accepted: IncomingDelivery[];
  metrics: ReturnType<typeof createMetrics>;
  logs: ReturnType<typeof captureLogger>;
}

async function harness(
  options: {
    env?: Record<string, string>;
    accept?: AcceptDelivery;
    allowlist?: Allowlist | null;
    secrets?: string[];
  } = {},
): Promise<Harness> {
  const config = testConfig(options.env);
  const accepted: IncomingDelivery[] = [];
  const seen = new Map<string, string>();
  const accept: AcceptDelivery = options.accept ?? ((d) => {
    const first = seen.get(d.id) ?? seen.get(d.digest);
    if (first) return Promise.resolve({ status: "duplicate", id: first });
    seen.set(d.id, d.id);
    seen.set(d.digest, d.id);
    accepted.push(d);
    return Promise.resolve({ status: "queued", id: d.id });
  });
  const metrics = createMetrics();
  const logs = captureLogger();
  const deps: ServerDeps = {
    config,
    keys: await importSecrets(options.secrets ?? config.secrets),
    allowlist: options.allowlist ?? null,
    accept,
    log: logs.log,
    metrics,
    now: () => 1_700_000_000_000,
  };
  const handler = createHandler(deps);
  return {
    handle: (request, ip) => handler(request, fakeInfo(ip)),
    accepted,
    metrics,
    logs,
  };
}

async function expectError(
  res: Response,
  status: number,
  error: string,
): Promise<void> {
  assert.equal(res.status, status);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  assert.equal(body.error, error);
  assert.equal(typeof body.message, "string");
  assert.ok(body.message.length > 0);
}

Deno.test("a signed delivery is answered 202 queued with its id", async () => {
  const h = await harness();
  const res = await h.handle(
    await deliveryRequest({ id: "d-1", event: "push" }),
  );
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { status: "queued", delivery: "d-1" });
  assert.equal(h.accepted.length, 1);
  const d = h.accepted[0]!;
  assert.equal(d.event, "push");
  assert.equal(d.kind, "json");
  assert.equal(d.receivedAt, 1_700_000_000_000);
  assert.match(d.digest, /^[0-9a-f]{64}$/);
  assert.equal(d.headers["x-github-event"], "push");
  assert.equal(
    d.headers["x-hub-signature-256"],
    undefined,
    "signatures are never stored",
  );
  assert.equal(
    h.metrics.value("webhook_deliveries_total", {
      event: "push",
      outcome: "accepted",
    }),
    1,
  );
  assert.equal(h.metrics.value("webhook_requests_total", { status: "202" }), 1);
});

Deno.test("the same delivery id twice is a 200 duplicate naming the first id", async () => {
  const h = await harness();
  const first = await h.handle(await deliveryRequest({ id: "same" }));
  assert.equal(first.status, 202);
  await first.body?.cancel();
  const again = await h.handle(
    await deliveryRequest({ id: "same", body: '{"other":1}' }),
  );
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), {
    status: "duplicate",
    delivery: "same",
  });
  assert.equal(h.accepted.length, 1);
});

Deno.test("the same body under a new id (a replayed capture) is a duplicate", async () => {
  const h = await harness();
  const body = '{"zen":"x"}';
  (await h.handle(await deliveryRequest({ id: "a", body }))).body?.cancel();
  const res = await h.handle(await deliveryRequest({ id: "b", body }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "duplicate", delivery: "a" });
});

Deno.test("path and method", async (t) => {
  const h = await harness();
  await t.step("another path is 404", async () => {
    const req = await deliveryRequest({ url: "http://x/hook" });
    await expectError(await h.handle(req), 404, "not_found");
  });
  await t.step("GET on the webhook path is 405 with Allow: POST", async () => {
    const res = await h.handle(new Request("http://x/webhook"));
    assert.equal(res.headers.get("allow"), "POST");
    await expectError(res, 405, "method_not_allowed");
  });
  await t.step("a custom WEBHOOK_PATH is honoured", async () => {
    const custom = await harness({ env: { WEBHOOK_PATH: "/gh/hooks" } });
    const ok = await custom.handle(
      await deliveryRequest({ url: "http://x/gh/hooks" }),
    );
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
    await expectError(
      await custom.handle(await deliveryRequest()),
      404,
      "not_found",
    );
  });
});

Deno.test("headers", async (t) => {
  const h = await harness();
  const rows: [string, Record<string, string>, string][] = [
    ["missing event", { "x-github-event": "" }, "missing_header"],
    ["missing delivery", { "x-github-delivery": "" }, "missing_header"],
    [
      "event over 100 chars",
      { "x-github-event": "e".repeat(101) },
      "bad_header",
    ],
    [
      "delivery over 100 chars",
      { "x-github-delivery": "d".repeat(101) },
      "bad_header",
    ],
    [
      "control character in event",
      { "x-github-event": "push\u0001" },
      "bad_header",
    ],
    ["tab in delivery", { "x-github-delivery": "a\tb" }, "bad_header"],
    [
      "C1 control (byte 0x85) in event",
      { "x-github-event": "pu\u0085sh" },
      "bad_header",
    ],
    [
      "C1 control (byte 0x9f) in delivery",
      { "x-github-delivery": "abc\u009f" },
      "bad_header",
    ],
    ["comma in event", { "x-github-event": "push,issues" }, "bad_header"],
  ];
  for (const [name, headers, code] of rows) {
    await t.step(`${name} → 400 ${code}`, async () => {
      const req = await deliveryRequest({ headers });
      // Headers cannot be deleted through the init: an empty value stands for missing.
      for (const [k, v] of Object.entries(headers)) {
        if (v === "") req.headers.delete(k);
      }
      await expectError(await h.handle(req), 400, code);
    });
  }
  for (const name of ["X-GitHub-Event", "X-GitHub-Delivery"]) {
    await t.step(`${name} sent twice → 400 bad_header`, async () => {
      const req = await deliveryRequest({ event: "push" });
      req.headers.append(
        name,
        name === "X-GitHub-Event" ? "issues" : "other-id",
      );
      const res = await h.handle(req);
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.error, "bad_header");
      assert.match(
        body.message,
        new RegExp(`${name} header must be sent once`),
      );
    });
  }
  await t.step("exactly 100 characters is fine", async () => {
    const res = await h.handle(await deliveryRequest({ id: "d".repeat(100) }));
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
});

Deno.test("content type and encoding", async (t) => {
  const h = await harness();
  for (
    const type of ["text/plain", "application/xml", "multipart/form-data", ""]
  ) {
    await t.step(`Content-Type ${JSON.stringify(type)} → 415`, async () => {
      const req = await deliveryRequest({ contentType: type });
      if (type === "") req.headers.delete("content-type");
      await expectError(await h.handle(req), 415, "unsupported_media_type");
    });
  }
  for (const encoding of ["gzip", "deflate", "br"]) {
    await t.step(`Content-Encoding ${encoding} → 415`, async () => {
      const req = await deliveryRequest({
        headers: { "content-encoding": encoding },
      });
      await expectError(await h.handle(req), 415, "unsupported_media_type");
    });
  }
  await t.step("Content-Encoding identity is fine", async () => {
    const res = await h.handle(
      await deliveryRequest({ headers: { "content-encoding": "identity" } }),
    );
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
  await t.step("application/json; charset=utf-8 is fine", async () => {
    const res = await h.handle(
      await deliveryRequest({ contentType: "application/json; charset=utf-8" }),
    );
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
});

Deno.test("a form-encoded delivery is verified over the form bytes, then decoded", async () => {
  const h = await harness();
  const json = JSON.stringify({ action: "opened", zen: "a&b=c" });
  const body = "payload=" + encodeURIComponent(json);
  const res = await h.handle(
    await deliveryRequest({
      id: "form-1",
      event: "issues",
      body,
      contentType: "application/x-www-form-urlencoded",
    }),
  );
  assert.equal(res.status, 202);
  await res.body?.cancel();
  const d = h.accepted[0]!;
  assert.equal(d.kind, "form");
  assert.equal(d.action, "opened");
  assert.equal(
    new TextDecoder().decode(d.body),
    body,
    "the raw form bytes are kept",
  );
});

Deno.test("a form signed over the decoded JSON (not the raw bytes) is 401", async () => {
  const h = await harness();
  const json = JSON.stringify({ zen: "x" });
  const req = await deliveryRequest({
    body: "payload=" + encodeURIComponent(json),
    contentType: "application/x-www-form-urlencoded",
    signature: await signBody(SECRET, encoder.encode(json)),
  });
  await expectError(await h.handle(req), 401, "bad_signature");
});

Deno.test("body size", async (t) => {
  const h = await harness({ env: { MAX_BODY_BYTES: "64" } });
  await t.step(
    "Content-Length over the limit → 413 before reading",
    async () => {
      let pulled = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled = true;
          controller.enqueue(new Uint8Array(10));
        },
      }, { highWaterMark: 0 });
      const req = new Request("http://x/webhook", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": "65",
          "x-github-event": "ping",
          "x-github-delivery": "x",
        },
        body: stream,
      });
      await expectError(await h.handle(req), 413, "payload_too_large");
      assert.equal(pulled, false, "the body was not read");
      await stream.cancel();
    },
  );
  await t.step(
    "a chunked body over the limit → 413 while streaming",
    async () => {
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += 16;
          controller.enqueue(new Uint8Array(16).fill(32));
          if (sent > 1_000_000) controller.close();
        },
      });
      const req = new Request("http://x/webhook", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-github-event": "ping",
          "x-github-delivery": "x",
        },
        body: stream,
      });
      await expectError(await h.handle(req), 413, "payload_too_large");
      assert.ok(
        sent <= 64 + 16 * 4,
        `stopped reading early (read ${sent} bytes)`,
      );
    },
  );
  await t.step("a body of exactly the limit is read", async () => {
    const body = JSON.stringify({ pad: "x".repeat(64 - 10) });
    assert.equal(body.length, 64);
    const res = await h.handle(await deliveryRequest({ body }));
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
});

Deno.test("a body that stalls past BODY_TIMEOUT_MS → 408", async () => {
  const h = await harness({ env: { BODY_TIMEOUT_MS: "50" } });
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"zen":'));
    },
  });
  const req = new Request("http://x/webhook", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "ping",
      "x-github-delivery": "x",
    },
    body: stream,
  });
  await expectError(await h.handle(req), 408, "request_timeout");
  assert.equal(h.accepted.length, 0);
});

Deno.test("signatures", async (t) => {
  const h = await harness();
  const good = await signBody(SECRET, encoder.encode('{"a":1}'));
  const rows: [string, string | null][] = [
    ["missing", null],
    ["empty", ""],
    ["no prefix", good.slice("sha256=".length)],
    ["sha1= only", "sha1=" + "a".repeat(40)],
    ["63 digits", good.slice(0, -1)],
    ["65 digits", good + "0"],
    ["non-hex", good.slice(0, -1) + "g"],
    [
      "wrong secret",
      await signBody("another secret", encoder.encode('{"a":1}')),
    ],
    ["another body", await signBody(SECRET, encoder.encode('{"a":2}'))],
  ];
  for (const [name, signature] of rows) {
    await t.step(`${name} → 401`, async () => {
      const req = await deliveryRequest({ body: '{"a":1}', signature });
      await expectError(await h.handle(req), 401, "bad_signature");
    });
  }
  await t.step("X-Hub-Signature (SHA-1) alone is never enough", async () => {
    const req = await deliveryRequest({
      signature: null,
      headers: { "x-hub-signature": "sha1=" + "0".repeat(40) },
    });
    await expectError(await h.handle(req), 401, "bad_signature");
  });
  assert.equal(h.accepted.length, 0);
  assert.equal(
    h.metrics.value("webhook_rejections_total", { reason: "bad_signature" }),
    10,
  );
});

Deno.test("the previous secret is accepted while rotating", async () => {
  const h = await harness({
    env: {
      GITHUB_WEBHOOK_SECRET: NEW_SECRET,
      GITHUB_WEBHOOK_SECRET_PREVIOUS: "old",
    },
  });
  for (const secret of [NEW_SECRET, "old"]) {
    const res = await h.handle(await deliveryRequest({ secret }));
    assert.equal(res.status, 202, `signed with ${secret}`);
    await res.body?.cancel();
  }
  await expectError(
    await h.handle(await deliveryRequest({ secret: "older" })),
    401,
    "bad_signature",
  );
});

Deno.test("payloads that are not a JSON object → 400 invalid_payload", async (t) => {
  const h = await harness();
  const rows: [string, Uint8Array<ArrayBuffer>, string?][] = [
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d])],
    ["invalid JSON", encoder.encode("{nope")],
    ["an array", encoder.encode("[1,2]")],
    ["null", encoder.encode("null")],
    ["a string", encoder.encode('"zen"')],
    ["empty", new Uint8Array(0)],
    [
      "a form without payload",
      encoder.encode("other=1"),
      "application/x-www-form-urlencoded",
    ],
  ];
  for (const [name, body, contentType] of rows) {
    await t.step(name, async () => {
      const req = await deliveryRequest({
        body,
        ...(contentType ? { contentType } : {}),
      });
      await expectError(await h.handle(req), 400, "invalid_payload");
    });
  }
});

Deno.test("a store failure is 503 unavailable and nothing is acknowledged", async () => {
  const h = await harness({
    accept: () => Promise.reject(new Error("disk full")),
  });
  const res = await h.handle(await deliveryRequest());
  assert.ok(res.headers.get("retry-after"));
  await expectError(res, 503, "unavailable");
  const line = h.logs.lines.find((l) =>
    l.msg === "delivery could not be stored"
  );
  assert.ok(line, "the failure is logged");
});

Deno.test("checks run in the contract's order", async (t) => {
  const h = await harness({ env: { MAX_BODY_BYTES: "10" } });
  await t.step("bad header beats bad content type", async () => {
    const req = await deliveryRequest({
      contentType: "text/plain",
      headers: { "x-github-event": "a\u0001" },
    });
    await expectError(await h.handle(req), 400, "bad_header");
  });
  await t.step("bad content type beats oversize body", async () => {
    const req = await deliveryRequest({
      contentType: "text/plain",
      body: "x".repeat(100),
    });
    await expectError(await h.handle(req), 415, "unsupported_media_type");
  });
  await t.step("oversize body beats bad signature", async () => {
    const req = await deliveryRequest({
      body: "x".repeat(100),
      signature: "sha256=00",
    });
    await expectError(await h.handle(req), 413, "payload_too_large");
  });
  await t.step("bad signature beats invalid payload", async () => {
    const req = await deliveryRequest({ body: "[]", signature: "sha256=00" });
    await expectError(await h.handle(req), 401, "bad_signature");
  });
});

Deno.test("IP allowlist", async (t) => {
  let ready = false;
  const allowed = parseIp("192.30.252.1")!;
  const allowlist: Allowlist = {
    isReady: () => ready,
    isAllowed: (ip) =>
      ready && ip.version === allowed.version && ip === ip &&
      JSON.stringify(ip) === JSON.stringify(allowed),
  };
  const h = await harness({
    allowlist,
    env: { TRUSTED_PROXIES: "10.0.0.0/8" },
  });
  await t.step(
    "503 not_ready with Retry-After while no list was ever loaded",
    async () => {
      const res = await h.handle(await deliveryRequest(), "192.30.252.1");
      assert.ok(Number(res.headers.get("retry-after")) > 0);
      await expectError(res, 503, "not_ready");
    },
  );
  ready = true;
  await t.step("a GitHub address is let in", async () => {
    const res = await h.handle(await deliveryRequest(), "192.30.252.1");
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
  await t.step(
    "another address gets 403 ip_not_allowed before the body is read",
    async () => {
      const req = await deliveryRequest();
      const res = await h.handle(req, "203.0.113.9");
      await expectError(res, 403, "ip_not_allowed");
      assert.equal(req.bodyUsed, false);
    },
  );
  await t.step("an IPv4-mapped peer is its IPv4 address", async () => {
    const res = await h.handle(await deliveryRequest(), "::ffff:192.30.252.1");
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
  await t.step(
    "X-Forwarded-For from an untrusted peer is ignored",
    async () => {
      const req = await deliveryRequest({
        headers: { "x-forwarded-for": "192.30.252.1" },
      });
      await expectError(
        await h.handle(req, "203.0.113.9"),
        403,
        "ip_not_allowed",
      );
    },
  );
  await t.step("X-Forwarded-For from a trusted proxy is believed", async () => {
    const req = await deliveryRequest({
      headers: { "x-forwarded-for": "192.30.252.1" },
    });
    const res = await h.handle(req, "10.1.2.3");
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });
  await t.step("a malformed hop is not allowed", async () => {
    const req = await deliveryRequest({
      headers: { "x-forwarded-for": "192.30.252.1, junk" },
    });
    await expectError(await h.handle(req, "10.1.2.3"), 403, "ip_not_allowed");
  });
  await t.step("the IP check comes before the header checks", async () => {
    const req = await deliveryRequest({
      headers: { "x-github-event": "a\u0001" },
    });
    await expectError(
      await h.handle(req, "203.0.113.9"),
      403,
      "ip_not_allowed",
    );
  });
});

Deno.test("/healthz, /readyz and /metrics", async (t) => {
  const h = await harness();
  await t.step("/healthz is 200", async () => {
    const res = await h.handle(new Request("http://x/healthz"));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });
  await t.step("/metrics is Prometheus text", async () => {
    const res = await h.handle(new Request("http://x/metrics"));
    assert.equal(res.status, 200);
    assert.match(
      res.headers.get("content-type") ?? "",
      /^text\/plain; version=0\.0\.4/,
    );
    const text = await res.text();
    assert.match(text, /# TYPE webhook_requests_total counter/);
  });
});

Deno.test("a rejected request never logs the signature or the payload", async () => {
  const h = await harness();
  const body = '{"secret_value":"do-not-log"}';
  const req = await deliveryRequest({
    body,
    signature: "sha256=" + "ab".repeat(32),
  });
  (await h.handle(req)).body?.cancel();
  (await h.handle(await deliveryRequest({ body }))).body?.cancel();
  const all = h.logs.raw.join("\n");
  assert.ok(!all.includes("do-not-log"));
  assert.ok(!all.includes("abababab"));
  assert.ok(!all.includes(SECRET));
});

Deno.test("a store that does not answer in time is 503 unavailable", async () => {
  const config = testConfig();
  const logs = captureLogger();
  let settle: () => void = () => {};
  const handler = createHandler({
    config,
    keys: await importSecrets(config.secrets),
    allowlist: null,
    accept: () =>
      new Promise((resolve) => {
        settle = () => resolve({ status: "queued", id: "late" });
      }),
    log: logs.log,
    metrics: createMetrics(),
    acceptTimeoutMs: 30,
  });
  const res = await handler(await deliveryRequest(), fakeInfo());
  settle();
  await expectError(res, 503, "unavailable");
});

Deno.test("the same body signed with the previous and the current secret is one delivery", async () => {
  const h = await harness({
    env: {
      GITHUB_WEBHOOK_SECRET: NEW_SECRET,
      GITHUB_WEBHOOK_SECRET_PREVIOUS: "old",
    },
  });
  const body = '{"captured":"before the rotation"}';
  const first = await h.handle(
    await deliveryRequest({ id: "a", body, secret: "old" }),
  );
  assert.equal(first.status, 202);
  await first.body?.cancel();
  const again = await h.handle(
    await deliveryRequest({ id: "b", body, secret: NEW_SECRET }),
  );
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), { status: "duplicate", delivery: "a" });
});

Deno.test("pathOf() takes the path as sent, without the query or fragment", async (t) => {
  const rows: [string, string][] = [
    ["http://127.0.0.1:8000/webhook", "/webhook"],
    ["http://127.0.0.1:8000/webhook?x=1", "/webhook"],
    ["http://[::1]:8000/webhook#frag", "/webhook"],
    ["http://h/a/b?c/d", "/a/b"],
    ["http://h", "/"],
    ["http://h/%77ebhook", "/%77ebhook"],
  ];
  for (const [url, path] of rows) {
    await t.step(url, () => assert.equal(pathOf(url), path));
  }
});

Deno.test("createHandler() sizes body buffers within the bodyBudget it is given", async () => {
  const config = testConfig({ BODY_TIMEOUT_MS: "50" });
  const budget = createBodyBudget();
  const handler = createHandler({
    config,
    keys: await importSecrets(config.secrets),
    allowlist: null,
    accept: (d) => Promise.resolve({ status: "queued", id: d.id }),
    log: captureLogger().log,
    metrics: createMetrics(),
    bodyBudget: budget,
  });
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"zen":'));
    },
  });
  const answered = handler(
    new Request("http://x/webhook", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": "200000",
        "x-github-event": "ping",
        "x-github-delivery": "x",
      },
      body: stream,
    }),
    fakeInfo(),
  );
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(budget.allocatedAhead() > 0, "the declared length is reserved");
  await expectError(await answered, 408, "request_timeout");
  assert.equal(budget.allocatedAhead(), 0, "and given back");
});
