/**
 * Configuration: every environment variable of the contract, parsed and
 * validated in one pure function ({@link loadConfig}) that reports every
 * problem at once. It reads no environment itself: `main.ts` passes a record
 * built from `Deno.env` and `.env` ({@link mergeEnv}).
 *
 * @module
 */

import {
  type Cidr,
  effectivePrefix,
  parseCidr,
  parseIp,
} from "../security/cidr.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../ops/log.ts";
import { DEFAULT_API_URL, parseApiUrl } from "../github/rest.ts";
import type { KvBackend } from "../store/limits.ts";

/** Every variable hookgate reads, in the contract's order. */
export const CONFIG_VARIABLES = [
  "GITHUB_WEBHOOK_SECRET",
  "GITHUB_WEBHOOK_SECRET_PREVIOUS",
  "PORT",
  "HOST",
  "WEBHOOK_PATH",
  "MAX_BODY_BYTES",
  "IP_ALLOWLIST",
  "EXTRA_ALLOWED_CIDRS",
  "TRUSTED_PROXIES",
  "GITHUB_META_URL",
  "GITHUB_META_REFRESH_SECONDS",
  "GITHUB_TOKEN",
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_PRIVATE_KEY_PATH",
  "GITHUB_API_URL",
  "KV_PATH",
  "ADMIN_TOKEN",
  "HANDLER_TIMEOUT_MS",
  "MAX_CONCURRENCY",
  "BODY_TIMEOUT_MS",
  "MAX_ATTEMPTS",
  "DELIVERY_TTL_DAYS",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "DENO_DEPLOYMENT_ID",
  "DENO_KV_ACCESS_TOKEN",
  "HOOKS_DIR",
  "HOOKS_ENV",
  "SERIALIZE_BY",
  "KV_LIMITS",
  "RECONCILE_INTERVAL_MINUTES",
  "FORWARD_URLS",
  "FORWARD_SECRET",
] as const;

/** The fully resolved configuration. */
export interface Config {
  /** Current secret first, then the previous one when set. */
  secrets: string[];
  port: number;
  host: string;
  webhookPath: string;
  maxBodyBytes: number;
  ipAllowlist: "github" | "off";
  extraAllowedCidrs: Cidr[];
  trustedProxies: Cidr[];
  metaUrl: string;
  metaRefreshSeconds: number;
  /** Used by `ctx.github` when no App is configured, and for the meta fetch. */
  githubToken: string | undefined;
  /** The GitHub App acting for handlers, or null when none is configured. */
  githubApp: GitHubAppConfig | null;
  /** The REST API root, as given (`GITHUB_API_URL`); checked by `parseApiUrl`. */
  githubApiUrl: string;
  /** A file path, `:memory:`, a KV Connect URL, or `""` for Deno Deploy's managed KV. */
  kvPath: string;
  adminToken: string | undefined;
  handlerTimeoutMs: number;
  maxConcurrency: number;
  bodyTimeoutMs: number;
  maxAttempts: number;
  deliveryTtlMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** True on Deno Deploy (`DENO_DEPLOYMENT_ID` set). */
  deploy: boolean;
  /** `HOOKS_DIR`: the folder of hook scripts, or null when scripts are off. */
  hooksDir: string | null;
  /** `HOOKS_ENV`: names of server variables also passed to scripts. */
  hooksEnv: string[];
  /** `SERIALIZE_BY`: which deliveries run one at a time, in receipt order. */
  serializeBy: SerializeBy;
  /**
   * `KV_LIMITS`: whose request limits the store keeps to; undefined to go
   * by `KV_PATH` (a URL: self-hosted denokv's, the strictest).
   */
  kvLimits: KvBackend | undefined;
  /**
   * `RECONCILE_INTERVAL_MINUTES`: how often the server asks GitHub to
   * redeliver what it never stored (`github/reconcile.ts`); null when off.
   */
  reconcileIntervalMinutes: number | null;
  /**
   * `FORWARD_URLS`: where every accepted delivery is also sent, as GitHub
   * would send it (`worker/forward.ts`); empty when off.
   */
  forwardUrls: string[];
  /** `FORWARD_SECRET`: what forwards are signed with. @default the current `GITHUB_WEBHOOK_SECRET` */
  forwardSecret: string | undefined;
}

/** The values of `SERIALIZE_BY`. */
export type SerializeBy = "none" | "repository" | "branch";

/**
 * Names `HOOKS_ENV` may not pass on: secrets, and the variables hookgate
 * sets itself for a script.
 */
