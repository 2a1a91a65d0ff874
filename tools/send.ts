/**
 * Sends a sample webhook delivery to a running hookgate, signed and with
 * the headers GitHub sends, so handlers can be tried without GitHub:
 *
 * ```sh
 * deno task send ping
 * deno task send issues examples/issues.json --delivery my-test-1
 * deno task send push --form --url http://127.0.0.1:9000/webhook
 * ```
 *
 * The body is the payload file's bytes exactly (or, with `--form`,
 * `payload=<url-encoded file>`). The secret comes from the environment, else
 * from `.env`, as for the server. Run with `--help` for every option.
 *
 * Everything it touches is a parameter of {@link main}, so tests run it
 * against a local server without a subprocess.
 *
 * @module
 */

import { parseOrExit, UsageError, walkArgs } from "./_cli.ts";
import { mergeEnv, parseDotenv, readRealEnv } from "../lib/config/config.ts";
import { signBody } from "../lib/security/signature.ts";
import { errorMessage } from "../lib/_util/errors.ts";

/** The help text printed by `--help` and after a usage error. */
export const USAGE: string = `Usage: deno task send <event> [file] [options]

Signs a payload as GitHub does and POSTs it to a running hookgate.

Arguments:
  <event>              the X-GitHub-Event value: ping, push, issues, …
  [file]               the payload (default: examples/<event>.json)

Options:
  --url <url>          where to POST (default: http://127.0.0.1:$PORT$WEBHOOK_PATH,
                       read from the environment or .env: port 8000, /webhook)
  --form               send application/x-www-form-urlencoded (payload=<json>)
                       instead of application/json
  --delivery <id>      the X-GitHub-Delivery id (default: a random UUID)
  --secret-env <name>  the variable holding the secret
                       (default: GITHUB_WEBHOOK_SECRET; try
                       GITHUB_WEBHOOK_SECRET_PREVIOUS when rotating)
  -h, --help           show this help

The secret is read from the environment, else from .env (create one with
\`deno task secret\`). The server answers a repeated delivery id, or the same
body bytes sent again, as a duplicate (200) and runs nothing twice.

Exit status: 0 on a 2xx answer, 1 on any other answer or error, 2 on a
usage error.`;

/** What the command line asked for. */
export interface SendOptions {
  /** The `X-GitHub-Event` value. */
  event: string;
  /** The payload file; `undefined` means `examples/<event>.json`. */
  file: string | undefined;
  /** Where to post; `undefined` means the local server from `PORT`/`WEBHOOK_PATH`. */
  url: string | undefined;
  /** Send `application/x-www-form-urlencoded` instead of JSON. */
  form: boolean;
  /** The `X-GitHub-Delivery` id; `undefined` means a random UUID. */
  delivery: string | undefined;
  /** The variable that holds the secret. */
  secretEnv: string;
}

export { UsageError };

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const EVENT_NAME = /^[a-z0-9_]{1,100}$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses the command line; `null` means `--help`. Throws a
 * {@link UsageError} for anything else it cannot make sense of.
 *
 * @example
 * ```ts
 * import { parseSendArgs } from "./send.ts";
 * parseSendArgs(["push", "--form"]);
 * // { event: "push", file: undefined, url: undefined, form: true, delivery: undefined, secretEnv: "GITHUB_WEBHOOK_SECRET" }
 * ```
 */
export function parseSendArgs(args: readonly string[]): SendOptions | null {
  const positional: string[] = [];
  let url: string | undefined;
  let form = false;
  let delivery: string | undefined;
  let secretEnv = "GITHUB_WEBHOOK_SECRET";

  const help = walkArgs(args, (option) => {
    switch (option.name) {
      case "-h":
      case "--help":
        return "help";
      case "--form":
        form = option.flag();
        break;
      case "--url":
        url = option.value();
        break;
      case "--delivery":
        delivery = option.value();
        break;
      case "--secret-env":
        secretEnv = option.value();
        break;
      default:
        throw new UsageError(`Unknown option: ${option.name}`);
    }
  }, (arg) => positional.push(arg));
  if (help) return null;

  if (positional.length === 0) throw new UsageError("Missing the event name");
  if (positional.length > 2) {
    throw new UsageError(
      `Too many arguments: ${positional.slice(2).join(" ")}`,
    );
  }
  const [event, file] = positional as [string, string | undefined];
  if (event === "" || event.length > 100 || CONTROL.test(event)) {
    throw new UsageError(
      `The event name must be 1 to 100 characters without control characters: current value is ${
        JSON.stringify(event)
      }`,
    );
  }
  if (file === undefined && !EVENT_NAME.test(event)) {
    throw new UsageError(
      `No example file can be named after ${
        JSON.stringify(event)
      }: event names are lowercase letters, digits and "_"; pass a payload file`,
    );
  }
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") {
      throw new UsageError(
        `--url must be an http(s) URL: current value is ${JSON.stringify(url)}`,
      );
    }
  }
  if (delivery !== undefined && (delivery === "" || CONTROL.test(delivery))) {
    throw new UsageError(
      `--delivery must be non-empty, without control characters: current value is ${
        JSON.stringify(delivery)
      }`,
    );
  }
  if (!VARIABLE_NAME.test(secretEnv)) {
    throw new UsageError(
      `--secret-env must be a variable name: current value is ${
        JSON.stringify(secretEnv)
      }`,
    );
  }
  return { event, file, url, form, delivery, secretEnv };
}

