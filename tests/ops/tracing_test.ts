// lib/ops/tracing.ts against a recording stand-in for the OpenTelemetry API
// Deno registers (the real one is exercised end to end in
// tests/e2e/tracing_test.ts), the no-op tracer of a process with telemetry
// off, and the trace ids of log lines.

import assert from "node:assert/strict";
import {
  createTracer,
  endTargetSpan,
  NO_TRACER,
} from "../../lib/ops/tracing.ts";
import { createLogger } from "../../lib/ops/log.ts";
import { createApp } from "../../lib/app.ts";
import { deliveryDetail } from "../../lib/ops/admin.ts";
import { captureLogger, postDelivery, testConfig } from "../_helpers.ts";

const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");
const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** A context: an immutable map, as the API's. */
class FakeContext {
  constructor(readonly values = new Map<symbol, unknown>()) {}
  getValue(key: symbol) {
    return this.values.get(key);
  }
  setValue(key: symbol, value: unknown) {
    return new FakeContext(new Map(this.values).set(key, value));
  }
  deleteValue(key: symbol) {
    const next = new Map(this.values);
    next.delete(key);
    return new FakeContext(next);
  }
}

interface FakeSpan {
  name: string;
  options: {
    attributes?: Record<string, unknown>;
    kind?: number;
    links?: { context: { traceId: string; spanId: string } }[];
  };
  parent: { traceId: string; spanId: string } | undefined;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string } | undefined;
  ended: boolean;
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
  setAttributes(a: Record<string, unknown>): void;
  setStatus(s: { code: number; message?: string }): void;
  end(): void;
}

/** The API's shape, recording each span it starts. */
function fakeApi() {
  const spans: FakeSpan[] = [];
  let active = new FakeContext();
  let next = 1;
  const remote = (traceparent: string) => {
    const [, traceId, spanId] = traceparent.split("-");
    return { spanContext: () => ({ traceId, spanId, traceFlags: 1 }) };
  };
  const api = {
    trace: {
      getTracer: () => ({
        startSpan(
          name: string,
          options: FakeSpan["options"],
          context: FakeContext,
        ) {
          const parent = (context.getValue(SPAN_KEY) as FakeSpan | undefined)
            ?.spanContext();
          const id = (next++).toString(16).padStart(16, "0");
          const span: FakeSpan = {
            name,
            options,
            parent: parent && {
              traceId: parent.traceId,
              spanId: parent.spanId,
            },
            attributes: { ...options.attributes },
            status: undefined,
            ended: false,
            spanContext: () => ({
              traceId: parent?.traceId ?? "a".repeat(32),
              spanId: id,
              traceFlags: 1,
            }),
            setAttributes(a) {
              Object.assign(span.attributes, a);
            },
            setStatus(s) {
              span.status = s;
            },
            end() {
              span.ended = true;
            },
          };
          spans.push(span);
          return span;
        },
      }),
    },
    context: {
      active: () => active,
      with<T>(context: FakeContext, fn: () => T): T {
        const before = active;
        active = context;
        try {
          return fn();
        } finally {
          active = before;
        }
      },
    },
    propagation: {
      extract: (
        context: FakeContext,
        carrier: Record<string, string>,
      ) => context.setValue(SPAN_KEY, remote(carrier.traceparent!)),
    },
  };
  return { api, spans };
}

Deno.test("createTracer() is the no-op tracer when Deno's OpenTelemetry is off", async () => {
  assert.equal(createTracer(undefined), NO_TRACER);
  assert.equal(
    createTracer(),
    NO_TRACER,
    "this test process runs without OTEL_DENO",
  );
  assert.equal(NO_TRACER.enabled, false);
  assert.equal(NO_TRACER.start("x").traceparent, undefined);
  assert.equal(await NO_TRACER.inSpan("x", {}, () => Promise.resolve(7)), 7);
  assert.equal(NO_TRACER.within(PARENT, () => 8), 8);
  assert.equal(NO_TRACER.ids(), undefined);
});

Deno.test("start() takes a stored traceparent as its parent and its link, and drops undefined attributes", () => {
  const { api, spans } = fakeApi();
  const tracer = createTracer(api);
  const span = tracer.start("hookgate.run", {
    "github.event": "push",
    "github.action": undefined,
  }, { parent: PARENT, link: PARENT, kind: "consumer" });
  const [started] = spans;
  assert.deepEqual(started!.parent, {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
  });
  assert.deepEqual(started!.options.links?.map((l) => l.context.spanId), [
    "00f067aa0ba902b7",
  ]);
  assert.equal(started!.options.kind, 4);
  assert.deepEqual(started!.attributes, { "github.event": "push" });
  assert.equal(
    span.traceparent,
    `00-4bf92f3577b34da6a3ce929d0e0e4736-${started!.spanContext().spanId}-01`,
  );
});

Deno.test("start() with an explicit undefined or malformed parent begins a trace of its own", () => {
  const { api, spans } = fakeApi();
  const tracer = createTracer(api);
  tracer.start("outer").run(() => {
    tracer.start("inner");
    tracer.start("own", {}, { parent: undefined });
    tracer.start("bad", {}, { parent: "00-nope", link: "also not one" });
  });
  const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
  assert.equal(
    byName.inner!.parent?.spanId,
    byName.outer!.spanContext().spanId,
  );
  assert.equal(byName.own!.parent, undefined);
  assert.equal(byName.bad!.parent, undefined);
  assert.equal(byName.bad!.options.links, undefined);
});

