/**
 * Starting hookgate from the environment, shared by the two entry modules:
 * `main.ts` (`deno run`, which listens itself) and `serve.ts` (`deno serve`
 * and Deno Deploy, where the runtime listens). It reads the environment and
 * `.env`, stops the process with a clear message on a bad configuration or
 * an unopenable KV, installs the process guard (anything unhandled ends the
 * process), builds and starts the app, and shuts down on SIGTERM/SIGINT. It
 * does not listen.
 *
 * @module
 */

import { type App, createApp } from "./app.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  readEnvironment,
} from "./config/config.ts";
import { guardProcess } from "./ops/guard.ts";
import { createLogger, type Logger } from "./ops/log.ts";
import { errorMessage } from "./_util/errors.ts";

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
}

/**
 * Reads the configuration and starts the app; exits the process (status 1,
 * a message naming the variable) when it cannot. `beforeClose` runs first on
 * shutdown: `main.ts` passes its listener's shutdown.
 */
export async function boot(
  beforeClose: () => Promise<void> = () => Promise.resolve(),
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

  let app: App;
  try {
    app = await createApp({ config, log });
  } catch (err) {
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
  return { config, log, app, stop, shutdown };
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
