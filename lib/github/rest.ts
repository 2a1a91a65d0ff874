/**
 * A small client for GitHub's REST API: routes as GitHub's docs write them
 * (`"GET /repos/{owner}/{repo}/hooks"`), GitHub's headers and a bearer
 * token, rate limits waited out and retried (403/429 with `Retry-After`, a
 * spent `x-ratelimit-remaining`, a secondary limit) unless the wait would
 * end past a call's `deadline`, a 401 retried once with a fresh token from
 * `getToken`, `Link: rel="next"`
 * pagination that never sends the token to another origin, and one error
 * class, {@link GitHubApiError}, carrying the status and GitHub's message.
 *
 * It does not mint tokens (a `getToken` function is the seam for App
 * authentication), decide what a caller does with an answer, or log: a
 * caller that wants to report rate-limit waits passes `onRateLimit`. Every
 * piece of I/O (fetch, clock, sleep) is an option with a real default.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { sleep as sleepUntil } from "../_util/timers.ts";
import { escapeControl } from "../ops/log.ts";
import { isoTime, restRateLimit } from "./rate_limit.ts";

/** GitHub's REST API root (`GITHUB_API_URL` unset). */
export const DEFAULT_API_URL = "https://api.github.com";
/** The REST API version every request asks for. */
export const GITHUB_API_VERSION = "2022-11-28";

const HOUR_MS = 60 * 60 * 1000;
/** Longest GitHub message kept in an error's text. */
const MAX_MESSAGE_CHARS = 300;
/** Keys of a search-style answer that are not its item array. */
const PAGE_META_KEYS = new Set([
  "total_count",
  "incomplete_results",
  "repository_selection",
]);

/**
 * GitHub's API request headers: `Accept`, `X-GitHub-Api-Version`,
 * `User-Agent` and, for a non-empty `token`, `Authorization: Bearer`.
 *
 * @example
 * ```ts
 * import { githubHeaders } from "./rest.ts";
 * githubHeaders("hookgate", "t0k3n").get("authorization"); // "Bearer t0k3n"
 * githubHeaders("hookgate").has("authorization"); // false
 * ```
 */
export function githubHeaders(
  userAgent: string,
  token?: string | undefined,
): Headers {
  const headers = new Headers({
    "accept": "application/vnd.github+json",
    "user-agent": userAgent,
    "x-github-api-version": GITHUB_API_VERSION,
  });
  if (token) headers.set("authorization", `Bearer ${token}`);
  return headers;
}

/** Parameters of a route: `{name}` placeholders, then query or JSON body. */
export type RouteParams = Readonly<Record<string, unknown>>;

/** A 2xx answer. */
export interface RestResponse<T = unknown> {
  /** The HTTP status. */
  status: number;
  /** The answer's headers. */
  headers: Headers;
  /** Parsed JSON; `null` for an empty body; the text itself if not JSON. */
  data: T;
  /** The URL that answered. */
  url: string;
}

/** What kind of failure a {@link GitHubApiError} is. */
export type GitHubApiErrorKind =
  /** No answer (connection refused, DNS, aborted, body cut off). */
  | "network"
  /** A final answer that is not 2xx (rate limits already waited out). */
  | "status"
  /** Still rate limited after every retry, or a wait too long to wait. */
  | "rate_limited"
  /** An answer the caller cannot use (a bad next-page link, not a list…). */
  | "invalid";

/** What a {@link GitHubApiError} carries besides its message. */
export interface GitHubApiErrorInit {
  /** What kind of failure it is. */
  kind: GitHubApiErrorKind;
  /** The HTTP status of the answer, when there was one. */
  status?: number | undefined;
  /** GitHub's `message` from the answer's JSON body, when it had one. */
  githubMessage?: string | undefined;
  /** The answer's parsed body. */
  data?: unknown;
  /** The answer's headers. */
  headers?: Headers | undefined;
}

/**
 * A failed GitHub call. Its message names the method and path (never a
 * token) and is fit to print; `status` and `githubMessage` say what GitHub
 * answered.
 */
export class GitHubApiError extends Error {
  /** What kind of failure it is. */
  readonly kind: GitHubApiErrorKind;
  /** The HTTP status of the answer, when there was one. */
  readonly status: number | undefined;
  /** GitHub's `message` from the answer's JSON body, when it had one. */
  readonly githubMessage: string | undefined;
  /** The answer's parsed body (`undefined` without an answer). */
  readonly data: unknown;
  /** The answer's headers (`undefined` without an answer). */
  readonly headers: Headers | undefined;

