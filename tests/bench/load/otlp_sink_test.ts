import assert from "node:assert/strict";
import {
  countNames,
  countSpans,
  createSink,
  type SinkCounts,
  sinkDelta,
} from "../../../bench/load/otlp_sink.ts";

/** An OTLP/HTTP JSON trace export of spans named `names`, as Deno pretty-prints it, with a link. */
function traceExport(names: string[]): string {
  return JSON.stringify(
    {
      resourceSpans: [{
        resource: { attributes: [{ key: "service.name", value: {} }] },
        scopeSpans: [{
          scope: { name: "hookgate", version: "" },
          spans: names.map((name, i) => ({
            traceId: "0".repeat(31) + i,
            spanId: "1".repeat(15) + i,
            parentSpanId: "",
            name,
            startTimeUnixNano: "1",
            endTimeUnixNano: "2",
            attributes: [{
              key: "github.event",
              value: { stringValue: "hookgate.push" },
            }],
            events: [{ timeUnixNano: "1", name: "exception" }],
            links: [{ traceId: "2".repeat(32), spanId: "3".repeat(16) }],
          })),
        }],
      }],
    },
    null,
    2,
  );
}

Deno.test("countSpans() counts one a span, not its links, events or attributes", () => {
  assert.equal(countSpans(traceExport([])), 0);
  assert.equal(
    countSpans(traceExport(["POST /webhook", "hookgate.run", "hookgate.run"])),
    3,
  );
  assert.equal(countSpans("not json"), 0);
});

Deno.test("countNames() counts hookgate's span names only, with or without spaces", () => {
  const text = traceExport(["POST /webhook", "hookgate.run", "hookgate.run"]) +
    '{"name":"hookgate.store"}';
  assert.deepEqual(countNames(text, {}), {
    "hookgate.run": 2,
    "hookgate.store": 1,
  });
  assert.deepEqual(
    countNames('{"name": "hookgate.run"}', { "hookgate.run": 4 }),
    {
      "hookgate.run": 5,
    },
  );
});

Deno.test("sinkDelta() subtracts every count, a path new in after counting from 0", () => {
  const before: SinkCounts = {
    posts: { "/v1/traces": 2 },
    bytes: { "/v1/traces": 100 },
    spans: 10,
    names: { "hookgate.run": 3 },
  };
  const after: SinkCounts = {
    posts: { "/v1/traces": 5, "/v1/metrics": 1 },
    bytes: { "/v1/traces": 400, "/v1/metrics": 7 },
    spans: 25,
    names: { "hookgate.run": 4, "hookgate.store": 2 },
  };
  assert.deepEqual(sinkDelta(before, after), {
    posts: { "/v1/traces": 3, "/v1/metrics": 1 },
    bytes: { "/v1/traces": 300, "/v1/metrics": 7 },
    spans: 15,
    names: { "hookgate.run": 1, "hookgate.store": 2 },
  });
});

Deno.test("createSink() answers OTLP POSTs 200 {} on a real server and counts them in /_stats", async () => {
  const sink = createSink();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    sink.handler,
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const traces = traceExport(["POST /webhook", "hookgate.verify"]);
  const post = async (path: string, body: string, type: string) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": type },
      body,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  };
  await post("/v1/traces", traces, "application/json");
  await post("/v1/traces", traces, "application/json");
  await post("/v1/metrics", '{"startTimeUnixNano":"1"}', "application/json");
  // Protobuf is counted, not searched.
  await post("/v1/traces", '"startTimeUnixNano"', "application/x-protobuf");
  const res = await fetch(`${url}/_stats`);
  const stats = await res.json() as SinkCounts;
  assert.deepEqual(stats, sink.counts());
  assert.deepEqual(stats.posts, { "/v1/traces": 3, "/v1/metrics": 1 });
  assert.equal(
    stats.bytes["/v1/traces"],
    2 * new TextEncoder().encode(traces).byteLength + 19,
  );
  assert.equal(stats.spans, 4);
  assert.deepEqual(stats.names, { "hookgate.verify": 2 });
  const other = await fetch(`${url}/v1/traces`);
  await other.body?.cancel();
  assert.equal(other.status, 404);
});

Deno.test("createSink() hands out copies of its counts", async () => {
  const sink = createSink();
  const first = sink.counts();
  await sink.handler(
    new Request("http://x/v1/logs", { method: "POST", body: "{}" }),
  );
  assert.deepEqual(first.posts, {});
  assert.deepEqual(sink.counts().posts, { "/v1/logs": 1 });
});

Deno.test("bench/load/otlp_sink.ts run as a script says where it listens", async () => {
  const script = new URL("../../../bench/load/otlp_sink.ts", import.meta.url)
    .pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", script],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const port = (JSON.parse(value!.trim()) as { listening: number }).listening;
    const res = await fetch(`http://127.0.0.1:${port}/_stats`);
    assert.deepEqual(await res.json(), {
      posts: {},
      bytes: {},
      spans: 0,
      names: {},
    });
  } finally {
    child.kill("SIGTERM");
    await child.stdout.cancel().catch(() => {});
    await child.status;
  }
});
