/**
 * Traces through Deno's built-in OpenTelemetry (`OTEL_DENO=true`): Deno
 * registers the OpenTelemetry API at
 * `globalThis[Symbol.for("opentelemetry.js.api.1")]` (its tracer, context
 * manager and propagator) and exports what is recorded there over OTLP, with
 * its own spans for `Deno.serve` and `fetch`. This module is the one place
 * that knows that object: it starts hookgate's spans, carries a span across
 * the `202` (a W3C `traceparent` stored with the record) and across an
 * isolate boundary (one posted with a message), and names the active span
 * for log lines.
 *
 * When telemetry is off the global is absent and every {@link Tracer} call
 * is a no-op on a shared object: nothing is recorded, and callers skip
 * building attributes (`tracer.enabled`).
 *
 * It does not decide what is safe to record: callers pass only names, ids,
 * counts and statuses (never a secret, a token, a payload, or an error's
 * text, which may quote one).
 *
 * @module
 */

/** Attribute values of a span; `undefined` ones are left out. */
export type SpanAttributes = Record<
  string,
  string | number | boolean | undefined
>;

/** A span hookgate started. */
export interface TraceSpan {
  /** Adds attributes (those `undefined` are left out). */
  set(attributes: SpanAttributes): void;
  /** Marks the span failed, with a message that names no secret. */
  fail(message: string): void;
  /** Runs `fn` with this span as the active one (its children's parent). */
  run<T>(fn: () => T): T;
  end(): void;
  /** The span as a W3C `traceparent`; undefined when tracing is off. */
  readonly traceparent: string | undefined;
}

/** How a span relates to others ({@link Tracer.start}). */
export interface SpanOptions {
  /**
   * The parent, as a W3C `traceparent` (a span in another process, another
   * isolate, or before a restart); given as `undefined`, the span starts a
   * trace of its own. @default the active span
   */
  parent?: string | undefined;
  /** A span this one is linked to, as a W3C `traceparent`. */
  link?: string | undefined;
  /** `consumer` for a run of something received earlier. @default "internal" */
  kind?: "internal" | "consumer";
}

/** hookgate's view of Deno's tracer: a no-op when telemetry is off. */
export interface Tracer {
  /** Whether Deno's OpenTelemetry is on. */
  readonly enabled: boolean;
  /** The active span as a W3C `traceparent` (in a request: Deno.serve's span). */
  active(): string | undefined;
  /**
   * Adds attributes to the active span (in a request: Deno.serve's span),
   * and renames it when `name` is given.
   */
  annotate(attributes: SpanAttributes, name?: string): void;
  /** Starts a span; end it with {@link TraceSpan.end}. */
  start(
    name: string,
    attributes?: SpanAttributes,
    options?: SpanOptions,
  ): TraceSpan;
  /**
   * Runs `fn` in a new span, active while it runs and ended when it settles;
   * a rejection marks the span failed (and is passed on).
   */
  inSpan<T>(
    name: string,
    attributes: SpanAttributes,
    fn: (span: TraceSpan) => Promise<T>,
    options?: SpanOptions,
  ): Promise<T>;
  /**
   * Runs `fn` with the span `traceparent` names as the active parent, or
   * with none when it names none (as {@link Tracer.detached}).
   */
  within<T>(traceparent: string | undefined, fn: () => T): T;
  /**
   * Runs `fn` with no active span: timers and promises it starts do not
   * carry the caller's span (a request's) into work that outlives it.
   */
  detached<T>(fn: () => T): T;
  /** `trace_id` and `span_id` of the active span, for a log line. */
  ids(): { trace_id: string; span_id: string } | undefined;
}

