/**
 * Hand-written TypeScript types for the GitHub webhook payloads hookgate
 * ships handlers for (`ping`, `push`, `issues`, `pull_request`) and the
 * GitHub App `installation` event, so editors
 * complete `ctx.payload.pull_request.head.sha` and friends.
 *
 * They cover the well-known fields of GitHub's webhook documentation, not
 * every field GitHub sends, and they are not checked at run time: a payload
 * is whatever GitHub posted. Fields that GitHub leaves out in some deliveries
 * are optional; fields it sends as `null` are typed `| null`, following
 * GitHub's own webhook definitions (its OpenAPI description, as packaged by
 * octokit/webhooks): an account that was deleted, for instance, can be
 * `null` where a `user` or `owner` is expected.
 *
 * @example
 * ```ts
 * import type { HandlerContext } from "../dispatch.ts";
 * import type { PullRequestEvent } from "./github_types.ts";
 *
 * export function synchronize(ctx: HandlerContext<PullRequestEvent>): void {
 *   ctx.log.info("new commits", { sha: ctx.payload.pull_request.head.sha });
 * }
 * ```
 *
 * @module
 */

/** A GitHub account as it appears in payloads: `sender`, `owner`, `user`, … */
export interface User {
  login: string;
  id: number;
  node_id: string;
  avatar_url: string;
  gravatar_id?: string | null;
  /** The REST API URL of the account. */
  url: string;
  /** The account's page on github.com. */
  html_url: string;
  /** `"User"`, `"Organization"` or `"Bot"`. */
  type: string;
  site_admin: boolean;
  /** Present on some payloads (e.g. `push`'s repository owner). */
  name?: string | null;
  email?: string | null;
}

/**
 * The app installation a delivery belongs to: present in the deliveries of a
 * GitHub App's webhook, absent from repository and organization hooks.
 * `ctx.github` mints the installation's token from `id`.
 */
export interface Installation {
  id: number;
  node_id?: string;
}

/** The organization of an organization-owned repository or hook. */
export interface Organization {
  login: string;
  id: number;
  node_id: string;
  url: string;
  repos_url?: string;
  hooks_url?: string;
  issues_url?: string;
  members_url?: string;
  avatar_url: string;
  description: string | null;
}

/** A repository's license, as GitHub detected it. */
export interface License {
  key: string;
  name: string;
  spdx_id: string | null;
  url: string | null;
  node_id: string;
}

/** A repository. */
export interface Repository {
  id: number;
  node_id: string;
  /** `"hello-world"`. */
  name: string;
  /** `"octo-org/hello-world"`. */
  full_name: string;
  private: boolean;
  owner: User | null;
  html_url: string;
  description: string | null;
  fork: boolean;
  url: string;
  /** An ISO 8601 string; a Unix timestamp (seconds) in `push` payloads. */
  created_at: string | number;
  updated_at: string;
  /** An ISO 8601 string; a Unix timestamp (seconds) in `push` payloads. */
  pushed_at: string | number | null;
  git_url: string;
  ssh_url: string;
  clone_url: string;
  homepage: string | null;
  size: number;
  stargazers_count: number;
  watchers_count: number;
  language: string | null;
  has_issues: boolean;
  has_projects: boolean;
  has_wiki: boolean;
  has_pages: boolean;
  has_discussions?: boolean;
  forks_count: number;
  archived: boolean;
  disabled: boolean;
  open_issues_count: number;
  license: License | null;
  topics?: string[];
  visibility?: "public" | "private" | "internal";
  default_branch: string;
  /** Only in `push` payloads: the default branch again. */
  master_branch?: string;
  /**
   * In `push` payloads of organization repositories: the organization's
   * login. Elsewhere, when present: the organization, or `null`.
   */
  organization?: string | Organization | null;
}

/** A label on an issue or pull request. */
export interface Label {
  id: number;
  node_id: string;
  url: string;
  name: string;
  /** Absent from some payloads (e.g. the labels of `issues.pinned`). */
  description?: string | null;
  /** Six hex digits, without `#`. */
  color: string;
  default: boolean;
}

/** A milestone on an issue or pull request. */
export interface Milestone {
  id: number;
  node_id: string;
  number: number;
  title: string;
  description: string | null;
  state: "open" | "closed";
  html_url: string;
  creator: User | null;
  open_issues: number;
  closed_issues: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  due_on: string | null;
}

/** How the author of an issue, pull request or comment relates to the repository. */
export type AuthorAssociation =
  | "COLLABORATOR"
  | "CONTRIBUTOR"
  | "FIRST_TIMER"
  | "FIRST_TIME_CONTRIBUTOR"
  | "MANNEQUIN"
  | "MEMBER"
  | "NONE"
  | "OWNER";

/** The `changes` object of an `edited` action: the previous values. */
export interface EditChanges {
  title?: { from: string };
  body?: { from: string | null };
}

// ---------------------------------------------------------------------------
// ping

