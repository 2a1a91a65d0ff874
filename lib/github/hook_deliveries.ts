/**
 * A webhook's deliveries as GitHub records them, and which failed: where a
 * repository, organization or App hook lives in the REST API, the listing of
 * its recent delivery attempts (newest first, back to a cutoff), the
 * grouping of attempts into deliveries that never got a 2xx, and the
 * redelivery of one attempt. `reconcile.ts`, the pass behind both
 * `deno task redeliver` and the server's reconciliation, is built on it.
 *
 * It does not know what hookgate stored (the caller checks its KV), print,
 * pace redeliveries or authenticate: requests go through a `RestClient`
 * (`rest.ts`).
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import {
  GitHubApiError,
  type RequestOptions,
  type RestClient,
  type RestResponse,
} from "./rest.ts";

/** The webhook whose deliveries are listed. */
export type HookTarget =
  | { kind: "repo"; owner: string; repo: string; hookId: string }
  | { kind: "org"; org: string; hookId: string }
  | { kind: "app" };

/** One attempt from GitHub's list of a hook's deliveries. */
export interface DeliveryAttempt {
  /** The attempt's numeric id, used to redeliver. */
  id: number;
  /** The `X-GitHub-Delivery` value, shared by all attempts of a delivery. */
  guid: string;
  /** `delivered_at`, in epoch milliseconds. */
  deliveredAt: number;
  /** Whether GitHub marks it a redelivery. */
  redelivery: boolean;
  /** GitHub's words: `OK`, `Invalid HTTP Response: 503`, … */
  status: string;
  /** Our HTTP answer; 0 when there was none (a timeout). */
  statusCode: number;
  /** The event name (`?` when GitHub gave none). */
  event: string;
  /** The event's action, if any. */
  action: string | null;
}

/** A delivery none of whose attempts succeeded. */
export interface FailedDelivery {
  /** Its `X-GitHub-Delivery` value. */
  guid: string;
  /** The id of its latest attempt: the one to redeliver. */
  latestId: number;
  /** The event name of its latest attempt. */
  event: string;
  /** The action of its latest attempt. */
  action: string | null;
  /** When its first seen attempt was made (epoch ms). */
  firstAt: number;
  /** When its latest attempt was made (epoch ms). */
  lastAt: number;
  /** GitHub's status of the latest attempt. */
  lastStatus: string;
  /** How many of its attempts were seen. */
  attempts: number;
}

/** What {@link findFailed} found. */
export interface FailedReport {
  /** Attempts made at or after the cutoff. */
  examined: number;
  /** Distinct guids with an attempt at or after the cutoff. */
  deliveries: number;
  /** Failed deliveries, oldest first. */
  failed: FailedDelivery[];
}

/** Items GitHub is asked for per page of deliveries (its maximum). */
const PER_PAGE = 100;

/**
 * The REST path of a hook, under which `/deliveries` lists and
 * `/deliveries/{id}/attempts` redelivers.
 *
 * @example
 * ```ts
 * import { hookPath } from "./hook_deliveries.ts";
 * hookPath({ kind: "org", org: "octo-org", hookId: "7" }); // "/orgs/octo-org/hooks/7"
 * hookPath({ kind: "app" }); // "/app/hook"
 * ```
 */
export function hookPath(hook: HookTarget): string {
  const e = encodeURIComponent;
  switch (hook.kind) {
    case "repo":
      return `/repos/${e(hook.owner)}/${e(hook.repo)}/hooks/${e(hook.hookId)}`;
    case "org":
      return `/orgs/${e(hook.org)}/hooks/${e(hook.hookId)}`;
    case "app":
      return "/app/hook";
  }
}

/**
 * One item of GitHub's list of deliveries, or `null` when it lacks an id,
 * guid, `delivered_at` or `status_code`.
 *
 * @example
 * ```ts
 * import { parseDeliveryAttempt } from "./hook_deliveries.ts";
 * parseDeliveryAttempt({
 *   id: 1, guid: "g", delivered_at: "2025-06-02T10:00:00Z", status_code: 0, status: "timed out",
 * })?.statusCode; // 0
 * parseDeliveryAttempt({ id: 1, guid: "g" }); // null
 * ```
 */
export function parseDeliveryAttempt(item: unknown): DeliveryAttempt | null {
  if (item === null || typeof item !== "object") return null;
  const o = item as Record<string, unknown>;
  const deliveredAt = typeof o.delivered_at === "string"
    ? Date.parse(o.delivered_at)
    : NaN;
  if (
    !Number.isSafeInteger(o.id) || (o.id as number) < 1 ||
    typeof o.guid !== "string" || o.guid === "" ||
    typeof o.status_code !== "number" || Number.isNaN(deliveredAt)
  ) return null;
  return {
    id: o.id as number,
    guid: o.guid,
    deliveredAt,
    redelivery: o.redelivery === true,
    status: typeof o.status === "string" ? o.status : String(o.status_code),
    statusCode: o.status_code,
    event: typeof o.event === "string" ? o.event : "?",
    action: typeof o.action === "string" ? o.action : null,
  };
}

/**
 * Groups attempts by guid and returns the deliveries with an attempt at or
 * after `cutoff` of which no attempt got a 2xx answer (older attempts in
 * `attempts` still count as evidence of success).
 *
 * @example
 * ```ts
 * import { findFailed } from "./hook_deliveries.ts";
 * const at = Date.parse("2025-06-02T10:00:00Z");
 * const base = { redelivery: false, event: "push", action: null, deliveredAt: at };
 * findFailed([
 *   { ...base, id: 2, guid: "a", status: "OK", statusCode: 200 },
 *   { ...base, id: 1, guid: "a", status: "Invalid HTTP Response: 503", statusCode: 503 },
 *   { ...base, id: 3, guid: "b", status: "timed out", statusCode: 0 },
 * ], at).failed.map((d) => d.guid); // ["b"]
 * ```
 */
