/**
 * The webhook endpoint: one delivery through the contract's checks, in the
 * contract's order, each a named step — method → source IP → delivery
 * headers → media type → body → signature → payload → store → answer. The
 * first step that fails answers, with its status and JSON error code; a
 * delivery that passes them all is answered 202 (or 200 for a duplicate)
 * once it is stored. Routing to the webhook's path is `server.ts`'s; the
 * checks' logic is `checks.ts`, `payload.ts` and `security/`, storage is
 * the `accept` it is given.
 *
 * @module
 */

import { withTimeout } from "../_util/timers.ts";
import { type BodyBudget, readRequestBody } from "./body.ts";
import {
  checkHeader,
  declaredLength,
  isIdentityEncoding,
  MAX_HEADER_LENGTH,
} from "./checks.ts";
import {
  type BodyKind,
  bodyKind,
  inspectPayload,
  type InspectResult,
} from "./payload.ts";
import { type ErrorResponder, jsonResponse } from "./responses.ts";
import type { Deadlines } from "../_util/deadline.ts";
import { sha256Hex } from "../_util/digest.ts";
import { errorMessage } from "../_util/errors.ts";
import type { IpAddress, Matcher } from "../security/cidr.ts";
import { resolveClientIp } from "../security/client_ip.ts";
import { type SigningKeys, verifySignature } from "../security/signature.ts";
import type { Config } from "../config/config.ts";
import {
  type AcceptDelivery,
  type AcceptResult,
  type IncomingDelivery,
  STORED_HEADERS,
} from "../store/types.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { Tracer } from "../ops/tracing.ts";

/** What the server needs to know of the IP allowlist (the meta refresher). */
export interface Allowlist {
  /** Whether a list has ever been loaded. */
  isReady(): boolean;
  /** Whether `ip` may send webhooks. */
  isAllowed(ip: IpAddress): boolean;
  /** Called on each webhook request: refresh in the background when stale. */
  maybeRefresh?(): void;
}

/** The `info` argument of a `Deno.serve` handler, as far as we use it. */
export interface ServeInfo {
  remoteAddr: { hostname?: string; transport?: string } | { path?: string };
}

/** Everything one delivery's steps use, resolved once per handler. */
export interface WebhookDeps {
  config: Pick<Config, "maxBodyBytes" | "bodyTimeoutMs" | "webhookPath">;
  keys: SigningKeys;
  /** `null` when `IP_ALLOWLIST=off`. */
  allowlist: Allowlist | null;
  /** The trusted proxies' matcher; `null` when there are none. */
  trusted: Matcher | null;
  accept: AcceptDelivery;
  /** Longest wait for `accept` before answering 503. */
  acceptTimeoutMs: number;
  log: Logger;
  metrics: Metrics;
  /** The handler's error responses (with its cache of error bodies). */
  errorResponse: ErrorResponder;
  deadlines: Deadlines;
  budget: BodyBudget;
  /** Spans of the accept path, inside Deno.serve's span of the request. */
  tracer: Tracer;
  now: () => number;
}

/**
 * Makes the webhook endpoint's handler; `server.ts` calls it for requests to
 * the webhook's path.
 *
 * @example
 * ```ts ignore
 * const webhook = createWebhook(deps);
 * const res = await webhook(request, { remoteAddr: { hostname: "140.82.115.1" } });
 * ```
 */
export function createWebhook(
  deps: WebhookDeps,
): (request: Request, info: ServeInfo) => Promise<Response> {
  return (request, info) => receive(deps, request, info);
}

/** One delivery, step by step: the first step that refuses it answers. */
async function receive(
  deps: WebhookDeps,
  request: Request,
  info: ServeInfo,
): Promise<Response> {
  const headers = request.headers;
  // Deno.serve's span is named after the route, refused requests too.
  if (deps.tracer.enabled) {
    const route = deps.config.webhookPath;
    deps.tracer.annotate(
      { "http.route": route },
      `${request.method} ${route}`,
    );
  }
  // 1. Method, 2. who is asking (before a single body byte is read),
  // 3. the delivery headers.
  const refused = checkMethod(deps, request) ??
    checkSource(deps, request, info) ?? checkDeliveryHeaders(deps, headers);
  if (refused !== null) return refused;
  // 4. Media type and encoding.
  const kind = checkMedia(deps, headers);
  if (typeof kind !== "string") return kind;
  // 5. The body, capped and on a deadline.
  const body = await receiveBody(deps, request);
  if (body instanceof Response) return body;
  // 6. Signature over the raw bytes.
  const forged = await deps.tracer.inSpan(
    "hookgate.verify",
    {},
    async (span) => {
      const refused = await checkSignature(deps, headers, body);
      if (refused !== null) span.fail("bad_signature");
      return refused;
    },
  );
  if (forged !== null) return forged;
  // 7. Payload: a JSON object (large bodies are checked without parsing).
  const inspected = inspectPayload(body, kind);
  if (!inspected.ok) {
    return reject(deps, 400, "invalid_payload", inspected.message);
  }
  // 8. The durable record, 9. the answer.
  const delivery = toIncomingDelivery(
    headers,
    body,
    kind,
    inspected,
    await sha256Hex(body),
    deps.now(),
  );
  const result = await traceStore(deps, delivery);
  return result instanceof Response ? result : answer(deps, delivery, result);
}

