/**
 * hookgate's composition root under `deno run` (`deno task start`): starts
 * the app from the environment (`lib/boot.ts`) and listens on `HOST:PORT`.
 * `deno serve` and Deno Deploy use `serve.ts` instead, which exports
 * `{ fetch }` and lets the runtime listen.
 *
 * @module
 */

import { boot } from "./lib/boot.ts";
import { describeError } from "./lib/_util/errors.ts";

let server: Deno.HttpServer | null = null;
const { config, log, app, stop, listening } = await boot(async () => {
  await server?.shutdown();
});

try {
  server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen({ hostname, port }) {
      listening({ hostname, port });
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      log.info("listening", {
        url: `http://${shown}:${port}${config.webhookPath}`,
        kv: config.kvPath === "" ? "(managed)" : config.kvPath,
        allowlist: config.ipAllowlist,
      });
    },
  }, app.fetch);
} catch (err) {
  log.error(
    `Cannot start: cannot listen on HOST ${
      JSON.stringify(config.host)
    }, PORT ${config.port}`,
    { error: describeError(err) },
  );
  stop.abort();
  await app.close(0).catch(() => {});
  Deno.exit(1);
}