/** Everything {@link main} touches; each has a real default. */
export interface SendDeps {
  /** Sends the request (default: `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** The real environment (default: the variables read from `Deno.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Reads a file's bytes (default: `Deno.readFile`). */
  readFile?: (path: string) => Promise<Uint8Array<ArrayBuffer>>;
  /** Lists a folder's file names (default: `Deno.readDir`). */
  readDir?: (path: string) => Promise<string[]>;
  /** Prints a line of the result to stdout (default: `console.log`). */
  print?: (text: string) => void;
  /** Prints a problem or hint to stderr (default: `console.error`). */
  printError?: (text: string) => void;
  /** The `.env` file (default: `.env`). */
  dotenvPath?: string;
  /** Where `examples/<event>.json` live (default: `examples`). */
  examplesDir?: string;
  /** Makes a delivery id (default: `crypto.randomUUID`). */
  randomUUID?: () => string;
}

/** Used when the payload does not say which hook or target it belongs to. */
const DEFAULT_HOOK_ID = 512345678;
const DEFAULT_TARGET_ID = 1296269;

/**
 * Runs the command and returns its exit status: 0 when the server answered
 * 2xx, 1 for any other answer or error, 2 for a usage error.
 *
 * @example
 * ```ts ignore
 * import { main } from "./send.ts";
 * const status = await main(["ping", "--url", "http://127.0.0.1:8000/webhook"]);
 * ```
 */
export async function main(
  args: readonly string[],
  deps: SendDeps = {},
): Promise<number> {
  const {
    fetch = globalThis.fetch,
    readFile = Deno.readFile,
    readDir = listDir,
    print = console.log,
    printError = console.error,
    dotenvPath = ".env",
    examplesDir = "examples",
    randomUUID = () => crypto.randomUUID(),
  } = deps;

  const options = parseOrExit(parseSendArgs, args, USAGE, print, printError);
  if (typeof options === "number") return options;

  // The payload.
  const path = options.file ?? `${examplesDir}/${options.event}.json`;
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = await readFile(path);
  } catch (err) {
    if (options.file === undefined && err instanceof Deno.errors.NotFound) {
      const names = (await readDir(examplesDir).catch(() => []))
        .filter((name) => name.endsWith(".json"))
        .map((name) => name.slice(0, -".json".length))
        .sort();
      printError(
        `No example payload for the event "${options.event}": ${path} does not exist.\n` +
          `Examples: ${
            names.length > 0 ? names.join(", ") : "(none found)"
          }\n` +
          `Or pass a payload file: deno task send ${options.event} path/to/payload.json`,
      );
    } else {
      printError(`Cannot read the payload file ${path}: ${errorMessage(err)}`);
    }
    return 1;
  }
  const text = new TextDecoder().decode(raw);
  let payload: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (
      parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
    ) {
      throw new Error("not an object");
    }
    payload = parsed as Record<string, unknown>;
  } catch {
    printError(
      `Warning: ${path} is not a JSON object; sending it anyway (expect 400 invalid_payload).`,
    );
  }

  // The secret and the default URL, from the environment, else `.env`.
  const real = deps.env ??
    readRealEnv([options.secretEnv, "PORT", "HOST", "WEBHOOK_PATH"]);
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotenv(new TextDecoder().decode(await readFile(dotenvPath)));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      printError(`Cannot read ${dotenvPath}: ${errorMessage(err)}`);
      return 1;
    }
  }
  const env = mergeEnv(real, dotenv);
  const secret = env[options.secretEnv];
  if (!secret) {
    printError(
      `${options.secretEnv} is not set, neither in the environment nor in ${dotenvPath}.\n` +
        `Create a secret with \`deno task secret\`, put it in ${dotenvPath} as ` +
        `${options.secretEnv}=…, and give the server (and GitHub) the same value.`,
    );
    return 1;
  }
  const url = options.url ?? defaultUrl(env);

  // The request, as GitHub builds it.
  const body = options.form
    ? new TextEncoder().encode(
      new URLSearchParams({ payload: text }).toString(),
    )
    : raw;
  const delivery = options.delivery ?? randomUUID();
  const target = targetOf(payload);
  const headers = new Headers({
    "Content-Type": options.form
      ? "application/x-www-form-urlencoded"
      : "application/json",
    "User-Agent": `GitHub-Hookshot/${randomHex(7)}`,
    "X-GitHub-Delivery": delivery,
    "X-GitHub-Event": options.event,
    "X-GitHub-Hook-ID": String(hookIdOf(payload)),
    "X-GitHub-Hook-Installation-Target-ID": String(target.id),
    "X-GitHub-Hook-Installation-Target-Type": target.type,
    "X-Hub-Signature": await signSha1(secret, body),
    "X-Hub-Signature-256": await signBody(secret, body),
  });

  print(
    `POST ${url}\n  X-GitHub-Event: ${options.event}\n  X-GitHub-Delivery: ${delivery}\n` +
      `  ${headers.get("Content-Type")}, ${body.byteLength} bytes from ${path}`,
  );
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
    });
  } catch (err) {
    printError(
      `Cannot reach ${url}: ${
        errorMessage(err)
      }\nIs the server running (deno task start)?`,
    );
    return 1;
  }
  const answer = await response.text().catch((err) =>
    `(body unreadable: ${errorMessage(err)})`
  );
  print(`HTTP ${response.status} ${response.statusText}`.trimEnd());
  if (answer !== "") print(answer);
  const hint = hintFor(response.status, answer, options.secretEnv);
  if (hint !== undefined) printError(hint);
  return response.ok ? 0 : 1;
}

