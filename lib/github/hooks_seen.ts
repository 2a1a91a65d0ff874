/**
 * The webhooks hookgate has received from, remembered in KV for
 * reconciliation (`reconcile.ts`): from a delivery's `X-GitHub-Hook-ID` and
 * `X-GitHub-Hook-Installation-Target-Type`/`-ID`, with the repository
 * (`owner/name`), organization login or nothing (an App's hook) that says
 * where the hook lives in GitHub's REST API, and the installation the
 * delivery came from.
 *
 * Writing costs the accept path nothing measurable: a hook is written once
 * per process (and again a day later), as a plain `set` outside the
 * delivery's commit, not awaited. It does not list deliveries, authenticate
 * or decide what to redeliver.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import type { Logger } from "../ops/log.ts";
import { hookKeys } from "../store/keys.ts";
import type { IncomingDelivery } from "../store/types.ts";
import type { HookTarget } from "./hook_deliveries.ts";
import { installationOf } from "./refs.ts";

/** `X-GitHub-Hook-Installation-Target-Type` values hookgate can reconcile. */
export type HookType = "repository" | "organization" | "integration";

/** What is remembered of one webhook. */
export interface SeenHook {
  /** `X-GitHub-Hook-ID`. */
  hookId: string;
  /** Where the hook lives: a repository, an organization, or an App. */
  type: HookType;
  /** `X-GitHub-Hook-Installation-Target-ID` (repository, org or App id). */
  targetId: string;
  /** A repository hook's `owner/name` (`payload.repository.full_name`). */
  repository?: string;
  /** An organization hook's login (`payload.organization.login`). */
  org?: string;
  /** `payload.installation.id`, when the delivery carried one. */
  installation?: number;
  /** When a process last wrote it (epoch ms). */
  lastSeen: number;
}

/** The part of a delivery a hook is read from. */
export type HookSource = Pick<
  IncomingDelivery,
  "hookId" | "target" | "repository" | "payload"
>;

const HOOK_ID = /^[1-9][0-9]{0,19}$/;
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO_NAME = /^[A-Za-z0-9._-]{1,100}$/;
const TYPES: readonly string[] = ["repository", "organization", "integration"];
const DAY_MS = 86_400_000;
/** How long a hook no process has written stays remembered. */
const KEEP_MS = 30 * DAY_MS;

/** `owner/name` split, or `null` when it is not a repository's full name. */
function splitRepository(
  fullName: string | undefined,
): { owner: string; repo: string } | null {
  const [owner = "", repo = "", ...rest] = (fullName ?? "").split("/");
  if (rest.length > 0 || !LOGIN.test(owner) || !REPO_NAME.test(repo)) {
    return null;
  }
  if (repo === "." || repo === "..") return null;
  return { owner, repo };
}

/** `payload.organization.login`, if the payload has it. */
function orgLoginOf(payload: Record<string, unknown> | undefined) {
  const org = payload?.organization;
  const login = typeof org === "object" && org !== null
    ? (org as Record<string, unknown>).login
    : undefined;
  return typeof login === "string" && LOGIN.test(login) ? login : undefined;
}

/**
 * What to remember of the hook a delivery came from; `null` when it names
 * no hook, a target type hookgate cannot reconcile (`business`,
 * `marketplace::listing`…), or a repository or organization hook whose
 * repository or organization the delivery does not say. An organization's
 * login comes from the payload, else from the repository's owner.
 *
 * @example
 * ```ts
 * import { seenHookOf } from "./hooks_seen.ts";
 * seenHookOf({
 *   hookId: "42",
 *   target: { type: "repository", id: "1296269" },
 *   repository: "octo/hello",
 *   payload: { installation: { id: 7 } },
 * }, 0)?.repository; // "octo/hello"
 * seenHookOf({ hookId: undefined, target: undefined, repository: undefined }, 0); // null
 * ```
 */
export function seenHookOf(
  delivery: HookSource,
  now: number,
): SeenHook | null {
  const { hookId, target, payload } = delivery;
  if (hookId === undefined || !HOOK_ID.test(hookId)) return null;
  if (target === undefined || !TYPES.includes(target.type)) return null;
  const type = target.type as HookType;
  const hook: SeenHook = { hookId, type, targetId: target.id, lastSeen: now };
  const repo = splitRepository(delivery.repository);
  if (type === "repository") {
    if (repo === null) return null;
    hook.repository = `${repo.owner}/${repo.repo}`;
  } else if (type === "organization") {
    const org = orgLoginOf(payload) ?? repo?.owner;
    if (org === undefined) return null;
    hook.org = org;
  }
  const installation = installationOf(payload);
  if (installation !== undefined) hook.installation = installation;
  return hook;
}

