/**
 * What every part of the load benchmark shares: the names of the servers,
 * ceilings and signature modes, the shapes of one run's results, and the
 * fixed places (folders, cores). Types and constants only: it reads no
 * flag and starts nothing.
 *
 * @module
 */

/** A server under HTTP load: (a) ceiling, (b) minimal, (c, d) hookgate. */
export type Server = "a" | "b" | "c" | "d";
/** A KV write ceiling with no HTTP: 32 deliveries a commit (e) or one (e1). */
export type Ceiling = "e" | "e1";
/** Valid (`good`) or wrong but well-formed (`bad`) signatures. */
export type Mode = "good" | "bad";

/** Every server, in the order they run and are reported. */
export const SERVERS: readonly Server[] = ["a", "b", "c", "d"];
/** Every ceiling, in the order they run and are reported. */
export const CEILINGS: readonly Ceiling[] = ["e", "e1"];
/** Both signature modes, in the order they run and are reported. */
export const MODES: readonly Mode[] = ["good", "bad"];

/** The row label of every server and ceiling. */
export const LABELS: Readonly<Record<Server | Ceiling, string>> = {
  a: "(a) Deno.serve, body read",
  b: "(b) minimal verify+parse",
  c: "(c) hookgate, KV :memory:",
  d: "(d) hookgate, KV file",
  e: "(e) KV ceiling, 32/commit",
  e1: "(e1) KV, 1/commit",
};

/** Whether `server` is hookgate itself (c, d), which has /metrics. */
export function isHookgate(server: Server): boolean {
  return server === "c" || server === "d";
}

/** The repository's root folder, with a trailing slash. */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** The bench/ folder, with a trailing slash. */
export const BENCH = `${ROOT}bench/`;
/** Where prepared deliveries, wrk logs and profiles go (git-ignored). */
export const OUT = `${BENCH}out/`;
/** The core the servers are pinned to. */
export const SERVER_CORE = "0";
/** The core wrk is pinned to. */
export const LOAD_CORE = "1";

/** One measured run of a server under wrk. */
export interface RunResult {
  server: Server;
  mode: Mode;
  rep: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  serverCpuUsPerReq: number;
  /** Server CPU per request by thread name (µs). */
  threadUsPerReq: Record<string, number>;
  serverCpuShare: number;
  peakRssBytes: number;
  wrkCpuShare: number;
  wrapped: boolean;
  /** hookgate only: /metrics deltas over the measured run. */
  statuses?: Record<string, number>;
  accepted?: number;
  /** hookgate only: every delivery accepted by the process (warm-up too), at the end of the measured run. */
  acceptedTotal?: number;
  /** hookgate only: runs of deliveries that ended (`webhook_delivery_outcomes_total`) over the measured run. */
  runsEnded?: number;
  duplicates?: number;
  backlog?: number;
}

/** One run of a KV write ceiling. */
export interface CeilingResult {
  kind: Ceiling;
  rep: number;
  perSecond: number;
  cpuUsPerDelivery: number;
  threadUsPerReq: Record<string, number>;
  cpuShare: number;
  peakRssBytes: number;
}