/** `http://127.0.0.1:${PORT}${WEBHOOK_PATH}`, or `HOST` when it is one address. */
function defaultUrl(env: Readonly<Record<string, string | undefined>>): string {
  const port = env.PORT?.trim() || "8000";
  const path = env.WEBHOOK_PATH?.trim() || "/webhook";
  let host = env.HOST?.trim() || "127.0.0.1";
  if (host === "0.0.0.0" || host === "::" || host === "[::]") {
    host = "127.0.0.1";
  }
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return `http://${host}:${port}${path.startsWith("/") ? path : `/${path}`}`;
}

/** The hook id GitHub would send: a ping names it; otherwise a fixed fake. */
function hookIdOf(payload: Record<string, unknown>): number | string {
  const hook = payload.hook as { id?: unknown } | undefined;
  for (const id of [payload.hook_id, hook?.id]) {
    if (typeof id === "number" || typeof id === "string") return id;
  }
  return DEFAULT_HOOK_ID;
}

/** What the hook is installed on: the payload's repository, else its organization. */
function targetOf(
  payload: Record<string, unknown>,
): { type: string; id: number | string } {
  for (const type of ["repository", "organization"] as const) {
    const id = (payload[type] as { id?: unknown } | undefined)?.id;
    if (typeof id === "number" || typeof id === "string") return { type, id };
  }
  return { type: "repository", id: DEFAULT_TARGET_ID };
}

/** The legacy `X-Hub-Signature` (HMAC-SHA1) GitHub still sends alongside. */
async function signSha1(
  secret: string,
  body: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  return `sha1=${
    toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, body)))
  }`;
}

function randomHex(digits: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(Math.ceil(digits / 2))))
    .slice(0, digits);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A hint for the answers a first-time user is likely to meet. */
function hintFor(
  status: number,
  answer: string,
  secretEnv: string,
): string | undefined {
  let code: unknown;
  try {
    const json = JSON.parse(answer) as { error?: unknown; status?: unknown };
    code = json.error ?? json.status;
  } catch {
    code = undefined;
  }
  if (code === "ip_not_allowed") {
    return "Hint: only GitHub's addresses are allowed. For local tests start the server " +
      "with IP_ALLOWLIST=off or EXTRA_ALLOWED_CIDRS=127.0.0.1/32.";
  }
  if (code === "bad_signature") {
    return `Hint: the server's GITHUB_WEBHOOK_SECRET differs from the ${secretEnv} used here.`;
  }
  if (code === "duplicate") {
    return "Note: the server had already seen this delivery id or these exact body bytes; " +
      "nothing ran again. Edit the payload to run the handlers once more.";
  }
  if (status === 404) {
    return "Hint: check the URL's path against the server's WEBHOOK_PATH.";
  }
  return undefined;
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (entry.isFile) names.push(entry.name);
  }
  return names;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