/**
 * Step 8 in its span, the request's span named after the delivery (signed
 * by now), and the request's span kept with the record so that the worker's
 * run links to it across the `202`.
 */
function traceStore(
  deps: WebhookDeps,
  delivery: IncomingDelivery,
): Promise<AcceptResult | Response> {
  const { tracer } = deps;
  if (!tracer.enabled) return store(deps, delivery);
  const attributes = {
    "github.event": delivery.event,
    "github.action": delivery.action,
    "github.delivery": delivery.id,
  };
  tracer.annotate(attributes);
  delivery.trace = tracer.active();
  return tracer.inSpan("hookgate.store", attributes, async (span) => {
    const result = await store(deps, delivery);
    const queued = !(result instanceof Response) && result.status === "queued";
    span.set({
      "hookgate.outcome": result instanceof Response
        ? "unavailable"
        : queued
        ? "accepted"
        : "duplicate",
      "http.response.status_code": result instanceof Response
        ? result.status
        : queued
        ? 202
        : 200,
    });
    if (result instanceof Response) span.fail("the store did not answer");
    return result;
  });
}

/** A rejection: counted, logged at debug, answered with its JSON error. */
function reject(
  deps: WebhookDeps,
  status: number,
  reason: string,
  message: string,
  headers?: Record<string, string>,
  fields?: Record<string, unknown>,
): Response {
  deps.metrics.inc("webhook_rejections_total", { reason });
  deps.log.debug("webhook rejected", { status, reason, ...fields });
  return deps.errorResponse(status, reason, message, headers);
}

/** Step 1: 405 unless POST. */
function checkMethod(deps: WebhookDeps, request: Request): Response | null {
  if (request.method === "POST") return null;
  return reject(deps, 405, "method_not_allowed", "Webhooks must be POSTed.", {
    allow: "POST",
  });
}

/**
 * Step 2: the client address (the peer, or what trusted proxies forwarded)
 * must be on the allowlist: 403, or 503 while no list was ever loaded.
 */
function checkSource(
  deps: WebhookDeps,
  request: Request,
  info: ServeInfo,
): Response | null {
  const { allowlist } = deps;
  if (allowlist === null) return null;
  allowlist.maybeRefresh?.();
  const peer = "hostname" in info.remoteAddr
    ? info.remoteAddr.hostname ?? ""
    : "";
  const client = resolveClientIp(
    peer,
    request.headers.get("x-forwarded-for"),
    deps.trusted,
  );
  if (client !== null && allowlist.isAllowed(client)) return null;
  if (client !== null && !allowlist.isReady()) {
    return reject(
      deps,
      503,
      "not_ready",
      "GitHub's webhook IP ranges have not been loaded yet.",
      { "retry-after": "5" },
    );
  }
  return reject(
    deps,
    403,
    "ip_not_allowed",
    "This address may not send webhooks here.",
    {},
    { peer },
  );
}

/** Step 3: `X-GitHub-Event` and `X-GitHub-Delivery` present and sane, else 400. */
function checkDeliveryHeaders(
  deps: WebhookDeps,
  headers: Headers,
): Response | null {
  return headerProblem(deps, "X-GitHub-Event", headers.get("x-github-event")) ??
    headerProblem(deps, "X-GitHub-Delivery", headers.get("x-github-delivery"));
}

/** The 400 for a missing or malformed required header, or null. */
function headerProblem(
  deps: WebhookDeps,
  name: string,
  value: string | null,
): Response | null {
  const state = checkHeader(value);
  if (state === "ok") return null;
  if (state === "missing") {
    return reject(
      deps,
      400,
      "missing_header",
      `The ${name} header is missing.`,
    );
  }
  if (state === "repeated") {
    return reject(
      deps,
      400,
      "bad_header",
      `The ${name} header must be sent once (its value never holds a comma).`,
    );
  }
  return reject(
    deps,
    400,
    "bad_header",
    `The ${name} header must be at most ${MAX_HEADER_LENGTH} characters with no control characters.`,
  );
}

/** Step 4: the body's kind from `Content-Type`, uncompressed; else 415. */
function checkMedia(deps: WebhookDeps, headers: Headers): BodyKind | Response {
  const kind = bodyKind(headers.get("content-type"));
  if (kind === null) {
    return reject(
      deps,
      415,
      "unsupported_media_type",
      "Content-Type must be application/json or application/x-www-form-urlencoded.",
    );
  }
  if (!isIdentityEncoding(headers.get("content-encoding"))) {
    return reject(
      deps,
      415,
      "unsupported_media_type",
      "Content-Encoding is not supported: GitHub never compresses webhook bodies.",
    );
  }
  return kind;
}

/**
 * Step 5: the body's bytes, within `MAX_BODY_BYTES` (the declared length
 * first, then counted: 413) and `BODY_TIMEOUT_MS` (408); 503 when the client
 * went away or the server is stopping.
 */
