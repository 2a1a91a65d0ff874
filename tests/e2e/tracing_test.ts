// End to end: OpenTelemetry traces from a real hookgate process run with
// OTEL_DENO=true, exported by Deno over OTLP/HTTP JSON to a fake collector
// on loopback. One delivery is one trace: Deno.serve's span of the request
// (with hookgate's verify and store spans inside), and, across the 202, the
// worker's run span, a child of that request's span and linked to it, with
// a span per handler (the ctx.github request nested inside it), script and
// forward. A retried delivery has one run span per attempt. No secret, token,
// signature or payload text is anywhere in the export, and the log lines of
// a run carry its trace id.

import assert from "node:assert/strict";
import {
  type CollectedSpan,
  type Collector,
  startCollector,
} from "../fixtures/otlp_collector.ts";
import { startFakeGitHub } from "../fixtures/fake_github.ts";
import {
  deliveryRequest,
  SECRET,
  type ServerProcess,
  startServer,
  waitFor,
} from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SERVER = new URL("../fixtures/tracing_server.ts", import.meta.url)
  .pathname;
const GITHUB_TOKEN = "ghp_tracingTestToken0123456789abcdef";
const ADMIN_TOKEN = "admin-token-of-the-tracing-test";
const FORWARD_SECRET = "forward-secret-of-the-tracing-test";
const MARKER = "payload-marker-5d1c9e";

/** OTLP's span kinds. */
const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const CONSUMER_KIND = 5;

interface World {
  collector: Collector;
  server: ServerProcess;
  /** Signature header values sent, which must not be exported either. */
  signatures: string[];
  forwarded: Headers[];
  /** The forward target's name in reports and spans. */
  forwardName: string;
}

