/**
 * The admin token check shared by the admin API and the dashboard: the
 * credential of a request (`Authorization: Bearer <token>`, or HTTP Basic
 * with the token as the password, for browsers), compared with `ADMIN_TOKEN`
 * in constant time; the 401 answer when it does not match; the limit on
 * wrong guesses per client ({@link createAdminAuth}: 429 after too many, and
 * a rate-limited warning in the log); and the same-site check of
 * state-changing requests.
 *
 * It decides and describes; it builds no `Response` (the routes in `lib/ops/`
 * turn an {@link Unauthorized} or {@link TooManyGuesses} into one with the
 * server's `errorResponse`), and it knows nothing of paths or of what
 * `ADMIN_TOKEN` unlocks.
 *
 * @module
 */

import {
  type Cidr,
  createMatcher,
  formatIp,
  type IpAddress,
  parseCidr,
} from "./cidr.ts";
import { resolveClientIp } from "./client_ip.ts";

const encoder = new TextEncoder();

/**
 * Compares a given string with a secret one in time that depends only on the
 * given one's length: neither the secret's bytes nor its length can be
 * timed.
 *
 * @example
 * ```ts
 * import { timingSafeEqual } from "./auth.ts";
 * timingSafeEqual("abc", "abc"); // true
 * timingSafeEqual("abc", "abd"); // false
 * ```
 */
export function timingSafeEqual(given: string, secret: string): boolean {
  const x = encoder.encode(given);
  const y = encoder.encode(secret);
  let diff = x.length ^ y.length;
  const n = y.length || 1;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ (y[i % n] ?? 0);
  return diff === 0;
}

/**
 * The credential of a request: the Bearer token, or the password of HTTP
 * Basic (any user name). Null when neither is present.
 *
 * @example
 * ```ts
 * import { requestToken } from "./auth.ts";
 * const basic = new Request("http://x/", {
 *   headers: { authorization: `Basic ${btoa("admin:s3cret")}` },
 * });
 * requestToken(basic); // "s3cret"
 * ```
 */
