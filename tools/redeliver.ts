/**
 * Reconciles a GitHub webhook with hookgate's KV: GitHub never retries a
 * failed delivery by itself, so this lists the hook's recent deliveries
 * through GitHub's REST API and asks GitHub to redeliver the failed ones that
 * never reached us.
 *
 * ```sh
 * deno task redeliver --repo octo/hello-world --hook-id 12345678 --since 24h
 * deno task redeliver --org octo-org --hook-id 87654321 --dry-run
 * GITHUB_TOKEN="$(make-app-jwt)" deno task redeliver --app --since 3d
 * ```
 *
 * A delivery (one `guid`, the `X-GitHub-Delivery` value) failed when none of
 * its attempts got a 2xx answer. A failed delivery whose record is in KV
 * (`["hookgate","d",guid]`) reached us anyway (GitHub timed out after we
 * stored it, say) and is left alone; every other one is redelivered once,
 * oldest first, through the numeric id of its latest attempt.
 *
 * It does not run handlers or touch records: the redelivery arrives at the
 * server like any other delivery. Everything it touches is a parameter of
 * {@link main}, so tests run it against a fake GitHub on loopback.
 *
 * @module
 */

import { parseOrExit, UsageError, walkArgs } from "./_cli.ts";
import { mergeEnv, readDotenvFile, readRealEnv } from "../lib/config/config.ts";
import { openKv as openKvPath } from "../lib/store/kv.ts";
import { DeliveryStore } from "../lib/store/store.ts";
import { errorMessage } from "../lib/_util/errors.ts";

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
  --app                                the webhook of the GitHub App whose
                                       JWT is in GITHUB_TOKEN
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
  GITHUB_TOKEN     sent as "Authorization: Bearer …", never printed. A classic
                   token needs the admin:repo_hook scope (admin:org_hook, and
                   an owner, for an organization hook); a fine-grained token
                   the "Webhooks" permission, write access to redeliver.
                   For --app: a JWT signed with the app's private key (not an
                   installation token); it is valid for 10 minutes at most
  GITHUB_API_URL   the REST API (default: https://api.github.com; GitHub
                   Enterprise Server: https://<host>/api/v3)
  KV_PATH          as for the server

Rate limits are honoured: on 403/429 with Retry-After or an exhausted
x-ratelimit-remaining it waits (up to an hour) and retries, up to 5 times.

Exit status: 0 when every redelivery was accepted (or none was needed), 1 when
GitHub refused one or on any other error, 2 on a usage error.`;

/** The webhook whose deliveries are reconciled. */
export type HookTarget =
  | { kind: "repo"; owner: string; repo: string; hookId: string }
  | { kind: "org"; org: string; hookId: string }
  | { kind: "app" };

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

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** The longest `--since`. */
const MAX_SINCE_MS = 30 * DAY_MS;
const DEFAULT_SINCE = "24h";
const DEFAULT_KV_PATH = "./data/hookgate.kv";
const DEFAULT_API_URL = "https://api.github.com";
/** Rate-limit retries of one request before giving up. */
const MAX_RATE_LIMIT_RETRIES = 5;
/** A rate-limit wait longer than this ends the run instead. */
const MAX_RATE_LIMIT_WAIT_MS = HOUR_MS;
/** Wait when GitHub rate-limits without saying for how long (its advice). */
const FALLBACK_WAIT_MS = MINUTE_MS;
/** Pause between redeliveries: GitHub asks for a second between mutations. */
const PACE_MS = 1000;
/** Guards against a `Link` header that never ends. */
const MAX_PAGES = 10_000;

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

/**
 * The REST path of a hook, under which `/deliveries` lists and
 * `/deliveries/{id}/attempts` redelivers.
 *
 * @example
 * ```ts
 * import { hookPath } from "./redeliver.ts";
 * hookPath({ kind: "org", org: "octo-org", hookId: "7" }); // "/orgs/octo-org/hooks/7"
 * hookPath({ kind: "app" }); // "/app/hook"
 * ```
 */
export function hookPath(hook: HookTarget): string {
  const e = encodeURIComponent;
  switch (hook.kind) {
    case "repo":
      return `/repos/${e(hook.owner)}/${e(hook.repo)}/hooks/${e(hook.hookId)}`;
    case "org":
      return `/orgs/${e(hook.org)}/hooks/${e(hook.hookId)}`;
    case "app":
      return "/app/hook";
  }
}

/**
 * The `rel="next"` URL of a `Link` header, or `undefined`.
 *
 * @example
 * ```ts
 * import { parseNextLink } from "./redeliver.ts";
 * parseNextLink('<https://api.github.com/x?cursor=v1_9>; rel="next", <https://api.github.com/x>; rel="prev"');
 * // "https://api.github.com/x?cursor=v1_9"
 * ```
 */
export function parseNextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  for (const match of header.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(match[2]!);
    if (rel && rel[1]!.trim().toLowerCase().split(/\s+/).includes("next")) {
      return match[1]!;
    }
  }
  return undefined;
}

/** One attempt from GitHub's list of a hook's deliveries. */
export interface DeliveryAttempt {
  /** The attempt's numeric id, used to redeliver. */
  id: number;
  /** The `X-GitHub-Delivery` value, shared by all attempts of a delivery. */
  guid: string;
  /** `delivered_at`, in epoch milliseconds. */
  deliveredAt: number;
  redelivery: boolean;
  /** GitHub's words: `OK`, `Invalid HTTP Response: 503`, … */
  status: string;
  /** Our HTTP answer; 0 when there was none (a timeout). */
  statusCode: number;
  event: string;
  action: string | null;
}

/** A delivery none of whose attempts succeeded. */
export interface FailedDelivery {
  guid: string;
  /** The id of its latest attempt: the one to redeliver. */
  latestId: number;
  event: string;
  action: string | null;
  /** When its first seen attempt was made (epoch ms). */
  firstAt: number;
  /** When its latest attempt was made (epoch ms). */
  lastAt: number;
  /** GitHub's status of the latest attempt. */
  lastStatus: string;
  /** How many of its attempts were seen. */
  attempts: number;
}

/** What {@link findFailed} found. */
export interface FailedReport {
  /** Attempts made at or after the cutoff. */
  examined: number;
  /** Distinct guids with an attempt at or after the cutoff. */
  deliveries: number;
  /** Failed deliveries, oldest first. */
  failed: FailedDelivery[];
}

/**
 * Groups attempts by guid and returns the deliveries with an attempt at or
 * after `cutoff` of which no attempt got a 2xx answer (older attempts in
 * `attempts` still count as evidence of success).
 *
 * @example
 * ```ts
 * import { findFailed } from "./redeliver.ts";
 * const at = Date.parse("2025-06-02T10:00:00Z");
 * const base = { redelivery: false, event: "push", action: null, deliveredAt: at };
 * findFailed([
 *   { ...base, id: 2, guid: "a", status: "OK", statusCode: 200 },
 *   { ...base, id: 1, guid: "a", status: "Invalid HTTP Response: 503", statusCode: 503 },
 *   { ...base, id: 3, guid: "b", status: "timed out", statusCode: 0 },
 * ], at).failed.map((d) => d.guid); // ["b"]
 * ```
 */
export function findFailed(
  attempts: readonly DeliveryAttempt[],
  cutoff: number,
): FailedReport {
  const groups = new Map<string, DeliveryAttempt[]>();
  let examined = 0;
  for (const attempt of attempts) {
    if (attempt.deliveredAt >= cutoff) examined++;
    const group = groups.get(attempt.guid);
    if (group) group.push(attempt);
    else groups.set(attempt.guid, [attempt]);
  }
  let deliveries = 0;
  const failed: FailedDelivery[] = [];
  for (const [guid, group] of groups) {
    if (!group.some((a) => a.deliveredAt >= cutoff)) continue;
    deliveries++;
    if (group.some((a) => a.statusCode >= 200 && a.statusCode < 300)) continue;
    let latest = group[0]!;
    let firstAt = latest.deliveredAt;
    for (const a of group) {
      if (
        a.deliveredAt > latest.deliveredAt ||
        (a.deliveredAt === latest.deliveredAt && a.id > latest.id)
      ) latest = a;
      firstAt = Math.min(firstAt, a.deliveredAt);
    }
    failed.push({
      guid,
      latestId: latest.id,
      event: latest.event,
      action: latest.action,
      firstAt,
      lastAt: latest.deliveredAt,
      lastStatus: latest.status,
      attempts: group.length,
    });
  }
  failed.sort((a, b) => a.firstAt - b.firstAt || a.latestId - b.latestId);
  return { examined, deliveries, failed };
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

/** A failed GitHub call, with a message fit to print. */
class ApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = "ApiError";
  }
}

interface Api {
  base: URL;
  headers: Headers;
  fetch: typeof fetch;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  notice: (text: string) => void;
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
  const {
    fetch = globalThis.fetch,
    print = console.log,
    printError = console.error,
    sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
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

  // The token, API and KV, from the environment, else `.env`.
  const real = deps.env ??
    readRealEnv([
      "GITHUB_TOKEN",
      "GITHUB_API_URL",
      "KV_PATH",
      "DELIVERY_TTL_DAYS",
    ]);
  let dotenv: Record<string, string>;
  try {
    dotenv = await readDotenvFile(dotenvPath);
  } catch (err) {
    printError(`Cannot read ${dotenvPath}: ${errorMessage(err)}`);
    return 1;
  }
  const env = mergeEnv(real, dotenv);

  const token = env.GITHUB_TOKEN?.trim() ?? "";
  if (token === "") {
    printError(
      `GITHUB_TOKEN is not set, neither in the environment nor in ${dotenvPath}.\n` +
        (options.hook.kind === "app"
          ? "For --app it must be a JWT signed with the app's private key."
          : "Use a token that may administer the hook (admin:repo_hook / admin:org_hook scope, or the Webhooks permission)."),
    );
    return 1;
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    printError(
      "GITHUB_TOKEN holds spaces or control characters: it cannot be sent",
    );
    return 1;
  }

  const apiText = env.GITHUB_API_URL?.trim() || DEFAULT_API_URL;
  const base = parseApiUrl(apiText);
  if (typeof base === "string") {
    printError(base);
    return 1;
  }

  const ttlDays = Number(env.DELIVERY_TTL_DAYS?.trim() || "7");
  if (Number.isFinite(ttlDays) && options.sinceMs > ttlDays * DAY_MS) {
    printError(
      `Warning: --since ${options.since} reaches past DELIVERY_TTL_DAYS (${ttlDays}): records older than that ` +
        "have expired from KV, so a delivery GitHub saw fail that reached us anyway would run again.",
    );
  }

  const kvPath = options.kvPath ?? (env.KV_PATH?.trim() || DEFAULT_KV_PATH);
  let kv: Deno.Kv;
  try {
    kv = await openKv(kvPath);
  } catch (err) {
    const hint = err instanceof Deno.errors.NotCapable ||
        err instanceof Deno.errors.PermissionDenied
      ? "\n`deno task redeliver` may use ./data only; run tools/redeliver.ts with wider --allow-read/--allow-write for another path."
      : "";
    printError(
      `Cannot open hookgate's KV ${kvPath}: ${errorMessage(err)}${hint}`,
    );
    return 1;
  }

  const api: Api = {
    base,
    headers: new Headers({
      "Accept": "application/vnd.github+json",
      "Authorization": `Bearer ${token}`,
      "User-Agent": "hookgate-redeliver",
      "X-GitHub-Api-Version": "2022-11-28",
    }),
    fetch,
    sleep,
    now,
    notice: printError,
  };
  try {
    return await reconcile(options, api, kv, kvPath, {
      print,
      printError,
      sleep,
    });
  } finally {
    kv.close();
  }
}

