/**
 * The `*` handler: runs for every delivery, before the event's own handlers,
 * whatever the event. This one only logs at `debug` level (`LOG_LEVEL=debug`
 * to see it); use it for work that applies to everything, such as metrics or
 * an audit trail. Its presence does not make an event "handled": a delivery
 * with no handler of its own is still `skipped`.
 *
 * @module
 */

import type { HandlerContext } from "../dispatch.ts";

/**
 * Logs the event, action and delivery id of every delivery at `debug` level.
 *
 * @example
 * ```ts
 * import all from "./all.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * all(createContext({
 *   event: "star",
 *   action: "created",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {},
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export default function all(ctx: HandlerContext): void {
  ctx.log.debug("event received", {
    event: ctx.event,
    action: ctx.action,
    delivery: ctx.delivery,
    attempt: ctx.attempt,
  });
}