export function requestToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (header === null) return null;
  const space = header.indexOf(" ");
  if (space < 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer") return value;
  if (scheme === "basic") {
    try {
      const decoded = atob(value);
      const colon = decoded.indexOf(":");
      return colon < 0 ? null : decoded.slice(colon + 1);
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * True when the request carries the admin token.
 *
 * @example
 * ```ts
 * import { isAuthorized } from "./auth.ts";
 * const request = new Request("http://x/", {
 *   headers: { authorization: "Bearer s3cret" },
 * });
 * isAuthorized(request, "s3cret"); // true
 * ```
 */
export function isAuthorized(request: Request, token: string): boolean {
  const given = requestToken(request);
  return given !== null && timingSafeEqual(given, token);
}

/**
 * True when a state-changing request comes from another site: its `Origin`
 * is not this host, or the browser says `Sec-Fetch-Site: cross-site`. HTTP
 * Basic credentials are sent by browsers on cross-site form posts, so every
 * POST is checked.
 *
 * @example
 * ```ts
 * import { isCrossSite } from "./auth.ts";
 * const url = new URL("http://hookgate.test/deliveries/x/replay");
 * const request = new Request(url, {
 *   method: "POST",
 *   headers: { origin: "https://evil.example" },
 * });
 * isCrossSite(request, url); // true
 * ```
 */
export function isCrossSite(request: Request, url: URL): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") return true;
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  try {
    return new URL(origin).host !== url.host;
  } catch {
    return true;
  }
}

/**
 * Who is asked for the token: `"api"`, the admin API's clients (scripts,
 * `curl`, which may use Bearer or Basic), or `"page"`, a browser opening the
 * dashboard (Basic only, so that it prompts for the password).
 */
export type AdminClient = "api" | "page";

/** The 401 answer to a request without the admin token, as the routes send it. */
export interface Unauthorized {
  status: 401;
  error: "unauthorized";
  message: string;
  /** The `WWW-Authenticate` challenge, and for the page `no-store`. */
  headers: Record<string, string>;
}

/**
 * The 401 answer for `client`: its message and challenge headers.
 *
 * @example
 * ```ts
 * import { unauthorized } from "./auth.ts";
 * unauthorized("page").headers["www-authenticate"]; // 'Basic realm="hookgate"'
 * ```
 */
export function unauthorized(client: AdminClient): Unauthorized {
  if (client === "page") {
    return {
      status: 401,
      error: "unauthorized",
      message:
        "Sign in with any user name and the ADMIN_TOKEN as the password.",
      headers: {
        "www-authenticate": 'Basic realm="hookgate"',
        "cache-control": "no-store",
      },
    };
  }
  return {
    status: 401,
    error: "unauthorized",
    message: "A valid admin token is required.",
    headers: {
      "www-authenticate": 'Bearer realm="hookgate", Basic realm="hookgate"',
    },
  };
}

/**
 * Null when the request carries the admin `token`, else the 401 answer for
 * `client`.
 *
 * @example
 * ```ts
 * import { checkAdminToken } from "./auth.ts";
 * const request = new Request("http://x/", {
 *   headers: { authorization: "Bearer nope" },
 * });
 * checkAdminToken(request, "s3cret", "api")?.status; // 401
 * ```
 */
export function checkAdminToken(
  request: Request,
  token: string,
  client: AdminClient,
): Unauthorized | null {
  return isAuthorized(request, token) ? null : unauthorized(client);
}

/** The 429 answer to a client that guessed wrong too often. */
export interface TooManyGuesses {
  status: 429;
  error: "too_many_requests";
  message: string;
  /** `Retry-After`: the seconds until the client's window ends. */
  headers: Record<string, string>;
}

/** What {@link AdminAuth.check} refuses with. */
export type AdminRefusal = Unauthorized | TooManyGuesses;

/** The part of a logger {@link createAdminAuth} uses. */
export interface WarnLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** How the server describes a request's peer (`Deno.ServeHandlerInfo`). */
export interface PeerInfo {
  remoteAddr: { hostname?: string } | { path?: string };
}

/** Options of {@link createAdminAuth}. */
export interface AdminAuthOptions {
  /** `ADMIN_TOKEN`. */
  token: string;
  /** `TRUSTED_PROXIES`, to find the client behind them. @default [] */
  trustedProxies?: readonly Cidr[];
  /** Where failed attempts are reported (at warn). @default none */
  log?: WarnLog;
  /** Wrong tokens one client may try in a window. @default 10 */
  maxFailures?: number;
  /** The window, from a client's first wrong token. @default 60_000 */
  windowMs?: number;
  /** At most one warning line this often; the next says how many were left out. @default 10_000 */
  logIntervalMs?: number;
  /** Clients remembered at once (the oldest are forgotten). @default 10_000 */
  maxClients?: number;
  /** @default Date.now */
  now?: () => number;
}

/** The admin token check with a limit on wrong guesses. */
export interface AdminAuth {
  /**
   * Null when the request carries the token; else the 401 (no or a wrong
   * token, counted against its client) or the 429 (the client already
   * guessed wrong `maxFailures` times in its window: not compared at all).
   */
  check(
    request: Request,
    info: PeerInfo,
    client: AdminClient,
  ): AdminRefusal | null;
}

/**
 * Whom wrong guesses are counted against: an IPv4 address, the /64 of an
 * IPv6 address (one host usually holds a whole /64), or `"unknown"`.
 *
 * @example
 * ```ts
 * import { parseIp } from "./cidr.ts";
 * import { clientKey } from "./auth.ts";
 * clientKey(parseIp("2001:db8:1:2:aaaa::1")); // "2001:db8:1:2::/64"
 * clientKey(parseIp("192.0.2.7")); // "192.0.2.7"
 * ```
 */
export function clientKey(ip: IpAddress | null): string {
  if (ip === null) return "unknown";
  if (ip.version === 4) return formatIp(ip);
  const net = parseCidr(`${formatIp(ip)}/64`);
  return net === null ? "unknown" : net.text;
}

/**
 * Makes the admin token check shared by the admin API and the dashboard.
 * Requests without a credential get the 401 and count for nothing (a
 * browser's first visit); a wrong token counts against its client
 * ({@link clientKey}, behind `trustedProxies` as the webhook finds it) and is
 * logged at warn, at most one line per `logIntervalMs`. After `maxFailures`
 * wrong tokens within `windowMs` of the first, the client gets 429 with
 * `Retry-After` until its window ends, the token unchecked. A right token
 * clears its client's count.
 *
 * @example
 * ```ts
 * import { createAdminAuth } from "./auth.ts";
 * const auth = createAdminAuth({ token: "It's a Secret to Everybody", maxFailures: 1 });
 * const guess = () => new Request("http://x/", { headers: { authorization: "Bearer nope" } });
 * const peer = { remoteAddr: { hostname: "192.0.2.1" } };
 * auth.check(guess(), peer, "api")?.status; // 401
 * auth.check(guess(), peer, "api")?.status; // 429
 * ```
 */
export function createAdminAuth(options: AdminAuthOptions): AdminAuth {
  const {
    token,
    log,
    maxFailures = 10,
    windowMs = 60_000,
    logIntervalMs = 10_000,
    maxClients = 10_000,
    now = Date.now,
  } = options;
  const trusted = options.trustedProxies?.length
    ? createMatcher(options.trustedProxies)
    : null;
  const clients = new Map<string, { start: number; failures: number }>();
  const logged = { at: -Infinity, suppressed: 0 };

  function keyOf(request: Request, info: PeerInfo): string {
    const addr = info.remoteAddr;
    if (!addr || !("hostname" in addr) || !addr.hostname) return "unknown";
    return clientKey(resolveClientIp(
      addr.hostname,
      request.headers.get("x-forwarded-for"),
      trusted,
    ));
  }

  /** The client's window, or undefined once it has ended. */
  function windowOf(key: string, at: number) {
    const entry = clients.get(key);
    if (entry && at - entry.start >= windowMs) {
      clients.delete(key);
      return undefined;
    }
    return entry;
  }

  function remember(key: string, at: number) {
    if (clients.size >= maxClients) {
      for (const [k, e] of clients) {
        if (at - e.start >= windowMs) clients.delete(k);
      }
      // Still full: forget the oldest.
      if (clients.size >= maxClients) {
        clients.delete(clients.keys().next().value!);
      }
    }
    const entry = { start: at, failures: 0 };
    clients.set(key, entry);
    return entry;
  }

  function warn(fields: Record<string, unknown>, at: number) {
    if (!log) return;
    if (at - logged.at < logIntervalMs) {
      logged.suppressed++;
      return;
    }
    const suppressed = logged.suppressed;
    logged.at = at;
    logged.suppressed = 0;
    log.warn("admin authentication failed", {
      ...fields,
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }

  return {
    check(request, info, client) {
      const given = requestToken(request);
      if (given === null) return unauthorized(client);
      const at = now();
      const key = keyOf(request, info);
      let entry = windowOf(key, at);
      if (entry && entry.failures >= maxFailures) {
        const seconds = Math.max(
          1,
          Math.ceil((entry.start + windowMs - at) / 1000),
        );
        warn({ client: key, failures: entry.failures, limited: true }, at);
        return tooManyGuesses(seconds);
      }
      if (timingSafeEqual(given, token)) {
        if (entry) clients.delete(key);
        return null;
      }
      entry ??= remember(key, at);
      entry.failures++;
      warn({ client: key, failures: entry.failures, via: client }, at);
      return unauthorized(client);
    },
  };
}

/**
 * The 429 answer after too many wrong tokens, retried after `seconds`.
 *
 * @example
 * ```ts
 * import { tooManyGuesses } from "./auth.ts";
 * tooManyGuesses(42).headers["retry-after"]; // "42"
 * ```
 */
export function tooManyGuesses(seconds: number): TooManyGuesses {
  return {
    status: 429,
    error: "too_many_requests",
    message:
      "Too many wrong admin tokens from this address; try again after Retry-After seconds.",
    headers: { "retry-after": String(seconds) },
  };
}