  /**
   * Makes the error from its message and what GitHub answered.
   *
   * @param message the printable account of the failure
   * @param init its kind and what GitHub answered
   */
  constructor(message: string, init: GitHubApiErrorInit) {
    super(message);
    this.name = "GitHubApiError";
    this.kind = init.kind;
    this.status = init.status;
    this.githubMessage = init.githubMessage;
    this.data = init.data;
    this.headers = init.headers;
  }

  /**
   * The error for an answer the caller refuses: `"<what>: GitHub answered
   * <status>: <GitHub's message>"`.
   */
  static fromAnswer(what: string, answer: RestResponse): GitHubApiError {
    const githubMessage = githubMessageOf(answer.data);
    const said = githubMessage
      ? `: ${escapeControl(githubMessage).slice(0, MAX_MESSAGE_CHARS)}`
      : "";
    return new GitHubApiError(
      `${what}: GitHub answered ${answer.status}${said}`,
      {
        kind: "status",
        status: answer.status,
        githubMessage,
        data: answer.data,
        headers: answer.headers,
      },
    );
  }
}

/** Told before each rate-limit wait. */
export interface RateLimitNotice {
  /** The status of the rate-limited answer (403 or 429). */
  status: number;
  /** Why it counts as a rate limit (`Retry-After: 30`, …). */
  reason: string;
  /** How long the client waits now. */
  waitMs: number;
  /** Which retry follows the wait (1 for the first). */
  retry: number;
  /** The most retries of one request. */
  maxRetries: number;
  /** The request, as `METHOD /path`. */
  what: string;
  /** All of it in one line. */
  message: string;
}

/** Options of {@link createRestClient}; each has a real default. */
export interface RestClientOptions {
  /** The REST API root; a path (GHES `/api/v3`) is kept. @default DEFAULT_API_URL */
  baseUrl?: string | URL;
  /** Sent as `Authorization: Bearer <token>`; unset or empty: none. */
  token?: string | undefined;
  /**
   * Asked before each try for the token, instead of `token` (renewable
   * credentials). After a 401 it is asked once more with `fresh: true` (drop
   * any cached token) and the request is retried once.
   */
  getToken?: (
    context: TokenContext,
  ) => string | undefined | Promise<string | undefined>;
  /** The `User-Agent`. @default "hookgate" */
  userAgent?: string;
  /** The `fetch` used. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Clock in ms since the epoch. @default Date.now */
  now?: () => number;
  /** Waits out a rate limit; resolves early when `signal` aborts. @default a timer */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Rate-limit retries of one request before giving up. @default 5 */
  maxRetries?: number;
  /** A longer rate-limit wait fails the request at once. @default 3600000 */
  maxWaitMs?: number;
  /** The wait when GitHub rate-limits without saying for how long (its advice). @default 60000 */
  fallbackWaitMs?: number;
  /** Most pages {@link RestClient.pages} follows. @default 10000 */
  maxPages?: number;
  /** Told before each rate-limit wait. */
  onRateLimit?: (notice: RateLimitNotice) => void;
}

/** What {@link RestClientOptions.getToken} is told. */
export interface TokenContext {
  /** True after a 401: the cached token was refused, make a new one. */
  fresh: boolean;
  /** The request's signal, if it has one. */
  signal?: AbortSignal | undefined;
}

/** Per-call options. */
export interface RequestOptions {
  /** Aborts the request (and any rate-limit wait). */
  signal?: AbortSignal | undefined;
  /**
   * Epoch ms by which the call must be over: a rate-limit wait that would
   * end after it fails the call at once with the `rate_limited` error.
   */
  deadline?: number | undefined;
}

/** A GitHub REST client; see {@link createRestClient}. */
export interface RestClient {
  /** The API root every request goes under. */
  readonly baseUrl: URL;
  /**
   * One call of `route` (`"METHOD /path/{name}"`): placeholders are filled
   * from `params` (URL-encoded), the other params go to the query string
   * (GET, HEAD) or a JSON body. Resolves a 2xx answer; rejects with a
   * {@link GitHubApiError} otherwise.
   */
  request<T = unknown>(
    route: string,
    params?: RouteParams,
    options?: RequestOptions,
  ): Promise<RestResponse<T>>;
  /**
   * Each page of `route`, following `Link: rel="next"` on the API's origin
   * only; stop early by breaking out of the loop.
   */
  pages(
    route: string,
    params?: RouteParams,
    options?: RequestOptions,
  ): AsyncGenerator<RestResponse, void, undefined>;
  /**
   * Every item of every page: the page's array, or the item array of a
   * search-style answer (`{ total_count, items: […] }`).
   */
  paginate<T = unknown>(
    route: string,
    params?: RouteParams,
    options?: RequestOptions,
  ): Promise<T[]>;
}