/** The webhook configuration carried by a `ping`. */
export interface Hook {
  /** `"Repository"`, `"Organization"` or `"App"`. */
  type: string;
  id: number;
  /** Always `"web"`. */
  name: string;
  active: boolean;
  /** The events the hook is subscribed to, e.g. `["push", "issues"]` or `["*"]`. */
  events: string[];
  config: {
    content_type?: "json" | "form";
    /** `"0"` (verify TLS) or `"1"`; some payloads send the number. */
    insecure_ssl?: string | number;
    url?: string;
    /** Always masked (`"********"`) when present. */
    secret?: string;
  };
  updated_at: string;
  created_at: string;
  url?: string;
  test_url?: string;
  ping_url?: string;
  deliveries_url?: string;
  /** Set for GitHub App hooks. */
  app_id?: number;
}

/** `ping`: sent once when a webhook is created, and on demand. */
export interface PingEvent {
  /** A random GitHub zen saying. */
  zen: string;
  hook_id: number;
  hook: Hook;
  /** Present for repository hooks. */
  repository?: Repository;
  /** Present for organization hooks. */
  organization?: Organization;
  sender?: User;
  /** Present for GitHub App hooks delivered for an installation. */
  installation?: Installation;
}

// ---------------------------------------------------------------------------
// push

/** A name and email as recorded in a git commit. */
export interface GitActor {
  name: string;
  email: string | null;
  /** The GitHub login, when GitHub could match the email to an account. */
  username?: string;
  date?: string;
}

/** A commit in a `push` payload. */
export interface Commit {
  /** The commit SHA. */
  id: string;
  tree_id: string;
  /** Whether this commit is new to the repository (not only to this ref). */
  distinct: boolean;
  message: string;
  timestamp: string;
  url: string;
  author: GitActor;
  committer: GitActor;
  added: string[];
  removed: string[];
  modified: string[];
}

/** `push`: commits pushed to a branch, or a tag or branch created or deleted. */
export interface PushEvent {
  /** The full ref, e.g. `"refs/heads/main"` or `"refs/tags/v1.0.0"`. */
  ref: string;
  /** The SHA before the push; forty zeros when the ref was created. */
  before: string;
  /** The SHA after the push; forty zeros when the ref was deleted. */
  after: string;
  base_ref: string | null;
  created: boolean;
  deleted: boolean;
  forced: boolean;
  compare: string;
  /** Up to 2048 commits, oldest first. */
  commits: Commit[];
  head_commit: Commit | null;
  /** Who pushed (a git actor, not always a GitHub account). */
  pusher: GitActor;
  repository: Repository;
  sender: User;
  installation?: Installation;
  organization?: Organization;
}

// ---------------------------------------------------------------------------
// issues

/** An issue (pull requests are issues too: those carry `pull_request`). */
export interface Issue {
  id: number;
  node_id: string;
  url: string;
  html_url: string;
  repository_url: string;
  /** Where to `POST` a comment (`{ "body": "…" }`) with a token. */
  comments_url: string;
  labels_url: string;
  events_url: string;
  number: number;
  title: string;
  body: string | null;
  user: User | null;
  /** Absent from `pinned` / `unpinned` payloads. */
  labels?: Label[];
  /** Absent from `pinned` / `unpinned` payloads. */
  state?: "open" | "closed";
  state_reason?: "completed" | "not_planned" | "reopened" | "duplicate" | null;
  /** Absent from `pinned` / `unpinned` payloads. */
  locked?: boolean;
  /** Absent from `pinned` / `unpinned` payloads. */
  assignee?: User | null;
  assignees: User[];
  milestone: Milestone | null;
  comments: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  author_association: AuthorAssociation;
  /** Present when the issue is a pull request. */
  pull_request?: {
    url: string;
    html_url: string;
    diff_url: string;
    patch_url: string;
    merged_at?: string | null;
  };
}

/** The actions of the `issues` event. */
export type IssuesAction =
  | "assigned"
  | "closed"
  | "deleted"
  | "demilestoned"
  | "edited"
  | "field_added"
  | "field_removed"
  | "labeled"
  | "locked"
  | "milestoned"
  | "opened"
  | "pinned"
  | "reopened"
  | "transferred"
  | "typed"
  | "unassigned"
  | "unlabeled"
  | "unlocked"
  | "unpinned"
  | "untyped";

/** `issues`: an issue was opened, edited, closed, labeled, … */
export interface IssuesEvent {
  action: IssuesAction;
  issue: Issue;
  /** `edited`: the previous title and/or body. */
  changes?: EditChanges;
  /** `labeled` / `unlabeled`: the label added or removed. */
  label?: Label | null;
  /** `assigned` / `unassigned`: the account (un)assigned. */
  assignee?: User | null;
  /** `milestoned` / `demilestoned`: the milestone. */
  milestone?: Milestone;
  repository: Repository;
  sender: User;
  installation?: Installation;
  organization?: Organization;
}

// ---------------------------------------------------------------------------
// pull_request

/** One side of a pull request: `head` (the changes) or `base` (the target). */
export interface PullRequestRef {
  /** `"octo-org:feature"`. */
  label: string;
  /** The branch name, e.g. `"feature"`. */
  ref: string;
  /** The commit SHA the side points at. */
  sha: string;
  user: User | null;
  /** `null` when the head repository (a fork) was deleted. */
  repo: Repository | null;
}