/** The global Deno registers the OpenTelemetry API under. */
const API_KEY = Symbol.for("opentelemetry.js.api.1");
/** The context key the OpenTelemetry API keeps the active span under. */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");
/** `SpanStatusCode.ERROR` and the `SpanKind`s of the OpenTelemetry API. */
const STATUS_ERROR = 2;
const KINDS = { internal: 0, consumer: 4 } as const;
const INVALID_TRACE = "0".repeat(32);
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The parts of the OpenTelemetry API (as Deno registers it) used here. */
interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
  deleteValue(key: symbol): OtelContext;
}
interface OtelSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
}
interface OtelSpan {
  spanContext(): OtelSpanContext;
  setAttributes(attributes: Record<string, string | number | boolean>): void;
  setStatus(status: { code: number; message?: string }): void;
  updateName(name: string): void;
  end(): void;
}
interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): {
      startSpan(
        name: string,
        options: {
          attributes?: Record<string, string | number | boolean>;
          kind?: number;
          links?: { context: OtelSpanContext }[];
        },
        context?: OtelContext,
      ): OtelSpan;
    };
  };
  context: {
    active(): OtelContext;
    with<T>(context: OtelContext, fn: () => T): T;
  };
  propagation: {
    extract(
      context: OtelContext,
      carrier: Record<string, string>,
      getter: {
        get(c: Record<string, string>, k: string): string | undefined;
        keys(c: Record<string, string>): string[];
      },
    ): OtelContext;
  };
}

const NOOP_SPAN: TraceSpan = Object.freeze({
  set() {},
  fail() {},
  run: <T>(fn: () => T) => fn(),
  end() {},
  traceparent: undefined,
});

/**
 * The tracer of a process with telemetry off: every call does nothing.
 *
 * @example
 * ```ts
 * import { NO_TRACER } from "./tracing.ts";
 * await NO_TRACER.inSpan("step", {}, () => Promise.resolve(1)); // 1
 * NO_TRACER.active(); // undefined
 * ```
 */
export const NO_TRACER: Tracer = Object.freeze({
  enabled: false,
  active: () => undefined,
  annotate() {},
  start: () => NOOP_SPAN,
  inSpan: <T>(
    _name: string,
    _attributes: SpanAttributes,
    fn: (span: TraceSpan) => Promise<T>,
  ) => fn(NOOP_SPAN),
  within: <T>(_traceparent: string | undefined, fn: () => T) => fn(),
  detached: <T>(fn: () => T) => fn(),
  ids: () => undefined,
});

/**
 * A span context as a W3C `traceparent`, or undefined for the invalid
 * (not recording) context.
 *
 * @example
 * ```ts
 * import { toTraceparent } from "./tracing.ts";
 * toTraceparent({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 });
 * // "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
 * ```
 */
