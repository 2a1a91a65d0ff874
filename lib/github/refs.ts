/**
 * What a handler's context reads from a payload to call GitHub back:
 * `ctx.repo()`, `ctx.issue()`, `ctx.pullRequest()` and `ctx.isBot` (as in
 * Probot), and the installation whose token `ctx.github` uses. Pure
 * functions of the payload; a payload without what a helper needs makes it
 * throw, naming what is missing (a handler asking for an issue number on a
 * `push`).
 *
 * @module
 */

/** `{ owner, repo }` with the caller's extra parameters. */
export type RepoParams<E = Record<never, never>> =
  & { owner: string; repo: string }
  & E;

function object(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null
    ? value as Record<string, unknown>
    : undefined;
}

/**
 * `{ owner, repo, ...extra }` from `payload.repository`.
 *
 * @example
 * ```ts
 * import { repoParams } from "./refs.ts";
 * const payload = { repository: { name: "hello", owner: { login: "octo" } } };
 * repoParams(payload, { ref: "main" }); // { owner: "octo", repo: "hello", ref: "main" }
 * ```
 */
export function repoParams<E extends object>(
  payload: unknown,
  extra?: E,
): RepoParams<E> {
  const repository = object(object(payload)?.repository);
  const owner = object(repository?.owner)?.login;
  const name = repository?.name;
  if (typeof owner !== "string" || typeof name !== "string") {
    throw new TypeError("ctx.repo(): this payload has no repository");
  }
  return { owner, repo: name, ...extra } as RepoParams<E>;
}

/** The issue or pull request number of a payload, if it has one. */
function numberOf(payload: unknown): number | undefined {
  const p = object(payload);
  for (
    const n of [
      object(p?.issue)?.number,
      object(p?.pull_request)?.number,
      p?.number,
    ]
  ) {
    if (typeof n === "number") return n;
  }
  return undefined;
}

/**
 * `ctx.repo()` with `issue_number` (from `payload.issue`,
 * `payload.pull_request` or `payload.number`).
 *
 * @example
 * ```ts
 * import { issueParams } from "./refs.ts";
 * const payload = { issue: { number: 7 }, repository: { name: "r", owner: { login: "o" } } };
 * issueParams(payload, { body: "hi" }); // { owner: "o", repo: "r", issue_number: 7, body: "hi" }
 * ```
 */
export function issueParams<E extends object>(
  payload: unknown,
  extra?: E,
): RepoParams<{ issue_number: number } & E> {
  const n = numberOf(payload);
  if (n === undefined) {
    throw new TypeError("ctx.issue(): this payload has no issue number");
  }
  return repoParams(payload, { issue_number: n, ...extra }) as RepoParams<
    { issue_number: number } & E
  >;
}

/**
 * `ctx.repo()` with `pull_number`.
 *
 * @example
 * ```ts
 * import { pullRequestParams } from "./refs.ts";
 * const payload = { number: 3, pull_request: { number: 3 }, repository: { name: "r", owner: { login: "o" } } };
 * pullRequestParams(payload).pull_number; // 3
 * ```
 */
export function pullRequestParams<E extends object>(
  payload: unknown,
  extra?: E,
): RepoParams<{ pull_number: number } & E> {
  const n = numberOf(payload);
  if (n === undefined) {
    throw new TypeError(
      "ctx.pullRequest(): this payload has no pull request number",
    );
  }
  return repoParams(payload, { pull_number: n, ...extra }) as RepoParams<
    { pull_number: number } & E
  >;
}

/**
 * Whether the payload's sender is a bot (`sender.type === "Bot"`).
 *
 * @example
 * ```ts
 * import { isBotSender } from "./refs.ts";
 * isBotSender({ sender: { type: "Bot" } }); // true
 * ```
 */
export function isBotSender(payload: unknown): boolean {
  return object(object(payload)?.sender)?.type === "Bot";
}

/**
 * `payload.installation.id`, when it is an integer.
 *
 * @example
 * ```ts
 * import { installationOf } from "./refs.ts";
 * installationOf({ installation: { id: 42 } }); // 42
 * installationOf({}); // undefined
 * ```
 */
export function installationOf(payload: unknown): number | undefined {
  const id = object(object(payload)?.installation)?.id;
  return typeof id === "number" && Number.isSafeInteger(id) ? id : undefined;
}

/**
 * The installation whose token must be dropped after this delivery: an
 * `installation` event that deleted or suspended it.
 *
 * @example
 * ```ts
 * import { goneInstallation } from "./refs.ts";
 * goneInstallation("installation", "deleted", { installation: { id: 9 } }); // 9
 * goneInstallation("installation", "created", { installation: { id: 9 } }); // undefined
 * ```
 */
export function goneInstallation(
  event: string,
  action: string | undefined,
  payload: unknown,
): number | undefined {
  if (event !== "installation") return undefined;
  if (action !== "deleted" && action !== "suspend") return undefined;
  return installationOf(payload);
}
