/**
 * JSON responses: the error body `{"error","message"}` of the contract and
 * plain JSON answers, with one way to build their headers. An error body is
 * serialised once per handler by a {@link createErrorResponder} (the same
 * few rejections are sent over and over); there is no process-wide cache.
 * Which status answers what is decided elsewhere (`webhook.ts`, `server.ts`).
 *
 * @module
 */

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";
/** Shared by every JSON response without headers of its own (Response copies it). */
const JSON_HEADER_LIST: [string, string][] = [[
  "content-type",
  JSON_CONTENT_TYPE,
]];

/** Error bodies one {@link createErrorResponder} keeps at most. */
const MAX_CACHED_BODIES = 256;

/**
 * The JSON content type plus `headers`, without a new list when there are
 * none (the shared list must not be changed: `Response` copies it).
 *
 * @example
 * ```ts
 * import { jsonHeaders } from "./responses.ts";
 * new Response("{}", { headers: jsonHeaders({ "retry-after": "5" }) });
 * ```
 */
export function jsonHeaders(
  headers: Record<string, string>,
): [string, string][] {
  let init = JSON_HEADER_LIST;
  for (const name in headers) {
    if (init === JSON_HEADER_LIST) init = [...JSON_HEADER_LIST];
    init.push([name, headers[name]!]);
  }
  return init;
}

/** Answers with a JSON error body `{"error","message"}`, its status and extra headers. */
export type ErrorResponder = (
  status: number,
  error: string,
  message: string,
  headers?: Record<string, string>,
) => Response;

/**
 * A JSON error body `{"error","message"}` with its status, serialised anew
 * (for answers off the hot path; the webhook uses a {@link createErrorResponder}).
 *
 * @example
 * ```ts
 * import { errorResponse } from "./responses.ts";
 * const res = errorResponse(404, "not_found", "Nothing here.");
 * res.status; // 404
 * ```
 */
export function errorResponse(
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ error, message }), {
    status,
    headers: jsonHeaders(headers),
  });
}

/** The parts of an error answer, as checks outside `http/` return them. */
export interface ErrorParts {
  status: number;
  error: string;
  message: string;
  headers?: Record<string, string>;
}

/**
 * {@link errorResponse} from its parts (e.g. `security/auth.ts`'s 401).
 *
 * @example
 * ```ts
 * import { errorPartsResponse } from "./responses.ts";
 * errorPartsResponse({ status: 401, error: "unauthorized", message: "no" }).status; // 401
 * ```
 */
export function errorPartsResponse(parts: ErrorParts): Response {
  return errorResponse(parts.status, parts.error, parts.message, parts.headers);
}

/**
 * Makes an {@link ErrorResponder} with a cache of its own: each distinct
 * error body (up to 256 of them) is serialised once.
 *
 * @example
 * ```ts
 * import { createErrorResponder } from "./responses.ts";
 * const errorResponse = createErrorResponder();
 * const res = errorResponse(503, "unavailable", "Later.", { "retry-after": "5" });
 * res.headers.get("retry-after"); // "5"
 * ```
 */
export function createErrorResponder(): ErrorResponder {
  const bodies = new Map<string, string>();
  return function cachedErrorResponse(status, error, message, headers = {}) {
    const cacheKey = error + "\u0000" + message;
    let body = bodies.get(cacheKey);
    if (body === undefined) {
      body = JSON.stringify({ error, message });
      if (bodies.size < MAX_CACHED_BODIES) bodies.set(cacheKey, body);
    }
    return new Response(body, { status, headers: jsonHeaders(headers) });
  };
}

/**
 * A JSON response of `body` with its status.
 *
 * @example
 * ```ts
 * import { jsonResponse } from "./responses.ts";
 * const res = jsonResponse(202, { status: "queued", delivery: "abc" });
 * res.headers.get("content-type"); // "application/json; charset=utf-8"
 * ```
 */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: jsonHeaders(headers),
  });
}
