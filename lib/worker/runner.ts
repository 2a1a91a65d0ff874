/**
 * Chooses where handlers run: in a pool of Worker isolates (`pool.ts`), the
 * default, or on this event loop (`run.ts`'s inline runner) where Workers
 * cannot run — Deno Deploy — or when a test hands in a registry object. And
 * sets up the hook scripts of `HOOKS_DIR` (`scripts.ts`), checking at start
 * that this process may run them.
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
import {
  createInlineRunner,
  type HandlerRunner,
  type ScriptStage,
} from "./run.ts";
import type { GitHubHost } from "../github/client.ts";
import type { GitHubBroker } from "../github/broker.ts";
import { createScriptRunner, listScripts, scriptTempDir } from "./scripts.ts";
import { describeError } from "../_util/errors.ts";

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

/** Options of {@link createScriptStage}. */
export interface ScriptStageOptions {
  config: Pick<Config, "hooksDir" | "hooksEnv" | "handlerTimeoutMs">;
  log: Logger;
  /** Gives the scripts' `GITHUB_TOKEN` (the server's GitHub broker). */
  github?: Pick<GitHubBroker, "tokenFor"> | undefined;
}

/**
 * What the permissions of this process lack to run hook scripts from `dir`
 * (read the folder, run its scripts, write their payload files to
 * `tempDir`), as a message naming the flags; null when nothing is missing.
 * A narrow `--allow-run=<paths>` must name every script present.
 */
export async function missingScriptPermissions(
  dir: string,
  tempDir: string,
): Promise<string | null> {
  const missing: string[] = [];
  const query = (d: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(d).state === "granted";
  let real = dir;
  try {
    real = query({ name: "read", path: dir }) ? await Deno.realPath(dir) : dir;
  } catch { /* checked below, when the app is made */ }
  const unreadable = [dir, real].filter((path, i, all) =>
    all.indexOf(path) === i && !query({ name: "read", path })
  );
  if (unreadable.length > 0) {
    missing.push(`--allow-read=${unreadable.join(",")}`);
  }
  if (!query({ name: "write", path: tempDir })) {
    missing.push(`--allow-write=${tempDir}`);
  }
  if (!query({ name: "run" })) {
    const readable = !missing.some((flag) => flag.startsWith("--allow-read"));
    const scripts = readable ? await listScripts(dir) : [];
    const denied = scripts.filter((path) =>
      !query({ name: "run", command: path })
    );
    if (scripts.length === 0 || denied.length > 0) {
      missing.push(
        denied.length > 0 ? `--allow-run=${denied.join(",")}` : "--allow-run",
      );
    }
  }
  if (missing.length === 0) return null;
  return `HOOKS_DIR is set, and running its scripts needs ${
    missing.join(" ")
  } (deno task start grants them; deno task flags prints the narrow flags)`;
}

/**
 * The hook scripts of an app (`HOOKS_DIR`), or undefined when it has none.
 * Throws a {@link StartupError} naming the flags when this process may not
 * run them.
 */
export async function createScriptStage(
  options: ScriptStageOptions,
): Promise<ScriptStage | undefined> {
  const { config, log } = options;
  if (config.hooksDir === null) return undefined;
  const dir = config.hooksDir;
  const tempDir = scriptTempDir();
  const missing = await missingScriptPermissions(dir, tempDir);
  if (missing !== null) throw new StartupError(missing);
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Error("not a folder");
  } catch (err) {
    throw new StartupError(
      `HOOKS_DIR is ${JSON.stringify(dir)}, which is not a readable folder: ${
        describeError(err)
      }`,
    );
  }
  const baseEnv: Record<string, string> = {};
  for (const name of ["PATH", "HOME", ...config.hooksEnv]) {
    const granted = Deno.permissions.querySync({ name: "env", variable: name })
      .state === "granted";
    const value = granted ? Deno.env.get(name) : undefined;
    if (value !== undefined) baseEnv[name] = value;
    else if (config.hooksEnv.includes(name)) {
      log.warn("a HOOKS_ENV variable is not set (or not allowed): not passed", {
        variable: name,
      });
    }
  }
  const runner = createScriptRunner({
    dir,
    baseEnv,
    timeoutMs: config.handlerTimeoutMs,
    tempDir,
    log: log.child({ component: "scripts" }),
  });
  const github = options.github;
  return {
    dir,
    runner,
    token: (installation, signal) =>
      github
        ? github.tokenFor(installation, signal)
        : Promise.resolve(undefined),
  };
}
