/**
 * The static handler registry: event name → handler module, plus `"*"` for
 * a handler that sees every event. The dispatcher looks deliveries up here;
 * nothing is discovered at run time, so `deno check` sees every handler and
 * Deno Deploy needs no file-system access.
 *
 * To handle another event:
 *
 * 1. Create `lib/handlers/<event>.ts`, named after the `X-GitHub-Event`
 *    value (`issue_comment.ts`, `workflow_run.ts`, …).
 * 2. In it, `export default function (ctx) {…}` to see every action of the
 *    event, and/or `export function created(ctx) {…}` to see one action
 *    (`payload.action === "created"`). Both run when both exist.
 * 3. Import it below and add it to {@link HANDLERS} under the event name.
 *
 * Try it with `deno task send <event>` (see `examples/`).
 *
 * @module
 */

import type { HandlerRegistry } from "../dispatch.ts";
import * as all from "./all.ts";
import * as issues from "./issues.ts";
import * as ping from "./ping.ts";
import * as pullRequest from "./pull_request.ts";
import * as push from "./push.ts";

/**
 * Every handler module, keyed by GitHub event name (`"*"`: every event).
 *
 * @example
 * ```ts
 * import { HANDLERS } from "./mod.ts";
 * Object.keys(HANDLERS); // ["*", "ping", "push", "issues", "pull_request"]
 * ```
 */
export const HANDLERS: HandlerRegistry = {
  "*": all,
  ping,
  push,
  issues,
  pull_request: pullRequest,
};
