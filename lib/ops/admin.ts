/**
 * The admin API behind `ADMIN_TOKEN`: list deliveries, read one, download
 * its body, replay one, replay many at once (`POST /deliveries/replay` with
 * a filter; {@link createBulkReplays}). With no token configured every admin
 * path answers 404, as if it did not exist.
 *
 * The token check, the 401/429 and the cross-site check are
 * `lib/security/auth.ts`'s; reading and re-arming records are the store's.
 * This module maps paths and methods to those, and records to the JSON the
 * contract shows. An id that no delivery could have (the webhook's rule for
 * `X-GitHub-Delivery`) is 404 without asking the store, and concurrent
 * replays of one delivery share one re-arm ({@link createReplays}). A bulk
 * replay's progress lives in the memory of the process that took it.
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
import { readCapped } from "../_util/read_capped.ts";
import { traceIdOf } from "./tracing.ts";
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
  /** The trace of the request that brought it, when tracing was on. */
  traceId?: string;
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
 * `GET /deliveries/<id>`, `GET /deliveries/<id>/body`, `POST /deliveries/<id>/replay`,
 * `POST /deliveries/replay` (a filter) and `GET /deliveries/replay/<job>`.
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
  const bulk = createBulkReplays({ store, wake, log });
  return async (request, url, info) => {
    if (!isAdminPath(url.pathname)) return null;
    if (!token) return notFound();
    const refused = auth.check(request, info, "api");
    if (refused !== null) return errorPartsResponse(refused);
    const parts = adminPathParts(url.pathname);
    if (parts === null) return notFound();
    if (parts.length === 0) return await listDeliveries(store, request, url);
    const bulkAnswer = await bulkRoute(bulk, parts, request, url);
    if (bulkAnswer !== null) return bulkAnswer;
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
    ...(traceIdOf(record.trace) ? { traceId: traceIdOf(record.trace)! } : {}),
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

// ---------------------------------------------------------------------------
// Bulk replay: POST /deliveries/replay, GET /deliveries/replay/<job>

/** The statuses a bulk replay may select: the ones a delivery rests in. */
export const REPLAY_STATUSES = ["dead", "failed", "done", "skipped"] as const;

/** What `POST /deliveries/replay` selects: one status, and optionally an event and a receive-time range (ms, inclusive). */
export interface ReplayFilter {
  status: typeof REPLAY_STATUSES[number];
  event?: string;
  since?: number;
  until?: number;
}

/** The largest filter body `POST /deliveries/replay` reads. */
export const MAX_FILTER_BYTES = 4096;

/** The most listed deliveries one bulk replay looks at (one record read each). */
export const MAX_REPLAY_SCAN = 10_000;

/** How many deliveries a bulk replay re-arms before it yields and wakes the worker. */
export const REPLAY_BATCH = 50;

/** How many re-arms of a batch are in flight at once. */
const REPLAY_PARALLEL = 10;

/** How many bulk replay jobs a process remembers (the oldest finished go first). */
const KEPT_JOBS = 20;

const FILTER_FIELDS = ["status", "event", "since", "until"];

/**
 * An ISO 8601 time as `since`/`until` take it: a date (`2025-01-02`, UTC
 * midnight) or a date and time with `Z` or an offset; null otherwise.
 *
 * @example
 * ```ts
 * import { parseIsoTime } from "./admin.ts";
 * parseIsoTime("1970-01-01T00:00:01Z"); // 1000
 * parseIsoTime("2025-01-02T03:04:05"); // null: no time zone
 * parseIsoTime("2025-02-30"); // null: no such day
 * ```
 */
export function parseIsoTime(text: string): number | null {
  const iso =
    /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/;
  const m = iso.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second, offH, offM] = m.slice(1)
    .map((part) => part === undefined ? 0 : Number(part)) as number[];
  // Date.parse rolls 2025-02-30 over to March: check the calendar first.
  const inMonth = new Date(Date.UTC(year!, month! - 1, day!)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || inMonth !== day) return null;
  if (hour! > 23 || minute! > 59 || second! > 59) return null;
  if (offH! > 23 || offM! > 59) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The filter of `POST /deliveries/replay` from its body text, or a message
 * naming what is wrong: not JSON, not an object, an unknown field, a
 * missing or unknown `status`, an empty `event`, a time that is not ISO
 * 8601, or `since` after `until`.
 *
 * @example
 * ```ts
 * import { parseReplayFilter } from "./admin.ts";
 * parseReplayFilter('{"status":"dead","event":"push"}');
 * // { ok: true, filter: { status: "dead", event: "push" } }
 * parseReplayFilter('{"status":"lost"}').ok; // false
 * ```
 */
export function parseReplayFilter(
  text: string,
): { ok: true; filter: ReplayFilter } | { ok: false; message: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: "The body must be a JSON object." };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, message: "The body must be a JSON object." };
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !FILTER_FIELDS.includes(k));
  if (unknown !== undefined) {
    return {
      ok: false,
      message: `Unknown field ${
        JSON.stringify(unknown.slice(0, 40))
      }: the filter has status, event, since and until.`,
    };
  }
  const { status, event } = fields;
  if (!REPLAY_STATUSES.includes(status as ReplayFilter["status"])) {
    return {
      ok: false,
      message: `status is ${
        status === undefined ? "missing" : "not one of the four"
      }: it must be one of ${REPLAY_STATUSES.join(", ")}.`,
    };
  }
  const filter: ReplayFilter = { status: status as ReplayFilter["status"] };
  if (event !== undefined) {
    if (typeof event !== "string" || event === "" || event.length > 100) {
      return {
        ok: false,
        message: "event must be an event name (1 to 100 characters).",
      };
    }
    filter.event = event;
  }
  for (const name of ["since", "until"] as const) {
    const value = fields[name];
    if (value === undefined) continue;
    const ms = typeof value === "string" ? parseIsoTime(value) : null;
    if (ms === null) {
      return {
        ok: false,
        message:
          `${name} must be an ISO 8601 time such as 2025-01-02T03:04:05Z.`,
      };
    }
    filter[name] = ms;
  }
  if (
    filter.since !== undefined && filter.until !== undefined &&
    filter.since > filter.until
  ) return { ok: false, message: "since is later than until." };
  return { ok: true, filter };
}