async function receiveBody(
  deps: WebhookDeps,
  request: Request,
): Promise<Uint8Array<ArrayBuffer> | Response> {
  const { maxBodyBytes, bodyTimeoutMs } = deps.config;
  const expectedLength = declaredLength(request.headers.get("content-length"));
  if (expectedLength !== undefined && expectedLength > maxBodyBytes) {
    return tooLarge(deps);
  }
  const read = await readRequestBody(request, {
    maxBytes: maxBodyBytes,
    timeoutMs: bodyTimeoutMs,
    expectedLength,
    deadlines: deps.deadlines,
    budget: deps.budget,
  });
  if (read.ok) return read.bytes;
  if (read.reason === "too_large") return tooLarge(deps);
  if (read.reason === "timeout") {
    return reject(
      deps,
      408,
      "request_timeout",
      `The body was not received within ${bodyTimeoutMs} ms.`,
      { connection: "close" },
    );
  }
  // The client went away or the server is stopping: nothing stored.
  return reject(
    deps,
    503,
    "unavailable",
    "The body could not be read; nothing was acknowledged. Redeliver it later.",
    { "retry-after": "5" },
  );
}

/** The 413 for a body over `MAX_BODY_BYTES`, declared or counted. */
function tooLarge(deps: WebhookDeps): Response {
  return reject(
    deps,
    413,
    "payload_too_large",
    `The body is larger than ${deps.config.maxBodyBytes} bytes.`,
  );
}

/** Step 6: 401 unless `X-Hub-Signature-256` matches the raw body. */
async function checkSignature(
  deps: WebhookDeps,
  headers: Headers,
  body: Uint8Array<ArrayBuffer>,
): Promise<Response | null> {
  if (
    await verifySignature(deps.keys, body, headers.get("x-hub-signature-256"))
  ) {
    return null;
  }
  return reject(
    deps,
    401,
    "bad_signature",
    "X-Hub-Signature-256 is missing, malformed or does not match the body.",
  );
}

/**
 * The delivery to store, from a request that passed every check: its
 * headers (those kept), raw body, digest and what the payload said.
 *
 * @example
 * ```ts
 * import { toIncomingDelivery } from "./webhook.ts";
 * import { inspectPayload } from "./payload.ts";
 * const headers = new Headers({ "x-github-event": "ping", "x-github-delivery": "1" });
 * const body = new TextEncoder().encode("{}");
 * const inspected = inspectPayload(body, "json");
 * if (inspected.ok) {
 *   toIncomingDelivery(headers, body, "json", inspected, "digest", 0).event; // "ping"
 * }
 * ```
 */
export function toIncomingDelivery(
  headers: Headers,
  body: Uint8Array<ArrayBuffer>,
  kind: BodyKind,
  inspected: Extract<InspectResult, { ok: true }>,
  digest: string,
  receivedAt: number,
): IncomingDelivery {
  const stored: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = headers.get(name);
    if (value !== null) stored[name] = value;
  }
  const targetType = headers.get("x-github-hook-installation-target-type");
  const targetId = headers.get("x-github-hook-installation-target-id");
  return {
    id: headers.get("x-github-delivery")!,
    event: headers.get("x-github-event")!,
    action: inspected.action,
    hookId: headers.get("x-github-hook-id") ?? undefined,
    target: targetType !== null && targetId !== null
      ? { type: targetType, id: targetId }
      : undefined,
    headers: stored,
    body,
    kind,
    digest,
    receivedAt,
    repository: inspected.repository,
    sender: inspected.sender,
    payload: inspected.payload,
  };
}

/**
 * Step 8: the durable record, within `acceptTimeoutMs`; 503 when the store
 * fails or does not answer in time (nothing is acknowledged).
 */
async function store(
  deps: WebhookDeps,
  delivery: IncomingDelivery,
): Promise<AcceptResult | Response> {
  try {
    return await withTimeout(
      deps.accept(delivery),
      deps.acceptTimeoutMs,
      "the store",
    );
  } catch (err) {
    deps.log.error("delivery could not be stored", {
      delivery: delivery.id,
      event: delivery.event,
      error: errorMessage(err),
    });
    return reject(
      deps,
      503,
      "unavailable",
      "The delivery could not be stored; nothing was acknowledged. Redeliver it later.",
      { "retry-after": "5" },
    );
  }
}

/** Step 9: 202 queued for a new delivery, 200 for a duplicate (naming the first). */
function answer(
  deps: WebhookDeps,
  delivery: IncomingDelivery,
  result: AcceptResult,
): Response {
  const outcome = result.status === "queued" ? "accepted" : "duplicate";
  deps.metrics.inc("webhook_deliveries_total", {
    event: delivery.event,
    outcome,
  });
  if (result.status === "queued") {
    return jsonResponse(202, { status: "queued", delivery: result.id });
  }
  deps.log.info("duplicate delivery", {
    delivery: delivery.id,
    first: result.id,
    event: delivery.event,
    action: delivery.action,
  });
  return jsonResponse(200, { status: "duplicate", delivery: result.id });
}
