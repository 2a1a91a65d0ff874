/**
 * The HTTP layer's front door: `createHandler(deps)` returns `(request,
 * info) => Response` for `Deno.serve`, `deno serve` and tests alike. It is
 * the route table — the webhook's path goes to the webhook pipeline
 * (`webhook.ts`), `/healthz`, `/readyz` and `/metrics` to the probes
 * (`probes.ts`), anything else to the extra routes in order, then 404 — and
 * the guard that turns a thrown error into a 500. It checks nothing itself.
 *
 * @module
 */

import { type BodyBudget, createBodyBudget } from "./body.ts";
import {
  healthResponse,
  metricsResponse,
  type Readiness,
  readyResponse,
} from "./probes.ts";
import { createErrorResponder } from "./responses.ts";
import { createTracer, type Tracer } from "../ops/tracing.ts";
import { type Allowlist, createWebhook, type ServeInfo } from "./webhook.ts";
import { createDeadlines, type Deadlines } from "../_util/deadline.ts";
import { errorMessage } from "../_util/errors.ts";
import { createMatcher } from "../security/cidr.ts";
import type { SigningKeys } from "../security/signature.ts";
import type { Config } from "../config/config.ts";
import type { AcceptDelivery } from "../store/types.ts";
import type { Logger } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";

export type { Allowlist, ServeInfo };

/** A sub-application mounted on the server (admin API, dashboard). */
export type Route = (
  request: Request,
  url: URL,
  info: ServeInfo,
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
  /** Spans of the accept path. @default Deno's, when `OTEL_DENO=true` */
  tracer?: Tracer;
  now?: () => number;
}

/**
 * The path of an absolute request URL, as it was sent (no normalisation):
 * cheaper than `new URL()` on the hot path.
 *
 * @example
 * ```ts
 * import { pathOf } from "./server.ts";
 * pathOf("http://127.0.0.1:8000/webhook?x=1"); // "/webhook"
 * ```
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
  const { config, log, metrics, routes = [] } = deps;
  // This handler's own cache of error bodies, shared with its webhook.
  const errorResponse = createErrorResponder();
  const webhook = createWebhook({
    config,
    keys: deps.keys,
    allowlist: deps.allowlist,
    trusted: config.trustedProxies.length > 0
      ? createMatcher(config.trustedProxies)
      : null,
    accept: deps.accept,
    acceptTimeoutMs: deps.acceptTimeoutMs ?? 8000,
    log,
    metrics,
    errorResponse,
    deadlines: deps.deadlines ?? createDeadlines(),
    budget: deps.bodyBudget ?? createBodyBudget(),
    tracer: deps.tracer ?? createTracer(),
    now: deps.now ?? Date.now,
  });

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
          routed = await route(request, url, info);
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
