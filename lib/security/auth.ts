/**
 * The admin token check shared by the admin API and the dashboard: the
 * credential of a request (`Authorization: Bearer <token>`, or HTTP Basic
 * with the token as the password, for browsers), compared with `ADMIN_TOKEN`
 * in constant time; the 401 answer when it does not match; and the
 * same-site check of state-changing requests.
 *
 * It decides and describes; it builds no `Response` (the routes in `lib/ops/`
 * turn an {@link Unauthorized} into one with the server's `errorResponse`),
 * and it knows nothing of paths or of what `ADMIN_TOKEN` unlocks.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * import { timingSafeEqual } from "./auth.ts";
 * timingSafeEqual("abc", "abc"); // true
 * timingSafeEqual("abc", "abd"); // false
 * ```
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i % (x.length || 1)] ?? 0) ^ (y[i % (y.length || 1)] ?? 0);
  }
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
