/**
 * The admin API behind `ADMIN_TOKEN`: list deliveries, read one, download
 * its body, replay one. With no token configured every admin path answers
 * 404, as if it did not exist.
 *
 * The token check, the 401/429 and the cross-site check are
 * `lib/security/auth.ts`'s; reading and re-arming records are the store's.
 * This module maps paths and methods to those, and records to the JSON the
 * contract shows. An id that no delivery could have (the webhook's rule for
 * `X-GitHub-Delivery`) is 404 without asking the store, and concurrent
 * replays of one delivery share one re-arm ({@link createReplays}).
 *
 * @module
 */

import type { RunReport } from "../store/runs.ts";
import type { Route } from "../http/server.ts";
import {
  errorPartsResponse,
  errorResponse,
  jsonResponse,
} from "../http/responses.ts";
import { checkHeader } from "../http/checks.ts";
import {
  type AdminAuth,
  createAdminAuth,
  isCrossSite,
} from "../security/auth.ts";
import type { DeliveryStore } from "../store/store.ts";
import { errorMessage } from "../_util/errors.ts";
import type { Logger } from "./log.ts";
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
  /** The token check (shared with the dashboard). @default one of its own for `token` */
  auth?: AdminAuth;
  /** Where a replay that could not be stored is reported. @default none */
  log?: Pick<Logger, "warn">;
}

/** What `GET /deliveries/<id>` shows of one delivery: its summary and more. */
export interface DeliveryDetail extends DeliverySummary {
  headers: Record<string, string>;
  hookId: string | null;
  target: { type: string; id: string } | null;
  contentKind: DeliveryRecord["kind"];
  replays: number;
  startedAt: string | null;
  /**
   * What each handler and hook script of each attempt reported, oldest
   * first; scripts with `exitCode` and the last 64 KiB of `output`.
   */
  runs: RunReport[];
}

/** How many deliveries `GET /deliveries` lists without `?limit=`. */
export const DEFAULT_LIMIT = 50;

/** The most deliveries one `GET /deliveries` lists. */
export const MAX_LIMIT = 1000;

const NO_STORE = { "cache-control": "no-store" };