/** A pull request. */
export interface PullRequest {
  id: number;
  node_id: string;
  url: string;
  html_url: string;
  diff_url: string;
  patch_url: string;
  issue_url: string;
  /** Where to `POST` a conversation comment with a token. */
  comments_url: string;
  /** Where to `POST` a commit status for the head SHA. */
  statuses_url: string;
  number: number;
  state: "open" | "closed";
  locked: boolean;
  title: string;
  body: string | null;
  user: User | null;
  labels: Label[];
  milestone: Milestone | null;
  draft?: boolean;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
  merge_commit_sha: string | null;
  assignee: User | null;
  assignees: User[];
  requested_reviewers: User[];
  head: PullRequestRef;
  base: PullRequestRef;
  author_association: AuthorAssociation;
  auto_merge: null | {
    enabled_by: User;
    merge_method: "merge" | "squash" | "rebase";
    commit_title: string | null;
    commit_message: string | null;
  };
  /** Whether it was merged; on a `closed` action, `false` means closed unmerged. */
  merged?: boolean;
  mergeable?: boolean | null;
  mergeable_state?: string;
  merged_by?: User | null;
  comments?: number;
  review_comments?: number;
  commits?: number;
  additions?: number;
  deletions?: number;
  changed_files?: number;
}

/** The actions of the `pull_request` event. */
export type PullRequestAction =
  | "assigned"
  | "auto_merge_disabled"
  | "auto_merge_enabled"
  | "closed"
  | "converted_to_draft"
  | "demilestoned"
  | "dequeued"
  | "edited"
  | "enqueued"
  | "labeled"
  | "locked"
  | "milestoned"
  | "opened"
  | "ready_for_review"
  | "reopened"
  | "review_request_removed"
  | "review_requested"
  | "stacked"
  | "synchronize"
  | "unassigned"
  | "unlabeled"
  | "unlocked";

/** `pull_request`: a pull request was opened, updated, closed, … */
export interface PullRequestEvent {
  action: PullRequestAction;
  /** The pull request number. */
  number: number;
  pull_request: PullRequest;
  /** `synchronize`: the head SHA before the push. */
  before?: string;
  /** `synchronize`: the head SHA after the push. */
  after?: string;
  /** `edited`: the previous title, body and/or base. */
  changes?: EditChanges & {
    base?: { ref: { from: string }; sha: { from: string } };
  };
  /** `labeled` / `unlabeled`: the label added or removed. */
  label?: Label | null;
  /** `assigned` / `unassigned`: the account (un)assigned. */
  assignee?: User | null;
  /** `review_requested` / `review_request_removed`: the reviewer. */
  requested_reviewer?: User;
  repository: Repository;
  sender: User;
  installation?: Installation;
  organization?: Organization;
}

// ---------------------------------------------------------------------------
// installation

/** An installation as the `installation` event describes it. */
export interface InstallationDetails extends Installation {
  /** The account the App is installed on. */
  account: User | null;
  app_id: number;
  app_slug?: string;
  /** `"User"` or `"Organization"`. */
  target_type: string;
  target_id: number;
  repository_selection: "all" | "selected";
  /** Permission name → `"read"`, `"write"` or `"admin"`. */
  permissions: Record<string, string>;
  /** The events the installation is subscribed to. */
  events: string[];
  html_url: string;
  access_tokens_url: string;
  repositories_url: string;
  created_at: string | number;
  updated_at: string | number;
  suspended_at: string | null;
  suspended_by: User | null;
}

/** A repository as the `installation` event lists it. */
export interface InstallationRepository {
  id: number;
  node_id: string;
  name: string;
  full_name: string;
  private: boolean;
}

/** The actions of the `installation` event. */
export type InstallationAction =
  | "created"
  | "deleted"
  | "new_permissions_accepted"
  | "suspend"
  | "unsuspend";

/**
 * `installation`: a GitHub App was installed, uninstalled, suspended,
 * unsuspended, or had new permissions accepted. Only App webhooks receive it.
 */
export interface InstallationEvent {
  action: InstallationAction;
  installation: InstallationDetails;
  /** The repositories the installation can reach, when GitHub lists them. */
  repositories?: InstallationRepository[];
  /** Who requested the installation, when someone did. */
  requester?: User | null;
  sender: User;
}

// ---------------------------------------------------------------------------

/**
 * Event name (`X-GitHub-Event`) → payload type, for the events typed here.
 *
 * @example
 * ```ts
 * import type { EventPayloads } from "./github_types.ts";
 * type Push = EventPayloads["push"]; // PushEvent
 * ```
 */
export interface EventPayloads {
  ping: PingEvent;
  push: PushEvent;
  issues: IssuesEvent;
  pull_request: PullRequestEvent;
  installation: InstallationEvent;
}

/** The event names typed in {@link EventPayloads}. */
export type TypedEventName = keyof EventPayloads;