export function findFailed(
  attempts: readonly DeliveryAttempt[],
  cutoff: number,
): FailedReport {
  const groups = new Map<string, DeliveryAttempt[]>();
  let examined = 0;
  for (const attempt of attempts) {
    if (attempt.deliveredAt >= cutoff) examined++;
    const group = groups.get(attempt.guid);
    if (group) group.push(attempt);
    else groups.set(attempt.guid, [attempt]);
  }
  let deliveries = 0;
  const failed: FailedDelivery[] = [];
  for (const [guid, group] of groups) {
    if (!group.some((a) => a.deliveredAt >= cutoff)) continue;
    deliveries++;
    if (group.some((a) => a.statusCode >= 200 && a.statusCode < 300)) continue;
    failed.push(summarize(guid, group));
  }
  failed.sort((a, b) => a.firstAt - b.firstAt || a.latestId - b.latestId);
  return { examined, deliveries, failed };
}

/** A failed delivery from its attempts (at least one). */
function summarize(
  guid: string,
  group: readonly DeliveryAttempt[],
): FailedDelivery {
  let latest = group[0]!;
  let firstAt = latest.deliveredAt;
  for (const a of group) {
    if (
      a.deliveredAt > latest.deliveredAt ||
      (a.deliveredAt === latest.deliveredAt && a.id > latest.id)
    ) latest = a;
    firstAt = Math.min(firstAt, a.deliveredAt);
  }
  return {
    guid,
    latestId: latest.id,
    event: latest.event,
    action: latest.action,
    firstAt,
    lastAt: latest.deliveredAt,
    lastStatus: latest.status,
    attempts: group.length,
  };
}

/** Options of {@link listHookAttempts}. */
export interface ListAttemptsOptions extends RequestOptions {
  /** Paging stops at the first page that reaches back before this (epoch ms). */
  cutoff: number;
  /** Told of each page read (1 for the first), with its attempts. */
  onPage?: (page: number, attempts: readonly DeliveryAttempt[]) => void;
}

/**
 * Every attempt on the pages of the hook's deliveries that reach back to
 * `cutoff`, newest first. Rejects with a {@link GitHubApiError}: `status`
 * for an answer other than 200, `invalid` for a page that is not a list of
 * attempts, and whatever the client rejects with.
 *
 * @example
 * ```ts ignore
 * import { listHookAttempts } from "./hook_deliveries.ts";
 * import { createRestClient } from "./rest.ts";
 * const github = createRestClient({ token: Deno.env.get("GITHUB_TOKEN") });
 * const hook = { kind: "repo", owner: "octo", repo: "hello", hookId: "42" } as const;
 * const attempts = await listHookAttempts(github, hook, { cutoff: Date.now() - 86_400_000 });
 * ```
 */
export async function listHookAttempts(
  client: RestClient,
  hook: HookTarget,
  options: ListAttemptsOptions,
): Promise<DeliveryAttempt[]> {
  const { cutoff, onPage, signal } = options;
  const attempts: DeliveryAttempt[] = [];
  let page = 0;
  for await (
    const answer of client.pages(
      `GET ${hookPath(hook)}/deliveries`,
      { per_page: PER_PAGE },
      { signal },
    )
  ) {
    page++;
    if (answer.status !== 200) {
      const path = new URL(answer.url).pathname;
      throw GitHubApiError.fromAnswer(`GET ${path}`, answer);
    }
    const items = pageAttempts(answer, page);
    attempts.push(...items);
    onPage?.(page, items);
    if (items.length === 0 || items.some((a) => a.deliveredAt < cutoff)) {
      break;
    }
  }
  return attempts;
}

/** The attempts of one page, or an `invalid` error naming the page. */
function pageAttempts(answer: RestResponse, page: number): DeliveryAttempt[] {
  const { data } = answer;
  const where = `GitHub's list of deliveries (page ${page})`;
  if (!Array.isArray(data)) {
    // The client hands over text that is not JSON as text, an empty body as null.
    const notJson = typeof data === "string" || data === null
      ? jsonError(data ?? "")
      : null;
    throw new GitHubApiError(
      notJson === null
        ? `${where} is not an array`
        : `${where} is not JSON: ${notJson}`,
      { kind: "invalid", status: answer.status, data },
    );
  }
  return data.map((item, i) => {
    const attempt = parseDeliveryAttempt(item);
    if (attempt === null) {
      throw new GitHubApiError(
        `GitHub's list of deliveries (page ${page}, item ${
          i + 1
        }) lacks id, guid, delivered_at or status_code`,
        { kind: "invalid", status: answer.status },
      );
    }
    return attempt;
  });
}

/** Why `text` does not parse as JSON; `null` when it does. */
function jsonError(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (err) {
    return errorMessage(err);
  }
}

/**
 * Asks GitHub to redeliver attempt `attemptId` of the hook (GitHub answers
 * 202). Rejects with a {@link GitHubApiError} as the client does.
 *
 * @example
 * ```ts ignore
 * import { redeliverAttempt } from "./hook_deliveries.ts";
 * import { createRestClient } from "./rest.ts";
 * const github = createRestClient({ token: Deno.env.get("GITHUB_TOKEN") });
 * await redeliverAttempt(github, { kind: "app" }, 12345);
 * ```
 */
export function redeliverAttempt(
  client: RestClient,
  hook: HookTarget,
  attemptId: number,
  options: RequestOptions = {},
): Promise<RestResponse> {
  return client.request(
    `POST ${hookPath(hook)}/deliveries/{attempt_id}/attempts`,
    { attempt_id: attemptId },
    options,
  );
}
