/**
 * Chooses where handlers run: in a pool of Worker isolates (`pool.ts`), the
 * default, or on this event loop (`run.ts`'s inline runner) where Workers
 * cannot run — Deno Deploy — or when a test hands in a registry object.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { HandlerRegistry } from "../dispatch.ts";
import { HANDLERS } from "../handlers/mod.ts";
import type { Logger } from "../ops/log.ts";
import type { Deadlines } from "../_util/deadline.ts";
import { createPool } from "./pool.ts";
import { StartupError } from "../_util/errors.ts";
import { createInlineRunner, type HandlerRunner } from "./run.ts";
import type { GitHubHost } from "../github/client.ts";

/** The module the pool's isolates load their handlers from. */
export const HANDLERS_MODULE = new URL("../handlers/mod.ts", import.meta.url)
  .href;

/** The folder the isolates load code from (`lib/`): it must be readable. */
export const CODE_DIR = new URL("../", import.meta.url).pathname;

/**
 * Why the isolates could not load their code under this process's
 * permissions, or null when they can.
 *
 * @example
 * ```ts
 * import { missingReadPermission } from "./runner.ts";
 * missingReadPermission("/"); // null under `deno test --allow-read`
 * ```
 */
export function missingReadPermission(dir: string): string | null {
  const { state } = Deno.permissions.querySync({ name: "read", path: dir });
  if (state === "granted") return null;
  return `Handlers run in Worker isolates, which load their code from ${dir}: ` +
    `add it to --allow-read (deno task flags prints the flags)`;
}

/** Options of {@link createHandlerRunner}. */
export interface RunnerOptions {
  config: Pick<Config, "maxConcurrency" | "deploy" | "logLevel">;
  log: Logger;
  deadlines: Deadlines;
  /** Run these on this event loop instead (tests). */
  registry?: HandlerRegistry;
  /** The module exporting `HANDLERS` for the isolates. @default {@link HANDLERS_MODULE} */
  module?: string;
  /** Performs the handlers' `ctx.github` calls (the server's broker). */
  github?: GitHubHost | undefined;
}

/**
 * The runner for an app: a Worker pool of `MAX_CONCURRENCY` isolates, or
 * the inline runner (with a warning, outside tests) where Workers are not
 * available. Throws, naming the flag, when the isolates could not read
 * their code.
 *
 * @example
 * ```ts
 * import { createHandlerRunner } from "./runner.ts";
 * import { createDeadlines } from "../_util/deadline.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const runner = createHandlerRunner({
 *   config: { maxConcurrency: 2, deploy: false, logLevel: "info" },
 *   log: NULL_LOGGER,
 *   deadlines: createDeadlines(),
 *   registry: {},
 * });
 * await runner.close();
 * ```
 */
export function createHandlerRunner(
  options: RunnerOptions,
): HandlerRunner {
  const { config, log, deadlines } = options;
  if (options.registry) {
    return createInlineRunner(options.registry, deadlines, options.github);
  }
  if (config.deploy || typeof Worker === "undefined") {
    log.warn(
      "Workers are not available here: handlers run on the server's own event loop",
    );
    return createInlineRunner(HANDLERS, deadlines, options.github);
  }
  const missing = missingReadPermission(CODE_DIR);
  if (missing !== null) throw new StartupError(missing);
  return createPool({
    module: options.module ?? HANDLERS_MODULE,
    size: config.maxConcurrency,
    logLevel: config.logLevel,
    deadlines,
    ...(options.github ? { github: options.github } : {}),
    log: log.child({ component: "handlers" }),
  });
}
