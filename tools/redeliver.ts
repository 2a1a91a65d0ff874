/**
 * Reconciles a GitHub webhook with hookgate's KV: GitHub never retries a
 * failed delivery by itself, so this lists the hook's recent deliveries
 * through GitHub's REST API and asks GitHub to redeliver the failed ones that
 * never reached us.
 *
 * ```sh
 * deno task redeliver --repo octo/hello-world --hook-id 12345678 --since 24h
 * deno task redeliver --org octo-org --hook-id 87654321 --dry-run
 * GITHUB_APP_ID=123 GITHUB_APP_PRIVATE_KEY="$(cat app.pem)" deno task redeliver --app --since 3d
 * ```
 *
 * A delivery (one `guid`, the `X-GitHub-Delivery` value) failed when none of
 * its attempts got a 2xx answer. A failed delivery whose record is in KV
 * (`["hookgate","d",guid]`) reached us anyway (GitHub timed out after we
 * stored it, say) and is left alone; every other one is redelivered once,
 * oldest first, through the numeric id of its latest attempt.
 *
 * A thin command line: the REST client (rate limits, pagination, errors) is
 * `lib/github/rest.ts`, the listing and grouping of a hook's deliveries
 * `lib/github/hook_deliveries.ts`, the pass itself (stored check, pacing,
 * redeliveries) `lib/github/reconcile.ts` — the one the server runs every
 * `RECONCILE_INTERVAL_MINUTES` — and the App's JWT `lib/github/app_auth.ts`;
 * here are the arguments, the environment, the KV and what is printed. It does not run handlers
 * or touch records: the redelivery arrives at the server like any other
 * delivery. Everything it touches is a parameter of {@link main}, so tests
 * run it against a fake GitHub on loopback.
 *
 * @module
 */

import { parseOrExit, UsageError, walkArgs } from "./_cli.ts";
import { createAppAuth } from "../lib/github/app_auth.ts";
import { importAppKey } from "../lib/github/app_key.ts";
import { mergeEnv, readDotenvFile, readRealEnv } from "../lib/config/config.ts";
import type {
  FailedDelivery,
  HookTarget,
} from "../lib/github/hook_deliveries.ts";
import {
  PACE_MS,
  reconcileHook,
  type ReconcileReporter,
} from "../lib/github/reconcile.ts";
import { isoTime } from "../lib/github/rate_limit.ts";
import {
  createRestClient,
  DEFAULT_API_URL,
  GitHubApiError,
  parseApiUrl,
  type RestClient,
} from "../lib/github/rest.ts";
import { openKv as openKvPath } from "../lib/store/kv.ts";
import { DeliveryStore } from "../lib/store/store.ts";
import { errorMessage } from "../lib/_util/errors.ts";
import { sleep as sleepUntil } from "../lib/_util/timers.ts";

/** The help text printed by `--help` and after a usage error. */
export const USAGE: string =
  `Usage: deno task redeliver <hook> [--since <age>] [--dry-run] [--kv <path>]

Asks GitHub to redeliver the webhook deliveries that failed and never reached
hookgate (GitHub never retries a failed delivery by itself).

Lists the hook's deliveries through GitHub's REST API, newest first, back to
--since. A delivery failed when none of its attempts got a 2xx answer; one
that is stored in hookgate's KV reached us anyway and is skipped. Every other
failed delivery is redelivered once, oldest first.

Hook (one of):
  --repo <owner/name> --hook-id <id>   a repository webhook
  --org <name> --hook-id <id>          an organization webhook
  --app                                the GitHub App's webhook (the App is
                                       GITHUB_APP_ID and its private key)
  (the hook id ends the hook's settings URL: …/settings/hooks/<id>)

Options:
  --since <age>    how far back to look: 30m, 24h, 7d, at most 30d (default:
                   24h). GitHub keeps deliveries for 3 days only (7 on GitHub
                   Enterprise Server) and redelivers only those
  --dry-run        list what would be redelivered; redeliver nothing
  --kv <path>      hookgate's KV (default: KV_PATH, else ./data/hookgate.kv);
                   it must exist: run this where the server runs
  -h, --help       show this help

Environment (a .env file is read too; the real environment wins):
  GITHUB_TOKEN     for --repo/--org: sent as "Authorization: Bearer …", never
                   printed. A classic token needs the admin:repo_hook scope
                   (admin:org_hook, and an owner, for an organization hook); a
                   fine-grained token the "Webhooks" permission, write access
                   to redeliver
  GITHUB_APP_ID    for --app: the App's ID (or client ID)
  GITHUB_APP_PRIVATE_KEY       for --app: the App's private key, the PEM
                   GitHub hands out (PKCS#1 or PKCS#8; newlines may be written
                   as \\n; base64 of the PEM works too), never printed
  GITHUB_APP_PRIVATE_KEY_PATH  or: a file holding it ("deno task redeliver"
                   may read .env and ./data only)
                   The App's JWT is made from these and renewed as the run
                   goes. Without GITHUB_APP_ID, --app sends GITHUB_TOKEN as a
                   JWT made by hand (valid for 10 minutes at most)
  GITHUB_API_URL   the REST API (default: https://api.github.com; GitHub
                   Enterprise Server: https://<host>/api/v3)
  KV_PATH          as for the server

Rate limits are honoured: on 403/429 with Retry-After or an exhausted
x-ratelimit-remaining it waits (up to an hour) and retries, up to 5 times.

Exit status: 0 when every redelivery was accepted (or none was needed), 1 when
GitHub refused one or on any other error, 2 on a usage error.`;