/**
 * Checks a `GITHUB_API_URL`: https (http only on loopback, so a token is
 * never sent in the clear), without credentials, query or fragment.
 *
 * @example
 * ```ts
 * import { parseApiUrl } from "./rest.ts";
 * parseApiUrl("https://ghe.example.com/api/v3").ok; // true
 * parseApiUrl("http://api.example.com").ok; // false
 * ```
 */
export function parseApiUrl(
  text: string,
): { ok: true; url: URL } | { ok: false; error: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      ok: false,
      error: `GITHUB_API_URL must be an http(s) URL: current value is ${
        JSON.stringify(text)
      }`,
    };
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    return {
      ok: false,
      error:
        `GITHUB_API_URL must be an https URL (http only on loopback, so that the token is never sent in the clear): current value is ${
          JSON.stringify(url.origin)
        }`,
    };
  }
  if (
    url.username !== "" || url.password !== "" || url.search !== "" ||
    url.hash !== ""
  ) {
    return {
      ok: false,
      error: "GITHUB_API_URL must not carry credentials, a query or a fragment",
    };
  }
  return { ok: true, url };
}

/**
 * The `rel="next"` URL of a `Link` header, or `undefined`.
 *
 * @example
 * ```ts
 * import { parseNextLink } from "./rest.ts";
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

/** A route made concrete by {@link expandRoute}. */
export interface ExpandedRoute {
  /** The HTTP method, upper case. */
  method: string;
  /** The full URL, query included. */
  url: URL;
  /** The JSON body, when params are left over for a method that takes one. */
  body: string | undefined;
}

/**
 * Turns `"METHOD /path/{name}"` (method optional: GET) and `params` into a
 * URL under `baseUrl` (its path kept) and, for methods other than GET and
 * HEAD, a JSON body of the params the path did not use. Throws a
 * `TypeError` for a malformed route or a missing placeholder (programmer
 * errors).
 *
 * @example
 * ```ts
 * import { expandRoute } from "./rest.ts";
 * const { method, url } = expandRoute(
 *   new URL("https://ghe.example.com/api/v3"),
 *   "GET /repos/{owner}/{repo}/hooks",
 *   { owner: "octo", repo: "hello world", per_page: 100 },
 * );
 * method; // "GET"
 * url.href; // "https://ghe.example.com/api/v3/repos/octo/hello%20world/hooks?per_page=100"
 * ```
 */
export function expandRoute(
  baseUrl: URL,
  route: string,
  params: RouteParams = {},
): ExpandedRoute {
  const match = /^(?:([A-Za-z]+) +)?(\/\S*)$/.exec(route.trim());
  if (!match) {
    throw new TypeError(
      `Cannot request as 'route' must be "METHOD /path": current value is ${
        JSON.stringify(route)
      }`,
    );
  }
  const method = (match[1] ?? "GET").toUpperCase();
  const [template = "", query = ""] = match[2]!.split(/\?(.*)/s, 2);
  const rest = new Map(
    Object.entries(params).filter(([, value]) => value !== undefined),
  );
  const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = rest.get(name);
    if (value === undefined || value === null) {
      throw new TypeError(
        `Cannot request ${
          JSON.stringify(route)
        } as '${name}' is missing from params`,
      );
    }
    rest.delete(name);
    return encodeURIComponent(String(value));
  });
  const url = new URL(baseUrl.href);
  url.pathname = baseUrl.pathname.replace(/\/+$/, "") + path;
  url.search = query;
  url.hash = "";
  if (method === "GET" || method === "HEAD") {
    for (const [name, value] of rest) {
      url.searchParams.set(
        name,
        Array.isArray(value) ? value.join(",") : String(value),
      );
    }
    return { method, url, body: undefined };
  }
  const body = rest.size > 0
    ? JSON.stringify(Object.fromEntries(rest))
    : undefined;
  return { method, url, body };
}

/**
 * GitHub's `message` in an answer's parsed body, if it is a string.
 *
 * @example
 * ```ts
 * import { githubMessageOf } from "./rest.ts";
 * githubMessageOf({ message: "Not Found" }); // "Not Found"
 * githubMessageOf([1, 2]); // undefined
 * ```
 */
export function githubMessageOf(data: unknown): string | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const message = (data as { message?: unknown }).message;
  return typeof message === "string" ? message : undefined;
}