async function reconcile(
  options: RedeliverOptions,
  api: Api,
  kv: Deno.Kv,
  kvPath: string,
  io: {
    print: (text: string) => void;
    printError: (text: string) => void;
    sleep: (ms: number) => Promise<void>;
  },
): Promise<number> {
  const { print, printError } = io;
  const cutoff = api.now() - options.sinceMs;
  print(
    `Listing the deliveries of ${describeHook(options.hook)} since ${
      isoTime(cutoff)
    } (${options.since}) from ${api.base.origin}`,
  );

  let attempts: DeliveryAttempt[];
  try {
    attempts = await listAttempts(api, options.hook, cutoff, print);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    printError(err.message);
    return 1;
  }
  const { examined, deliveries, failed } = findFailed(attempts, cutoff);
  print(
    `Examined ${examined} attempts of ${deliveries} deliveries (attempts of one delivery share its GUID): ${failed.length} failed (no 2xx answer)`,
  );

  // Only get() is used: the TTL and attempt limit matter to writes alone.
  const store = new DeliveryStore({ kv, ttlMs: DAY_MS, maxAttempts: 1 });
  const pending: FailedDelivery[] = [];
  let stored = 0;
  for (const delivery of failed) {
    let status: string | undefined;
    try {
      status = (await store.get(delivery.guid))?.status;
    } catch (err) {
      printError(`Cannot read hookgate's KV ${kvPath}: ${errorMessage(err)}`);
      return 1;
    }
    if (status === undefined) {
      pending.push(delivery);
    } else {
      stored++;
      print(
        `  ${clean(delivery.guid)} ${
          label(delivery)
        }: stored here (${status}), skipped`,
      );
    }
  }

  let redelivered = 0;
  let errors = 0;
  let skipped = 0;
  for (const [i, delivery] of pending.entries()) {
    if (options.dryRun) {
      print(`  ${clean(delivery.guid)} ${label(delivery)}: would redeliver`);
      continue;
    }
    if (i > 0) await io.sleep(PACE_MS);
    const url = apiUrl(
      api.base,
      `${hookPath(options.hook)}/deliveries/${delivery.latestId}/attempts`,
    );
    let response: Response;
    try {
      response = await request(api, "POST", url);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors++;
      printError(`  ${clean(delivery.guid)}: ${err.message}`);
      continue;
    }
    if (response.ok) {
      await response.body?.cancel();
      redelivered++;
      print(
        `  ${clean(delivery.guid)} ${
          label(delivery)
        }: redelivery accepted (${response.status})`,
      );
      continue;
    }
    errors++;
    printError(
      `  ${clean(delivery.guid)}: ${await failureMessage(
        response,
        "Cannot redeliver it",
        options.hook,
      )}`,
    );
    if (response.status === 401) {
      skipped = pending.length - i - 1;
      if (skipped > 0) {
        printError(
          `Stopping: the token was refused; ${skipped} not attempted.`,
        );
      }
      break;
    }
  }

  print(
    `Summary${
      options.dryRun ? " (dry run)" : ""
    }: examined ${examined}, failed ${failed.length}, ` +
      `already stored ${stored}, ${
        options.dryRun
          ? `would redeliver ${pending.length}`
          : `redelivered ${redelivered}`
      }, errors ${errors}${skipped > 0 ? `, not attempted ${skipped}` : ""}`,
  );
  return errors === 0 && skipped === 0 ? 0 : 1;
}

