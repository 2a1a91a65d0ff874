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

/**
 * The branch a delivery is about, as the contract's script hooks and
 * `SERIALIZE_BY=branch` define it: `push` → `ref` without `refs/heads/`
 * (a tag push has none); a payload with `pull_request` → its base branch;
 * `create`/`delete` of a branch → `ref`. Undefined otherwise. The name is
 * returned as GitHub sent it: callers that make paths of it check it
 * ({@link safeBranch}).
 *
 * @example
 * ```ts
 * import { branchOf } from "./refs.ts";
 * branchOf("push", { ref: "refs/heads/feature/x" }); // "feature/x"
 * branchOf("push", { ref: "refs/tags/v1" }); // undefined
 * branchOf("pull_request", { pull_request: { base: { ref: "main" } } }); // "main"
 * ```
 */
export function branchOf(event: string, payload: unknown): string | undefined {
  const p = object(payload);
  let branch: unknown;
  if (event === "push") {
    const ref = p?.ref;
    branch = typeof ref === "string" && ref.startsWith("refs/heads/")
      ? ref.slice("refs/heads/".length)
      : undefined;
  } else if (object(p?.pull_request) !== undefined) {
    branch = object(object(p?.pull_request)?.base)?.ref;
  } else if (
    (event === "create" || event === "delete") && p?.ref_type === "branch"
  ) {
    branch = p?.ref;
  }
  return typeof branch === "string" && branch !== "" && branch.length <= 255
    ? branch
    : undefined;
}

/**
 * Whether a branch name is safe to make a path of: no `.` or `..` segment,
 * no empty segment, no control character, no backslash. Git refuses most
 * of these in ref names anyway; a payload is not trusted to.
 *
 * @example
 * ```ts
 * import { safeBranch } from "./refs.ts";
 * safeBranch("feature/x"); // true
 * safeBranch("../../etc"); // false
 * ```
 */
export function safeBranch(branch: string): boolean {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\\]/.test(branch)) return false;
  return branch.split("/").every((s) => s !== "" && s !== "." && s !== "..");
}

/**
 * The head commit a payload names, when it names one: `push` → `after`,
 * a pull request's head, a check suite's or run's `head_sha`, a workflow
 * run's, a deployment's `sha`, a status's `sha`.
 *
 * @example
 * ```ts
 * import { headShaOf } from "./refs.ts";
 * headShaOf("push", { after: "6dcb09b5b57875f334f61aebed695e2e4193db5e" }); // "6dcb09b5b57875f334f61aebed695e2e4193db5e"
 * ```
 */
export function headShaOf(event: string, payload: unknown): string | undefined {
  const p = object(payload);
  const candidates: unknown[] = [
    event === "push" ? p?.after : undefined,
    object(object(p?.pull_request)?.head)?.sha,
    object(p?.check_suite)?.head_sha,
    object(p?.check_run)?.head_sha,
    object(p?.workflow_run)?.head_sha,
    object(p?.workflow_job)?.head_sha,
    object(p?.deployment)?.sha,
    event === "status" ? p?.sha : undefined,
  ];
  const sha = candidates.find((c) =>
    typeof c === "string" && /^[0-9a-f]{40,64}$/.test(c)
  );
  return sha as string | undefined;
}

/** `payload.repository.name`, when it is a string. */
export function repositoryNameOf(payload: unknown): string | undefined {
  const name = object(object(payload)?.repository)?.name;
  return typeof name === "string" ? name : undefined;
}
