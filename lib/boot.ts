/**
 * Starting hookgate from the environment, shared by the two entry modules:
 * `main.ts` (`deno run`, which listens itself) and `serve.ts` (`deno serve`
 * and Deno Deploy, where the runtime listens). It reads the environment and
 * `.env`, stops the process with a clear message on a bad configuration or
 * an unopenable KV, installs the process guard (anything unhandled ends the
 * process), builds and starts the app, and shuts down on SIGTERM/SIGINT. Once
 * `main.ts` listens, it takes the process's seat ({@link seatOf}), so that a
 * restarted process takes back the leases of the one it replaces. It does
 * not listen.
 *
 * @module
 */

import { type App, type AppOptions, createApp } from "./app.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  readEnvironment,
} from "./config/config.ts";
import { guardProcess } from "./ops/guard.ts";
import { createTracer } from "./ops/tracing.ts";
import { createLogger, type Logger } from "./ops/log.ts";
import { errorMessage, StartupError } from "./_util/errors.ts";

/** A started hookgate, as the entry modules see it. */
export interface Booted {
  config: Config;
  log: Logger;
  app: App;
  /** Aborts when shutdown begins (the app's worker and refresher stop). */
  stop: AbortController;
  /**
   * Shuts down as on SIGTERM: stop accepting (`beforeClose`, e.g. the
   * listener's own shutdown), let running handlers finish (bounded), close
   * KV, exit with `code` (0 for a signal; 1 when the process cannot go on,
   * e.g. its listener is lost, so that a supervisor restarts it).
   */
  shutdown(reason: string, code?: number): Promise<void>;
  /**
   * The process listens on `addr` (`deno run`): it takes its seat and the
   * leases of the process that had it before, in the background.
   */
  listening(addr: ListenAddress): void;
}

/** Where a process listens. */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/**
 * The seat of a process: one listen address on one host, with one KV.
 * Only one live process can listen there, so a process that takes a seat
 * knows that the one that had it before is gone, and takes its leases back
 * at once rather than waiting for them to lapse. `host` tells containers
 * apart that share a KV file (`HOSTNAME`), and hosts that share a KV
 * Connect URL: over KV Connect there is a seat only with a `host`. Null
 * when there is none: `:memory:`, the managed KV, a URL without a host
 * name, or port 0 (a new port each start).
 *
 * @example
 * ```ts
 * import { seatOf } from "./boot.ts";
 * seatOf("/srv/data/hookgate.kv", { hostname: "0.0.0.0", port: 8000 }, "web-1");
 * // "web-1 0.0.0.0:8000 /srv/data/hookgate.kv"
 * seatOf(":memory:", { hostname: "0.0.0.0", port: 8000 }); // null
 * seatOf("https://kv.example.com", { hostname: "0.0.0.0", port: 8000 }); // null: which host?
 * ```
 */
export function seatOf(
  kvFile: string,
  addr: ListenAddress,
  host = "",
): string | null {
  const remote = /^https?:\/\//.test(kvFile);
  const file = kvFile !== "" && kvFile !== ":memory:" && !remote;
  if ((!file && !(remote && host !== "")) || addr.port === 0) return null;
  return `${host} ${addr.hostname}:${addr.port} ${kvFile}`;
}

/**
 * The seat of this process ({@link seatOf}), with the KV file's real path
 * and `HOSTNAME` when readable without a prompt; null when there is none.
 */
function currentSeat(kvPath: string, addr: ListenAddress): string | null {
  const granted =
    Deno.permissions.querySync({ name: "env", variable: "HOSTNAME" })
      .state === "granted";
  const host = granted ? Deno.env.get("HOSTNAME") ?? "" : "";
  if (/^https?:\/\//.test(kvPath)) return seatOf(kvPath, addr, host);
  if (seatOf(kvPath, addr) === null) return null;
  let real: string;
  try {
    real = Deno.realPathSync(kvPath);
  } catch {
    return null; // not readable: no seat, leases lapse instead
  }
  return seatOf(real, addr, host);
}

/**
 * Reads the configuration and starts the app; exits the process (status 1,
 * a message naming the variable) when it cannot. `beforeClose` runs first on
 * shutdown: `main.ts` passes its listener's shutdown. `appOptions` are for
 * tests (a handler registry of their own).
 */
export async function boot(
  beforeClose: () => Promise<void> = () => Promise.resolve(),
  appOptions: Omit<AppOptions, "config" | "log"> = {},
): Promise<Booted> {
  const config = await configOrExit();
  const log = createLogger({
    level: config.logLevel,
    format: config.logFormat,
  });

  // Handlers run in Workers: anything unhandled here is our own fault, and
  // ends the process (logged) rather than leaving it in an unknown state.
  guardProcess(log);

  if (config.ipAllowlist === "off") {
    log.warn(
      "IP_ALLOWLIST=off: requests are accepted from any address (signatures still checked)",
    );
  }

  if (createTracer().enabled) {
    log.info("tracing on: Deno's OpenTelemetry exports the spans", {
      endpoint: otlpEndpoint(),
    });
  }

  let app: App;
  try {
    app = await createApp({ ...appOptions, config, log });
  } catch (err) {
    if (err instanceof StartupError) {
      log.error(`Cannot start: ${err.message}`);
      Deno.exit(1);
    }
    const where = config.kvPath === ""
      ? "the managed KV"
      : `KV_PATH ${JSON.stringify(config.kvPath)}`;
    log.error(`Cannot start: ${where} could not be opened`, {
      error: errorMessage(err),
    });
    Deno.exit(1);
  }
  const stop = new AbortController();
  app.start(stop.signal);

  let shuttingDown = false;
  async function shutdown(reason: string, code = 0): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info("shutting down", { signal: reason });
    stop.abort();
    await beforeClose();
    await app.close(Math.min(config.handlerTimeoutMs, 10_000));
    log.info("stopped", { code });
    Deno.exit(code);
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(signal, () => void shutdown(signal));
    } catch {
      // Signals are not available everywhere (Deno Deploy, Windows SIGTERM).
    }
  }
  function listening(addr: ListenAddress): void {
    const seat = currentSeat(config.kvPath, addr);
    if (seat === null) return;
    app.worker.claimSeat(seat).catch((err) => {
      log.error(
        "could not take back the previous process's leases; they run when they lapse",
        { error: errorMessage(err) },
      );
    });
  }
  return { config, log, app, stop, shutdown, listening };
}

/**
 * Where Deno sends its OTLP export, as an origin (never a path, user or
 * password): `OTEL_EXPORTER_OTLP_ENDPOINT`, or OpenTelemetry's default.
 */
function otlpEndpoint(): string {
  try {
    const given = Deno.env.get("OTEL_EXPORTER_OTLP_ENDPOINT");
    return new URL(given ?? "http://localhost:4318").origin;
  } catch {
    return "(not readable)";
  }
}

/** The configuration, or exit 1 with every problem named on stderr. */
async function configOrExit(): Promise<Config> {
  const env = await readEnvironment();
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    Deno.stderr.writeSync(new TextEncoder().encode(err.message + "\n"));
    Deno.exit(1);
  }
}
