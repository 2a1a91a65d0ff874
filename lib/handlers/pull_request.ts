/**
 * Handles some actions of the `pull_request` event, one exported function per
 * action (`opened`, `synchronize`, `closed`, `ready_for_review`). Actions
 * without a function here (say `labeled`) are `skipped`.
 *
 * @module
 */

import type { HandlerContext } from "../dispatch.ts";
import type { PullRequestEvent } from "./github_types.ts";

/**
 * Logs a newly opened pull request, draft or not.
 *
 * @example
 * ```ts
 * import { opened } from "./pull_request.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * opened(createContext({
 *   event: "pull_request",
 *   action: "opened",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     number: 2,
 *     pull_request: {
 *       title: "Add a README",
 *       draft: false,
 *       user: { login: "monalisa" },
 *       head: { ref: "readme", sha: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" },
 *       base: { ref: "main" },
 *     },
 *     repository: { full_name: "octo-org/hello-world" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function opened(ctx: HandlerContext<PullRequestEvent>): void {
  const { number, pull_request: pr, repository } = ctx.payload;
  ctx.log.info("pull request opened", {
    repository: repository?.full_name,
    number,
    title: pr?.title,
    author: pr?.user?.login,
    draft: pr?.draft ?? false,
    head: pr?.head?.ref,
    base: pr?.base?.ref,
    sha: pr?.head?.sha,
  });
}

/**
 * Logs new commits pushed to a pull request's branch: the place to start CI
 * for the head SHA.
 *
 * The work should stop when `ctx.signal` fires (timeout or shutdown): pass it
 * to `fetch`, or check `ctx.signal.throwIfAborted()` between steps.
 *
 * @example
 * ```ts
 * import { synchronize } from "./pull_request.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * synchronize(createContext({
 *   event: "pull_request",
 *   action: "synchronize",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     number: 2,
 *     before: "6dcb09b5b57875f334f61aebed695e2e4193db5e",
 *     after: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
 *     pull_request: { head: { sha: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" } },
 *     repository: { full_name: "octo-org/hello-world" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function synchronize(ctx: HandlerContext<PullRequestEvent>): void {
  const { number, before, after, pull_request: pr, repository } = ctx.payload;
  ctx.log.info("pull request updated", {
    repository: repository?.full_name,
    number,
    sha: pr?.head?.sha,
    before,
    after,
    attempt: ctx.attempt,
  });
  // Mark the commit as pending while CI runs, cancelled with the handler:
  //
  //   await fetch(`${pr.statuses_url}`, {
  //     method: "POST",
  //     headers: { authorization: `Bearer ${token}` },
  //     body: JSON.stringify({ state: "pending", context: "ci" }),
  //     signal: ctx.signal,
  //   });
  //
  // On a retry (`ctx.attempt > 1`) the status may already be set: posting
  // the same status again is harmless, which is what makes it safe here.
}

/**
 * Logs a closed pull request, telling merged from closed without merging.
 *
 * @example
 * ```ts
 * import { closed } from "./pull_request.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * closed(createContext({
 *   event: "pull_request",
 *   action: "closed",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     number: 2,
 *     pull_request: { merged: true, merge_commit_sha: "e5bd3914e2e596debea16f433f57875b5b90bcd6" },
 *     repository: { full_name: "octo-org/hello-world" },
 *     sender: { login: "monalisa" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function closed(ctx: HandlerContext<PullRequestEvent>): void {
  const { number, pull_request: pr, repository, sender } = ctx.payload;
  ctx.log.info(pr?.merged ? "pull request merged" : "pull request closed", {
    repository: repository?.full_name,
    number,
    merged: pr?.merged ?? false,
    merge_commit_sha: pr?.merged ? pr?.merge_commit_sha : undefined,
    by: sender?.login,
  });
}

/**
 * Logs a draft pull request marked ready for review. (The function is named
 * after the action, hence snake_case.)
 *
 * @example
 * ```ts
 * import { ready_for_review } from "./pull_request.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * ready_for_review(createContext({
 *   event: "pull_request",
 *   action: "ready_for_review",
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     number: 2,
 *     pull_request: { requested_reviewers: [{ login: "hubot" }] },
 *     repository: { full_name: "octo-org/hello-world" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export function ready_for_review(ctx: HandlerContext<PullRequestEvent>): void {
  const { number, pull_request: pr, repository } = ctx.payload;
  ctx.log.info("pull request ready for review", {
    repository: repository?.full_name,
    number,
    reviewers: (pr?.requested_reviewers ?? []).map((user) => user.login),
  });
}
