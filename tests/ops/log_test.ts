import assert from "node:assert/strict";
import {
  createLogger,
  escapeControl,
  LOG_LEVELS,
  type LogFormat,
  type LoggerOptions,
  type LogLevel,
  NULL_LOGGER,
} from "../../lib/ops/log.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const T0 = "1970-01-01T00:00:00.000Z";

/** A logger writing into an array, with a fixed clock. */
function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const levels: LogLevel[] = [];
  const log = createLogger({
    now: () => 0,
    write: (line, level) => {
      lines.push(line);
      levels.push(level);
    },
    ...options,
  });
  return { log, lines, levels };
}

/** Replaces console.log/console.error while `fn` runs. */
function withConsole(fn: () => void): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (line: string) => void out.push(line);
  console.error = (line: string) => void err.push(line);
  try {
    fn();
  } finally {
    console.log = log;
    console.error = error;
  }
  return { out, err };
}

/** Untrusted text holding every kind of line-breaking or terminal control character. */
const NASTY =
  "a\nb\rc\u001b[31md\u2028e\u2029f\u0085g\u007fh\u0000i\tj\u009bk\u000bl\u000cm";
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

Deno.test(
  "createLogger() writes one JSON object a line with time, level, msg and fields",
  SANITIZE,
  () => {
    const { log, lines } = capture();
    log.info("delivery done", {
      delivery: "abc",
      ms: 12,
      ok: true,
      tags: ["a"],
    });
    assert.deepEqual(lines, [
      `{"time":"${T0}","level":"info","msg":"delivery done","delivery":"abc","ms":12,"ok":true,"tags":["a"]}`,
    ]);
  },
);

Deno.test(
  "createLogger() writes every level under its own name",
  SANITIZE,
  async (t) => {
    for (const level of LOG_LEVELS) {
      await t.step(level, () => {
        const { log, lines, levels } = capture({ level: "debug" });
        log[level]("m");
        assert.equal(lines.length, 1);
        assert.equal(JSON.parse(lines[0]!).level, level);
        assert.deepEqual(levels, [level]);
      });
    }
  },
);

Deno.test("createLogger() drops lines below its level", SANITIZE, async (t) => {
  const table: [LogLevel | undefined, LogLevel[]][] = [
    [undefined, ["info", "warn", "error"]],
    ["debug", ["debug", "info", "warn", "error"]],
    ["info", ["info", "warn", "error"]],
    ["warn", ["warn", "error"]],
    ["error", ["error"]],
  ];
  for (const [level, expected] of table) {
    await t.step(`level ${level ?? "default (info)"}`, () => {
      const { log, lines } = capture(level === undefined ? {} : { level });
      for (const lvl of LOG_LEVELS) log[lvl](lvl);
      log.child({ a: 1 }).debug("child debug");
      const written = lines.map((l) => JSON.parse(l).msg);
      assert.deepEqual(written, [
        ...expected,
        ...(level === "debug" ? ["child debug"] : []),
      ]);
    });
  }
});

Deno.test("createLogger() uses the clock for the time field", SANITIZE, () => {
  const { log, lines } = capture({
    now: () => Date.UTC(2024, 0, 2, 3, 4, 5, 678),
  });
  log.info("x");
  assert.equal(JSON.parse(lines[0]!).time, "2024-01-02T03:04:05.678Z");
});

Deno.test("createLogger() defaults the clock to Date.now", SANITIZE, () => {
  const lines: string[] = [];
  const log = createLogger({ write: (line) => lines.push(line) });
  const before = Date.now();
  log.info("x");
  const time = Date.parse(JSON.parse(lines[0]!).time);
  assert.ok(time >= before && time <= Date.now(), `${time}`);
});

Deno.test(
  "createLogger() writes info and debug to console.log, warn and error to console.error",
  SANITIZE,
  () => {
    const { out, err } = withConsole(() => {
      const log = createLogger({ level: "debug", now: () => 0 });
      log.debug("d");
      log.info("i");
      log.warn("w");
      log.error("e");
    });
    assert.deepEqual(out.map((l) => JSON.parse(l).msg), ["d", "i"]);
    assert.deepEqual(err.map((l) => JSON.parse(l).msg), ["w", "e"]);
  },
);

