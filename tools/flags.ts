/**
 * Prints the narrowest `deno run` permission flags for the current
 * configuration (environment and `.env`): the listen address, the meta host
 * and, when `ctx.github` is authenticated (an App or `GITHUB_TOKEN`), the
 * `GITHUB_API_URL` host, and each `FORWARD_URLS` host, for `--allow-net`; exactly hookgate's variables for
 * `--allow-env`; the KV folder (plus `.env`) for `--allow-read`/`--allow-write`,
 * the App's key file (`GITHUB_APP_PRIVATE_KEY_PATH`) and the `lib/` folder
 * for `--allow-read` (handler Workers load their code from it). With
 * `HOOKS_DIR`: `--allow-run=` every script present (and `kill`, which
 * signals a script's process group), the folder to read, the temp folder
 * to write, and `PATH`, `HOME` and the `HOOKS_ENV` names to `--allow-env`.
 * `--start` prints only what `deno task start` adds for `HOOKS_DIR`.
 *
 * ```sh
 * deno task flags            # flags only
 * deno task flags --command  # a whole `deno run …` command line
 * ```
 *
 * The README's systemd unit is this output for its settings;
 * `tests/permissions_test.ts` runs the server under exactly these flags.
 *
 * @module
 */

import {
  type Config,
  CONFIG_VARIABLES,
  loadConfig,
  readDotenvFile,
  readEnvironment,
} from "../lib/config/config.ts";
import { errorMessage } from "../lib/_util/errors.ts";
import { listScripts, scriptTempDir } from "../lib/worker/scripts.ts";

/** The folder of hookgate's code, which handler Workers load from disk. */
const CODE_DIR = new URL("../lib", import.meta.url).pathname;

/** Where `path` lives: its folder (for a KV file and its -wal/-shm files). */
function folderOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

function hostPort(url: URL): string {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.hostname}:${port}`;
}

/**
 * The narrowest permission flags for `config`; `dotenv` is the `.env` path to
 * allow reading (omit it when the environment comes from elsewhere).
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config/config.ts";
 * import { productionFlags } from "./flags.ts";
 * productionFlags(loadConfig({ GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody" }))[0];
 * // "--allow-net=0.0.0.0:8000,api.github.com:443"
 * ```
 */
/** What the hook scripts of `HOOKS_DIR` need, found on disk. */
export interface HookPermissions {
  /** The real path of every script present. */
  scripts: string[];
  /** The `kill` program (to signal a script's process group), when found. */
  kill: string | null;
  /** Where payload files are written (`scriptTempDir()`). */
  tempDir: string;
}

export function productionFlags(
  config: Config,
  dotenv?: string,
  hooks?: HookPermissions,
): string[] {
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const net = [`${host}:${config.port}`];
  if (config.ipAllowlist === "github") {
    net.push(hostPort(new URL(config.metaUrl)));
  }
  // ctx.github calls the REST API when it has credentials to call it with.
  if (config.githubApp !== null || config.githubToken !== undefined) {
    const api = hostPort(new URL(config.githubApiUrl));
    if (!net.includes(api)) net.push(api);
  }
  // Every accepted delivery is forwarded to each FORWARD_URLS host.
  for (const url of config.forwardUrls) {
    const target = hostPort(new URL(url));
    if (!net.includes(target)) net.push(target);
  }
  const flags = [
    `--allow-net=${net.join(",")}`,
    // HOSTNAME tells apart containers sharing one KV file (lib/boot.ts seat).
    `--allow-env=${[...CONFIG_VARIABLES, "HOSTNAME"].join(",")}`,
  ];
  const read: string[] = [];
  const write: string[] = [];
  if (
    config.kvPath !== "" && config.kvPath !== ":memory:" &&
    !/^https?:\/\//.test(config.kvPath)
  ) {
    read.push(folderOf(config.kvPath));
    write.push(folderOf(config.kvPath));
  } else if (/^https?:\/\//.test(config.kvPath)) {
    net.push(hostPort(new URL(config.kvPath)));
    flags[0] = `--allow-net=${net.join(",")}`;
  }
  if (dotenv) read.push(dotenv);
  if (config.githubApp !== null && "path" in config.githubApp.key) {
    read.push(config.githubApp.key.path);
  }
  // Handlers run in Worker isolates, which load their code from disk.
  read.push(CODE_DIR);
  if (config.hooksDir !== null && hooks) {
    read.push(...hooksDirPaths(config.hooksDir));
    write.push(hooks.tempDir);
    flags[1] = `--allow-env=${
      [
        ...CONFIG_VARIABLES,
        "HOSTNAME",
        "PATH",
        "HOME",
        "TMPDIR",
        ...config.hooksEnv,
      ]
        .join(",")
    }`;
    const run = [...hooks.scripts, ...(hooks.kill ? [hooks.kill] : [])];
    if (run.length > 0) flags.push(`--allow-run=${run.join(",")}`);
  }
  if (read.length > 0) flags.push(`--allow-read=${read.join(",")}`);
  if (write.length > 0) flags.push(`--allow-write=${write.join(",")}`);
  return flags;
}

/** The first `kill` program on `PATH`, or null. */
async function findKill(): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const path = `${dir}/kill`;
      if ((await Deno.stat(path)).isFile) return await Deno.realPath(path);
    } catch { /* not here */ }
  }
  return null;
}

/** What the hook scripts of `dir` need (see {@link HookPermissions}). */
export async function hookPermissions(dir: string): Promise<HookPermissions> {
  return {
    scripts: await listScripts(dir),
    kill: await findKill(),
    tempDir: scriptTempDir(),
  };
}