/** Every attempt on the pages that reach back to `cutoff`, newest first. */
async function listAttempts(
  api: Api,
  hook: HookTarget,
  cutoff: number,
  print: (text: string) => void,
): Promise<DeliveryAttempt[]> {
  let url = apiUrl(api.base, `${hookPath(hook)}/deliveries`);
  url.searchParams.set("per_page", "100");
  const seen = new Set<string>();
  const attempts: DeliveryAttempt[] = [];
  for (let page = 1;; page++) {
    seen.add(url.href);
    const response = await request(api, "GET", url);
    if (response.status !== 200) {
      throw new ApiError(
        await failureMessage(
          response,
          "Cannot list the hook's deliveries",
          hook,
        ),
        response.status,
      );
    }
    const next = parseNextLink(response.headers.get("link"));
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      throw new ApiError(
        `GitHub's list of deliveries (page ${page}) is not JSON: ${
          errorMessage(err)
        }`,
      );
    }
    if (!Array.isArray(body)) {
      throw new ApiError(
        `GitHub's list of deliveries (page ${page}) is not an array`,
      );
    }
    const items = body.map((item, i) => {
      const attempt = toAttempt(item);
      if (attempt === null) {
        throw new ApiError(
          `GitHub's list of deliveries (page ${page}, item ${
            i + 1
          }) lacks id, guid, delivered_at or status_code`,
        );
      }
      return attempt;
    });
    attempts.push(...items);
    const reachedCutoff = items.some((a) => a.deliveredAt < cutoff);
    const oldest = items.at(-1);
    print(
      `Page ${page}: ${items.length} deliveries${
        oldest ? `, back to ${isoTime(oldest.deliveredAt)}` : ""
      }`,
    );
    if (items.length === 0 || reachedCutoff || next === undefined) break;

    let nextUrl: URL;
    try {
      nextUrl = new URL(next, url);
    } catch {
      throw new ApiError(
        `GitHub's next-page link is not a URL: ${clean(next)}`,
      );
    }
    if (nextUrl.origin !== api.base.origin) {
      throw new ApiError(
        `Refusing to follow GitHub's next-page link to ${
          clean(nextUrl.origin)
        }: the token is only sent to ${api.base.origin}`,
      );
    }
    if (seen.has(nextUrl.href) || page >= MAX_PAGES) {
      throw new ApiError(
        `GitHub's pagination does not end (page ${page} links back to a page already read)`,
      );
    }
    url = nextUrl;
  }
  return attempts;
}