Deno.test("createLogger() writes pretty lines", SANITIZE, async (t) => {
  const table: [string, Record<string, unknown> | undefined, string][] = [
    ["no fields", undefined, `${T0} INFO  delivery done`],
    [
      "a bare word",
      { delivery: "abc" },
      `${T0} INFO  delivery done delivery=abc`,
    ],
    [
      "a string with a space is quoted",
      { zen: "Keep it simple." },
      `${T0} INFO  delivery done zen="Keep it simple."`,
    ],
    [
      "an empty string is quoted",
      { action: "" },
      `${T0} INFO  delivery done action=""`,
    ],
    [
      "a string with = is quoted",
      { q: "a=b" },
      `${T0} INFO  delivery done q="a=b"`,
    ],
    [
      "a string with a quote is quoted",
      { q: 'say "hi"' },
      `${T0} INFO  delivery done q="say \\"hi\\""`,
    ],
    [
      "numbers, booleans, null",
      { ms: 1.5, ok: false, n: null },
      `${T0} INFO  delivery done ms=1.5 ok=false n=null`,
    ],
    [
      "objects as JSON",
      { obj: { a: [1, "b c"] } },
      `${T0} INFO  delivery done obj={"a":[1,"b c"]}`,
    ],
    [
      "undefined is left out",
      { a: undefined, b: 1 },
      `${T0} INFO  delivery done b=1`,
    ],
    [
      "a symbol as text",
      { s: Symbol("s") },
      `${T0} INFO  delivery done s=Symbol(s)`,
    ],
  ];
  for (const [name, fields, expected] of table) {
    await t.step(name, () => {
      const { log, lines } = capture({ format: "pretty" });
      log.info("delivery done", fields);
      assert.deepEqual(lines, [expected]);
    });
  }
  await t.step("levels are padded to five characters", () => {
    const { log, lines } = capture({ format: "pretty", level: "debug" });
    for (const level of LOG_LEVELS) log[level]("m");
    assert.deepEqual(lines, [
      `${T0} DEBUG m`,
      `${T0} INFO  m`,
      `${T0} WARN  m`,
      `${T0} ERROR m`,
    ]);
  });
});

