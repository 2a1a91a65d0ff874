import assert from "node:assert/strict";
import {
  parseProcStats,
  statCpu,
  statusBytes,
  threadCosts,
} from "../../../bench/load/proc.ts";

/** A /proc stat line with utime and stime in clock ticks. */
function stat(tid: number, comm: string, utime: number, stime: number) {
  return `${tid} (${comm}) S 1 ${tid} ${tid} 0 -1 4194560 10 0 0 0 ${utime} ${stime} 0 0 20 0 1 0`;
}

Deno.test("statCpu() reads utime+stime when the thread name has spaces and parentheses", () => {
  assert.deepEqual(statCpu(stat(42, "V8 DefaultWorke", 30, 20)), {
    tid: 42,
    comm: "V8 DefaultWorke",
    cpu: 0.5,
  });
  assert.equal(statCpu(stat(7, "a) (b", 100, 0)).comm, "a) (b");
});

Deno.test("statusBytes() returns a kB field in bytes, 0 when it is missing", () => {
  const status = "Name:\tdeno\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
  assert.equal(statusBytes(status, "VmHWM"), 51200 * 1024);
  assert.equal(statusBytes(status, "VmRSS"), 40960 * 1024);
  assert.equal(statusBytes(status, "VmSwap"), 0);
});

Deno.test("parseProcStats() sums threads by name when names end in numbers", () => {
  const text = [
    stat(7, "deno", 150, 50),
    "Name:\tdeno",
    "VmHWM:\t  2048 kB",
    "---",
    stat(7, "deno", 100, 0),
    stat(8, "tokio-runtime-w", 10, 10),
    stat(9, "tokio-runtime-w", 10, 10),
    stat(10, "sw", 40, 10),
    stat(11, "worker-3", 1, 0),
    "",
  ].join("\n");
  const s = parseProcStats(7, text);
  assert.equal(s.cpu, 2);
  assert.equal(s.peakRss, 2048 * 1024);
  assert.deepEqual(Object.fromEntries(s.threads), {
    main: 1,
    "tokio-runtime-w": 0.4,
    sw: 0.5,
    worker: 0.01,
  });
});

Deno.test("threadCosts() charges CPU of ended threads to '(ended threads)'", () => {
  const s0 = {
    cpu: 1,
    peakRss: 0,
    threads: new Map([["main", 0.5], ["sw", 0.25]]),
  };
  const s1 = {
    cpu: 3,
    peakRss: 0,
    threads: new Map([["main", 1.5], ["sw", 0.75]]),
  };
  const costs = threadCosts(s0, s1, 1000);
  assert.equal(costs.main, 1000);
  assert.equal(costs.sw, 500);
  assert.equal(costs["(ended threads)"], 500);
});

Deno.test("threadCosts() leaves '(ended threads)' out when the threads account for all CPU", () => {
  const s0 = { cpu: 0, peakRss: 0, threads: new Map([["main", 0]]) };
  const s1 = { cpu: 1, peakRss: 0, threads: new Map([["main", 1]]) };
  assert.deepEqual(threadCosts(s0, s1, 100), { main: 10_000 });
});