/** What the command line asked for. */
export interface RedeliverOptions {
  hook: HookTarget;
  /** How far back to look, in milliseconds. */
  sinceMs: number;
  /** `--since` as written, for messages. */
  since: string;
  /** List, but POST nothing. */
  dryRun: boolean;
  /** `--kv`; `undefined` means `KV_PATH`, else the default. */
  kvPath: string | undefined;
}

export { UsageError };
export type { HookTarget };

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** The longest `--since`. */
const MAX_SINCE_MS = 30 * DAY_MS;
const DEFAULT_SINCE = "24h";
const DEFAULT_KV_PATH = "./data/hookgate.kv";
const USER_AGENT = "hookgate-redeliver";
/** Rate-limit retries of one request before giving up. */
const MAX_RATE_LIMIT_RETRIES = 5;
/** A rate-limit wait longer than this ends the run instead. */
const MAX_RATE_LIMIT_WAIT_MS = HOUR_MS;
/** Wait when GitHub rate-limits without saying for how long (its advice). */
const FALLBACK_WAIT_MS = MINUTE_MS;

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
const HOOK_ID = /^[1-9][0-9]{0,15}$/;

/**
 * Parses `30m`, `24h` or `7d` into milliseconds; `null` for anything else
 * (zero, other units, spaces, signs).
 *
 * @example
 * ```ts
 * import { parseSince } from "./redeliver.ts";
 * parseSince("24h"); // 86400000
 * parseSince("1w"); // null
 * ```
 */
export function parseSince(text: string): number | null {
  const match = /^([0-9]{1,6})([mhd])$/.exec(text);
  if (!match) return null;
  const n = Number(match[1]);
  if (n === 0) return null;
  return n *
    { m: MINUTE_MS, h: HOUR_MS, d: DAY_MS }[match[2] as "m" | "h" | "d"];
}

/**
 * Parses the command line; `null` means `--help`. Throws a
 * {@link UsageError} for anything else it cannot make sense of.
 *
 * @example
 * ```ts
 * import { parseRedeliverArgs } from "./redeliver.ts";
 * parseRedeliverArgs(["--repo", "octo/hello", "--hook-id", "42", "--since", "3d"]);
 * // { hook: { kind: "repo", owner: "octo", repo: "hello", hookId: "42" }, sinceMs: 259200000, since: "3d", dryRun: false, kvPath: undefined }
 * ```
 */