Deno.test("inSpan() makes its span active, ends it, and marks a rejection failed without its message", async () => {
  const { api, spans } = fakeApi();
  const tracer = createTracer(api);
  const seen = await tracer.inSpan("step", {}, () => {
    return Promise.resolve(tracer.active());
  });
  assert.equal(
    seen,
    `00-${"a".repeat(32)}-${spans[0]!.spanContext().spanId}-01`,
  );
  assert.ok(spans[0]!.ended);
  await assert.rejects(
    tracer.inSpan(
      "boom",
      {},
      () => Promise.reject(new TypeError("secret-ish")),
    ),
    TypeError,
  );
  assert.deepEqual(spans[1]!.status, { code: 2, message: "TypeError" });
  assert.ok(spans[1]!.ended);
  assert.equal(tracer.active(), undefined, "nothing active afterwards");
});

Deno.test("within() runs with the named span as parent, detached() with none; ids() names the active span", () => {
  const { api, spans } = fakeApi();
  const tracer = createTracer(api);
  assert.equal(tracer.ids(), undefined);
  tracer.within(PARENT, () => {
    assert.deepEqual(tracer.ids(), {
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
      span_id: "00f067aa0ba902b7",
    });
    tracer.start("child");
  });
  assert.equal(spans[0]!.parent?.spanId, "00f067aa0ba902b7");
  assert.equal(tracer.within("garbage", () => tracer.ids()), undefined);
  tracer.within(PARENT, () => {
    assert.equal(tracer.detached(() => tracer.ids()), undefined);
    tracer.detached(() => tracer.start("detached"));
  });
  assert.equal(spans[1]!.parent, undefined, "no parent when detached");
});

Deno.test("endTargetSpan() names a forward's or a script's outcome and fails it in words of its own", () => {
  const { api, spans } = fakeApi();
  const tracer = createTracer(api);
  endTargetSpan(tracer.start("f"), {
    ok: false,
    timedOut: true,
    error: "timed out after 5 ms",
  });
  endTargetSpan(tracer.start("s"), { ok: true, timedOut: false, exitCode: 0 });
  assert.deepEqual(spans[0]!.attributes, { "hookgate.outcome": "timeout" });
  assert.deepEqual(spans[0]!.status, { code: 2, message: "timed out" });
  assert.deepEqual(spans[1]!.attributes, {
    "hookgate.outcome": "ok",
    "process.exit.code": 0,
  });
  assert.equal(spans[1]!.status, undefined);
  endTargetSpan(tracer.start("f2"), {
    ok: false,
    timedOut: false,
    error: "error sending request for url (http://t.test/?token=abc)",
  });
  endTargetSpan(tracer.start("f3"), {
    ok: false,
    timedOut: false,
    status: 500,
  });
  endTargetSpan(tracer.start("s2"), {
    ok: false,
    timedOut: false,
    exitCode: 3,
  });
  assert.deepEqual(spans.slice(2).map((s) => s.status?.message), [
    "failed",
    "answered 500",
    "exited 3",
  ]);
});

Deno.test("log lines carry the active span's ids, unless a line names its own trace_id", () => {
  const lines: string[] = [];
  let ids: Record<string, string> | undefined = {
    trace_id: "t1",
    span_id: "s1",
  };
  const log = createLogger({
    write: (l) => lines.push(l),
    now: () => 0,
    traceIds: () => ids,
  });
  log.info("in a span");
  log.info("relayed", { trace_id: undefined });
  ids = undefined;
  log.info("outside");
  const parsed = lines.map((l) => JSON.parse(l));
  assert.deepEqual(
    parsed.map((p) => [p.msg, p.trace_id, p.span_id]),
    [["in a span", "t1", "s1"], ["relayed", undefined, undefined], [
      "outside",
      undefined,
      undefined,
    ]],
  );
});

Deno.test("with telemetry off a stored delivery keeps no trace context", async () => {
  const logs = captureLogger("info");
  const app = await createApp({
    config: testConfig(),
    log: logs.log,
    registry: {},
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    const res = await postDelivery(`http://127.0.0.1:${server.addr.port}`, {
      id: "untraced",
    });
    assert.equal(res.status, 202);
    const record = await app.store.get("untraced");
    assert.ok(record);
    assert.equal("trace" in record, false);
    assert.equal(logs.lines.some((l) => "trace_id" in l), false);
  } finally {
    await server.shutdown();
    await app.close(1000);
  }
});

Deno.test("deliveryDetail() names the trace of a traced record, and none for a malformed one", () => {
  const record = {
    id: "d1",
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    repository: undefined,
    sender: undefined,
    kind: "json",
    digest: "",
    size: 2,
    upload: "u",
    chunks: 1,
    status: "done",
    attempts: 1,
    attemptLimit: 5,
    receivedAt: 0,
    updatedAt: 0,
    startedAt: null,
    finishedAt: null,
    dueAt: 0,
    durationMs: null,
    error: null,
    replays: 0,
  } as const;
  assert.equal(
    deliveryDetail({ ...record, trace: PARENT }).traceId,
    "4bf92f3577b34da6a3ce929d0e0e4736",
  );
  assert.equal("traceId" in deliveryDetail(record), false);
  assert.equal(
    "traceId" in deliveryDetail({ ...record, trace: "00-zz" }),
    false,
  );
});