const SCRIPT_RESERVED = new Set([
  "GITHUB_WEBHOOK_SECRET",
  "GITHUB_WEBHOOK_SECRET_PREVIOUS",
  "FORWARD_SECRET",
  "ADMIN_TOKEN",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_PRIVATE_KEY_PATH",
  "DENO_KV_ACCESS_TOKEN",
  "GITHUB_TOKEN",
  "PATH",
  "HOME",
]);

/**
 * The names in `HOOKS_ENV`, each checked: a shell variable name, not a
 * secret, not one hookgate sets (`HOOKGATE_*`, `GITHUB_TOKEN`, `PATH`,
 * `HOME`). Problems are pushed to `problems`.
 *
 * @example
 * ```ts
 * import { hooksEnvNames } from "./config.ts";
 * const problems: string[] = [];
 * hooksEnvNames("DEPLOY_HOST, SSH_AUTH_SOCK", problems); // ["DEPLOY_HOST", "SSH_AUTH_SOCK"]
 * hooksEnvNames("ADMIN_TOKEN", problems); // []
 * problems.length; // 1
 * ```
 */
export function hooksEnvNames(
  raw: string | undefined,
  problems: string[],
): string[] {
  const names: string[] = [];
  for (const part of (raw ?? "").split(",")) {
    const name = part.trim();
    if (name === "") continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      problems.push(
        `HOOKS_ENV holds ${JSON.stringify(name)}, which is not a variable name`,
      );
    } else if (SCRIPT_RESERVED.has(name) || name.startsWith("HOOKGATE_")) {
      problems.push(
        `HOOKS_ENV holds ${name}: ${
          name === "GITHUB_TOKEN" || name === "PATH" || name === "HOME" ||
            name.startsWith("HOOKGATE_")
            ? "hookgate sets it for scripts itself"
            : "secrets are never passed to scripts"
        }`,
      );
    } else if (!names.includes(name)) names.push(name);
  }
  return names;
}

/**
 * A GitHub App's settings: its ID (`GITHUB_APP_ID`) and where its private key
 * is. The key is not parsed here (that is asynchronous): `loadAppKey` in
 * `lib/github/app_config.ts` imports it at start.
 */
export interface GitHubAppConfig {
  /** The numeric App ID (`"123456"`) or the client ID (`"Iv23…"`): the JWT's `iss`. */
  id: string;
  /** The key's text (`GITHUB_APP_PRIVATE_KEY`) or a file holding it (`GITHUB_APP_PRIVATE_KEY_PATH`). */
  key: { text: string } | { path: string };
}

/** Thrown by {@link loadConfig}; `problems` lists every bad variable. */
export class ConfigError extends Error {
  /** @param problems one line per bad variable */
  constructor(readonly problems: string[]) {
    super(`Cannot start:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const DAY_MS = 86_400_000;
/** A DNS host name: dot-separated labels of letters, digits and inner hyphens. */
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** A GitHub App ID: a positive integer, or a client ID (`Iv1.` + 16 hex digits, `Iv23` + 16 characters). */
const APP_ID =
  /^(?:[1-9][0-9]{0,15}|Iv1\.[0-9a-f]{16}|Iv[0-9]{2}[A-Za-z0-9]{16})$/;
/** The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
/** The shortest `GITHUB_WEBHOOK_SECRET` and `ADMIN_TOKEN` accepted, in characters. */
export const MIN_SECRET_LENGTH = 16;
/**
 * The widest ranges `TRUSTED_PROXIES` and `EXTRA_ALLOWED_CIDRS` take: the
 * widest private block of each family (`10.0.0.0/8`; `fc00::/7`, every
 * unique-local address). Anything wider, such as `0.0.0.0/0`, lets anyone
 * through.
 */
export const MIN_CIDR_PREFIX = { 4: 8, 6: 7 } as const;
/** What a too-wide range of each CIDR variable would give away. */
const WIDE_CIDR_RISK: Record<string, string> = {
  TRUSTED_PROXIES: "any client could forge X-Forwarded-For",
  EXTRA_ALLOWED_CIDRS: "anyone could pass the IP allowlist",
};

/**
 * Parses and validates the environment. Throws a {@link ConfigError} naming
 * every bad variable and what is wrong with its value.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const config = loadConfig({ GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody" });
 * config.port; // 8000
 * ```
 */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === ""
      ? undefined
      : value.trim();
  };

  function int(
    name: string,
    fallback: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
      problems.push(
        `${name} must be a positive integer${
          max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ""
        }: current value is ${JSON.stringify(raw)}`,
      );
      return fallback;
    }
    return Number(raw);
  }

