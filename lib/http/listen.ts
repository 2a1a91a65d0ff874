/**
 * Listening on `HOST:PORT` for as long as the process runs. `Deno.serve`'s
 * listener ends for good when one `accept` fails: on Deno 2.9.6 an `EMFILE`
 * (no file descriptor left — the systemd default of 1,024 and ~1,000 idle
 * connections holding half-sent headers are enough) rejects its `finished`
 * promise and closes the listening socket, while the connections it had
 * accepted are still served. {@link listen} then listens again on the same
 * address (after `retryMs`, doubling up to `maxRetryMs`, for as long as
 * listening fails); when no listener has lasted `stableMs` within `giveUpMs`
 * of the first failure it calls `onGiveUp`, and the caller drains and exits
 * non-zero so a supervisor starts a fresh process. The process never lives
 * on without a listener.
 *
 * It does not route requests (`server.ts`) and does not close idle
 * connections: Deno 2.9.6 applies no deadline to a connection that never
 * finishes its headers, and offers none to set (the README says what the
 * reverse proxy's should be).
 *
 * @module
 */

import type { Logger } from "../ops/log.ts";
import { describeError } from "../_util/errors.ts";

/** `Deno.serve` as {@link listen} calls it (injectable for tests). */
export type Serve = (
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
) => Deno.HttpServer<Deno.NetAddr>;

/** Options of {@link listen}. */
export interface ListenOptions {
  hostname: string;
  port: number;
  handler: Deno.ServeHandler<Deno.NetAddr>;
  log: Logger;
  /** Called when the first listener is up (not again when it is replaced). */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Called once when listening cannot be restored: drain and exit non-zero. */
  onGiveUp: (error: unknown) => void;
  /** First wait before listening again. @default 100 */
  retryMs?: number;
  /** Longest wait between attempts. @default 2000 */
  maxRetryMs?: number;
  /** A listener that lasted this long ends an outage. @default 10000 */
  stableMs?: number;
  /** How long an outage may last before {@link ListenOptions.onGiveUp}. @default 30000 */
  giveUpMs?: number;
  /** @default Deno.serve */
  serve?: Serve;
  /** @default Date.now */
  now?: () => number;
}

/** A listener kept alive by {@link listen}. */
export interface Listener {
  /** The address listened on; `null` between a failure and the next listener. */
  addr(): Deno.NetAddr | null;
  /** Stops listening for good; running requests finish (graceful shutdown). */
  shutdown(): Promise<void>;
}

/**
 * Listens with `Deno.serve` and keeps listening (see the module header).
 * Throws, like `Deno.serve`, when the first listen fails (address in use, no
 * permission): that is a start-up error for the caller to report.
 *
 * @example
 * ```ts ignore
 * import { listen } from "./listen.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const listener = listen({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   handler: () => new Response("ok"),
 *   log: NULL_LOGGER,
 *   onGiveUp: () => Deno.exit(1),
 * });
 * listener.addr()?.port; // the port it chose
 * await listener.shutdown();
 * ```
 */
export function listen(options: ListenOptions): Listener {
  const {
    hostname,
    port,
    handler,
    log,
    retryMs = 100,
    maxRetryMs = 2000,
    stableMs = 10_000,
    giveUpMs = 30_000,
    serve = Deno.serve,
    now = Date.now,
  } = options;
  const state = {
    server: null as Deno.HttpServer<Deno.NetAddr> | null,
    stopped: false,
    timer: undefined as ReturnType<typeof setTimeout> | undefined,
    /** When the current run of failures began; `null` before the first. */
    outageSince: null as number | null,
    listenedAt: 0,
    delay: retryMs,
  };

  /** One `Deno.serve`; throws when it cannot listen. */
  function start(first: boolean): void {
    const server = serve({
      hostname,
      port,
      onListen(addr) {
        if (first) options.onListen?.(addr);
      },
    }, handler);
    state.server = server;
    state.listenedAt = now();
    server.finished.then(
      () => lost(server, new Error("the listener ended")),
      (error) => lost(server, error),
    );
  }

  function lost(server: Deno.HttpServer<Deno.NetAddr>, error: unknown): void {
    if (state.stopped || state.server !== server) return;
    state.server = null;
    const at = now();
    if (state.outageSince === null || at - state.listenedAt >= stableMs) {
      state.outageSince = at;
      state.delay = retryMs;
    }
    log.error("listener failed: listening again", {
      error: describeError(error),
      port,
    });
    retry(error);
  }

  function retry(error: unknown): void {
    if (now() - state.outageSince! >= giveUpMs) {
      log.error("cannot listen again: giving up", {
        error: describeError(error),
        port,
        ms: now() - state.outageSince!,
      });
      options.onGiveUp(error);
      return;
    }
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (state.stopped) return;
      try {
        start(false);
        log.warn("listening again", { port, ms: now() - state.outageSince! });
      } catch (err) {
        retry(err);
      }
    }, state.delay);
    state.delay = Math.min(state.delay * 2, maxRetryMs);
  }

  start(true);
  return {
    addr: () => state.server?.addr ?? null,
    async shutdown() {
      state.stopped = true;
      clearTimeout(state.timer);
      await state.server?.shutdown();
    },
  };
}
