/**
 * The telemetry rounds' OTLP sink (issue 17): an OTLP/HTTP receiver on
 * loopback that reads every body Deno exports (`POST /v1/traces`,
 * `/v1/logs`, `/v1/metrics`), discards it and answers 200 `{}`, counting
 * the POSTs, bytes and spans it got so that the report can say the spans
 * were exported. `GET /_stats` answers the counts as JSON.
 *
 * Run as a script (`deno run --allow-net=127.0.0.1 bench/load/otlp_sink.ts`)
 * it listens on a free port of 127.0.0.1 and prints `{"listening":port}`;
 * imported, it starts nothing. It keeps no body and parses none: spans are
 * counted by their `"startTimeUnixNano"` keys (one a span in OTLP's JSON;
 * links and events have none) and hookgate's by their `"name"` (an event
 * named `hookgate.*` would count too; hookgate records none), and a body
 * that is not identity-encoded JSON counts no span.
 *
 * @module
 */

/** What the sink has received since it started. */
export interface SinkCounts {
  /** POSTs received, by path. */
  posts: Record<string, number>;
  /** Body bytes received (as sent, before any decoding), by path. */
  bytes: Record<string, number>;
  /** Spans in the JSON bodies of `POST /v1/traces`. */
  spans: number;
  /** Of those, hookgate's own (`hookgate.*`), by name. */
  names: Record<string, number>;
}

/** The key every span of OTLP's JSON has once, and nothing else in a trace export does. */
const SPAN_KEY = '"startTimeUnixNano"';

/**
 * The spans in one OTLP/HTTP JSON trace export, counted by their
 * `"startTimeUnixNano"` keys without parsing it.
 *
 * @example
 * ```ts
 * import { countSpans } from "./otlp_sink.ts";
 * countSpans('{"spans":[{"startTimeUnixNano":"1"},{"startTimeUnixNano":"2"}]}'); // 2
 * ```
 */
export function countSpans(text: string): number {
  let n = 0;
  for (let at = text.indexOf(SPAN_KEY); at >= 0; n++) {
    at = text.indexOf(SPAN_KEY, at + SPAN_KEY.length);
  }
  return n;
}

/** A span name of hookgate's in OTLP's JSON (whitespace as Deno's exporter may put it). */
const HOOKGATE_NAME = /"name":\s*"(hookgate\.[A-Za-z_.]+)"/g;

/**
 * hookgate's spans (`hookgate.*`) in one OTLP/HTTP JSON trace export, by
 * name, added to `into`.
 *
 * @example
 * ```ts
 * import { countNames } from "./otlp_sink.ts";
 * countNames('[{"name": "hookgate.run"},{"name":"hookgate.run"},{"name":"POST"}]', {});
 * // { "hookgate.run": 2 }
 * ```
 */
export function countNames(
  text: string,
  into: Record<string, number>,
): Record<string, number> {
  for (const [, name] of text.matchAll(HOOKGATE_NAME)) {
    into[name!] = (into[name!] ?? 0) + 1;
  }
  return into;
}

/**
 * What `after` counted beyond `before` (paths absent from `before` count
 * from 0).
 *
 * @example
 * ```ts
 * import { sinkDelta } from "./otlp_sink.ts";
 * const zero = { posts: {}, bytes: {}, spans: 0, names: {} };
 * sinkDelta(zero, { ...zero, spans: 9, names: { "hookgate.run": 2 } });
 * // { posts: {}, bytes: {}, spans: 9, names: { "hookgate.run": 2 } }
 * ```
 */
export function sinkDelta(before: SinkCounts, after: SinkCounts): SinkCounts {
  const minus = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]),
    );
  return {
    posts: minus(before.posts, after.posts),
    bytes: minus(before.bytes, after.bytes),
    spans: after.spans - before.spans,
    names: minus(before.names, after.names),
  };
}

/** The sink's request handler and its counts. */
export interface Sink {
  handler(request: Request): Promise<Response>;
  counts(): SinkCounts;
}

/**
 * A sink: every POST is read to its end, counted and answered 200 `{}`;
 * `GET /_stats` answers the counts; anything else 404.
 *
 * @example
 * ```ts
 * import { createSink } from "./otlp_sink.ts";
 * const sink = createSink();
 * await sink.handler(new Request("http://x/v1/traces", { method: "POST", body: "{}" }));
 * sink.counts().posts; // { "/v1/traces": 1 }
 * ```
 */
export function createSink(): Sink {
  const counts: SinkCounts = { posts: {}, bytes: {}, spans: 0, names: {} };
  const decoder = new TextDecoder();
  return {
    async handler(request) {
      const path = new URL(request.url).pathname;
      if (request.method === "GET" && path === "/_stats") {
        return Response.json(counts);
      }
      if (request.method !== "POST") {
        await request.body?.cancel();
        return new Response(null, { status: 404 });
      }
      const body = new Uint8Array(await request.arrayBuffer());
      counts.posts[path] = (counts.posts[path] ?? 0) + 1;
      counts.bytes[path] = (counts.bytes[path] ?? 0) + body.byteLength;
      const type = request.headers.get("content-type") ?? "";
      const encoded = (request.headers.get("content-encoding") ?? "identity")
        .toLowerCase() !== "identity";
      if (path === "/v1/traces" && type.includes("json") && !encoded) {
        const text = decoder.decode(body);
        counts.spans += countSpans(text);
        countNames(text, counts.names);
      }
      return Response.json({});
    },
    counts: () => structuredClone(counts),
  };
}

if (import.meta.main) {
  const sink = createSink();
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ listening: port })),
  }, sink.handler);
}
