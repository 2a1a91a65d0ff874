/**
 * The servers under load, (a) to (d): the command that runs each (pinned
 * with `taskset`, in a fresh working directory, hookgate as
 * `deno task start` runs it), starting one and waiting until it answers
 * /healthz, and stopping it. It sends no load and reads no /proc.
 *
 * @module
 */

import { BENCH_SECRET } from "../servers/_payload.ts";
import { freePort, inheritedEnv } from "../_subprocess.ts";
import type { LoadOptions } from "./args.ts";
import { type Children, drain, stopChild } from "./children.ts";
import {
  BENCH,
  isHookgate,
  OUT,
  ROOT,
  type Server,
  SERVER_CORE,
} from "./common.ts";

/** How long a server may take to answer /healthz after it is spawned. */
const START_MS = 30_000;
/** How long a server may take to exit after SIGTERM before it is killed. */
const STOP_MS = 20_000;

/** Where hookgate's code is taken from. */
export interface CodeTree {
  /**
   * The checkout (with a trailing slash) whose `main.ts`, `lib/` and
   * `deno.json` run hookgate (c, d), e.g. a git worktree of an older
   * commit; (a) and (b) always run from this one. @default ROOT
   */
  root?: string;
}

/** A server that answers, and what is needed to stop it. */
export interface Started {
  child: Deno.ChildProcess;
  port: number;
  /** Its last lines of output (stdout and stderr). */
  lines: string[];
  /** Its temporary working directory, removed when it stops. */
  cwd: string;
  /** Where its CPU profile goes, with `--cpu-prof`. */
  profDir: string | null;
}

/** What runs a server: the cores it is pinned to, Deno's arguments, its variables. */
export interface ServerCommand {
  cores: string;
  args: string[];
  /** Variables on top of the inherited ones, `NO_COLOR` and `PORT`. */
  env: Record<string, string>;
}

/**
 * The command for `server` on `port`: (a) and (b) are the scripts in
 * bench/servers/, (c) and (d) hookgate's main.ts (or, with `--parallel`,
 * serve.ts under `deno serve --parallel` on every core) from
 * `options.root`.
 *
 * @example
 * ```ts
 * import { serverCommand } from "./servers.ts";
 * serverCommand("a", 8000, { extraEnv: {}, parallel: 1 }, []).cores; // "0"
 * ```
 */
export function serverCommand(
  server: Server,
  port: number,
  options: Pick<LoadOptions, "extraEnv" | "parallel"> & CodeTree,
  prof: readonly string[],
  cpus: number = navigator.hardwareConcurrency,
): ServerCommand {
  if (!isHookgate(server)) {
    const file = server === "a" ? "ceiling.ts" : "minimal.ts";
    return {
      cores: SERVER_CORE,
      env: {},
      args: [
        "run",
        "--config",
        `${ROOT}deno.json`,
        ...prof,
        "--allow-net=127.0.0.1",
        "--allow-env=PORT",
        `--allow-read=${ROOT}examples`,
        `${BENCH}servers/${file}`,
      ],
    };
  }
  const root = options.root ?? ROOT;
  const parallel = options.parallel > 1;
  // As `deno task start` runs it, in a fresh working directory.
  const env: Record<string, string> = {
    HOST: "127.0.0.1",
    GITHUB_WEBHOOK_SECRET: BENCH_SECRET,
    IP_ALLOWLIST: "off",
    LOG_LEVEL: "warn",
    LOG_FORMAT: "json",
    KV_PATH: server === "c" ? ":memory:" : "./data/hookgate.kv",
    ...options.extraEnv,
  };
  if (parallel) env.DENO_JOBS = String(options.parallel);
  const serve = parallel
    ? ["serve", "--parallel", "--port", String(port), "--host", "127.0.0.1"]
    : ["run"];
  return {
    // Under --parallel, hookgate gets every core (sharing the load
    // generator's): the point is to see what a second isolate buys.
    cores: parallel ? `0-${Math.max(1, cpus - 1)}` : SERVER_CORE,
    env,
    args: [
      ...serve,
      "--config",
      `${root}deno.json`,
      ...prof,
      "--allow-net",
      "--allow-env",
      `--allow-read=.env,./data,${root}lib`,
      "--allow-write=./data",
      parallel ? `${root}serve.ts` : `${root}main.ts`,
    ],
  };
}

/** A fresh profile folder for `label` and the flags that fill it, with `--cpu-prof`. */
async function profiling(
  cpuProf: boolean,
  label: string,
): Promise<{ profDir: string | null; prof: string[] }> {
  if (!cpuProf) return { profDir: null, prof: [] };
  const profDir = `${OUT}prof/${label}`;
  await Deno.remove(profDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(profDir, { recursive: true });
  return { profDir, prof: ["--cpu-prof", `--cpu-prof-dir=${profDir}`] };
}

/** Polls /healthz every 100 ms until it answers below 500; throws if the child exits or 30 s pass. */
async function waitForHealthz(
  child: Deno.ChildProcess,
  port: number,
  label: string,
  lines: readonly string[],
): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + START_MS;
  while (true) {
    if (exited) {
      throw new Error(`${label} exited at start:\n${lines.join("\n")}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.body?.cancel();
      if (res.status < 500) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      throw new Error(`${label} did not listen:\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `server` on a free port in a fresh temporary directory and waits
 * until it answers /healthz.
 *
 * @example
 * ```ts
 * import { startServer, stopServer } from "./servers.ts";
 * // const started = await startServer(children, options, "a", "a-good-1");
 * // … await stopServer(started);
 * ```
 */
export async function startServer(
  children: Children,
  options: Pick<LoadOptions, "cpuProf" | "extraEnv" | "parallel"> & CodeTree,
  server: Server,
  label: string,
): Promise<Started> {
  const port = freePort();
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-load-" });
  const lines: string[] = [];
  const { profDir, prof } = await profiling(options.cpuProf, label);
  const command = serverCommand(server, port, options, prof);
  const child = children.spawn(
    "taskset",
    ["-c", command.cores, Deno.execPath(), ...command.args],
    {
      cwd,
      env: {
        ...inheritedEnv(),
        NO_COLOR: "1",
        PORT: String(port),
        ...command.env,
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  );
  drain(child.stdout, lines);
  drain(child.stderr, lines);
  await waitForHealthz(child, port, label, lines);
  return { child, port, lines, cwd, profDir };
}

/**
 * Stops a started server (SIGTERM, SIGKILL after 20 s) and removes its
 * working directory.
 *
 * @example
 * ```ts
 * import { stopServer } from "./servers.ts";
 * // await stopServer(started);
 * ```
 */
export async function stopServer(started: Started): Promise<void> {
  await stopChild(started.child, STOP_MS);
  await Deno.remove(started.cwd, { recursive: true }).catch(() => {});
}