/**
 * Whether a record is one a bulk replay with `filter` selects (its status
 * and event; the time range is the listing's).
 *
 * @example
 * ```ts
 * import { matchesReplayFilter } from "./admin.ts";
 * matchesReplayFilter({ status: "dead", event: "push" }, { status: "dead" }); // true
 * matchesReplayFilter({ status: "dead", event: "push" }, { status: "dead", event: "ping" }); // false
 * ```
 */
export function matchesReplayFilter(
  record: Pick<DeliveryRecord, "status" | "event">,
  filter: ReplayFilter,
): boolean {
  return record.status === filter.status &&
    (filter.event === undefined || record.event === filter.event);
}

/** How far a bulk replay has got, as `GET /deliveries/replay/<job>` shows it. */
export interface ReplayProgress {
  job: string;
  /** How many deliveries matched, all of which will be re-armed. */
  total: number;
  /** How many are re-armed so far. */
  replayed: number;
  /** How many could not be (gone, or the store refused every try). */
  failed: number;
  /** True once every matched delivery was tried. */
  done: boolean;
  /**
   * True when more than {@link MAX_REPLAY_SCAN} deliveries were in range:
   * the rest were not looked at.
   */
  truncated: boolean;
  /** When truncated: the `since` (ISO) of the call that replays the rest. */
  next?: string;
}

/** Options of {@link createBulkReplays}. */
export interface BulkReplayOptions {
  store: Pick<DeliveryStore, "listReceived" | "rearm">;
  /** Called after each batch so the worker looks at once. @default none */
  wake?: (() => void) | undefined;
  /** Where a job's end, and re-arms that failed, are reported. @default none */
  log?: Pick<Logger, "warn"> | undefined;
  /** @default {@link REPLAY_BATCH} */
  batch?: number;
  /** @default {@link MAX_REPLAY_SCAN} */
  maxScan?: number;
}

/** Bulk replays: start one for a filter, read a job's progress. */
export interface BulkReplays {
  /**
   * Lists what `filter` matches, then re-arms it in the background, in
   * batches with a yield to the event loop between them; resolves with the
   * job once the matching is done (`total` known, nothing re-armed yet).
   * Rejects when the listing does (KV failing).
   */
  start(filter: ReplayFilter): Promise<ReplayProgress>;
  /** A job's progress, or null when this process knows no such job. */
  progress(job: string): ReplayProgress | null;
}

/**
 * Makes the bulk replays of {@link createAdminRoute}. Each re-arm is the
 * store's `rearm(id, "replay")` (one read and one commit), ten in flight at
 * a time; after each batch the worker is woken once and the job yields
 * (`setTimeout(0)`), so webhooks keep being answered meanwhile.
 *
 * @example
 * ```ts
 * import { createBulkReplays } from "./admin.ts";
 * import { DeliveryStore } from "../store/store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 3 });
 * const bulk = createBulkReplays({ store });
 * const job = await bulk.start({ status: "dead" });
 * job.total; // 0
 * kv.close();
 * ```
 */