/** A client's options, resolved. */
interface ClientConfig {
  baseUrl: URL;
  token: string | undefined;
  getToken: RestClientOptions["getToken"];
  userAgent: string;
  fetch: typeof fetch;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  maxRetries: number;
  maxWaitMs: number;
  fallbackWaitMs: number;
  maxPages: number;
  onRateLimit: RestClientOptions["onRateLimit"];
}

/**
 * Creates a {@link RestClient}. Nothing is fetched until a method is called.
 *
 * @example
 * ```ts
 * import { createRestClient } from "./rest.ts";
 * const github = createRestClient({
 *   token: "t0k3n",
 *   fetch: () => Promise.resolve(Response.json({ login: "octocat" })),
 * });
 * const { status, data } = await github.request("GET /users/{username}", { username: "octocat" });
 * status; // 200
 * data; // { login: "octocat" }
 * ```
 */
export function createRestClient(options: RestClientOptions = {}): RestClient {
  const baseText = String(options.baseUrl ?? DEFAULT_API_URL);
  if (!URL.canParse(baseText)) {
    throw new TypeError(
      `Cannot create a REST client as 'baseUrl' is not a URL: current value is ${
        JSON.stringify(baseText)
      }`,
    );
  }
  const never = new AbortController().signal;
  const config: ClientConfig = {
    baseUrl: new URL(baseText),
    token: options.token,
    getToken: options.getToken,
    userAgent: options.userAgent ?? "hookgate",
    fetch: options.fetch ?? globalThis.fetch,
    now: options.now ?? Date.now,
    sleep: options.sleep ??
      ((ms, signal) => sleepUntil(ms, signal ?? never)),
    maxRetries: options.maxRetries ?? 5,
    maxWaitMs: options.maxWaitMs ?? HOUR_MS,
    fallbackWaitMs: options.fallbackWaitMs ?? 60_000,
    maxPages: options.maxPages ?? 10_000,
    onRateLimit: options.onRateLimit,
  };
  return {
    baseUrl: config.baseUrl,
    request: async <T>(
      route: string,
      params?: RouteParams,
      options: RequestOptions = {},
    ) => {
      const { method, url, body } = expandRoute(config.baseUrl, route, params);
      const answer = await call(config, method, url, body, options);
      return answer as RestResponse<T>;
    },
    pages: (route, params, options = {}) =>
      pages(config, route, params, options),
    paginate: async <T>(
      route: string,
      params?: RouteParams,
      options: RequestOptions = {},
    ) => {
      const items: T[] = [];
      for await (
        const answer of pages(config, route, params, options)
      ) {
        items.push(...pageItems(answer) as T[]);
      }
      return items;
    },
  };
}

/**
 * One request, rate limits waited out (within the deadline) and a 401 retried
 * once with a fresh token; any other answer, with its text.
 */
async function send(
  config: ClientConfig,
  method: string,
  url: URL,
  body: string | undefined,
  options: RequestOptions,
): Promise<{ response: Response; text: string }> {
  const { maxRetries, maxWaitMs } = config;
  const { signal, deadline } = options;
  const what = `${method} ${url.pathname}`;
  let refreshed = false;
  let fresh = false;
  for (let retry = 0;;) {
    const { response, text } = await sendOnce(
      config,
      method,
      url,
      body,
      { fresh, signal },
    );
    fresh = false;
    const { status } = response;
    if (status === 401 && config.getToken && !refreshed) {
      refreshed = fresh = true;
      continue;
    }
    const now = config.now();
    const limit = restRateLimit(
      status,
      response.headers,
      text,
      now,
      config.fallbackWaitMs,
    );
    if (limit === null) return { response, text };
    const init: GitHubApiErrorInit = {
      kind: "rate_limited",
      status,
      githubMessage: githubMessageOf(parseData(text)),
      headers: response.headers,
    };
    if (retry >= maxRetries) {
      throw new GitHubApiError(
        `Still rate limited by GitHub after ${retry} retries of ${what} (${limit.reason}); run again later`,
        init,
      );
    }
    if (limit.waitMs > maxWaitMs) {
      throw new GitHubApiError(
        `GitHub's rate limit (${limit.reason}) lifts at ${
          isoTime(now + limit.waitMs)
        }, more than ${spellDuration(maxWaitMs)} away; run again then`,
        init,
      );
    }
    if (deadline !== undefined && now + limit.waitMs > deadline) {
      throw new GitHubApiError(
        `Rate limited by GitHub (${status}, ${limit.reason}) on ${what}: the limit lifts at ${
          isoTime(now + limit.waitMs)
        }, after this call's deadline`,
        init,
      );
    }
    retry++;
    config.onRateLimit?.({
      status,
      reason: limit.reason,
      waitMs: limit.waitMs,
      retry,
      maxRetries,
      what,
      message: `Rate limited by GitHub (${status}, ${limit.reason}): waiting ${
        Math.ceil(limit.waitMs / 1000)
      } s before retrying ${what} (retry ${retry} of ${maxRetries})`,
    });
    await config.sleep(limit.waitMs, signal);
  }
}

