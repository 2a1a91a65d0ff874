/**
 * Handles some actions of the `issues` event, one exported function per
 * action: `export function opened` runs for `issues` deliveries whose
 * `payload.action` is `"opened"`. Actions without a function here (say
 * `labeled`) are `skipped`; add an `export default` to see every action.
 *
 * @module
 */

import type { HandlerContext } from "../dispatch.ts";
import type { IssuesEvent } from "./github_types.ts";

/**
 * Logs a newly opened issue.
 *
 * Work that talks to the network should pass `ctx.signal` along, so a
 * handler that runs past `HANDLER_TIMEOUT_MS` (or a server shutting down)
 * cancels it instead of leaving it running.
 *
 * @example
 * ```ts
 * import { opened } from "./issues.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * opened(createContext({
 *   event: "issues",
 *   action: "opened",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     issue: { number: 1, title: "Found a bug", user: { login: "monalisa" }, labels: [] },
 *     repository: { full_name: "octo-org/hello-world" },
 *     sender: { login: "monalisa" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function opened(ctx: HandlerContext<IssuesEvent>): void {
  const { issue, repository, sender } = ctx.payload;
  ctx.log.info("issue opened", {
    repository: repository?.full_name,
    number: issue?.number,
    title: issue?.title,
    author: issue?.user?.login,
    labels: (issue?.labels ?? []).map((label) => label.name),
    sender: sender?.login,
  });
  // To answer the issue, call GitHub's API with the handler's signal:
  //
  //   const res = await fetch(issue.comments_url, {
  //     method: "POST",
  //     headers: { authorization: `Bearer ${token}` },
  //     body: JSON.stringify({ body: "Thanks for the report!" }),
  //     signal: ctx.signal,
  //   });
  //   if (!res.ok) throw new Error(`GitHub answered ${res.status}`);
  //
  // Throwing marks the attempt failed; it is retried with backoff.
}

/**
 * Logs a closed issue and why it was closed.
 *
 * Deliveries are processed at least once: a retry (`ctx.attempt > 1`) may
 * follow an attempt that got halfway, so make side effects idempotent.
 *
 * @example
 * ```ts
 * import { closed } from "./issues.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * closed(createContext({
 *   event: "issues",
 *   action: "closed",
 *   delivery: "d1",
 *   attempt: 2,
 *   payload: {
 *     issue: { number: 1, state_reason: "completed" },
 *     repository: { full_name: "octo-org/hello-world" },
 *     sender: { login: "monalisa" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function closed(ctx: HandlerContext<IssuesEvent>): void {
  const { issue, repository, sender } = ctx.payload;
  if (ctx.attempt > 1) {
    ctx.log.warn("retrying issues.closed", { attempt: ctx.attempt });
  }
  ctx.log.info("issue closed", {
    repository: repository?.full_name,
    number: issue?.number,
    reason: issue?.state_reason ?? undefined,
    closed_by: sender?.login,
  });
}

/**
 * Logs a reopened issue.
 *
 * @example
 * ```ts
 * import { reopened } from "./issues.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * reopened(createContext({
 *   event: "issues",
 *   action: "reopened",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     issue: { number: 1 },
 *     repository: { full_name: "octo-org/hello-world" },
 *     sender: { login: "monalisa" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function reopened(ctx: HandlerContext<IssuesEvent>): void {
  const { issue, repository, sender } = ctx.payload;
  ctx.log.info("issue reopened", {
    repository: repository?.full_name,
    number: issue?.number,
    reopened_by: sender?.login,
  });
}
