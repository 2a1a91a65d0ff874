/**
 * The HTTP layer: `createHandler(deps)` returns `(request, info) => Response`
 * for `Deno.serve`, `deno serve` and tests alike. Every status code of the
 * contract is decided here, in the contract's order; everything else
 * (signatures, IPs, storage, admin, dashboard) is a dependency.
 *
 * @module
 */

import { type BodyBudget, createBodyBudget, readRequestBody } from "./body.ts";
import { createDeadlines, type Deadlines } from "../_util/deadline.ts";
import { sha256Hex } from "../_util/digest.ts";
import { resolveClientIp } from "../security/client_ip.ts";
import {
  createMatcher,
  type IpAddress,
  type Matcher,
} from "../security/cidr.ts";
import type { Config } from "../config/config.ts";
import {
  type AcceptDelivery,
  type IncomingDelivery,
  STORED_HEADERS,
} from "../store/types.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { bodyKind, inspectPayload } from "./payload.ts";
import { type SigningKeys, verifySignature } from "../security/signature.ts";
import { errorMessage } from "../_util/errors.ts";
import { createErrorResponder, jsonResponse } from "./responses.ts";
import {
  healthResponse,
  metricsResponse,
  type Readiness,
  readyResponse,
} from "./probes.ts";

/** What the server needs to know of the IP allowlist (the meta refresher). */
export interface Allowlist {
  isReady(): boolean;
  isAllowed(ip: IpAddress): boolean;
  /** Called on each webhook request: refresh in the background when stale. */
  maybeRefresh?(): void;
}

/** A sub-application mounted on the server (admin API, dashboard). */
export type Route = (
  request: Request,
  url: URL,
) => Response | null | Promise<Response | null>;

/** Dependencies of {@link createHandler}. */
export interface ServerDeps {
  config: Pick<
    Config,
    "webhookPath" | "maxBodyBytes" | "bodyTimeoutMs" | "trustedProxies"
  >;
  keys: SigningKeys;
  /** `null` when `IP_ALLOWLIST=off`. */
  allowlist: Allowlist | null;
  accept: AcceptDelivery;
  log: Logger;
  metrics: Metrics;
  readiness?: () => Readiness | Promise<Readiness>;
  /** Renders `/metrics` (default: `metrics.render()`). */
  renderMetrics?: () => string;
  /**
   * Longest wait for the store before answering 503 (default 8000 ms, inside
   * GitHub's 10-second deadline). A commit that lands later is simply a
   * duplicate when GitHub redelivers.
   */
  acceptTimeoutMs?: number;
  /** Extra routes tried, in order, for paths other than the webhook's. */
  routes?: readonly Route[];
  /** The app's shared deadlines (body reads). @default a set of its own */
  deadlines?: Deadlines;
  /** The app's budget for body buffers sized up front. @default a budget of its own */
  bodyBudget?: BodyBudget;
  now?: () => number;
}

/** The `info` argument of a `Deno.serve` handler, as far as we use it. */
export interface ServeInfo {
  remoteAddr: { hostname?: string; transport?: string } | { path?: string };
}

const MAX_HEADER_LENGTH = 100;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The path of an absolute request URL, as it was sent (no normalisation):
 * cheaper than `new URL()` on the hot path.
 */
export function pathOf(url: string): string {
  const scheme = url.indexOf("//");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 2);
  if (start < 0) return "/";
  let end = url.length;
  const query = url.indexOf("?", start);
  if (query >= 0) end = query;
  const hash = url.indexOf("#", start);
  if (hash >= 0 && hash < end) end = hash;
  return url.slice(start, end);
}

function checkHeader(value: string | null): "missing" | "bad" | "ok" {
  if (value === null || value === "") return "missing";
  if (value.length > MAX_HEADER_LENGTH || CONTROL.test(value)) return "bad";
  return "ok";
}

/** Rejects when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the store did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Creates the request handler. Tests call it with `new Request(...)` and a
 * stub `info`; `main.ts` hands it to `Deno.serve`.
 *
 * @example
 * ```ts ignore
 * const handler = createHandler(deps);
 * const res = await handler(new Request("http://x/healthz"), { remoteAddr: { hostname: "127.0.0.1" } });
 * ```
 */