/**
 * The flags `deno task start` adds when `HOOKS_DIR` is set (in the
 * environment or `.env`): running any script (one added later needs no
 * restart), reading the folder, writing payload files. Empty otherwise.
 * It never fails: a bad configuration is reported by the server itself.
 *
 * @example
 * ```ts
 * import { startHookFlags } from "./flags.ts";
 * startHookFlags({}); // []
 * ```
 */
export function startHookFlags(
  env: Record<string, string | undefined>,
): string[] {
  const dir = env.HOOKS_DIR?.trim();
  if (!dir) return [];
  return [
    "--allow-run",
    `--allow-read=${hooksDirPaths(dir).join(",")}`,
    `--allow-write=${scriptTempDir()}`,
  ];
}

/**
 * `HOOKS_DIR` as given and, when it is (or passes through) a symlink, its
 * real path too: scripts are looked up under the real one.
 */
export function hooksDirPaths(dir: string): string[] {
  try {
    const real = Deno.realPathSync(dir);
    return real === dir ? [dir] : [dir, real];
  } catch {
    return [dir];
  }
}

/** Where `deno task start` writes the `OTEL_*` lines of `.env` for Deno. */
export const OTEL_ENV_FILE = "./data/otel.env";

/**
 * The env file Deno is given for OpenTelemetry (`--env-file`): only the
 * `OTEL_*` variables `.env` sets and the environment does not, each single
 * quoted so that Deno's parser takes it literally (no `$` expansion, no `#`
 * comment). A value holding a quote or a line break cannot be written so
 * and is left out (`skipped`). Null when there is nothing to pass.
 *
 * Never the whole `.env`: Deno would parse every secret in it its own way,
 * and the environment wins over hookgate's own reading.
 *
 * @example
 * ```ts
 * import { otelEnvFile } from "./flags.ts";
 * otelEnvFile({ OTEL_DENO: "true", GITHUB_WEBHOOK_SECRET: "s" }, {});
 * // { text: "OTEL_DENO='true'\n", skipped: [] }
 * otelEnvFile({ PORT: "8000" }, {}); // null
 * ```
 */
export function otelEnvFile(
  dotenv: Record<string, string>,
  env: Record<string, string | undefined>,
): { text: string; skipped: string[] } | null {
  const names = Object.keys(dotenv).filter((name) =>
    /^OTEL_[A-Z0-9_]+$/.test(name) && env[name] === undefined
  );
  if (names.length === 0) return null;
  const skipped = names.filter((name) => /['\r\n]/.test(dotenv[name]!));
  const lines = names.filter((name) => !skipped.includes(name))
    .map((name) => `${name}='${dotenv[name]}'\n`);
  return { text: lines.join(""), skipped };
}

/**
 * `--env-file` for `deno task start` when `.env` sets `OTEL_*` variables:
 * Deno reads its OpenTelemetry settings before hookgate runs (and reads
 * `.env` itself), so they reach Deno only through a file it loads. Writes
 * {@link otelEnvFile}'s text to `path`, created 0600 (an
 * `OTEL_EXPORTER_OTLP_HEADERS` may hold an API key) beside it and renamed
 * over it; removes a `path` left from an earlier start when `.env` sets
 * none. A file that cannot be written is reported on stderr and the flag
 * left out: the rest of the start goes on.
 */
export function startTelemetryFlags(
  dotenv: Record<string, string>,
  env: Record<string, string | undefined>,
  path: string = OTEL_ENV_FILE,
): string[] {
  const file = otelEnvFile(dotenv, env);
  if (file === null) {
    try {
      Deno.removeSync(path);
    } catch { /* none left, or not ours to remove */ }
    return [];
  }
  for (const name of file.skipped) {
    console.error(
      `hookgate: ${name} in .env holds a quote or a line break; set it in the environment instead`,
    );
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(temp, file.text, { createNew: true, mode: 0o600 });
    Deno.renameSync(temp, path);
    return [`--env-file=${path}`];
  } catch (err) {
    try {
      Deno.removeSync(temp);
    } catch { /* never written */ }
    console.error(
      `hookgate: cannot write ${path} (${
        err instanceof Error ? err.name : "error"
      }); the OTEL_* lines of .env are not applied`,
    );
    return [];
  }
}

if (import.meta.main && Deno.args.includes("--start")) {
  // For `deno task start`: only what HOOKS_DIR and OTEL_* add, never an
  // error (the server reports a bad configuration); each part on its own.
  const flags: string[] = [];
  try {
    flags.push(...startHookFlags(await readEnvironment()));
  } catch { /* the server reports it */ }
  try {
    flags.push(
      ...startTelemetryFlags(
        await readDotenvFile(".env"),
        Deno.env.toObject(),
      ),
    );
  } catch { /* the server reports it */ }
  console.log(flags.join(" "));
} else if (import.meta.main) {
  const env = await readEnvironment();
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    console.error(errorMessage(err));
    Deno.exit(1);
  }
  const hooks = config.hooksDir === null
    ? undefined
    : await hookPermissions(config.hooksDir);
  const flags = productionFlags(config, ".env", hooks);
  if (Deno.args.includes("--command")) {
    const main = new URL("../main.ts", import.meta.url).pathname;
    console.log(
      ["deno run --unstable-kv --no-prompt", ...flags, main].join(" \\\n  "),
    );
  } else {
    console.log(flags.join(" "));
  }
}