  function oneOf<T extends string>(
    name: string,
    allowed: readonly T[],
    fallback: T,
  ): T {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const lower = raw.toLowerCase() as T;
    if (!allowed.includes(lower)) {
      problems.push(
        `${name} must be one of ${allowed.join(", ")}: current value is ${
          JSON.stringify(raw)
        }`,
      );
      return fallback;
    }
    return lower;
  }

  function cidrs(name: string): Cidr[] {
    const raw = get(name);
    if (raw === undefined) return [];
    const out: Cidr[] = [];
    for (const part of raw.split(",")) {
      const item = part.trim();
      if (item === "") continue;
      const cidr = parseCidr(item);
      const wide = cidr && tooWide(cidr);
      if (cidr === null) {
        problems.push(`${name} holds an invalid CIDR: ${JSON.stringify(item)}`);
      } else if (wide) {
        problems.push(
          `${name} holds ${cidr.text}, wider than ${wide}: ${
            WIDE_CIDR_RISK[name]
          }`,
        );
      } else out.push(cidr);
    }
    return out;
  }

  // Secrets are not trimmed: a secret is exactly what GitHub was given.
  const secret = env.GITHUB_WEBHOOK_SECRET;
  if (secret === undefined || secret === "") {
    problems.push(
      "GITHUB_WEBHOOK_SECRET is not set: create one with `deno task secret` and give the same value to GitHub",
    );
  } else if (tooShort(secret.trim())) {
    problems.push(
      `GITHUB_WEBHOOK_SECRET is shorter than ${MIN_SECRET_LENGTH} characters: create a strong one with \`deno task secret\` and give the same value to GitHub`,
    );
  }
  // The previous secret is not held to the length: rotating away from a
  // weak secret must stay possible.
  const previous = env.GITHUB_WEBHOOK_SECRET_PREVIOUS;
  const adminToken = env.ADMIN_TOKEN?.trim() ? env.ADMIN_TOKEN : undefined;
  if (adminToken !== undefined && tooShort(adminToken.trim())) {
    problems.push(
      `ADMIN_TOKEN is shorter than ${MIN_SECRET_LENGTH} characters: use a random value such as the one \`deno task secret\` prints`,
    );
  }

  const port = get("PORT") === "0" ? 0 : int("PORT", 8000, 65535);
  const host = get("HOST") ?? "0.0.0.0";
  if (parseIp(host) === null && !HOSTNAME.test(host)) {
    problems.push(
      `HOST must be an IP address or a host name: current value is ${
        JSON.stringify(host)
      }`,
    );
  }

