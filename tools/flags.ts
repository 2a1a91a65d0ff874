/**
 * Prints the narrowest `deno run` permission flags for the current
 * configuration (environment and `.env`): the listen address, the meta host
 * and, when `ctx.github` is authenticated (an App or `GITHUB_TOKEN`), the
 * `GITHUB_API_URL` host for `--allow-net`; exactly hookgate's variables for
 * `--allow-env`; the KV folder (plus `.env`) for `--allow-read`/`--allow-write`,
 * the App's key file (`GITHUB_APP_PRIVATE_KEY_PATH`) and the `lib/` folder
 * for `--allow-read` (handler Workers load their code from it).
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
  readEnvironment,
} from "../lib/config/config.ts";
import { errorMessage } from "../lib/_util/errors.ts";

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
export function productionFlags(config: Config, dotenv?: string): string[] {
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
  if (read.length > 0) flags.push(`--allow-read=${read.join(",")}`);
  if (write.length > 0) flags.push(`--allow-write=${write.join(",")}`);
  return flags;
}

if (import.meta.main) {
  const env = await readEnvironment();
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    console.error(errorMessage(err));
    Deno.exit(1);
  }
  const flags = productionFlags(config, ".env");
  if (Deno.args.includes("--command")) {
    const main = new URL("../main.ts", import.meta.url).pathname;
    console.log(
      ["deno run --unstable-kv --no-prompt", ...flags, main].join(" \\\n  "),
    );
  } else {
    console.log(flags.join(" "));
  }
}
