/**
 * hookgate's entry module for `deno serve` (including `--parallel`) and Deno
 * Deploy: starts the app from the environment (`lib/boot.ts`) and exports
 * `{ fetch }`; the runtime listens. `deno run` uses `main.ts` instead.
 *
 * The runtime owns the listener here: when its `accept` fails (no file
 * descriptor left) the rejection reaches the process guard, which logs it
 * and exits 1 for the supervisor to restart the process.
 *
 * @module
 */

import { boot } from "./lib/boot.ts";

const { app } = await boot();

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
