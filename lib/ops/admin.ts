/**
 * The admin API behind `ADMIN_TOKEN`: list deliveries, read one, replay one.
 * Authentication is `Authorization: Bearer <token>` (or HTTP Basic with the
 * token as password, for browsers), checked by `lib/security/auth.ts`. With
 * no token configured every admin path answers 404, as if it did not exist.
 *
 * @module
 */

import type { Route } from "../http/server.ts";
import { errorResponse, jsonResponse } from "../http/server.ts";
import { checkAdminToken, isCrossSite } from "../security/auth.ts";
import { type DeliveryStore, summarize } from "../store/store.ts";

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
    const refused = checkAdminToken(request, token, "api");
    if (refused !== null) {
      return errorResponse(
        refused.status,
        refused.error,
        refused.message,
        refused.headers,
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
