/**
 * hookgate's composition root: environment → config → app → listener, plus
 * signals. Under `deno run` (`deno task start`) it listens on `HOST:PORT`
 * itself; under `deno serve` (pass `--deno-serve` after the file name) and on
 * Deno Deploy, the runtime serves the default export instead.
 *
 * @module
 */

import { createApp } from "./lib/app.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  readEnvironment,
} from "./lib/config/config.ts";
import { guardProcess } from "./lib/ops/guard.ts";
import { createLogger } from "./lib/ops/log.ts";

const env = await readEnvironment();
let config: Config;
try {
  config = loadConfig(env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  const stderr = new TextEncoder().encode(err.message + "\n");
  Deno.stderr.writeSync(stderr);
  Deno.exit(1);
}

const log = createLogger({ level: config.logLevel, format: config.logFormat });

// Nothing a handler does may take the process down.
guardProcess(log);

if (config.ipAllowlist === "off") {
  log.warn(
    "IP_ALLOWLIST=off: requests are accepted from any address (signatures still checked)",
  );
}

let app: Awaited<ReturnType<typeof createApp>>;
try {
  app = await createApp({ config, log });
} catch (err) {
  const where = config.kvPath === ""
    ? "the managed KV"
    : `KV_PATH ${JSON.stringify(config.kvPath)}`;
  log.error(`Cannot start: ${where} could not be opened`, {
    error: err instanceof Error ? err.message : String(err),
  });
  Deno.exit(1);
}
const stop = new AbortController();
app.start(stop.signal);

const selfListen = import.meta.main && !config.deploy &&
  !Deno.args.includes("--deno-serve");
let server: Deno.HttpServer | null = null;
if (selfListen) {
  try {
    server = listen();
  } catch (err) {
    log.error(
      `Cannot start: cannot listen on HOST ${
        JSON.stringify(config.host)
      }, PORT ${config.port}`,
      {
        error: err instanceof Error
          ? `${err.name}: ${err.message}`
          : String(err),
      },
    );
    stop.abort();
    await app.close(0).catch(() => {});
    Deno.exit(1);
  }
}

function listen(): Deno.HttpServer {
  return Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen({ hostname, port }) {
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      log.info("listening", {
        url: `http://${shown}:${port}${config.webhookPath}`,
        kv: config.kvPath === "" ? "(managed)" : config.kvPath,
        allowlist: config.ipAllowlist,
      });
    },
  }, app.fetch);
}

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info("shutting down", { signal });
  stop.abort();
  await server?.shutdown();
  await app.close(Math.min(config.handlerTimeoutMs, 10_000));
  log.info("stopped");
  Deno.exit(0);
}
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  try {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  } catch {
    // Signals are not available everywhere (Deno Deploy, Windows SIGTERM).
  }
}

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
