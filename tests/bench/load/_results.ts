// Made-up results for the report tests.

import type {
  CeilingResult,
  Mode,
  RunResult,
  Server,
} from "../../../bench/load/common.ts";

/** A run of `server` in `mode` at `rps`, the rest plausible. */
export function runOf(
  server: Server,
  mode: Mode,
  rps: number,
  extra: Partial<RunResult> = {},
): RunResult {
  return {
    server,
    mode,
    rep: 1,
    rps,
    p50Ms: 2,
    p99Ms: 20,
    non2xx: mode === "bad" && server !== "a" ? 100 : 0,
    socketErrors: 0,
    serverCpuUsPerReq: 1e6 / rps,
    threadUsPerReq: { main: 0.8e6 / rps, sw: 0.2e6 / rps },
    serverCpuShare: 1,
    peakRssBytes: 50 * 1048576,
    wrkCpuShare: 0.4,
    wrapped: false,
    ...extra,
  };
}

/** A run of ceiling (e) at `perSecond`. */
export function ceilingOf(perSecond: number, rep = 1): CeilingResult {
  return {
    kind: "e",
    rep,
    perSecond,
    cpuUsPerDelivery: 200,
    threadUsPerReq: { main: 50, sw: 150 },
    cpuShare: 0.9,
    peakRssBytes: 60 * 1048576,
  };
}
