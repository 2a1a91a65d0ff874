import assert from "node:assert/strict";
import { parseWrkOutput, wrkArgs } from "../../../bench/load/wrk.ts";

Deno.test("parseWrkOutput() returns load.lua's summary when a BENCH line is there", () => {
  const summary = {
    requests: 1000,
    durationUs: 2_000_000,
    bytes: 12345,
    errors: { connect: 0, read: 1, write: 0, status: 3, timeout: 0 },
    latencyUs: { mean: 900, p50: 800, p90: 1500, p99: 4000, max: 9000 },
    cpuSeconds: 1.5,
  };
  assert.deepEqual(
    parseWrkOutput([
      "LOADED",
      "Running 2s test @ http://127.0.0.1:1/webhook",
      `BENCH ${JSON.stringify(summary)}`,
    ]),
    summary,
  );
});

Deno.test("parseWrkOutput() returns null when there is no BENCH line", () => {
  assert.equal(parseWrkOutput(["LOADED", "unable to connect"]), null);
});

Deno.test("wrkArgs() pins wrk to the load core and passes load.lua its arguments", () => {
  const args = wrkArgs({ threads: 2, connections: 16, event: "ping" }, {
    port: 8123,
    dataFile: "/tmp/r.txt",
    mode: "bad",
    first: 10,
    count: 20,
    seconds: 3,
  });
  assert.deepEqual(args.slice(0, 9), [
    "-c",
    "1",
    "wrk",
    "-t2",
    "-c16",
    "-d3s",
    "--timeout",
    "10s",
    "-s",
  ]);
  assert.match(args[9]!, /\/bench\/load\.lua$/);
  assert.deepEqual(args.slice(10), [
    "http://127.0.0.1:8123/webhook",
    "--",
    "/tmp/r.txt",
    "bad",
    "10",
    "20",
    "ping",
    "2",
  ]);
});