export function createBulkReplays(options: BulkReplayOptions): BulkReplays {
  const { store, wake, log } = options;
  const batch = options.batch ?? REPLAY_BATCH;
  const maxScan = options.maxScan ?? MAX_REPLAY_SCAN;
  const jobs = new Map<string, ReplayProgress>();

  async function rearmOne(id: string, job: ReplayProgress): Promise<void> {
    try {
      if (await store.rearm(id, "replay")) job.replayed++;
      else job.failed++;
    } catch (err) {
      job.failed++;
      log?.warn("replay not stored", {
        delivery: id,
        job: job.job,
        error: errorMessage(err),
      });
    }
  }

  async function run(ids: string[], job: ReplayProgress): Promise<void> {
    for (let i = 0; i < ids.length; i += batch) {
      const slice = ids.slice(i, i + batch);
      for (let j = 0; j < slice.length; j += REPLAY_PARALLEL) {
        await Promise.all(
          slice.slice(j, j + REPLAY_PARALLEL).map((id) => rearmOne(id, job)),
        );
      }
      wake?.();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    job.done = true;
  }

  function remember(job: ReplayProgress): void {
    jobs.set(job.job, job);
    for (const [id, old] of jobs) {
      if (jobs.size <= KEPT_JOBS) break;
      if (old.done) jobs.delete(id);
    }
  }

  return {
    async start(filter) {
      const listed = await store.listReceived(
        { since: filter.since, until: filter.until },
        maxScan,
        (record) => matchesReplayFilter(record, filter),
      );
      const job: ReplayProgress = {
        job: crypto.randomUUID(),
        total: listed.ids.length,
        replayed: 0,
        failed: 0,
        done: listed.ids.length === 0,
        truncated: listed.next !== null,
        ...(listed.next === null
          ? {}
          : { next: new Date(listed.next).toISOString() }),
      };
      remember(job);
      if (!job.done) void run(listed.ids, job);
      return { ...job };
    },
    progress(id) {
      const job = jobs.get(id);
      return job === undefined ? null : { ...job };
    },
  };
}

/**
 * `POST /deliveries/replay` and `GET /deliveries/replay/<job>`; null for
 * any other path (a delivery whose id is `replay` keeps its own paths, but
 * for a POST to `/deliveries/replay` and its `/replay/<job>` sub-paths).
 */
async function bulkRoute(
  bulk: BulkReplays,
  parts: string[],
  request: Request,
  url: URL,
): Promise<Response | null> {
  if (parts[0] !== "replay") return null;
  if (parts.length === 1) {
    return request.method === "POST"
      ? await startBulkReplay(bulk, request, url)
      : null;
  }
  const job = parts[1]!;
  if (parts.length !== 2 || job === "body" || job === "replay") return null;
  if (request.method !== "GET") return useGet();
  const progress = bulk.progress(job);
  return progress === null
    ? errorResponse(404, "not_found", "This process knows no such replay job.")
    : jsonResponse(200, progress, NO_STORE);
}

/** `POST /deliveries/replay`: reads the filter, matches, answers 202 with the job. */
async function startBulkReplay(
  bulk: BulkReplays,
  request: Request,
  url: URL,
): Promise<Response> {
  if (isCrossSite(request, url)) {
    return errorResponse(
      403,
      "cross_site",
      "Replay requests must come from this site.",
    );
  }
  const bytes = request.body === null
    ? new Uint8Array(0)
    : await readCapped(request.body.getReader(), MAX_FILTER_BYTES)
      .catch(() => null);
  if (bytes === null) {
    return errorResponse(
      400,
      "bad_filter",
      `The filter must be a JSON object of at most ${MAX_FILTER_BYTES} bytes.`,
    );
  }
  const parsed = parseReplayFilter(new TextDecoder().decode(bytes));
  if (!parsed.ok) return errorResponse(400, "bad_filter", parsed.message);
  let job: ReplayProgress;
  try {
    job = await bulk.start(parsed.filter);
  } catch {
    return errorResponse(
      503,
      "unavailable",
      "The deliveries could not be listed; try again.",
      { "retry-after": REPLAY_RETRY_SECONDS },
    );
  }
  return jsonResponse(202, {
    replayed: job.total,
    job: job.job,
    truncated: job.truncated,
    ...(job.next === undefined ? {} : { next: job.next }),
    progress: "/deliveries/replay/" + job.job,
  }, NO_STORE);
}
