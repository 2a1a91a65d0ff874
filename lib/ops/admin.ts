/**
 * The admin API behind `ADMIN_TOKEN`: list deliveries, read one, download
 * its body, replay one. With no token configured every admin path answers
 * 404, as if it did not exist.
 *
 * The token check, the 401 and the cross-site check are `lib/security/auth.ts`'s;
 * reading and re-arming records are the store's. This module maps paths and
 * methods to those, and records to the JSON the contract shows.
 *
 * @module
 */

import type { Route } from "../http/server.ts";
import {
  errorPartsResponse,
  errorResponse,
  jsonResponse,
} from "../http/responses.ts";
import { checkAdminToken, isCrossSite } from "../security/auth.ts";
import type { DeliveryStore } from "../store/store.ts";
import {
  type DeliveryRecord,
  type DeliverySummary,
  summarize,
} from "../store/types.ts";

/** Options of {@link createAdminRoute}. */
export interface AdminOptions {
  store: DeliveryStore;
  /** `ADMIN_TOKEN`; unset or empty hides the admin API (404). */
  token: string | undefined;
  /** Called after a replay so the worker looks at once. */
  wake?: () => void;
}

/** What `GET /deliveries/<id>` shows of one delivery: its summary and more. */
export interface DeliveryDetail extends DeliverySummary {
  headers: Record<string, string>;
  hookId: string | null;
  target: { type: string; id: string } | null;
  contentKind: DeliveryRecord["kind"];
  replays: number;
  startedAt: string | null;
}

/** How many deliveries `GET /deliveries` lists without `?limit=`. */
export const DEFAULT_LIMIT = 50;

/** The most deliveries one `GET /deliveries` lists. */
export const MAX_LIMIT = 1000;

const NO_STORE = { "cache-control": "no-store" };

/**
 * The admin API as a server route: `GET /deliveries?limit=N`,
 * `GET /deliveries/<id>`, `GET /deliveries/<id>/body`, `POST /deliveries/<id>/replay`.
 *
 * @example
 * ```ts
 * import { createAdminRoute } from "./admin.ts";
 * import { DeliveryStore } from "../store/store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
 * const route = createAdminRoute({ store, token: "s3cret" });
 * const url = new URL("http://localhost/deliveries");
 * const res = await route(new Request(url), url);
 * res?.status; // 401
 * kv.close();
 * ```
 */
export function createAdminRoute(options: AdminOptions): Route {
  const { store, token, wake } = options;
  return async (request, url) => {
    if (!isAdminPath(url.pathname)) return null;
    if (!token) return notFound();
    const refused = checkAdminToken(request, token, "api");
    if (refused !== null) return errorPartsResponse(refused);
    const parts = adminPathParts(url.pathname);
    if (parts === null) return notFound();
    if (parts.length === 0) return await listDeliveries(store, request, url);
    const [id, action, ...rest] = parts;
    if (!id || rest.length > 0) return notFound();
    const record = await store.get(id);
    if (record === null) {
      return errorResponse(
        404,
        "not_found",
        `No delivery ${JSON.stringify(id)} is stored.`,
      );
    }
    switch (action) {
      case undefined:
        return request.method === "GET"
          ? jsonResponse(200, deliveryDetail(record), NO_STORE)
          : useGet();
      case "body":
        return request.method === "GET"
          ? bodyResponse(record, await store.readBody(record))
          : useGet();
      case "replay":
        return await replayDelivery(store, request, url, record, wake);
      default:
        return notFound();
    }
  };
}

/**
 * True for the paths the admin API answers: `/deliveries` and below.
 *
 * @example
 * ```ts
 * import { isAdminPath } from "./admin.ts";
 * isAdminPath("/deliveries/abc"); // true
 * isAdminPath("/deliveriesx"); // false
 * ```
 */
export function isAdminPath(pathname: string): boolean {
  return pathname === "/deliveries" || pathname.startsWith("/deliveries/");
}