export function parseRedeliverArgs(
  args: readonly string[],
): RedeliverOptions | null {
  let repo: string | undefined;
  let org: string | undefined;
  let app = false;
  let hookId: string | undefined;
  let since = DEFAULT_SINCE;
  let dryRun = false;
  let kvPath: string | undefined;

  const help = walkArgs(args, (option) => {
    switch (option.name) {
      case "-h":
      case "--help":
        return "help";
      case "--repo":
        repo = option.value();
        break;
      case "--org":
        org = option.value();
        break;
      case "--app":
        app = option.flag();
        break;
      case "--hook-id":
        hookId = option.value();
        break;
      case "--since":
        since = option.value();
        break;
      case "--dry-run":
        dryRun = option.flag();
        break;
      case "--kv":
        kvPath = option.value();
        break;
      default:
        throw new UsageError(`Unknown option: ${option.name}`);
    }
  }, (arg) => {
    throw new UsageError(`Unexpected argument: ${JSON.stringify(arg)}`);
  }, { endOfOptions: false });
  if (help) return null;

  const chosen = [repo !== undefined, org !== undefined, app].filter(Boolean);
  if (chosen.length !== 1) {
    throw new UsageError(
      chosen.length === 0
        ? "Name the hook: --repo <owner/name> --hook-id <id>, --org <name> --hook-id <id>, or --app"
        : "Name one hook only: --repo, --org and --app exclude each other",
    );
  }
  let hook: HookTarget;
  if (app) {
    if (hookId !== undefined) {
      throw new UsageError(
        "--app takes no --hook-id: an app has one webhook, found through its JWT",
      );
    }
    hook = { kind: "app" };
  } else {
    if (hookId === undefined) {
      throw new UsageError(
        `${repo !== undefined ? "--repo" : "--org"} needs --hook-id <id>`,
      );
    }
    if (!HOOK_ID.test(hookId)) {
      throw new UsageError(
        `--hook-id must be a positive integer: current value is ${
          JSON.stringify(hookId)
        }`,
      );
    }
    if (repo !== undefined) {
      const [owner = "", name = "", ...rest] = repo.split("/");
      if (
        rest.length > 0 || !OWNER.test(owner) || !REPO.test(name) ||
        name === "." || name === ".."
      ) {
        throw new UsageError(
          `--repo must be owner/name: current value is ${JSON.stringify(repo)}`,
        );
      }
      hook = { kind: "repo", owner, repo: name, hookId };
    } else {
      if (!OWNER.test(org!)) {
        throw new UsageError(
          `--org must be an organization login: current value is ${
            JSON.stringify(org)
          }`,
        );
      }
      hook = { kind: "org", org: org!, hookId };
    }
  }

  const sinceMs = parseSince(since);
  if (sinceMs === null) {
    throw new UsageError(
      `--since must be a number of minutes, hours or days such as 30m, 24h or 7d: current value is ${
        JSON.stringify(since)
      }`,
    );
  }
  if (sinceMs > MAX_SINCE_MS) {
    throw new UsageError(
      `--since must be at most 30d (GitHub keeps deliveries for 3 days): current value is ${
        JSON.stringify(since)
      }`,
    );
  }
  if (kvPath === "") throw new UsageError("--kv must not be empty");
  return { hook, sinceMs, since, dryRun, kvPath };
}

/** Everything {@link main} touches; each has a real default. */
export interface RedeliverDeps {
  /** Calls GitHub (default: `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** The real environment (default: the variables read from `Deno.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Prints progress and the summary to stdout (default: `console.log`). */
  print?: (text: string) => void;
  /** Prints problems and waits to stderr (default: `console.error`). */
  printError?: (text: string) => void;
  /** Waits (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
  /** The clock, epoch ms (default: `Date.now`). */
  now?: () => number;
  /** Opens hookgate's KV (default: refuses a missing file, then `openKv`). */
  openKv?: (path: string) => Promise<Deno.Kv>;
  /** The `.env` file (default: `.env`). */
  dotenvPath?: string;
}

/** How the run authenticates: a token, or the App's key (JWTs made here). */
type Credentials =
  | { kind: "token"; token: string }
  | { kind: "app"; appId: string; key: CryptoKey };

/** What the environment (and `.env`) settled for one run. */
interface Settings {
  credentials: Credentials;
  apiUrl: URL;
  kvPath: string;
}

