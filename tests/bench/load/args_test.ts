import assert from "node:assert/strict";
import {
  parseBaseline,
  parseEnvPairs,
  parseLoadArgs,
  parseOnly,
  parseRtts,
  positiveInteger,
  splitEntries,
} from "../../../bench/load/args.ts";

function options(args: string[]) {
  const parsed = parseLoadArgs(args);
  assert.equal(parsed.kind, "run");
  return (parsed as Extract<typeof parsed, { kind: "run" }>).options;
}

function error(args: string[]): string {
  const parsed = parseLoadArgs(args);
  assert.equal(parsed.kind, "error");
  return (parsed as Extract<typeof parsed, { kind: "error" }>).message;
}

Deno.test("parseLoadArgs() gives the usage text's defaults when no flag is set", () => {
  const o = options([]);
  assert.equal(o.duration, 10);
  assert.equal(o.connections, 32);
  assert.equal(o.reps, 3);
  assert.equal(o.warmup, 1);
  assert.equal(o.requests, 300_000);
  assert.equal(o.threads, 1);
  assert.equal(o.event, "push");
  assert.equal(o.cpuProf, false);
  assert.equal(o.parallel, 1);
  assert.equal(o.record, true);
  assert.deepEqual(o.extraEnv, {});
  assert.deepEqual([...o.only], ["a", "b", "c", "d", "e", "e1"]);
  assert.equal(o.warmupEntries, 60_000);
  assert.equal(o.measuredEntries, 240_000);
});

Deno.test("parseLoadArgs() reads every flag", () => {
  const o = options([
    "--duration",
    "2",
    "--connections",
    "8",
    "--reps",
    "1",
    "--only",
    "a, c",
    "--warmup",
    "0",
    "--requests",
    "3000",
    "--threads",
    "2",
    "--event",
    "ping",
    "--cpu-prof",
    "--no-record",
  ]);
  assert.equal(o.duration, 2);
  assert.equal(o.connections, 8);
  assert.equal(o.reps, 1);
  assert.deepEqual([...o.only], ["a", "c"]);
  assert.equal(o.warmup, 0);
  assert.equal(o.requests, 3000);
  assert.equal(o.threads, 2);
  assert.equal(o.event, "ping");
  assert.equal(o.cpuProf, true);
  assert.equal(o.record, false);
  assert.equal(o.warmupEntries, 0);
  assert.equal(o.measuredEntries, 3000);
});

Deno.test("parseLoadArgs() does not record when --env or --parallel is given", () => {
  const env = options(["--env", "MAX_CONCURRENCY=32", "--env", "A=b=c"]);
  assert.equal(env.record, false);
  assert.deepEqual(env.extraEnv, { MAX_CONCURRENCY: "32", A: "b=c" });
  assert.equal(options(["--parallel", "2"]).record, false);
  assert.equal(options(["--parallel", "1"]).record, true);
});

Deno.test("parseLoadArgs() returns help when --help is given, before checking other flags", () => {
  assert.deepEqual(parseLoadArgs(["--help", "--reps", "0"]), { kind: "help" });
});

Deno.test("parseLoadArgs() returns the first problem's message when flags are wrong", () => {
  assert.equal(
    error(["--reps", "0"]),
    "Cannot run as 'reps' must be a positive integer: current value is 0",
  );
  assert.equal(
    error(["--warmup", "1.5"]),
    "Cannot run as 'warmup' must be a non-negative integer: current value is 1.5",
  );
  assert.equal(
    error(["--only", "a,x", "--env", "X", "--duration", "soon"]),
    "Cannot run as 'duration' must be a positive integer: current value is soon",
  );
  assert.equal(
    error(["--only", "a,x", "--env", "X"]),
    "Cannot run as '--env' must be NAME=value: current value is X",
  );
  assert.equal(
    error(["--only", "a,x"]),
    "Cannot run as '--only' names unknown 'x'",
  );
});

Deno.test("parseLoadArgs() throws when a flag is unknown", () => {
  assert.throws(() => parseLoadArgs(["--frob"]), TypeError);
});

Deno.test("positiveInteger() accepts 0 only when zero is allowed", async (t) => {
  for (
    const [value, zero, expected] of [
      ["1", false, 1],
      ["0", true, 0],
      [
        "0",
        false,
        "Cannot run as 'n' must be a positive integer: current value is 0",
      ],
      [
        "-1",
        true,
        "Cannot run as 'n' must be a non-negative integer: current value is -1",
      ],
      [
        "2.5",
        false,
        "Cannot run as 'n' must be a positive integer: current value is 2.5",
      ],
      [
        "x",
        false,
        "Cannot run as 'n' must be a positive integer: current value is x",
      ],
    ] as const
  ) {
    await t.step(`${value} (zero: ${zero})`, () => {
      assert.equal(positiveInteger("n", value, zero), expected);
    });
  }
});

Deno.test("parseEnvPairs() rejects a pair with no name", () => {
  assert.equal(
    parseEnvPairs(["=1"]),
    "Cannot run as '--env' must be NAME=value: current value is =1",
  );
  assert.deepEqual(parseEnvPairs(["A="]), { A: "" });
});

Deno.test("parseOnly() rejects an empty name when the list has a stray comma", () => {
  assert.equal(parseOnly("a,"), "Cannot run as '--only' names unknown ''");
  assert.deepEqual([...(parseOnly("e1,e") as Set<string>)], ["e1", "e"]);
});

