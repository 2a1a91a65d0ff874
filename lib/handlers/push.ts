/**
 * Handles `push`: commits pushed to a branch, or a branch or tag created or
 * deleted. This example only logs what was pushed; replace the body with
 * your own work (start a build, update a mirror, …).
 *
 * @module
 */

import type { HandlerContext } from "../dispatch.ts";
import type { PushEvent } from "./github_types.ts";

/**
 * Logs the ref, commit count, pusher and repository of every `push` (a
 * `default` export sees every delivery of its event).
 *
 * @example
 * ```ts
 * import push from "./push.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * import { createContext } from "../dispatch.ts";
 * push(createContext({
 *   event: "push",
 *   action: undefined,
 *   delivery: "d1",
 *   attempt: 1,
 *   payload: {
 *     ref: "refs/heads/main",
 *     commits: [],
 *     pusher: { name: "monalisa", email: null },
 *     repository: { full_name: "octo-org/hello-world" },
 *   } as never,
 *   log: NULL_LOGGER,
 *   signal: new AbortController().signal,
 * }));
 * ```
 */
export default function push(ctx: HandlerContext<PushEvent>): void {
  const {
    ref,
    before,
    after,
    created,
    deleted,
    forced,
    commits,
    pusher,
    repository,
  } = ctx.payload;
  ctx.log.info("push received", {
    repository: repository?.full_name,
    ref,
    // GitHub lists at most 2048 commits; `before`/`after` bound the range.
    commits: commits?.length ?? 0,
    pusher: pusher?.name,
    created,
    deleted,
    forced,
    before,
    after,
  });
  if (typeof ref === "string" && ref.startsWith("refs/heads/") && !deleted) {
    const branch = ref.slice("refs/heads/".length);
    // A real handler would start work here, for example:
    //   if (branch === repository.default_branch) await deploy(after, ctx.signal);
    ctx.log.debug("branch updated", {
      branch,
      head: ctx.payload.head_commit?.id,
    });
  }
}