export function createHandler(
  deps: ServerDeps,
): (request: Request, info: ServeInfo) => Promise<Response> {
  const { config, keys, allowlist, accept, log, metrics, routes = [] } = deps;
  // This handler's own cache of error bodies.
  const errorResponse = createErrorResponder();
  const now = deps.now ?? Date.now;
  const deadlines = deps.deadlines ?? createDeadlines();
  const budget = deps.bodyBudget ?? createBodyBudget();
  const acceptTimeoutMs = deps.acceptTimeoutMs ?? 8000;
  const trusted: Matcher | null = config.trustedProxies.length > 0
    ? createMatcher(config.trustedProxies)
    : null;

  function reject(
    status: number,
    reason: string,
    message: string,
    headers?: Record<string, string>,
    fields?: Record<string, unknown>,
  ): Response {
    metrics.inc("webhook_rejections_total", { reason });
    log.debug("webhook rejected", { status, reason, ...fields });
    return errorResponse(status, reason, message, headers);
  }

  /** The 400 for a missing or malformed required header, or null. */
  function headerProblem(name: string, value: string | null): Response | null {
    const state = checkHeader(value);
    if (state === "missing") {
      return reject(400, "missing_header", `The ${name} header is missing.`);
    }
    if (state === "bad") {
      return reject(
        400,
        "bad_header",
        `The ${name} header must be at most ${MAX_HEADER_LENGTH} characters with no control characters.`,
      );
    }
    return null;
  }

  async function webhook(request: Request, info: ServeInfo): Promise<Response> {
    if (request.method !== "POST") {
      return reject(405, "method_not_allowed", "Webhooks must be POSTed.", {
        allow: "POST",
      });
    }

    // 1. Who is asking (before a single body byte is read).
    if (allowlist !== null) {
      allowlist.maybeRefresh?.();
      const peer = "hostname" in info.remoteAddr
        ? info.remoteAddr.hostname ?? ""
        : "";
      const client = resolveClientIp(
        peer,
        request.headers.get("x-forwarded-for"),
        trusted,
      );
      if (client === null || !allowlist.isAllowed(client)) {
        if (client !== null && !allowlist.isReady()) {
          return reject(
            503,
            "not_ready",
            "GitHub's webhook IP ranges have not been loaded yet.",
            { "retry-after": "5" },
          );
        }
        return reject(
          403,
          "ip_not_allowed",
          "This address may not send webhooks here.",
          {},
          {
            peer,
          },
        );
      }
    }

    // 2. Headers.
    const headers = request.headers;
    const event = headers.get("x-github-event");
    const id = headers.get("x-github-delivery");
    const badHeader = headerProblem("X-GitHub-Event", event) ??
      headerProblem("X-GitHub-Delivery", id);
    if (badHeader !== null) return badHeader;
    const kind = bodyKind(headers.get("content-type"));
    if (kind === null) {
      return reject(
        415,
        "unsupported_media_type",
        "Content-Type must be application/json or application/x-www-form-urlencoded.",
      );
    }
    const encoding = headers.get("content-encoding");
    if (encoding !== null && encoding.trim().toLowerCase() !== "identity") {
      return reject(
        415,
        "unsupported_media_type",
        "Content-Encoding is not supported: GitHub never compresses webhook bodies.",
      );
    }

    // 3. The body, capped and on a deadline.
    const lengthHeader = headers.get("content-length");
    let expectedLength: number | undefined;
    if (lengthHeader !== null && /^[0-9]{1,15}$/.test(lengthHeader)) {
      expectedLength = Number(lengthHeader);
      if (expectedLength > config.maxBodyBytes) {
        return reject(
          413,
          "payload_too_large",
          `The body is larger than ${config.maxBodyBytes} bytes.`,
        );
      }
    }
    const read = await readRequestBody(request, {
      maxBytes: config.maxBodyBytes,
      timeoutMs: config.bodyTimeoutMs,
      expectedLength,
      deadlines,
      budget,
    });
    if (!read.ok) {
      if (read.reason === "too_large") {
        return reject(
          413,
          "payload_too_large",
          `The body is larger than ${config.maxBodyBytes} bytes.`,
        );
      }
      if (read.reason === "timeout") {
        return reject(
          408,
          "request_timeout",
          `The body was not received within ${config.bodyTimeoutMs} ms.`,
          { connection: "close" },
        );
      }
      // The client went away or the server is stopping: nothing stored.
      return reject(
        503,
        "unavailable",
        "The body could not be read; nothing was acknowledged. Redeliver it later.",
        { "retry-after": "5" },
      );
    }
    const body = read.bytes;

    // 4. Signature over the raw bytes.
    if (
      !(await verifySignature(keys, body, headers.get("x-hub-signature-256")))
    ) {
      return reject(
        401,
        "bad_signature",
        "X-Hub-Signature-256 is missing, malformed or does not match the body.",
      );
    }

    // 5. Payload: a JSON object (large bodies are checked without parsing).
    const inspected = inspectPayload(body, kind);
    if (!inspected.ok) return reject(400, "invalid_payload", inspected.message);

    // 6. Durable record.
    const stored: Record<string, string> = {};
    for (const name of STORED_HEADERS) {
      const value = headers.get(name);
      if (value !== null) stored[name] = value;
    }
    const targetType = headers.get("x-github-hook-installation-target-type");
    const targetId = headers.get("x-github-hook-installation-target-id");
    const delivery: IncomingDelivery = {
      id: id!,
      event: event!,
      action: inspected.action,
      hookId: headers.get("x-github-hook-id") ?? undefined,
      target: targetType !== null && targetId !== null
        ? { type: targetType, id: targetId }
        : undefined,
      headers: stored,
      body,
      kind,
      digest: await sha256Hex(body),
      receivedAt: now(),
      repository: inspected.repository,
      sender: inspected.sender,
      payload: inspected.payload,
    };
    let result;
    try {
      result = await withTimeout(accept(delivery), acceptTimeoutMs);
    } catch (err) {
      log.error("delivery could not be stored", {
        delivery: delivery.id,
        event: delivery.event,
        error: errorMessage(err),
      });
      return reject(
        503,
        "unavailable",
        "The delivery could not be stored; nothing was acknowledged. Redeliver it later.",
        { "retry-after": "5" },
      );
    }
    const outcome = result.status === "queued" ? "accepted" : "duplicate";
    metrics.inc("webhook_deliveries_total", { event: delivery.event, outcome });
    if (result.status === "queued") {
      return jsonResponse(202, { status: "queued", delivery: result.id });
    }
    log.info("duplicate delivery", {
      delivery: delivery.id,
      first: result.id,
      event: delivery.event,
      action: delivery.action,
    });
    return jsonResponse(200, { status: "duplicate", delivery: result.id });
  }

  return async function handle(
    request: Request,
    info: ServeInfo,
  ): Promise<Response> {
    let response: Response;
    try {
      const path = pathOf(request.url);
      if (path === config.webhookPath) {
        response = await webhook(request, info);
        metrics.inc("webhook_requests_total", {
          status: String(response.status),
        });
      } else if (path === "/healthz" && request.method === "GET") {
        response = healthResponse();
      } else if (path === "/readyz" && request.method === "GET") {
        response = await readyResponse(deps.readiness);
      } else if (path === "/metrics" && request.method === "GET") {
        response = metricsResponse(
          deps.renderMetrics ? deps.renderMetrics() : metrics.render(),
        );
      } else {
        const url = new URL(request.url);
        let routed: Response | null = null;
        for (const route of routes) {
          routed = await route(request, url);
          if (routed !== null) break;
        }
        response = routed ?? errorResponse(404, "not_found", "Nothing here.");
      }
    } catch (err) {
      log.error("request failed", {
        error: errorMessage(err),
      });
      response = errorResponse(500, "internal_error", "Something went wrong.");
    }
    return response;
  };
}
