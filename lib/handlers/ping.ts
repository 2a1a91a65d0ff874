/**
 * Handles `ping`, the event GitHub sends once when a webhook is created (and
 * whenever someone presses "Redeliver" on it). It only logs the hook id and
 * GitHub's zen saying: a ping asks for nothing but a 2xx.
 *
 * A handler module knows nothing of HTTP: by the time it runs, the delivery
 * was verified, stored and acknowledged. It gets a {@link HandlerContext}.
 *
 * @module
 */

import type { HandlerContext } from "../dispatch.ts";
import type { PingEvent } from "./github_types.ts";

/**
 * Logs the hook id and zen of a `ping` (the `default` export sees every
 * `ping`; the event has no actions).
 *
 * @example
 * ```ts
 * import ping from "./ping.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * ping(createContext({
 *   event: "ping",
 *   action: undefined,
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     zen: "Keep it logically awesome.",
 *     hook_id: 1,
 *     hook: { id: 1, type: "Repository", events: ["*"] },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export default function ping(ctx: HandlerContext<PingEvent>): void {
  const { hook_id, hook, zen, repository } = ctx.payload;
  // Payload strings go in fields, never in the message: messages stay fixed
  // (easy to grep), and the logger escapes control characters in fields, so
  // a payload cannot forge a log line. Never log the whole payload.
  ctx.log.info("ping received", {
    hook_id,
    hook_type: hook?.type,
    events: hook?.events,
    zen,
    repository: repository?.full_name,
  });
}
