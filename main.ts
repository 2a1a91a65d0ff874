/**
 * hookgate's composition root under `deno run` (`deno task start`): starts
 * the app from the environment (`lib/boot.ts`) and listens on `HOST:PORT`,
 * listening again if the listener fails (`lib/http/listen.ts`) and exiting 1
 * when it cannot. `deno serve` and Deno Deploy use `serve.ts` instead, which
 * exports `{ fetch }` and lets the runtime listen.
 *
 * @module
 */

import { boot } from "./lib/boot.ts";
import { listen, type Listener } from "./lib/http/listen.ts";
import { describeError } from "./lib/_util/errors.ts";

let listener: Listener | null = null;
let seated = false;
const { config, log, app, stop, shutdown, listening } = await boot(async () => {
  await listener?.shutdown();
});

try {
  listener = listen({
    hostname: config.host,
    port: config.port,
    handler: app.fetch,
    log,
    onListen({ hostname, port }) {
      // The seat is taken once: a listener listening again is the same process.
      if (!seated) listening({ hostname, port });
      seated = true;
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      log.info("listening", {
        url: `http://${shown}:${port}${config.webhookPath}`,
        kv: config.kvPath === "" ? "(managed)" : config.kvPath,
        allowlist: config.ipAllowlist,
      });
    },
    // Acknowledged deliveries are in KV: exiting loses nothing, and the
    // supervisor's fresh process listens again.
    onGiveUp: () => void shutdown("listener lost", 1),
  });
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