/**
 * Where a remembered hook lives in the REST API; `null` for a record that
 * does not say (written by another version, say).
 *
 * @example
 * ```ts
 * import { hookTargetOf } from "./hooks_seen.ts";
 * hookTargetOf({ hookId: "42", type: "repository", targetId: "1", repository: "octo/hello", lastSeen: 0 });
 * // { kind: "repo", owner: "octo", repo: "hello", hookId: "42" }
 * hookTargetOf({ hookId: "9", type: "integration", targetId: "777", lastSeen: 0 }); // { kind: "app" }
 * ```
 */
export function hookTargetOf(hook: SeenHook): HookTarget | null {
  if (!HOOK_ID.test(hook.hookId)) return null;
  switch (hook.type) {
    case "repository": {
      const repo = splitRepository(hook.repository);
      return repo && { kind: "repo", ...repo, hookId: hook.hookId };
    }
    case "organization":
      return typeof hook.org === "string" && LOGIN.test(hook.org)
        ? { kind: "org", org: hook.org, hookId: hook.hookId }
        : null;
    case "integration":
      return { kind: "app" };
    default:
      return null;
  }
}

/** Options of {@link createHookMemory}. */
export interface HookMemoryOptions {
  kv: Deno.Kv;
  /** Told when a write fails (never slows a delivery). @default silent */
  log?: Pick<Logger, "warn">;
  /** @default Date.now */
  now?: () => number;
  /** A hook this process wrote is written again after this long. @default 86400000 */
  rewriteMs?: number;
  /** Told when this process writes a hook for the first time (after the write). @default none */
  onNew?: (hook: SeenHook) => void;
}

/** The hooks hookgate has received from. */
export interface HookMemory {
  /** Remembers the delivery's hook unless this process already did: never awaits, never throws. */
  seen(delivery: HookSource): void;
  /** Every remembered hook, by hook id. */
  list(): Promise<SeenHook[]>;
  /** Resolves when the writes started so far are done. */
  idle(): Promise<void>;
}

/**
 * Makes the hook memory of one app: an in-memory map of the hooks this
 * process wrote (and when), and their records in KV.
 *
 * @example
 * ```ts
 * import { createHookMemory } from "./hooks_seen.ts";
 * const kv = await Deno.openKv(":memory:");
 * const hooks = createHookMemory({ kv });
 * hooks.seen({ hookId: "9", target: { type: "integration", id: "777" }, repository: undefined });
 * await hooks.idle();
 * (await hooks.list()).length; // 1
 * kv.close();
 * ```
 */
export function createHookMemory(options: HookMemoryOptions): HookMemory {
  const { kv, log, onNew, now = Date.now, rewriteMs = DAY_MS } = options;
  const written = new Map<string, number>();
  const pending = new Set<Promise<void>>();
  return {
    seen(delivery) {
      const at = now();
      const key = `${delivery.hookId}\u0000${delivery.target?.type}`;
      const last = written.get(key);
      if (last !== undefined && at - last < rewriteMs) return;
      const hook = seenHookOf(delivery, at);
      if (hook === null) return;
      written.set(key, at);
      const write: Promise<void> = kv.set(hookKeys.hook(hook.hookId), hook, {
        expireIn: KEEP_MS,
      }).then(() => {
        if (last === undefined) onNew?.(hook);
      }, (err) => {
        written.delete(key);
        log?.warn("the webhook could not be remembered for reconciliation", {
          hook: hook.hookId,
          error: errorMessage(err),
        });
      }).finally(() => pending.delete(write));
      pending.add(write);
    },
    async list() {
      const hooks: SeenHook[] = [];
      for await (
        const entry of kv.list<SeenHook>({ prefix: hookKeys.hooks() })
      ) {
        const hook = entry.value;
        if (
          hook && typeof hook === "object" && typeof hook.hookId === "string"
        ) {
          hooks.push(hook);
        }
      }
      return hooks;
    },
    async idle() {
      await Promise.allSettled([...pending]);
    },
  };
}