  const webhookPath = get("WEBHOOK_PATH") ?? "/webhook";
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(webhookPath)) {
    problems.push(
      `WEBHOOK_PATH must be a URL path starting with "/": current value is ${
        JSON.stringify(webhookPath)
      }`,
    );
  }

  const metaUrl = get("GITHUB_META_URL") ?? "https://api.github.com/meta";
  try {
    const url = new URL(metaUrl);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new Error();
    }
  } catch {
    problems.push(
      `GITHUB_META_URL must be an http(s) URL: current value is ${
        JSON.stringify(metaUrl)
      }`,
    );
  }

  const ipAllowlist = oneOf(
    "IP_ALLOWLIST",
    ["github", "off"] as const,
    "github",
  );
  const githubApiUrl = get("GITHUB_API_URL") ?? DEFAULT_API_URL;
  const api = parseApiUrl(githubApiUrl);
  if (!api.ok) problems.push(api.error);
  const githubApp = appConfig(get, problems);

  const kvPath = env.KV_PATH?.trim() || "./data/hookgate.kv";
  const deploy = get("DENO_DEPLOYMENT_ID") !== undefined;

  const config: Config = {
    secrets: [secret ?? "", ...(previous ? [previous] : [])],
    port,
    host,
    webhookPath,
    maxBodyBytes: int("MAX_BODY_BYTES", 26_214_400),
    ipAllowlist,
    extraAllowedCidrs: cidrs("EXTRA_ALLOWED_CIDRS"),
    trustedProxies: cidrs("TRUSTED_PROXIES"),
    metaUrl,
    metaRefreshSeconds: int(
      "GITHUB_META_REFRESH_SECONDS",
      3600,
      MAX_TIMER_MS / 1000 | 0,
    ),
    githubToken: get("GITHUB_TOKEN"),
    githubApp,
    githubApiUrl,
    kvPath: deploy && env.KV_PATH === undefined ? "" : kvPath,
    adminToken,
    handlerTimeoutMs: int("HANDLER_TIMEOUT_MS", 30_000, MAX_TIMER_MS),
    maxConcurrency: int("MAX_CONCURRENCY", 8),
    bodyTimeoutMs: int("BODY_TIMEOUT_MS", 10_000, MAX_TIMER_MS),
    maxAttempts: int("MAX_ATTEMPTS", 5),
    deliveryTtlMs: int("DELIVERY_TTL_DAYS", 7, 36_500) * DAY_MS,
    logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: oneOf("LOG_FORMAT", ["json", "pretty"] as const, "json"),
    deploy,
    hooksDir: get("HOOKS_DIR") ?? null,
    hooksEnv: hooksEnvNames(get("HOOKS_ENV"), problems),
    serializeBy: oneOf(
      "SERIALIZE_BY",
      ["none", "repository", "branch"] as const,
      "none",
    ),
    kvLimits: get("KV_LIMITS") === undefined ? undefined : oneOf(
      "KV_LIMITS",
      ["local", "denokv", "deploy"] as const,
      "denokv",
    ),
    reconcileIntervalMinutes: get("RECONCILE_INTERVAL_MINUTES") === undefined
      ? null
      : int("RECONCILE_INTERVAL_MINUTES", 60, MAX_TIMER_MS / 60_000 | 0),
    forwardUrls: forwardUrls(get("FORWARD_URLS"), problems),
    forwardSecret: env.FORWARD_SECRET?.trim() ? env.FORWARD_SECRET : undefined,
  };
  if (
    config.forwardSecret !== undefined && tooShort(config.forwardSecret.trim())
  ) {
    problems.push(
      `FORWARD_SECRET is shorter than ${MIN_SECRET_LENGTH} characters: create a strong one with \`deno task secret\` and give the same value to the receiver`,
    );
  }
  if (config.hooksDir !== null && /[\s,]/.test(config.hooksDir)) {
    problems.push(
      `HOOKS_DIR must be a path without spaces or commas (permission flags list paths with commas): current value is ${
        JSON.stringify(config.hooksDir)
      }`,
    );
  }
  if (config.hooksDir !== null && deploy) {
    problems.push(
      "HOOKS_DIR is set, but Deno Deploy cannot run scripts: unset it there",
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The App settings from `GITHUB_APP_ID` and one of `GITHUB_APP_PRIVATE_KEY`
 * and `GITHUB_APP_PRIVATE_KEY_PATH`, or null when none is set. Problems go to
 * `problems`; the key's text never does.
 */
function appConfig(
  get: (name: string) => string | undefined,
  problems: string[],
): GitHubAppConfig | null {
  const id = get("GITHUB_APP_ID");
  const text = get("GITHUB_APP_PRIVATE_KEY");
  const path = get("GITHUB_APP_PRIVATE_KEY_PATH");
  if (id === undefined && text === undefined && path === undefined) return null;
  const before = problems.length;
  if (id === undefined) {
    problems.push(
      `GITHUB_APP_ID is not set, but ${
        text === undefined
          ? "GITHUB_APP_PRIVATE_KEY_PATH"
          : "GITHUB_APP_PRIVATE_KEY"
      } is: set it to the App's ID (or client ID) from its settings page`,
    );
  } else if (!APP_ID.test(id)) {
    problems.push(
      `GITHUB_APP_ID must be the App's numeric ID or its client ID (Iv1.… or Iv23…): current value is ${
        // A long value may be a key pasted into the wrong variable: not shown.
        id.length > 40
          ? `${id.length} characters long (not shown)`
          : JSON.stringify(id)}`,
    );
  }
  if (text !== undefined && path !== undefined) {
    problems.push(
      "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are both set: keep only one",
    );
  } else if (text === undefined && path === undefined) {
    problems.push(
      "GITHUB_APP_ID is set without a private key: set GITHUB_APP_PRIVATE_KEY_PATH to the .pem file GitHub generated, or GITHUB_APP_PRIVATE_KEY to its text",
    );
  }
  if (problems.length > before || id === undefined) return null;
  return { id, key: text !== undefined ? { text } : { path: path! } };
}

/**
 * The URLs of `FORWARD_URLS` (comma-separated), each an http(s) URL with a
 * host of its own (a target is named `forward:<host>`). Problems go to
 * `problems`, naming an item by its place: a URL may carry a token.
 *
 * @example
 * ```ts
 * import { forwardUrls } from "./config.ts";
 * const problems: string[] = [];
 * forwardUrls("https://staging.example.com/webhook, http://10.0.0.5:8000/webhook", problems);
 * // ["https://staging.example.com/webhook", "http://10.0.0.5:8000/webhook"]
 * forwardUrls("ftp://files.example.com", problems); // []
 * problems.length; // 1
 * ```
 */
export function forwardUrls(
  raw: string | undefined,
  problems: string[],
): string[] {
  if (raw === undefined) return [];
  const out: string[] = [];
  const hosts = new Set<string>();
  raw.split(",").map((item) => item.trim()).filter((item) => item !== "")
    .forEach((item, index) => {
      const place = `FORWARD_URLS item ${index + 1}`;
      const url = URL.canParse(item) ? new URL(item) : null;
      if (
        url === null || (url.protocol !== "http:" && url.protocol !== "https:")
      ) {
        problems.push(
          `${place} must be an http(s) URL such as https://staging.example.com/webhook${
            url ? `: its scheme is ${url.protocol}` : ""
          }`,
        );
      } else if (url.username !== "" || url.password !== "") {
        problems.push(
          `${place} must not hold a user or password (fetch refuses them, and a trace would record them): the receiver checks the FORWARD_SECRET signature instead`,
        );
      } else if (hosts.has(url.host)) {
        problems.push(
          `${place} has the host of an earlier one (${url.host}): each target is named forward:<host>, so give each its own host`,
        );
      } else {
        hosts.add(url.host);
        out.push(url.href);
      }
    });
  return out;
}

/** Whether a secret has fewer than {@link MIN_SECRET_LENGTH} characters (code points). */
function tooShort(secret: string): boolean {
  let n = 0;
  for (const _ of secret) if (++n >= MIN_SECRET_LENGTH) return false;
  return true;
}

/**
 * The limit `cidr` breaks (`"/8"`, `"/8 (IPv4-mapped)"`, `"/7"`) when it is
 * wider than {@link MIN_CIDR_PREFIX} for its family as the matcher sees it
 * (an IPv4-mapped range is IPv4); null when it is narrow enough.
 */
function tooWide(cidr: Cidr): string | null {
  const { version, prefix } = effectivePrefix(cidr);
  const min = MIN_CIDR_PREFIX[version];
  if (prefix >= min) return null;
  return `/${min}${
    version === 4 && cidr.version === 6 ? " (IPv4-mapped)" : ""
  }`;
}

/**
 * Parses a `.env` file: `NAME=value` lines, `#` comments, optional `export `,
 * single- or double-quoted values (double quotes understand `\n`).
 *
 * @example
 * ```ts
 * import { parseDotenv } from "./config.ts";
 * parseDotenv("# comment\nPORT=9000\nexport NAME='a b'\n"); // { PORT: "9000", NAME: "a b" }
 * ```
 */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(
      line,
    );
    if (!match) continue;
    const name = match[1]!;
    let value = match[2]!;
    const quoted = /^(["'])(.*?)(?<!\\)\1\s*(?:#.*)?$/.exec(value);
    if (quoted) {
      value = quoted[1] === '"'
        ? quoted[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"')
        : quoted[2]!;
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[name] = value;
  }
  return out;
}

/**
 * Merges `.env` values under the real environment: a variable set in the
 * real environment wins.
 *
 * @example
 * ```ts
 * import { mergeEnv } from "./config.ts";
 * mergeEnv({ PORT: "1" }, { PORT: "2", HOST: "::" }); // { PORT: "1", HOST: "::" }
 * ```
 */
export function mergeEnv(
  real: Env,
  dotenv: Readonly<Record<string, string>>,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...dotenv };
  for (const [name, value] of Object.entries(real)) {
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * Reads the hookgate variables from `Deno.env` and `./.env` (if present).
 * Only the names in {@link CONFIG_VARIABLES} are read, so `--allow-env` can
 * list exactly those.
 */
export async function readEnvironment(
  dotenvPath = ".env",
): Promise<Record<string, string | undefined>> {
  return mergeEnv(
    readRealEnv(CONFIG_VARIABLES),
    await readDotenvFile(dotenvPath),
  );
}

/**
 * Reads the named variables from `Deno.env`; a name that `--allow-env` does
 * not cover reads as unset.
 */
export function readRealEnv(
  names: readonly string[],
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of names) {
    try {
      env[name] = Deno.env.get(name);
    } catch {
      // --allow-env narrower than our list: treat as unset.
    }
  }
  return env;
}

/**
 * Reads and parses a `.env` file; a missing or unreadable (no
 * `--allow-read`) file is empty. Other errors are thrown.
 */
export async function readDotenvFile(
  path: string,
): Promise<Record<string, string>> {
  try {
    return parseDotenv(await Deno.readTextFile(path));
  } catch (err) {
    if (
      err instanceof Deno.errors.NotFound ||
      err instanceof Deno.errors.NotCapable
    ) return {};
    throw err;
  }
}