/** One item of GitHub's list, or null when it lacks what we need. */
function toAttempt(item: unknown): DeliveryAttempt | null {
  if (item === null || typeof item !== "object") return null;
  const o = item as Record<string, unknown>;
  const deliveredAt = typeof o.delivered_at === "string"
    ? Date.parse(o.delivered_at)
    : NaN;
  if (
    !Number.isSafeInteger(o.id) || (o.id as number) < 1 ||
    typeof o.guid !== "string" || o.guid === "" ||
    typeof o.status_code !== "number" || Number.isNaN(deliveredAt)
  ) return null;
  return {
    id: o.id as number,
    guid: o.guid,
    deliveredAt,
    redelivery: o.redelivery === true,
    status: typeof o.status === "string" ? o.status : String(o.status_code),
    statusCode: o.status_code,
    event: typeof o.event === "string" ? o.event : "?",
    action: typeof o.action === "string" ? o.action : null,
  };
}

/**
 * Sends one request, waiting out rate limits (403/429 with `Retry-After`, an
 * exhausted `x-ratelimit-remaining`, or a secondary-limit message) up to
 * {@link MAX_RATE_LIMIT_RETRIES} times. Any other answer is returned.
 */
async function request(
  api: Api,
  method: "GET" | "POST",
  url: URL,
): Promise<Response> {
  const what = `${method} ${url.pathname}`;
  for (let retry = 0;; retry++) {
    let response: Response;
    try {
      response = await api.fetch(url, { method, headers: api.headers });
    } catch (err) {
      throw new ApiError(
        `Cannot reach ${api.base.origin} (${what}): ${errorMessage(err)}`,
      );
    }
    const limit = await rateLimitOf(response, api.now());
    if ("response" in limit) return limit.response;
    if (retry >= MAX_RATE_LIMIT_RETRIES) {
      throw new ApiError(
        `Still rate limited by GitHub after ${retry} retries of ${what} (${limit.reason}); run again later`,
        response.status,
      );
    }
    if (limit.waitMs > MAX_RATE_LIMIT_WAIT_MS) {
      throw new ApiError(
        `GitHub's rate limit (${limit.reason}) lifts at ${
          isoTime(api.now() + limit.waitMs)
        }, more than an hour away; run again then`,
        response.status,
      );
    }
    api.notice(
      `Rate limited by GitHub (${response.status}, ${limit.reason}): waiting ${
        Math.ceil(limit.waitMs / 1000)
      } s before retrying ${what} (retry ${
        retry + 1
      } of ${MAX_RATE_LIMIT_RETRIES})`,
    );
    await api.sleep(limit.waitMs);
  }
}

