/**
 * The admin API behind `ADMIN_TOKEN`: list deliveries, read one, replay one.
 * Authentication is `Authorization: Bearer <token>` (or HTTP Basic with the
 * token as password, for browsers), compared in constant time. With no token
 * configured every admin path answers 404, as if it did not exist.
 *
 * @module
 */

import type { Route } from "../http/server.ts";
import { errorResponse, jsonResponse } from "../http/responses.ts";
import { type DeliveryStore, summarize } from "../store/store.ts";

const encoder = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * import { timingSafeEqual } from "./admin.ts";
 * timingSafeEqual("abc", "abc"); // true
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

/** True when the request carries the admin token. */
export function isAuthorized(request: Request, token: string): boolean {
  const given = requestToken(request);
  return given !== null && timingSafeEqual(given, token);
}

/**
 * True when a state-changing request comes from another site: its `Origin`
 * is not this host, or the browser says `Sec-Fetch-Site: cross-site`. HTTP
 * Basic credentials are sent by browsers on cross-site form posts, so every
 * POST is checked.
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

/** Options of {@link createAdminRoute}. */
export interface AdminOptions {
  store: DeliveryStore;
  token: string | undefined;
  /** Called after a replay so the worker looks at once. */
  wake?: () => void;
}

/**
 * The admin API as a server route: `GET /deliveries?limit=N`,
 * `GET /deliveries/<id>`, `GET /deliveries/<id>/body`, `POST /deliveries/<id>/replay`.
 */
export function createAdminRoute(options: AdminOptions): Route {
  const { store, token, wake } = options;
  return async (request, url) => {
    if (
      url.pathname !== "/deliveries" && !url.pathname.startsWith("/deliveries/")
    ) {
      return null;
    }
    if (!token) return errorResponse(404, "not_found", "Nothing here.");
    if (!isAuthorized(request, token)) {
      return errorResponse(
        401,
        "unauthorized",
        "A valid admin token is required.",
        {
          "www-authenticate": 'Bearer realm="hookgate", Basic realm="hookgate"',
        },
      );
    }
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(2).map(decodeURIComponent);
    } catch {
      return errorResponse(404, "not_found", "Nothing here.");
    }
    if (parts.length === 0) {
      if (request.method !== "GET") {
        return errorResponse(405, "method_not_allowed", "Use GET.", {
          allow: "GET",
        });
      }
      const raw = url.searchParams.get("limit") ?? "50";
      if (!/^[0-9]{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > 1000) {
        return errorResponse(
          400,
          "bad_limit",
          "limit must be an integer from 1 to 1000.",
        );
      }
      const records = await store.list(Number(raw));
      return jsonResponse(200, { deliveries: records.map(summarize) }, {
        "cache-control": "no-store",
      });
    }
    const [id, action, ...rest] = parts;
    if (!id || rest.length > 0) {
      return errorResponse(404, "not_found", "Nothing here.");
    }
    const record = await store.get(id);
    if (record === null) {
      return errorResponse(
        404,
        "not_found",
        `No delivery ${JSON.stringify(id)} is stored.`,
      );
    }
    if (action === undefined) {
      if (request.method !== "GET") {
        return errorResponse(405, "method_not_allowed", "Use GET.", {
          allow: "GET",
        });
      }
      return jsonResponse(200, {
        ...summarize(record),
        headers: record.headers,
        hookId: record.hookId ?? null,
        target: record.target ?? null,
        contentKind: record.kind,
        replays: record.replays,
        startedAt: record.startedAt === null
          ? null
          : new Date(record.startedAt).toISOString(),
      }, { "cache-control": "no-store" });
    }
    if (action === "body") {
      if (request.method !== "GET") {
        return errorResponse(405, "method_not_allowed", "Use GET.", {
          allow: "GET",
        });
      }
      const body = await store.readBody(record);
      return new Response(body, {
        headers: {
          "content-type": record.kind === "json"
            ? "application/json; charset=utf-8"
            : "application/x-www-form-urlencoded",
          "content-disposition": `attachment; filename="${
            record.id.replace(/[^A-Za-z0-9._-]/g, "_")
          }.json"`,
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
        },
      });
    }
    if (action === "replay") {
      if (request.method !== "POST") {
        return errorResponse(405, "method_not_allowed", "Replay with POST.", {
          allow: "POST",
        });
      }
      if (isCrossSite(request, url)) {
        return errorResponse(
          403,
          "cross_site",
          "Replay requests must come from this site.",
        );
      }
      const rearmed = await store.rearm(record.id, "replay");
      wake?.();
      return jsonResponse(202, {
        status: "queued",
        delivery: record.id,
        replays: rearmed?.replays,
      });
    }
    return errorResponse(404, "not_found", "Nothing here.");
  };
}