/** Printing and waiting, for a run. */
interface Io {
  print: (text: string) => void;
  printError: (text: string) => void;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

/**
 * Runs the command and returns its exit status: 0 when every redelivery was
 * accepted (or none was needed), 1 when one was refused or on any other
 * error, 2 for a usage error.
 *
 * @example
 * ```ts ignore
 * import { main } from "./redeliver.ts";
 * const status = await main(["--repo", "octo/hello", "--hook-id", "42", "--dry-run"]);
 * ```
 */
export async function main(
  args: readonly string[],
  deps: RedeliverDeps = {},
): Promise<number> {
  const never = new AbortController().signal;
  const {
    fetch = globalThis.fetch,
    print = console.log,
    printError = console.error,
    sleep = (ms: number) => sleepUntil(ms, never),
    now = Date.now,
    openKv = openExistingKv,
    dotenvPath = ".env",
  } = deps;

  const options = parseOrExit(
    parseRedeliverArgs,
    args,
    USAGE,
    print,
    printError,
  );
  if (typeof options === "number") return options;

  const settings = await readSettings(
    options,
    deps.env,
    dotenvPath,
    printError,
  );
  if (settings === null) return 1;

  let kv: Deno.Kv;
  try {
    kv = await openKv(settings.kvPath);
  } catch (err) {
    const hint = err instanceof Deno.errors.NotCapable ||
        err instanceof Deno.errors.PermissionDenied
      ? "\n`deno task redeliver` may use ./data only; run tools/redeliver.ts with wider --allow-read/--allow-write for another path."
      : "";
    printError(
      `Cannot open hookgate's KV ${settings.kvPath}: ${
        errorMessage(err)
      }${hint}`,
    );
    return 1;
  }

  const { credentials } = settings;
  const auth = credentials.kind === "app"
    ? createAppAuth({
      appId: credentials.appId,
      key: credentials.key,
      baseUrl: settings.apiUrl,
      fetch,
      now,
      userAgent: USER_AGENT,
    })
    : undefined;
  const client = createRestClient({
    baseUrl: settings.apiUrl,
    ...(auth
      ? { getToken: ({ fresh }) => auth.jwt({ fresh }) }
      : { token: credentials.kind === "token" ? credentials.token : "" }),
    userAgent: USER_AGENT,
    fetch,
    now,
    sleep,
    maxRetries: MAX_RATE_LIMIT_RETRIES,
    maxWaitMs: MAX_RATE_LIMIT_WAIT_MS,
    fallbackWaitMs: FALLBACK_WAIT_MS,
    onRateLimit: (notice) => printError(notice.message),
  });
  try {
    return await reconcile(options, client, kv, settings, {
      print,
      printError,
      sleep,
      now,
    });
  } finally {
    kv.close();
  }
}

/**
 * The token, API and KV, from the environment, else `.env`; `null` (after
 * printing why) when they cannot be used.
 */
async function readSettings(
  options: RedeliverOptions,
  realEnv: RedeliverDeps["env"],
  dotenvPath: string,
  printError: (text: string) => void,
): Promise<Settings | null> {
  const real = realEnv ??
    readRealEnv([
      "GITHUB_TOKEN",
      "GITHUB_APP_ID",
      "GITHUB_APP_PRIVATE_KEY",
      "GITHUB_APP_PRIVATE_KEY_PATH",
      "GITHUB_API_URL",
      "KV_PATH",
      "DELIVERY_TTL_DAYS",
    ]);
  let dotenv: Record<string, string>;
  try {
    dotenv = await readDotenvFile(dotenvPath);
  } catch (err) {
    printError(`Cannot read ${dotenvPath}: ${errorMessage(err)}`);
    return null;
  }
  const env = mergeEnv(real, dotenv);

  const credentials = options.hook.kind === "app" && env.GITHUB_APP_ID?.trim()
    ? await readAppCredentials(env, printError)
    : readToken(env, options, dotenvPath, printError);
  if (credentials === null) return null;

  const api = parseApiUrl(env.GITHUB_API_URL?.trim() || DEFAULT_API_URL);
  if (!api.ok) {
    printError(api.error);
    return null;
  }

  const ttlDays = Number(env.DELIVERY_TTL_DAYS?.trim() || "7");
  if (Number.isFinite(ttlDays) && options.sinceMs > ttlDays * DAY_MS) {
    printError(
      `Warning: --since ${options.since} reaches past DELIVERY_TTL_DAYS (${ttlDays}): records older than that ` +
        "have expired from KV, so a delivery GitHub saw fail that reached us anyway would run again.",
    );
  }

  const kvPath = options.kvPath ?? (env.KV_PATH?.trim() || DEFAULT_KV_PATH);
  return { credentials, apiUrl: api.url, kvPath };
}

/** `GITHUB_TOKEN`, checked; `null` (after printing why) when unusable. */
function readToken(
  env: Record<string, string | undefined>,
  options: RedeliverOptions,
  dotenvPath: string,
  printError: (text: string) => void,
): Credentials | null {
  const token = env.GITHUB_TOKEN?.trim() ?? "";
  if (token === "") {
    printError(
      options.hook.kind === "app"
        ? `GITHUB_APP_ID is not set, neither in the environment nor in ${dotenvPath}.\n` +
          "For --app set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_PATH), or put a JWT made by hand in GITHUB_TOKEN."
        : `GITHUB_TOKEN is not set, neither in the environment nor in ${dotenvPath}.\n` +
          "Use a token that may administer the hook (admin:repo_hook / admin:org_hook scope, or the Webhooks permission).",
    );
    return null;
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    printError(
      "GITHUB_TOKEN holds spaces or control characters: it cannot be sent",
    );
    return null;
  }
  return { kind: "token", token };
}

/**
 * `GITHUB_APP_ID` and the App's key (`GITHUB_APP_PRIVATE_KEY`, else the file
 * `GITHUB_APP_PRIVATE_KEY_PATH`), imported; `null` (after printing why,
 * never the key) when unusable.
 */
async function readAppCredentials(
  env: Record<string, string | undefined>,
  printError: (text: string) => void,
): Promise<Credentials | null> {
  const appId = env.GITHUB_APP_ID!.trim();
  if (!/^[\x21-\x7e]{1,200}$/.test(appId)) {
    printError("GITHUB_APP_ID holds spaces or control characters");
    return null;
  }
  let text = env.GITHUB_APP_PRIVATE_KEY ?? "";
  let source = "GITHUB_APP_PRIVATE_KEY";
  const path = env.GITHUB_APP_PRIVATE_KEY_PATH?.trim() ?? "";
  if (text.trim() === "" && path !== "") {
    source = `GITHUB_APP_PRIVATE_KEY_PATH (${path})`;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      const hint = err instanceof Deno.errors.NotCapable ||
          err instanceof Deno.errors.PermissionDenied
        ? "\n`deno task redeliver` may read .env and ./data only; set GITHUB_APP_PRIVATE_KEY, or run tools/redeliver.ts with --allow-read for that file."
        : "";
      printError(`Cannot read ${source}: ${errorMessage(err)}${hint}`);
      return null;
    }
  }
  if (text.trim() === "") {
    printError(
      "GITHUB_APP_ID is set but the App's key is not: set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH",
    );
    return null;
  }
  const imported = await importAppKey(text);
  if (!imported.ok) {
    printError(`${source} cannot be used: ${imported.error}`);
    return null;
  }
  return { kind: "app", appId, key: imported.key };
}