export function toTraceparent(
  context: OtelSpanContext | undefined,
): string | undefined {
  if (context === undefined || context.traceId === INVALID_TRACE) {
    return undefined;
  }
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/**
 * Whether `value` is a W3C `traceparent` this module writes (version 00): a
 * stored record's value is checked before it is trusted as a parent.
 *
 * @example
 * ```ts
 * import { isTraceparent } from "./tracing.ts";
 * isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); // true
 * isTraceparent("not one"); // false
 * ```
 */
export function isTraceparent(value: unknown): value is string {
  return typeof value === "string" && TRACEPARENT.test(value);
}

/**
 * The trace id a stored `traceparent` names, or undefined when it is not one.
 *
 * @example
 * ```ts
 * import { traceIdOf } from "./tracing.ts";
 * traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); // "4bf92f3577b34da6a3ce929d0e0e4736"
 * ```
 */
export function traceIdOf(traceparent: unknown): string | undefined {
  return isTraceparent(traceparent) ? traceparent.slice(3, 35) : undefined;
}

/** `attributes` without its undefined values. */
function defined(
  attributes: SpanAttributes | undefined,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}

const GETTER = {
  get: (carrier: Record<string, string>, key: string) => carrier[key],
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
};

/**
 * The tracer over Deno's OpenTelemetry when it is on (`OTEL_DENO=true`),
 * else {@link NO_TRACER}. `api` is for tests.
 *
 * @example
 * ```ts
 * import { createTracer } from "./tracing.ts";
 * const tracer = createTracer();
 * tracer.enabled; // false unless the process runs with OTEL_DENO=true
 * ```
 */
export function createTracer(
  api: unknown = (globalThis as Record<symbol, unknown>)[API_KEY],
): Tracer {
  if (typeof api !== "object" || api === null) return NO_TRACER;
  const otel = api as OtelApi;
  const tracer = otel.trace.getTracer("hookgate");

  const activeSpan = () =>
    otel.context.active().getValue(SPAN_KEY) as OtelSpan | undefined;
  /** The context whose active span is the one `traceparent` names. */
  const contextOf = (traceparent: string | undefined): OtelContext => {
    const base = otel.context.active().deleteValue(SPAN_KEY);
    return isTraceparent(traceparent)
      ? otel.propagation.extract(base, { traceparent }, GETTER)
      : base;
  };
  const spanContextOf = (traceparent: string | undefined) =>
    (contextOf(traceparent).getValue(SPAN_KEY) as OtelSpan | undefined)
      ?.spanContext();

  function wrap(span: OtelSpan): TraceSpan {
    return {
      set: (attributes) => span.setAttributes(defined(attributes)),
      fail: (message) => span.setStatus({ code: STATUS_ERROR, message }),
      run: (fn) =>
        otel.context.with(otel.context.active().setValue(SPAN_KEY, span), fn),
      end: () => span.end(),
      get traceparent() {
        return toTraceparent(span.spanContext());
      },
    };
  }

  function start(
    name: string,
    attributes?: SpanAttributes,
    options: SpanOptions = {},
  ): TraceSpan {
    const linked = options.link === undefined
      ? undefined
      : spanContextOf(options.link);
    const span = tracer.startSpan(
      name,
      {
        attributes: defined(attributes),
        kind: KINDS[options.kind ?? "internal"],
        ...(linked ? { links: [{ context: linked }] } : {}),
      },
      "parent" in options ? contextOf(options.parent) : otel.context.active(),
    );
    return wrap(span);
  }

  return {
    enabled: true,
    active: () => toTraceparent(activeSpan()?.spanContext()),
    annotate(attributes, name) {
      const span = activeSpan();
      span?.setAttributes(defined(attributes));
      if (name !== undefined) span?.updateName(name);
    },
    start,
    async inSpan(name, attributes, fn, options) {
      const span = start(name, attributes, options);
      try {
        return await span.run(() => fn(span));
      } catch (err) {
        span.fail(err instanceof Error ? err.name : "error");
        throw err;
      } finally {
        span.end();
      }
    },
    within: (traceparent, fn) => otel.context.with(contextOf(traceparent), fn),
    detached: (fn) => otel.context.with(contextOf(undefined), fn),
    ids() {
      const context = activeSpan()?.spanContext();
      if (context === undefined || context.traceId === INVALID_TRACE) {
        return undefined;
      }
      return { trace_id: context.traceId, span_id: context.spanId };
    },
  };
}

/**
 * Names what a forward or a script came to on its span: ok, error or
 * timeout, the HTTP status or the exit code; a failure's status message is
 * made of those (never the error's own text, which may quote a URL or the
 * payload).
 *
 * @example
 * ```ts
 * import { endTargetSpan, NO_TRACER } from "./tracing.ts";
 * endTargetSpan(NO_TRACER.start("x"), { ok: false, timedOut: false, status: 500, error: "answered 500" });
 * ```
 */
export function endTargetSpan(
  span: TraceSpan,
  report: {
    ok: boolean;
    timedOut: boolean;
    status?: number;
    exitCode?: number | null;
    error?: string;
  },
): void {
  span.set({
    "hookgate.outcome": report.ok
      ? "ok"
      : report.timedOut
      ? "timeout"
      : "error",
    "http.response.status_code": report.status,
    "process.exit.code": report.exitCode ?? undefined,
  });
  // Only words of our own: an error's text may quote a URL or the payload.
  if (report.ok) return;
  span.fail(
    report.timedOut
      ? "timed out"
      : report.status !== undefined
      ? `answered ${report.status}`
      : typeof report.exitCode === "number"
      ? `exited ${report.exitCode}`
      : "failed",
  );
}