Deno.test("splitEntries() keeps a fifth for the warm-up, at most 100,000", () => {
  assert.deepEqual(splitEntries(3000, 1), {
    warmupEntries: 600,
    measuredEntries: 2400,
  });
  assert.deepEqual(splitEntries(1_000_000, 2), {
    warmupEntries: 100_000,
    measuredEntries: 900_000,
  });
  assert.deepEqual(splitEntries(3000, 0), {
    warmupEntries: 0,
    measuredEntries: 3000,
  });
});

Deno.test("parseLoadArgs() runs the servers, not the remote-KV rounds, by default", () => {
  const o = options([]);
  assert.equal(o.remoteKv, false);
  assert.deepEqual(o.rtts, [0, 20, 100]);
  assert.equal(o.kvLimits, "denokv");
});

Deno.test("parseLoadArgs() gives --remote-kv 256 connections unless --connections says", () => {
  const o = options(["--remote-kv", "--rtt", "5,50", "--kv-limits", "deploy"]);
  assert.equal(o.remoteKv, true);
  assert.equal(o.connections, 256);
  assert.deepEqual(o.rtts, [5, 50]);
  assert.equal(o.kvLimits, "deploy");
  assert.equal(options(["--remote-kv", "--connections", "64"]).connections, 64);
});

Deno.test("parseLoadArgs() refuses a wrong --rtt or --kv-limits", () => {
  assert.match(error(["--rtt", "20,-1"]), /'--rtt' names '-1'/);
  assert.match(error(["--rtt", ""]), /'--rtt' names ''/);
  assert.match(error(["--kv-limits", "sqlite"]), /denokv or deploy/);
});

Deno.test("parseRtts() keeps the order and rejects fractions", () => {
  assert.deepEqual(parseRtts("100,0"), [100, 0]);
  assert.equal(typeof parseRtts("2.5"), "string");
});

Deno.test("parseLoadArgs() runs neither telemetry rounds nor a baseline by default", () => {
  const o = options([]);
  assert.equal(o.telemetry, false);
  assert.equal(o.baseline, null);
});

Deno.test("parseLoadArgs() reads --telemetry with the usual connections and recording", () => {
  const o = options(["--telemetry", "--reps", "3"]);
  assert.equal(o.telemetry, true);
  assert.equal(o.baseline, null);
  assert.equal(o.remoteKv, false);
  assert.equal(o.connections, 32);
  assert.equal(o.reps, 3);
  assert.equal(o.record, true);
  assert.equal(options(["--telemetry", "--no-record"]).record, false);
  assert.equal(options(["--telemetry", "--env", "A=b"]).record, false);
});

Deno.test("parseLoadArgs() reads --baseline with --telemetry, in either order", () => {
  assert.equal(
    options(["--telemetry", "--baseline", "c5a7af2"]).baseline,
    "c5a7af2",
  );
  assert.equal(
    options(["--baseline=HEAD~3", "--telemetry"]).baseline,
    "HEAD~3",
  );
});

Deno.test("parseLoadArgs() refuses --baseline without --telemetry", () => {
  assert.equal(
    error(["--baseline", "c5a7af2"]),
    "Cannot run as '--baseline' needs '--telemetry'",
  );
});

Deno.test("parseLoadArgs() refuses --telemetry with --remote-kv, with or without --baseline", () => {
  const message =
    "Cannot run as '--telemetry' and '--remote-kv' are both given";
  assert.equal(error(["--telemetry", "--remote-kv"]), message);
  assert.equal(
    error(["--remote-kv", "--telemetry", "--baseline", "c5a7af2"]),
    message,
  );
});

Deno.test("parseLoadArgs() refuses a --baseline that git could read as an option", () => {
  assert.equal(
    error(["--telemetry", "--baseline=--force"]),
    "Cannot run as '--baseline' must name a commit: current value is --force",
  );
  // A number flag's problem comes first.
  assert.match(
    error(["--telemetry", "--baseline=-x", "--reps", "0"]),
    /'reps' must be a positive integer/,
  );
});

Deno.test("parseLoadArgs() throws when --baseline has no value", () => {
  assert.throws(() => parseLoadArgs(["--telemetry", "--baseline"]), TypeError);
});

Deno.test("parseBaseline() takes commits, branches and relative refs, nothing else", async (t) => {
  for (
    const ref of [
      "c5a7af2",
      "c5a7af2c0ffee0000000000000000000000000000",
      "main",
      "h-bench",
      "origin/main",
      "HEAD~1",
      "HEAD^",
      "v1.2.3",
      "_tmp",
    ]
  ) {
    await t.step(`accepts ${ref}`, () => {
      assert.deepEqual(parseBaseline(ref), { ref });
    });
  }
  for (
    const ref of [
      "",
      "-x",
      "--force",
      "a..b",
      "main b",
      "a;rm",
      "$(id)",
      "a\nb",
      ".hidden",
      "x".repeat(101),
    ]
  ) {
    await t.step(`refuses ${JSON.stringify(ref.slice(0, 12))}`, () => {
      assert.deepEqual(parseBaseline(ref), {
        message:
          `Cannot run as '--baseline' must name a commit: current value is ${ref}`,
      });
    });
  }
});