/** A hookgate with telemetry on, a fake GitHub, a forward target and a script. */
async function withWorld(run: (world: World) => Promise<void>) {
  const root = await Deno.realPath(
    await Deno.makeTempDir({ prefix: "hookgate-tracing-" }),
  );
  const hooks = `${root}/hooks`;
  await Deno.mkdir(hooks);
  await Deno.writeTextFile(
    `${hooks}/issues`,
    "#!/bin/sh\necho script ran\n",
  );
  await Deno.chmod(`${hooks}/issues`, 0o755);
  await using github = await startFakeGitHub({ personalToken: GITHUB_TOKEN });
  github.route(
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    () => ({ status: 201, body: { id: 1 } }),
  );
  const forwarded: Headers[] = [];
  await using target = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.body?.cancel();
      forwarded.push(request.headers);
      return new Response(null, { status: 204 });
    },
  );
  await using collector = startCollector();
  const server = await startServer({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    KV_PATH: ":memory:",
    ADMIN_TOKEN,
    GITHUB_TOKEN,
    GITHUB_API_URL: github.url,
    HOOKS_DIR: hooks,
    TMPDIR: root,
    FORWARD_URLS: `http://127.0.0.1:${target.addr.port}/hook`,
    FORWARD_SECRET,
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_SERVICE_NAME: "hookgate-test",
  }, {
    cwd: root,
    entry: SERVER,
    extraFlags: [
      "--allow-run",
      `--allow-read=${hooks},${ROOT}tests/fixtures`,
      `--allow-write=${root}`,
    ],
  });
  try {
    await run({
      collector,
      server,
      signatures: [],
      forwarded,
      forwardName: `forward:127.0.0.1:${target.addr.port}`,
    });
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** Posts a signed delivery, keeping its signature to look for later. */
async function post(
  world: World,
  event: string,
  body: Record<string, unknown>,
): Promise<string> {
  const id = crypto.randomUUID();
  const request = await deliveryRequest({
    url: `${world.server.url}/webhook`,
    event,
    id,
    body: JSON.stringify(body),
  });
  world.signatures.push(request.headers.get("x-hub-signature-256")!);
  const res = await fetch(request);
  await res.body?.cancel();
  assert.equal(res.status, 202);
  return id;
}

async function detailOf(
  world: World,
  id: string,
): Promise<{ status: string; traceId?: string }> {
  const res = await fetch(`${world.server.url}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return await res.json();
}

async function statusOf(world: World, id: string): Promise<string> {
  return (await detailOf(world, id)).status;
}

/** The spans of `delivery`'s trace, once the server exported them (it flushes at exit). */
async function traceOf(world: World, delivery: string) {
  await world.server.stop();
  const spans = await waitFor(
    () => {
      const all = world.collector.spans();
      return all.some((s) => s.attributes["github.delivery"] === delivery)
        ? all
        : null;
    },
    10_000,
    "the exported spans",
  );
  const receive = spans.find((s) =>
    s.kind === SERVER_KIND && s.attributes["github.delivery"] === delivery
  );
  assert.ok(receive, "Deno.serve's span names the delivery");
  const inTrace = spans.filter((s) => s.traceId === receive.traceId);
  const named = (name: string) => inTrace.filter((s) => s.name === name);
  const childrenOf = (parent: CollectedSpan) =>
    inTrace.filter((s) => s.parentSpanId === parent.spanId);
  return { spans, receive, inTrace, named, childrenOf };
}

Deno.test("tracing: one delivery is one trace, its run linked to the request across the 202, with handler, script and forward spans and no secret exported", async () => {
  await withWorld(async (world) => {
    const id = await post(world, "issues", {
      action: "opened",
      issue: { number: 7, title: MARKER, user: { login: "monalisa" } },
      repository: {
        name: "hello-world",
        full_name: "octo-org/hello-world",
        owner: { login: "octo-org" },
      },
      sender: { login: "monalisa", type: "User" },
    });
    // A forged one: its request span is named after the route too.
    const forged = await deliveryRequest({
      url: `${world.server.url}/webhook`,
      event: "issues",
      signature: "sha256=" + "0".repeat(64),
    });
    const refused = await fetch(forged);
    await refused.body?.cancel();
    assert.equal(refused.status, 401);
    await waitFor(async () => await statusOf(world, id) === "done").catch(
      (err) => {
        throw new Error(`${err.message}:\n${world.server.lines.join("\n")}`);
      },
    );
    const { traceId } = await detailOf(world, id);
    const { spans, receive, named, childrenOf } = await traceOf(world, id);
    assert.equal(traceId, receive.traceId, "the admin API names the trace");

    // The receiving request: Deno's server span, named after the delivery.
    // Deno records the status as text, hookgate's spans as a number.
    assert.equal(
      String(receive.attributes["http.response.status_code"]),
      "202",
    );
    assert.equal(receive.attributes["github.event"], "issues");
    assert.equal(receive.attributes["github.action"], "opened");
    assert.equal(receive.name, "POST /webhook");
    assert.equal(receive.attributes["http.route"], "/webhook");
    const accept = childrenOf(receive).map((s) => s.name).sort();
    assert.deepEqual(accept, [
      "hookgate.run",
      "hookgate.store",
      "hookgate.verify",
    ]);
    const stored = named("hookgate.store")[0]!.attributes;
    assert.equal(stored["hookgate.outcome"], "accepted");
    assert.equal(stored["http.response.status_code"], 202);
    assert.equal(stored["github.delivery"], id);

    const forgedSpan = spans.find((s) =>
      s.kind === SERVER_KIND &&
      String(s.attributes["http.response.status_code"]) === "401"
    );
    assert.equal(forgedSpan?.name, "POST /webhook");
    assert.equal(forgedSpan?.attributes["github.delivery"], undefined);
    const verify = spans.find((s) =>
      s.name === "hookgate.verify" && s.parentSpanId === forgedSpan?.spanId
    );
    assert.deepEqual(verify?.status, { code: 2, message: "bad_signature" });

    // The run: in the same trace, a child of the request's span and linked to it.
    const [run, ...more] = named("hookgate.run");
    assert.ok(run, "a run span in the request's trace");
    assert.equal(more.length, 0);
    assert.equal(run.kind, CONSUMER_KIND);
    assert.equal(run.parentSpanId, receive.spanId);
    assert.deepEqual(run.links, [{
      traceId: receive.traceId,
      spanId: receive.spanId,
    }]);
    assert.deepEqual(
      {
        event: run.attributes["github.event"],
        action: run.attributes["github.action"],
        delivery: run.attributes["github.delivery"],
        attempt: run.attributes["hookgate.attempt"],
        outcome: run.attributes["hookgate.outcome"],
      },
      {
        event: "issues",
        action: "opened",
        delivery: id,
        attempt: 1,
        outcome: "done",
      },
    );

    // Its targets: the handler (in its isolate), the script, the forward.
    const targets = childrenOf(run).map((s) =>
      `${s.name} ${s.attributes["hookgate.handler"]} ${
        s.attributes["hookgate.outcome"]
      }`
    ).sort();
    assert.deepEqual(
      targets,
      [
        `hookgate.forward ${world.forwardName} ok`,
        "hookgate.handler issues.opened ok",
        "hookgate.script issues ok",
      ].sort(),
    );
    const handler = named("hookgate.handler")[0]!;
    assert.equal(handler.attributes["github.delivery"], id);
    assert.equal(handler.attributes["hookgate.attempt"], 1);

    // ctx.github's request is Deno's fetch span, inside the handler's span.
    const calls = childrenOf(handler).filter((s) => s.kind === CLIENT_KIND);
    assert.equal(calls.length, 1, "the comment request nests in the handler");
    assert.equal(calls[0]!.attributes["http.request.method"], "POST");
    assert.equal(
      String(calls[0]!.attributes["http.response.status_code"]),
      "201",
    );
    const forward = named("hookgate.forward")[0]!;
    assert.equal(forward.attributes["http.response.status_code"], 204);
    assert.equal(
      childrenOf(forward).filter((s) => s.kind === CLIENT_KIND).length,
      1,
    );
    assert.equal(
      named("hookgate.script")[0]!.attributes["process.exit.code"],
      0,
    );

    // Nothing secret in any span, log record or metric exported.
    const exported = world.collector.bodies.map((b) => b.text).join("\n");
    assert.ok(exported.includes(id), "the export is searchable");
    for (
      const secret of [
        SECRET,
        GITHUB_TOKEN,
        ADMIN_TOKEN,
        FORWARD_SECRET,
        MARKER,
        ...world.signatures,
      ]
    ) {
      assert.ok(!exported.includes(secret), `${secret} is not exported`);
    }
    assert.ok(spans.length > 0);

    // The run's log lines carry its trace id (and the handler's span's id).
    const logged = world.server.lines.flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
    const done = logged.find((l) =>
      l.msg === "delivery done" && l.delivery === id
    );
    assert.equal(done?.trace_id, run.traceId);
    assert.equal(done?.span_id, run.spanId);
    const commented = logged.find((l) => l.msg === "commented");
    assert.equal(commented?.trace_id, run.traceId);
    assert.equal(commented?.span_id, handler.spanId);
    // Deno's export of that line (written in the isolate, printed by the
    // server) names the handler's span too.
    const record = world.collector.logs().find((l) =>
      l.body.includes('"msg":"commented"')
    );
    assert.deepEqual(
      { traceId: record?.traceId, spanId: record?.spanId },
      { traceId: run.traceId, spanId: handler.spanId },
    );
  });
});

Deno.test("tracing: a retried delivery has one run span per attempt, each linked to the one request", async () => {
  await withWorld(async (world) => {
    const id = await post(world, "push", {
      ref: "refs/heads/main",
      fail_first: true,
      repository: { full_name: "octo-org/hello-world" },
    });
    await waitFor(async () => await statusOf(world, id) === "done");
    const on = await world.server.waitForLine(/tracing on/);
    assert.equal(JSON.parse(on).endpoint, world.collector.url);
    const { receive, named } = await traceOf(world, id);
    const runs = named("hookgate.run")
      .map((s) => ({
        attempt: s.attributes["hookgate.attempt"],
        outcome: s.attributes["hookgate.outcome"],
        status: s.status.code,
        parent: s.parentSpanId,
        links: s.links,
      }))
      .sort((a, b) => Number(a.attempt) - Number(b.attempt));
    const link = [{ traceId: receive.traceId, spanId: receive.spanId }];
    assert.deepEqual(runs, [
      {
        attempt: 1,
        outcome: "failed",
        status: 2,
        parent: receive.spanId,
        links: link,
      },
      {
        attempt: 2,
        outcome: "done",
        status: 0,
        parent: receive.spanId,
        links: link,
      },
    ]);
    const handlers = named("hookgate.handler").map((s) =>
      `${s.attributes["hookgate.attempt"]} ${s.attributes["hookgate.outcome"]}`
    ).sort();
    assert.deepEqual(handlers, ["1 error", "2 ok"]);
    // A failure is named by its step, never by its error's text.
    const failed = named("hookgate.handler").find((s) =>
      s.attributes["hookgate.outcome"] === "error"
    );
    assert.deepEqual(failed?.status, { code: 2, message: "Error" });
    const exported = world.collector.bodies
      .filter((b) => b.path === "/v1/traces")
      .map((b) => b.text).join("\n");
    assert.ok(!exported.includes("the first attempt fails"));
  });
});

Deno.test("tracing: a run in another process, after a restart, joins the trace of the request that stored it", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-tracing-restart-" });
  await using collector = startCollector();
  const env = (service: string, extra: Record<string, string> = {}) => ({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    KV_PATH: "./data/hookgate.kv",
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_SERVICE_NAME: service,
    ...extra,
  });
  const options = {
    cwd,
    entry: SERVER,
    extraFlags: [`--allow-read=${ROOT}tests/fixtures`],
  };
  const first = await startServer(
    env("hookgate-first", {
      TRACING_TEST_HANG: "1",
      HANDLER_TIMEOUT_MS: "2000",
    }),
    options,
  );
  const id = crypto.randomUUID();
  try {
    const request = await deliveryRequest({
      url: `${first.url}/webhook`,
      event: "push",
      id,
      body: JSON.stringify({ ref: "refs/heads/main" }),
    });
    const res = await fetch(request);
    await res.body?.cancel();
    assert.equal(res.status, 202);
  } finally {
    // Its run is cut short (or times out) while it shuts down: not done.
    await first.stop();
  }
  const second = await startServer(env("hookgate-second"), options);
  try {
    await second.waitForLine(
      new RegExp(`"msg":"delivery done","delivery":"${id}"`),
      10_000,
    );
  } finally {
    await second.stop();
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
  }
  const spans = await waitFor(
    () => {
      const all = collector.spans();
      return all.some((s) =>
          s.service === "hookgate-second" && s.name === "hookgate.run"
        )
        ? all
        : null;
    },
    10_000,
    "the second process's spans",
  );
  const receive = spans.find((s) =>
    s.service === "hookgate-first" && s.kind === SERVER_KIND &&
    s.attributes["github.delivery"] === id
  );
  assert.ok(receive, "the first process exported the request's span");
  const runs = spans.filter((s) =>
    s.name === "hookgate.run" && s.attributes["github.delivery"] === id
  );
  const later = runs.find((s) => s.service === "hookgate-second");
  assert.ok(later);
  assert.equal(later.traceId, receive.traceId);
  assert.equal(later.parentSpanId, receive.spanId);
  assert.deepEqual(later.links, [{
    traceId: receive.traceId,
    spanId: receive.spanId,
  }]);
  assert.equal(later.attributes["hookgate.outcome"], "done");
});
