// The process guard in a real process: a floating rejection or a timer's
// throw in the main isolate is logged as one JSON line at error and ends the
// process with status 1 (a supervisor restarts it), instead of leaving it
// running in an unknown state. Handlers' own faults stay in their Workers.

import assert from "node:assert/strict";

const FIXTURE = new URL("../fixtures/unhandled.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

for (
  const [fault, what, line] of [
    [
      "rejection",
      "a floating rejection",
      /"level":"error","msg":"unhandled rejection: exiting","error":"Error: a floating rejection","stack":".*unhandled\.ts/,
    ],
    [
      "timer",
      "a throw from a timer",
      /"level":"error","msg":"uncaught exception: exiting","error":"Error: thrown from a timer"/,
    ],
  ] as const
) {
  Deno.test(`${what} in the main isolate is logged and ends the process with 1`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, FIXTURE, fault],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stdout + stderr);
    assert.match(stdout + stderr, line);
    assert.doesNotMatch(stdout, /"msg":"alive"/);
    assert.equal(
      stderr.trim().split("\n").filter((l) => l !== "").length,
      1,
      "one line, ours",
    );
  });
}
