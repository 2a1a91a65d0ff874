/**
 * The deliveries dashboard at `GET /dashboard`: one self-contained HTML page
 * (`page.ts`, with the browser script of `client.ts` inlined) that lists
 * recent deliveries like GitHub's "Recent Deliveries", filters them, shows one
 * delivery's headers, payload and last error, and replays it. The page only
 * talks to the admin API (`lib/ops/admin.ts`) with the browser's credentials.
 *
 * This module is the HTTP route: who may see the page, a fresh nonce per
 * response and the strict `Content-Security-Policy` that allows only the
 * nonced script and style. Listing, reading and replaying are the admin
 * API's, with its cross-site checks. Access is HTTP Basic (any user name,
 * `ADMIN_TOKEN` as the password, so a browser prompts) or `Bearer`, checked by
 * `lib/security/auth.ts`; without `ADMIN_TOKEN` the page answers 404.
 *
 * @module
 */

import { errorPartsResponse, errorResponse } from "../../http/responses.ts";
import type { Route } from "../../http/server.ts";
import { type AdminAuth, createAdminAuth } from "../../security/auth.ts";
import { renderDashboard } from "./page.ts";

/** Options of {@link createDashboardRoute}. */
export interface DashboardOptions {
  /** `ADMIN_TOKEN`; unset or empty hides the dashboard (404). */
  token: string | undefined;
  /** The token check (shared with the admin API). @default one of its own for `token` */
  auth?: AdminAuth;
}

/**
 * A fresh random nonce for one response's scripts and styles: 16 random
 * bytes in base64.
 *
 * @example
 * ```ts
 * import { createNonce } from "./route.ts";
 * createNonce().length; // 24
 * ```
 */
export function createNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/**
 * The `Content-Security-Policy` of the page: nothing but its own nonced
 * script and style, `fetch` to this origin, and images from here or `data:`.
 *
 * @example
 * ```ts
 * import { contentSecurityPolicy } from "./route.ts";
 * contentSecurityPolicy("abc").startsWith("default-src 'none'"); // true
 * ```
 */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * The response headers of the page for one nonce: the CSP plus `nosniff`,
 * no referrer, no caching and no framing.
 *
 * @example
 * ```ts
 * import { dashboardHeaders } from "./route.ts";
 * dashboardHeaders("abc")["cache-control"]; // "no-store"
 * ```
 */
export function dashboardHeaders(nonce: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": contentSecurityPolicy(nonce),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
  };
}

/**
 * The dashboard route: `GET`/`HEAD` `/dashboard` (`/dashboard/` redirects
 * there); `null` (not mine) for every other path.
 *
 * @example
 * ```ts
 * import { createDashboardRoute } from "./route.ts";
 * const token = "It's a Secret to Everybody";
 * const route = createDashboardRoute({ token });
 * const url = new URL("http://localhost/dashboard");
 * const peer = { remoteAddr: { hostname: "127.0.0.1", transport: "tcp" } } as const;
 * const res = await route(new Request(url, { headers: { authorization: `Bearer ${token}` } }), url, peer);
 * res?.status; // 200
 * ```
 */
export function createDashboardRoute(options: DashboardOptions): Route {
  const { token } = options;
  const auth = options.auth ?? createAdminAuth({ token: token ?? "" });
  return (request, url, info) => {
    if (url.pathname !== "/dashboard" && url.pathname !== "/dashboard/") {
      return null;
    }
    if (!token) return errorResponse(404, "not_found", "Nothing here.");
    if (url.pathname === "/dashboard/") {
      // Browsers resend Basic credentials without a new challenge only below
      // the "directory" of the page that was challenged: "/" for
      // "/dashboard", but "/dashboard/" for "/dashboard/", which would leave
      // the page's calls to "/deliveries" unauthenticated.
      return new Response(null, {
        status: 308,
        headers: { location: `/dashboard${url.search}` },
      });
    }
    const refused = auth.check(request, info, "page");
    if (refused !== null) return errorPartsResponse(refused);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorResponse(405, "method_not_allowed", "Use GET.", {
        allow: "GET, HEAD",
      });
    }
    const nonce = createNonce();
    return new Response(
      request.method === "HEAD" ? null : renderDashboard(nonce),
      { headers: dashboardHeaders(nonce) },
    );
  };
}