/** Why a pass stopped: hookgate's KV could not be read (already printed). */
class KvReadError extends Error {}

/**
 * Lists, checks KV, redelivers (the pass of `lib/github/reconcile.ts`, the
 * one the server runs) and prints the summary; the exit status.
 */
async function reconcile(
  options: RedeliverOptions,
  client: RestClient,
  kv: Deno.Kv,
  settings: Settings,
  io: Io,
): Promise<number> {
  const { print, printError } = io;
  const { kvPath } = settings;
  const app = settings.credentials.kind === "app";
  const { hook } = options;
  const cutoff = io.now() - options.sinceMs;
  print(
    `Listing the deliveries of ${describeHook(hook)} since ${
      isoTime(cutoff)
    } (${options.since}) from ${client.baseUrl.origin}`,
  );

  // Only get() is used: the TTL and attempt limit matter to writes alone.
  const store = new DeliveryStore({ kv, ttlMs: DAY_MS, maxAttempts: 1 });
  const isStored = async (guid: string) => {
    try {
      return (await store.get(guid))?.status ?? null;
    } catch (err) {
      printError(`Cannot read hookgate's KV ${kvPath}: ${errorMessage(err)}`);
      throw new KvReadError();
    }
  };
  let result;
  try {
    result = await reconcileHook(client, hook, {
      since: cutoff,
      isStored,
      dryRun: options.dryRun,
      paceMs: PACE_MS,
      sleep: (ms) => io.sleep(ms),
      report: cliReporter(hook, app, io),
    });
  } catch (err) {
    if (err instanceof KvReadError) return 1;
    if (!(err instanceof GitHubApiError)) throw err;
    printError(
      err.kind === "status"
        ? failureMessage(err, "Cannot list the hook's deliveries", hook, app)
        : err.message,
    );
    return 1;
  }
  const { listed, failed, alreadyStored, pending, redelivered, errors } =
    result;
  const { skipped } = result;
  print(
    `Summary${
      options.dryRun ? " (dry run)" : ""
    }: examined ${listed}, failed ${failed}, ` +
      `already stored ${alreadyStored}, ${
        options.dryRun
          ? `would redeliver ${pending}`
          : `redelivered ${redelivered}`
      }, errors ${errors}${skipped > 0 ? `, not attempted ${skipped}` : ""}`,
  );
  return errors === 0 && skipped === 0 ? 0 : 1;
}

