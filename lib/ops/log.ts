/**
 * Structured logging: a small {@link Logger} interface and a console logger
 * that writes one JSON object a line (`LOG_FORMAT=json`) or a readable line
 * (`pretty`). This is the only module in `lib/` that touches `console`. A line
 * written inside a traced span carries its `trace_id` and `span_id`.
 *
 * It does not decide what is safe to log: callers pass only allowlisted
 * fields. It does escape control characters in every string it prints, so a
 * payload string can never forge a log line.
 *
 * @module
 */

import { createTracer } from "./tracing.ts";

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Output formats of {@link createLogger}. */
export type LogFormat = "json" | "pretty";

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger; `child` returns one that adds `fields` to every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to `console.log` / `console.error` by level. */
  write?: (line: string, level: LogLevel) => void;
  /** Clock for the `time` field. */
  now?: () => number;
  /**
   * The ids of the active trace span, added to each line that does not
   * carry its own `trace_id`. @default Deno's active span, when tracing is on
   */
  traceIds?: () => LogFields | undefined;
}

const RESERVED = new Set(["time", "level", "msg"]);

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Escapes control characters (C0, DEL, C1, line/paragraph separators) as
 * `\uXXXX`, so untrusted text stays on one line.
 *
 * @example
 * ```ts
 * import { escapeControl } from "./log.ts";
 * escapeControl("a\nb"); // "a\\u000ab"
 * ```
 */
export function escapeControl(text: string): string {
  return text.replace(
    CONTROL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function defaultWrite(line: string, level: LogLevel): void {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message };
  }
  return value;
}

/**
 * `JSON.stringify` that never throws: a BigInt becomes its digits and a
 * value met again inside itself becomes `"[circular]"` (a field a handler
 * logs must not be able to end the process).
 *
 * @example
 * ```ts
 * import { safeJson } from "./log.ts";
 * const loop: Record<string, unknown> = { n: 10n };
 * loop.self = loop;
 * safeJson(loop); // '{"n":"10","self":"[circular]"}'
 * ```
 */
export function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    const ancestors: unknown[] = [];
    return JSON.stringify(value, function (this: unknown, _key, v: unknown) {
      if (typeof v === "bigint") return v.toString();
      if (typeof v !== "object" || v === null) return v;
      // `this` is the object holding v: drop the ancestors we have left.
      while (ancestors.length > 0 && ancestors.at(-1) !== this) {
        ancestors.pop();
      }
      if (ancestors.includes(v)) return "[circular]";
      ancestors.push(v);
      return v;
    });
  }
}

function formatPrettyValue(value: unknown): string {
  if (typeof value === "string") {
    const s = escapeControl(value);
    return /[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s;
  }
  if (value instanceof Error) return formatPrettyValue(value.message);
  const json = safeJson(value);
  return json === undefined ? String(value) : escapeControl(json);
}

/**
 * Creates a console logger honouring `LOG_LEVEL` and `LOG_FORMAT`.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ write: (l) => lines.push(l), now: () => 0 });
 * log.info("delivery done", { delivery: "abc" });
 * // lines[0] === '{"time":"1970-01-01T00:00:00.000Z","level":"info","msg":"delivery done","delivery":"abc"}'
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const {
    level = "info",
    format = "json",
    write = defaultWrite,
    now = Date.now,
    traceIds = createTracer().ids,
  } = options;
  const min = RANK[level];

  function make(bound: LogFields): Logger {
    function emit(lvl: LogLevel, msg: string, fields?: LogFields): void {
      if (RANK[lvl] < min) return;
      const all: LogFields = {};
      let given: LogFields = { ...bound, ...fields };
      const ids = "trace_id" in given ? undefined : traceIds();
      if (ids !== undefined) given = { ...given, ...ids };
      for (const [key, value] of Object.entries(given)) {
        // The built-in keys cannot be forged by a field.
        all[RESERVED.has(key) ? `field_${key}` : key] = errorFields(value);
      }
      const time = new Date(now()).toISOString();
      let line: string;
      if (format === "json") {
        // JSON.stringify escapes C0 controls; escape the rest too.
        line = safeJson({ time, level: lvl, msg, ...all })!
          .replace(/[\u007f-\u009f\u2028\u2029]/g, escapeControl);
      } else {
        const parts = [time, lvl.toUpperCase().padEnd(5), escapeControl(msg)];
        for (const [key, value] of Object.entries(all)) {
          if (value !== undefined) {
            parts.push(`${escapeControl(key)}=${formatPrettyValue(value)}`);
          }
        }
        line = parts.join(" ");
      }
      write(line, lvl);
    }
    return {
      debug: (msg, fields) => emit("debug", msg, fields),
      info: (msg, fields) => emit("info", msg, fields),
      warn: (msg, fields) => emit("warn", msg, fields),
      error: (msg, fields) => emit("error", msg, fields),
      child: (fields) => make({ ...bound, ...fields }),
    };
  }
  return make({});
}

/** A logger that drops everything (for tests and benchmarks). */
export const NULL_LOGGER: Logger = createLogger({
  level: "error",
  write: () => {},
});
