/**
 * hookgate's entry module for `deno serve` (including `--parallel`) and Deno
 * Deploy: starts the app from the environment (`lib/boot.ts`) and exports
 * `{ fetch }`; the runtime listens. `deno run` uses `main.ts` instead.
 *
 * @module
 */

import { boot } from "./lib/boot.ts";

const { app } = await boot();

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