Deno.test(
  "createLogger() never writes a raw control character",
  SANITIZE,
  async (t) => {
    for (const format of ["json", "pretty"] as LogFormat[]) {
      await t.step(`${format}: in msg`, () => {
        const { log, lines } = capture({ format });
        log.info(NASTY);
        assert.equal(lines.length, 1);
        assert.doesNotMatch(lines[0]!, RAW_CONTROL);
      });
      await t.step(`${format}: in a field value`, () => {
        const { log, lines } = capture({ format });
        log.info("m", { title: NASTY, nested: { deep: [NASTY] } });
        assert.doesNotMatch(lines[0]!, RAW_CONTROL);
      });
      await t.step(`${format}: in a bound field`, () => {
        const { log, lines } = capture({ format });
        log.child({ title: NASTY }).warn("m");
        assert.doesNotMatch(lines[0]!, RAW_CONTROL);
      });
      await t.step(`${format}: in an Error message`, () => {
        const { log, lines } = capture({ format });
        log.error("m", { error: new Error(NASTY) });
        assert.doesNotMatch(lines[0]!, RAW_CONTROL);
      });
      for (const ch of ["\n", "\r", "\u001b", "\u2028", "\u2029", "\u0085"]) {
        const code = `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
        await t.step(`${format}: ${code} alone`, () => {
          const { log, lines } = capture({ format });
          log.info(`x${ch}y`, { v: `x${ch}y` });
          assert.ok(!lines[0]!.includes(ch), JSON.stringify(lines[0]));
        });
      }
    }
  },
);

Deno.test(
  "createLogger() keeps the text of escaped JSON fields",
  SANITIZE,
  () => {
    const { log, lines } = capture();
    log.info(NASTY, { title: NASTY });
    const parsed = JSON.parse(lines[0]!);
    assert.equal(parsed.msg, NASTY);
    assert.equal(parsed.title, NASTY);
  },
);

Deno.test(
  "createLogger() escapes control characters as \\uXXXX in pretty lines",
  SANITIZE,
  () => {
    const { log, lines } = capture({ format: "pretty" });
    log.info("a\nb", { v: "c\u001bd" });
    assert.equal(lines[0], `${T0} INFO  a\\u000ab v=c\\u001bd`);
  },
);

Deno.test("child() adds its fields to every line", SANITIZE, async (t) => {
  await t.step("merged", () => {
    const { log, lines } = capture();
    log.child({ delivery: "d1", event: "push" }).info("m", { ms: 3 });
    assert.deepEqual(JSON.parse(lines[0]!), {
      time: T0,
      level: "info",
      msg: "m",
      delivery: "d1",
      event: "push",
      ms: 3,
    });
  });
  await t.step("nested children accumulate, the inner one wins", () => {
    const { log, lines } = capture();
    log.child({ a: 1, b: 1 }).child({ b: 2, c: 2 }).info("m");
    const { a, b, c } = JSON.parse(lines[0]!);
    assert.deepEqual({ a, b, c }, { a: 1, b: 2, c: 2 });
  });
  await t.step("call fields win over bound fields", () => {
    const { log, lines } = capture();
    log.child({ a: 1 }).info("m", { a: 2 });
    assert.equal(JSON.parse(lines[0]!).a, 2);
  });
  await t.step("the parent is unchanged", () => {
    const { log, lines } = capture();
    log.child({ a: 1 });
    log.info("m");
    assert.equal(JSON.parse(lines[0]!).a, undefined);
  });
  await t.step("children keep the level and format", () => {
    const { log, lines } = capture({ level: "warn", format: "pretty" });
    const child = log.child({ a: 1 });
    child.info("dropped");
    child.warn("kept");
    assert.deepEqual(lines, [`${T0} WARN  kept a=1`]);
  });
  await t.step("the bound fields object is copied", () => {
    const { log, lines } = capture();
    const fields: Record<string, unknown> = { a: 1 };
    const child = log.child(fields);
    fields.a = 2;
    child.info("m");
    assert.equal(JSON.parse(lines[0]!).a, 1);
  });
});

Deno.test(
  "createLogger() logs Error values as {name, message} without the stack",
  SANITIZE,
  async (t) => {
    await t.step("json", () => {
      const { log, lines } = capture();
      log.error("failed", { error: new TypeError("bad thing") });
      const parsed = JSON.parse(lines[0]!);
      assert.deepEqual(parsed.error, {
        name: "TypeError",
        message: "bad thing",
      });
      assert.ok(!lines[0]!.includes("at "), "no stack");
    });
    await t.step("json, bound by child", () => {
      const { log, lines } = capture();
      log.child({ cause: new RangeError("r") }).error("failed");
      assert.deepEqual(JSON.parse(lines[0]!).cause, {
        name: "RangeError",
        message: "r",
      });
    });
    await t.step("pretty", () => {
      const { log, lines } = capture({ format: "pretty" });
      log.error("failed", { error: new Error("boom") });
      assert.deepEqual(lines, [
        `${T0} ERROR failed error={"name":"Error","message":"boom"}`,
      ]);
    });
  },
);

Deno.test(
  "createLogger() does not modify the fields it is given",
  SANITIZE,
  () => {
    const { log } = capture();
    const error = new Error("e");
    const fields = { error };
    log.error("m", fields);
    assert.equal(fields.error, error);
  },
);

Deno.test({
  ...SANITIZE,
  // Regression test (found by review).
  name:
    "createLogger() keeps time, level and msg when a field has the same name",
  fn: () => {
    const { log, lines } = capture();
    log.info("real", { time: "forged", level: "error", msg: "forged" });
    const parsed = JSON.parse(lines[0]!);
    assert.equal(parsed.time, T0);
    assert.equal(parsed.level, "info");
    assert.equal(parsed.msg, "real");
  },
});

Deno.test({
  ...SANITIZE,
  // Regression test (found by review).
  name: "createLogger() escapes control characters in pretty field names",
  fn: () => {
    const { log, lines } = capture({ format: "pretty" });
    log.info("m", { "a\nb": "v" });
    assert.doesNotMatch(lines[0]!, RAW_CONTROL);
  },
});

Deno.test(
  "escapeControl() escapes C0, DEL, C1 and line separators",
  SANITIZE,
  async (t) => {
    const table: [string, string][] = [
      ["plain", "plain"],
      ["a\nb", "a\\u000ab"],
      ["\r", "\\u000d"],
      ["\t", "\\u0009"],
      ["\u0000", "\\u0000"],
      ["\u001b[2J", "\\u001b[2J"],
      ["\u001f", "\\u001f"],
      ["\u007f", "\\u007f"],
      ["\u0080", "\\u0080"],
      ["\u009f", "\\u009f"],
      ["\u2028\u2029", "\\u2028\\u2029"],
      ["ü é ✓ 🚀", "ü é ✓ 🚀"],
      [" ~", " ~"],
      ["\u00a0", "\u00a0"],
    ];
    for (const [input, expected] of table) {
      await t.step(
        JSON.stringify(input),
        () => assert.equal(escapeControl(input), expected),
      );
    }
  },
);

Deno.test("NULL_LOGGER writes nothing at any level", SANITIZE, () => {
  const { out, err } = withConsole(() => {
    for (const level of LOG_LEVELS) {
      NULL_LOGGER[level]("m", { a: 1 });
      NULL_LOGGER.child({ b: 2 })[level]("m");
    }
  });
  assert.deepEqual([out, err], [[], []]);
});