/**
 * How long a rate-limited answer asks us to wait, or the answer itself when
 * it is not a rate limit (rebuilt when its body had to be read).
 */
async function rateLimitOf(
  response: Response,
  now: number,
): Promise<{ response: Response } | { waitMs: number; reason: string }> {
  if (response.status !== 403 && response.status !== 429) return { response };
  const h = response.headers;
  const retryAfter = h.get("retry-after")?.trim();
  let wait: { waitMs: number; reason: string } | undefined;
  if (retryAfter) {
    const seconds = /^[0-9]+$/.test(retryAfter)
      ? Number(retryAfter)
      : (Date.parse(retryAfter) - now) / 1000;
    if (Number.isFinite(seconds)) {
      wait = {
        waitMs: Math.max(0, Math.ceil(seconds * 1000)),
        reason: `Retry-After: ${retryAfter}`,
      };
    }
  }
  const reset = h.get("x-ratelimit-reset")?.trim();
  if (!wait && h.get("x-ratelimit-remaining")?.trim() === "0") {
    wait = reset && /^[0-9]+$/.test(reset)
      ? {
        // One second past the reset, for clock skew.
        waitMs: Math.max(1000, Number(reset) * 1000 - now + 1000),
        reason: `x-ratelimit-remaining: 0 until ${
          isoTime(Number(reset) * 1000)
        }`,
      }
      : { waitMs: FALLBACK_WAIT_MS, reason: "x-ratelimit-remaining: 0" };
  }
  if (wait) {
    await response.body?.cancel();
    return wait;
  }
  if (response.status === 429) {
    await response.body?.cancel();
    return { waitMs: FALLBACK_WAIT_MS, reason: "429 without Retry-After" };
  }
  // A 403 without headers is a secondary rate limit only if it says so.
  const text = await response.text().catch(() => "");
  if (/rate limit/i.test(text)) {
    return { waitMs: FALLBACK_WAIT_MS, reason: "secondary rate limit" };
  }
  return {
    response: new Response(text, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    }),
  };
}