/**
 * The percent-decoded segments after `/deliveries` (none for the list);
 * null when one does not decode.
 *
 * @example
 * ```ts
 * import { adminPathParts } from "./admin.ts";
 * adminPathParts("/deliveries/a%2Fb/body"); // ["a/b", "body"]
 * adminPathParts("/deliveries/%ZZ"); // null
 * ```
 */
export function adminPathParts(pathname: string): string[] | null {
  try {
    return pathname.split("/").slice(2).map(decodeURIComponent);
  } catch {
    return null;
  }
}

/**
 * The `limit` query parameter of `GET /deliveries`: an integer from 1 to
 * {@link MAX_LIMIT}, {@link DEFAULT_LIMIT} when absent; null when it is
 * anything else.
 *
 * @example
 * ```ts
 * import { parseLimit } from "./admin.ts";
 * parseLimit(null); // 50
 * parseLimit("200"); // 200
 * parseLimit("0"); // null
 * ```
 */
export function parseLimit(raw: string | null): number | null {
  const text = raw ?? String(DEFAULT_LIMIT);
  if (!/^[0-9]{1,4}$/.test(text)) return null;
  const limit = Number(text);
  return limit < 1 || limit > MAX_LIMIT ? null : limit;
}

/**
 * The JSON of `GET /deliveries/<id>`: the summary plus headers, hook,
 * target, content kind, replays and start time.
 */
export function deliveryDetail(record: DeliveryRecord): DeliveryDetail {
  return {
    ...summarize(record),
    headers: record.headers,
    hookId: record.hookId ?? null,
    target: record.target ?? null,
    contentKind: record.kind,
    replays: record.replays,
    startedAt: record.startedAt === null
      ? null
      : new Date(record.startedAt).toISOString(),
  };
}

/**
 * The headers of `GET /deliveries/<id>/body`: the body's own content type, a
 * download named after the delivery (unsafe characters as `_`), no caching
 * and no sniffing.
 *
 * @example
 * ```ts
 * import { bodyHeaders } from "./admin.ts";
 * bodyHeaders({ id: "a/b", kind: "json" })["content-disposition"]; // 'attachment; filename="a_b.json"'
 * ```
 */
export function bodyHeaders(
  record: Pick<DeliveryRecord, "id" | "kind">,
): Record<string, string> {
  return {
    "content-type": record.kind === "json"
      ? "application/json; charset=utf-8"
      : "application/x-www-form-urlencoded",
    "content-disposition": `attachment; filename="${
      record.id.replace(/[^A-Za-z0-9._-]/g, "_")
    }.json"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
}

/** `GET /deliveries?limit=N`: the newest records' summaries. */
async function listDeliveries(
  store: DeliveryStore,
  request: Request,
  url: URL,
): Promise<Response> {
  if (request.method !== "GET") return useGet();
  const limit = parseLimit(url.searchParams.get("limit"));
  if (limit === null) {
    return errorResponse(
      400,
      "bad_limit",
      `limit must be an integer from 1 to ${MAX_LIMIT}.`,
    );
  }
  const records = await store.list(limit);
  return jsonResponse(200, { deliveries: records.map(summarize) }, NO_STORE);
}

/** The raw stored body of a record, as a download. */
function bodyResponse(
  record: DeliveryRecord,
  body: Uint8Array<ArrayBuffer>,
): Response {
  return new Response(body, { headers: bodyHeaders(record) });
}

/** `POST /deliveries/<id>/replay`: re-arms the record and wakes the worker. */
async function replayDelivery(
  store: DeliveryStore,
  request: Request,
  url: URL,
  record: DeliveryRecord,
  wake: (() => void) | undefined,
): Promise<Response> {
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

function notFound(): Response {
  return errorResponse(404, "not_found", "Nothing here.");
}

function useGet(): Response {
  return errorResponse(405, "method_not_allowed", "Use GET.", {
    allow: "GET",
  });
}