/** What the command prints as the pass goes. */
function cliReporter(
  hook: HookTarget,
  app: boolean,
  { print, printError }: Io,
): ReconcileReporter {
  return {
    page(page, items) {
      const oldest = items.at(-1);
      print(
        `Page ${page}: ${items.length} deliveries${
          oldest ? `, back to ${isoTime(oldest.deliveredAt)}` : ""
        }`,
      );
    },
    examined({ examined, deliveries, failed }) {
      print(
        `Examined ${examined} attempts of ${deliveries} deliveries (attempts of one delivery share its GUID): ${failed.length} failed (no 2xx answer)`,
      );
    },
    stored(delivery, status) {
      print(
        `  ${clean(delivery.guid)} ${
          label(delivery)
        }: stored here (${status}), skipped`,
      );
    },
    wouldRedeliver(delivery) {
      print(`  ${clean(delivery.guid)} ${label(delivery)}: would redeliver`);
    },
    redelivered(delivery, status) {
      print(
        `  ${clean(delivery.guid)} ${
          label(delivery)
        }: redelivery accepted (${status})`,
      );
    },
    refused(delivery, err) {
      const guid = clean(delivery.guid);
      printError(
        err.kind === "status"
          ? `  ${guid}: ${
            failureMessage(err, "Cannot redeliver it", hook, app)
          }`
          : `  ${guid}: ${err.message}`,
      );
    },
    stopped(skipped) {
      printError(`Stopping: the token was refused; ${skipped} not attempted.`);
    },
  };
}

/** A one-line account of a refused call, with GitHub's message and a hint. */
function failureMessage(
  err: GitHubApiError,
  what: string,
  hook: HookTarget,
  app: boolean,
): string {
  const status = err.status ?? 0;
  const message = err.githubMessage;
  const said = message ? `: ${clean(message).slice(0, 300)}` : "";
  const hints: Record<number, string> = {
    401: app
      ? "GitHub refused the App's JWT, made afresh: check GITHUB_APP_ID, and that the key is that App's (and this host's clock)."
      : hook.kind === "app"
      ? "GITHUB_TOKEN was refused: for --app it must be a current JWT signed with the app's private key (not an installation token; JWTs expire after 10 minutes at most)."
      : "GITHUB_TOKEN was refused: it is wrong, expired or revoked.",
    403:
      "The token may not administer this hook: a classic token needs the admin:repo_hook scope " +
      "(admin:org_hook, held by an organization owner, for --org); a fine-grained token the Webhooks permission " +
      "(write access to redeliver).",
    404:
      `No such hook, or the token cannot see it (GitHub answers 404 rather than 403 then): check ${
        hook.kind === "app"
          ? (app ? "GITHUB_APP_ID" : "that the JWT belongs to the app")
          : "--repo/--org and --hook-id"
      }.`,
    422:
      "GitHub would not accept it (deliveries older than GitHub keeps cannot be redelivered).",
  };
  const hint = hints[status] ??
    (status >= 500 ? "GitHub had a problem; run again later." : "");
  return `${what}: GitHub answered ${status}${said}.${hint ? ` ${hint}` : ""}`;
}

/** Opens a KV, refusing a file that does not exist (an empty KV would say nothing is stored). */
async function openExistingKv(path: string): Promise<Deno.Kv> {
  if (path !== ":memory:" && !/^https?:\/\//.test(path)) {
    try {
      await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error(
          "no such file. Run this where the server runs (same KV_PATH), or pass --kv <path>",
        );
      }
      throw err;
    }
  }
  return await openKvPath(path);
}

function describeHook(hook: HookTarget): string {
  switch (hook.kind) {
    case "repo":
      return `the webhook ${hook.hookId} of ${hook.owner}/${hook.repo}`;
    case "org":
      return `the webhook ${hook.hookId} of the organization ${hook.org}`;
    case "app":
      return "the GitHub App's webhook";
  }
}

function label(delivery: FailedDelivery): string {
  const event = clean(
    delivery.action ? `${delivery.event}.${delivery.action}` : delivery.event,
  );
  const tries = delivery.attempts === 1
    ? "1 attempt"
    : `${delivery.attempts} attempts`;
  return `${event}, ${tries}, last ${isoTime(delivery.lastAt)}: ${
    clean(delivery.lastStatus)
  }`;
}

/** Text from GitHub with control characters escaped, fit for a terminal. */
function clean(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