/** A one-line account of a refused call, with GitHub's message and a hint. */
async function failureMessage(
  response: Response,
  what: string,
  hook: HookTarget,
): Promise<string> {
  const text = await response.text().catch(() => "");
  let message: unknown;
  try {
    message = (JSON.parse(text) as { message?: unknown }).message;
  } catch {
    message = undefined;
  }
  const said = typeof message === "string" && message !== ""
    ? `: ${clean(message).slice(0, 300)}`
    : "";
  const hints: Record<number, string> = {
    401: hook.kind === "app"
      ? "GITHUB_TOKEN was refused: for --app it must be a current JWT signed with the app's private key (not an installation token; JWTs expire after 10 minutes at most)."
      : "GITHUB_TOKEN was refused: it is wrong, expired or revoked.",
    403:
      "The token may not administer this hook: a classic token needs the admin:repo_hook scope " +
      "(admin:org_hook, held by an organization owner, for --org); a fine-grained token the Webhooks permission " +
      "(write access to redeliver).",
    404:
      `No such hook, or the token cannot see it (GitHub answers 404 rather than 403 then): check ${
        hook.kind === "app"
          ? "that the JWT belongs to the app"
          : "--repo/--org and --hook-id"
      }.`,
    422:
      "GitHub would not accept it (deliveries older than GitHub keeps cannot be redelivered).",
  };
  const hint = hints[response.status] ??
    (response.status >= 500 ? "GitHub had a problem; run again later." : "");
  return `${what}: GitHub answered ${response.status}${said}.${
    hint ? ` ${hint}` : ""
  }`;
}

/** `GITHUB_API_URL` as a URL, or why it cannot be one. */
function parseApiUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `GITHUB_API_URL must be an http(s) URL: current value is ${
      JSON.stringify(text)
    }`;
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    return `GITHUB_API_URL must be an https URL (http only on loopback, so that the token is never sent in the clear): current value is ${
      JSON.stringify(url.origin)
    }`;
  }
  if (
    url.username !== "" || url.password !== "" || url.search !== "" ||
    url.hash !== ""
  ) {
    return "GITHUB_API_URL must not carry credentials, a query or a fragment";
  }
  return url;
}

/** `path` under the API base, keeping a base path such as GHES's `/api/v3`. */
function apiUrl(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = base.pathname.replace(/\/+$/, "") + path;
  return url;
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

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.[0-9]{3}Z$/, "Z");
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