/** `Retry-After` of a replay that could not be stored. */
const REPLAY_RETRY_SECONDS = "1";

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
 * const route = createAdminRoute({ store, token: "It's a Secret to Everybody" });
 * const url = new URL("http://localhost/deliveries");
 * const peer = { remoteAddr: { hostname: "127.0.0.1", transport: "tcp" } } as const;
 * const res = await route(new Request(url), url, peer);
 * res?.status; // 401
 * kv.close();
 * ```
 */
export function createAdminRoute(options: AdminOptions): Route {
  const { store, token, wake, log } = options;
  const auth = options.auth ?? createAdminAuth({ token: token ?? "" });
  const replays = createReplays(store);
  return async (request, url, info) => {
    if (!isAdminPath(url.pathname)) return null;
    if (!token) return notFound();
    const refused = auth.check(request, info, "api");
    if (refused !== null) return errorPartsResponse(refused);
    const parts = adminPathParts(url.pathname);
    if (parts === null) return notFound();
    if (parts.length === 0) return await listDeliveries(store, request, url);
    const [id, action, ...rest] = parts;
    if (!id || rest.length > 0) return notFound();
    if (!isDeliveryId(id)) {
      return errorResponse(404, "not_found", "No delivery has this id.");
    }
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
          ? jsonResponse(
            200,
            deliveryDetail(record, await store.runs(id)),
            NO_STORE,
          )
          : useGet();
      case "body":
        return request.method === "GET"
          ? bodyResponse(record, await store.readBody(record))
          : useGet();
      case "replay":
        return await replayDelivery(request, url, record, {
          replays,
          wake,
          log,
        });
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
 * Whether `id` could be a stored delivery's: the webhook's own rule for
 * `X-GitHub-Delivery` (at most 100 characters, no control characters), so
 * that any other id is a 404 without a store read (KV refuses keys over
 * 2 KiB).
 *
 * @example
 * ```ts
 * import { isDeliveryId } from "./admin.ts";
 * isDeliveryId("72d3162e-cc78-11e3-81ab-4c9367dc0958"); // true
 * isDeliveryId("x".repeat(20_000)); // false
 * ```
 */
export function isDeliveryId(id: string): boolean {
  return checkHeader(id) === "ok";
}

/** What a replay came to: re-armed (or already due to run again), gone, or not stored. */
export type ReplayOutcome =
  | { status: "queued"; replays: number }
  | { status: "missing" }
  | { status: "unavailable"; error: string };

/**
 * Whether a replay of `record` would change nothing the worker does, so
 * needs no write: it is already waiting and due by `now`, or it is running
 * and already marked to run again (`rearmRecord` would only touch
 * `updatedAt` and the replay count).
 *
 * @example
 * ```ts
 * import { replayIsPending } from "./admin.ts";
 * import type { DeliveryRecord } from "../store/types.ts";
 * replayIsPending({ status: "queued", dueAt: 5 } as DeliveryRecord, 10); // true
 * replayIsPending({ status: "done", dueAt: null } as DeliveryRecord, 10); // false
 * ```
 */
export function replayIsPending(record: DeliveryRecord, now: number): boolean {
  if (record.status === "running") return record.rerun === true;
  return (record.status === "queued" || record.status === "failed") &&
    record.dueAt !== null && record.dueAt <= now;
}

/**
 * Makes the replay of {@link createAdminRoute}: re-arms a record unless a
 * replay is already pending ({@link replayIsPending}), and joins replays of
 * one id that come while its re-arm is in flight, so that a burst of them
 * costs one store write (and does not crowd out the worker's own write of
 * the outcome). A re-arm the store cannot commit (KV failing, or other
 * processes winning every race) is `unavailable`, never a throw.
 *
 * @example
 * ```ts
 * import { createReplays } from "./admin.ts";
 * import { DeliveryStore } from "../store/store.ts";
 * import type { DeliveryRecord } from "../store/types.ts";
 * const kv = await Deno.openKv(":memory:");
 * const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
 * const replay = createReplays(store);
 * (await replay({ id: "nope", status: "done" } as DeliveryRecord)).status; // "missing"
 * kv.close();
 * ```
 */
export function createReplays(
  store: Pick<DeliveryStore, "rearm" | "now">,
): (record: DeliveryRecord) => Promise<ReplayOutcome> {
  const inflight = new Map<string, Promise<ReplayOutcome>>();
  async function rearm(id: string): Promise<ReplayOutcome> {
    try {
      const rearmed = await store.rearm(id, "replay");
      return rearmed === null
        ? { status: "missing" }
        : { status: "queued", replays: rearmed.replays };
    } catch (err) {
      return { status: "unavailable", error: errorMessage(err) };
    } finally {
      inflight.delete(id);
    }
  }
  return (record) => {
    if (replayIsPending(record, store.now())) {
      return Promise.resolve({ status: "queued", replays: record.replays });
    }
    let pending = inflight.get(record.id);
    if (pending === undefined) {
      pending = rearm(record.id);
      inflight.set(record.id, pending);
    }
    return pending;
  };
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
 * target, content kind, replays, start time and run reports.
 */
export function deliveryDetail(
  record: DeliveryRecord,
  runs: RunReport[] = [],
): DeliveryDetail {
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
    runs,
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
  request: Request,
  url: URL,
  record: DeliveryRecord,
  ctx: {
    replays: (record: DeliveryRecord) => Promise<ReplayOutcome>;
    wake: (() => void) | undefined;
    log: Pick<Logger, "warn"> | undefined;
  },
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
  const outcome = await ctx.replays(record);
  if (outcome.status === "missing") {
    return errorResponse(404, "not_found", "The delivery is gone (expired?).");
  }
  if (outcome.status === "unavailable") {
    ctx.log?.warn("replay not stored", {
      delivery: record.id,
      error: outcome.error,
    });
    return errorResponse(
      503,
      "unavailable",
      "The replay could not be stored; try again.",
      { "retry-after": REPLAY_RETRY_SECONDS },
    );
  }
  ctx.wake?.();
  return jsonResponse(202, {
    status: "queued",
    delivery: record.id,
    replays: outcome.replays,
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