/** One try: the token asked for, the request sent, its answer read. */
async function sendOnce(
  config: ClientConfig,
  method: string,
  url: URL,
  body: string | undefined,
  context: TokenContext,
): Promise<{ response: Response; text: string }> {
  const what = `${method} ${url.pathname}`;
  const token = config.getToken ? await config.getToken(context) : config.token;
  const headers = githubHeaders(config.userAgent, token);
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    headers.set("content-type", "application/json; charset=utf-8");
    init.body = body;
  }
  if (context.signal !== undefined) init.signal = context.signal;
  try {
    const response = await config.fetch(url, init);
    return { response, text: await response.text() };
  } catch (err) {
    throw new GitHubApiError(
      `Cannot reach ${config.baseUrl.origin} (${what}): ${errorMessage(err)}`,
      { kind: "network" },
    );
  }
}

/** One call: a 2xx answer, else a `status` error. */
async function call(
  config: ClientConfig,
  method: string,
  url: URL,
  body: string | undefined,
  options: RequestOptions,
): Promise<RestResponse> {
  const { response, text } = await send(config, method, url, body, options);
  const answer: RestResponse = {
    status: response.status,
    headers: response.headers,
    data: parseData(text),
    url: url.href,
  };
  if (response.ok) return answer;
  throw GitHubApiError.fromAnswer(`${method} ${url.pathname}`, answer);
}

/** Each page of `route`, following `rel="next"` on the API's origin. */
async function* pages(
  config: ClientConfig,
  route: string,
  params: RouteParams | undefined,
  options: RequestOptions,
): AsyncGenerator<RestResponse, void, undefined> {
  const first = expandRoute(config.baseUrl, route, params);
  let url = first.url;
  const seen = new Set<string>();
  for (let page = 1;; page++) {
    seen.add(url.href);
    const answer = await call(config, first.method, url, first.body, options);
    yield answer;
    const next = parseNextLink(answer.headers.get("link"));
    if (next === undefined) return;
    url = checkNextLink(config.baseUrl, next, url);
    if (seen.has(url.href) || page >= config.maxPages) {
      throw new GitHubApiError(
        `GitHub's pagination does not end (page ${page} links back to a page already read)`,
        { kind: "invalid" },
      );
    }
  }
}

/** The next page's URL; refused unless it is on the API's origin. */
function checkNextLink(baseUrl: URL, next: string, current: URL): URL {
  let url: URL;
  try {
    url = new URL(next, current);
  } catch {
    throw new GitHubApiError(
      `GitHub's next-page link is not a URL: ${escapeControl(next)}`,
      { kind: "invalid" },
    );
  }
  if (url.origin !== baseUrl.origin) {
    throw new GitHubApiError(
      `Refusing to follow GitHub's next-page link to ${
        escapeControl(url.origin)
      }: the token is only sent to ${baseUrl.origin}`,
      { kind: "invalid" },
    );
  }
  return url;
}

/** A body as data: parsed JSON, `null` when empty, else the text itself. */
function parseData(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The items of one page: an array, or a search-style answer's item array. */
function pageItems(answer: RestResponse): unknown[] {
  const { data } = answer;
  if (Array.isArray(data)) return data;
  if (typeof data === "object" && data !== null && "total_count" in data) {
    for (const [key, value] of Object.entries(data)) {
      if (!PAGE_META_KEYS.has(key) && Array.isArray(value)) return value;
    }
  }
  throw new GitHubApiError(
    `GitHub's answer to GET ${new URL(answer.url).pathname} is not a list`,
    { kind: "invalid", status: answer.status, data, headers: answer.headers },
  );
}

/** `an hour`, `2 hours`, `90 s`: a wait limit, in words. */
function spellDuration(ms: number): string {
  if (ms === HOUR_MS) return "an hour";
  if (ms % HOUR_MS === 0) return `${ms / HOUR_MS} hours`;
  return `${Math.ceil(ms / 1000)} s`;
}
