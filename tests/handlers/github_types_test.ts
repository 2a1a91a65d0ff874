// The payload types accept what GitHub's own webhook definitions allow, and
// the shipped handlers cope with it. Most checks here are compile-time: the
// file stops type-checking (`deno check`, `deno test`) if a type is too
// narrow again.

import assert from "node:assert/strict";
import { createContext, type HandlerContext } from "../../lib/dispatch.ts";
import type {
  EventPayloads,
  Hook,
  InstallationEvent,
  IssuesEvent,
  Label,
  PullRequestEvent,
  Repository,
} from "../../lib/handlers/github_types.ts";
import * as issues from "../../lib/handlers/issues.ts";
import * as pullRequest from "../../lib/handlers/pull_request.ts";
import { captureLogger } from "../_helpers.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url);

async function example<T>(event: string): Promise<T> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`${event}.json`, EXAMPLES)),
  );
}

function context<P>(
  event: string,
  payload: P,
  log: HandlerContext<P>["log"],
): HandlerContext<P> {
  return createContext({
    event,
    action: (payload as { action?: string }).action,
    delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    attempt: 1,
    payload,
    log,
    signal: new AbortController().signal,
  });
}

Deno.test("github_types: an issues.pinned issue without state, locked, labels or assignee type-checks", async () => {
  const payload = await example<IssuesEvent>("issues");
  const {
    state: _state,
    locked: _locked,
    labels: _labels,
    assignee: _assignee,
    ...pinnedIssue
  } = payload.issue;
  const pinned: IssuesEvent = {
    ...payload,
    action: "pinned",
    issue: pinnedIssue,
  };
  assert.equal(pinned.issue.state, undefined);
  const unpinned: IssuesEvent = { ...pinned, action: "unpinned" };
  assert.equal(unpinned.issue.labels, undefined);
});

Deno.test("github_types: the actions GitHub added are part of the unions", () => {
  const issueActions: IssuesEvent["action"][] = [
    "field_added",
    "field_removed",
  ];
  const prActions: PullRequestEvent["action"][] = ["stacked"];
  assert.equal(issueActions.length + prActions.length, 3);
});

Deno.test("github_types: nullable and optional fields as GitHub defines them", () => {
  const label: Label = {
    id: 1,
    node_id: "LA_1",
    url: "https://api.github.com/repos/o/r/labels/bug",
    name: "bug",
    color: "d73a4a",
    default: true,
  };
  const config: Hook["config"][] = [{ insecure_ssl: "0" }, { insecure_ssl: 0 }];
  const owner: Repository["owner"] = null;
  const organizations: Repository["organization"][] = [
    "octo-org",
    null,
    undefined,
  ];
  const eventLabel: IssuesEvent["label"] = null;
  assert.equal(label.description, undefined);
  assert.equal(config.length, 2);
  assert.equal(owner, null);
  assert.equal(organizations.length, 3);
  assert.equal(eventLabel, null);
});

Deno.test("github_types: the installation event and the installation field of App deliveries", async () => {
  const event: EventPayloads["installation"] = {
    action: "suspend",
    installation: {
      id: 12345678,
      node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMTIzNDU2Nzg=",
      account: null,
      app_id: 123456,
      target_type: "Organization",
      target_id: 9919,
      repository_selection: "selected",
      permissions: { issues: "write", checks: "write", metadata: "read" },
      events: ["issues", "pull_request"],
      html_url:
        "https://github.com/organizations/octo-org/settings/installations/12345678",
      access_tokens_url:
        "https://api.github.com/app/installations/12345678/access_tokens",
      repositories_url: "https://api.github.com/installation/repositories",
      created_at: "2024-01-01T00:00:00Z",
      updated_at: "2024-01-02T00:00:00Z",
      suspended_at: "2024-01-03T00:00:00Z",
      suspended_by: null,
    },
    sender: (await example<IssuesEvent>("issues")).sender,
  };
  const actions: InstallationEvent["action"][] = [
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
  ];
  assert.equal(event.installation.id, 12345678);
  assert.equal(actions.length, 5);

  const installation = { id: 12345678 };
  const issuesPayload: IssuesEvent = {
    ...(await example<IssuesEvent>("issues")),
    installation,
  };
  const prPayload: PullRequestEvent = {
    ...(await example<PullRequestEvent>("pull_request")),
    installation,
  };
  const ping: EventPayloads["ping"] = {
    ...(await example<EventPayloads["ping"]>("ping")),
    installation,
  };
  const push: EventPayloads["push"] = {
    ...(await example<EventPayloads["push"]>("push")),
    installation,
  };
  for (const payload of [issuesPayload, prPayload, ping, push]) {
    assert.equal(payload.installation?.id, 12345678);
  }
});

Deno.test("the shipped handlers log a deleted author (user: null) and a pinned issue without labels", async () => {
  const issuePayload = await example<IssuesEvent>("issues");
  const { labels: _labels, ...issue } = issuePayload.issue;
  const { log, lines } = captureLogger();
  await issues.opened(
    context(
      "issues",
      { ...issuePayload, issue: { ...issue, user: null } },
      log,
    ),
  );
  assert.equal(lines[0]!.msg, "issue opened");
  assert.equal(lines[0]!.author, undefined);
  assert.deepEqual(lines[0]!.labels, []);

  const prPayload = await example<PullRequestEvent>("pull_request");
  const pr = captureLogger();
  await pullRequest.opened(
    context("pull_request", {
      ...prPayload,
      pull_request: { ...prPayload.pull_request, user: null },
    }, pr.log),
  );
  assert.equal(pr.lines[0]!.msg, "pull request opened");
  assert.equal(pr.lines[0]!.author, undefined);
});
