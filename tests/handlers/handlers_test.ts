import assert from "node:assert/strict";
import {
  createContext,
  type HandlerContext,
  routeDelivery,
  runHandlers,
} from "../../lib/dispatch.ts";
import type { Logger } from "../../lib/ops/log.ts";
import { captureLogger } from "../_helpers.ts";
import all from "../../lib/handlers/all.ts";
import * as issues from "../../lib/handlers/issues.ts";
import { HANDLERS } from "../../lib/handlers/mod.ts";
import ping from "../../lib/handlers/ping.ts";
import * as pullRequest from "../../lib/handlers/pull_request.ts";
import push from "../../lib/handlers/push.ts";
import type {
  IssuesEvent,
  PingEvent,
  PullRequestEvent,
  PushEvent,
} from "../../lib/handlers/github_types.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url);

/** Every `examples/*.json` file, by event name. */
async function exampleNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(EXAMPLES)) {
    if (entry.isFile && entry.name.endsWith(".json")) {
      names.push(entry.name.slice(0, -".json".length));
    }
  }
  return names.sort();
}

async function example<T>(event: string): Promise<T> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`${event}.json`, EXAMPLES)),
  );
}

const capture = captureLogger;

function context<P>(
  event: string,
  payload: P,
  log: Logger,
  overrides: Partial<HandlerContext<P>> = {},
): HandlerContext<P> {
  const action = (payload as { action?: unknown }).action;
  return {
    ...createContext({
      event,
      action: typeof action === "string" ? action : undefined,
      delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      attempt: 1,
      payload,
      log,
      signal: new AbortController().signal,
    }),
    ...overrides,
  };
}

Deno.test("examples/*.json are JSON objects with the shapes GitHub sends", async (t) => {
  const names = await exampleNames();
  assert.deepEqual(names, [
    "check_suite",
    "issue_comment",
    "issues",
    "ping",
    "pull_request",
    "push",
    "release",
    "star",
    "workflow_run",
  ]);
  const actions: Record<string, string> = {
    issues: "opened",
    pull_request: "opened",
    issue_comment: "created",
    release: "published",
    workflow_run: "completed",
    check_suite: "completed",
    star: "created",
  };
  for (const name of names) {
    await t.step(name, async () => {
      const payload = await example<Record<string, unknown>>(name);
      assert.equal(typeof payload, "object");
      assert.ok(!Array.isArray(payload));
      assert.equal(payload.action, actions[name]);
      const repository = payload.repository as {
        full_name: string;
        id: number;
      };
      assert.equal(repository.full_name, "octo-org/hello-world");
      assert.equal(typeof repository.id, "number");
      const sender = payload.sender as { login: string };
      assert.equal(typeof sender.login, "string");
    });
  }
});

Deno.test("ping handler logs the hook id and zen", async () => {
  const payload = await example<PingEvent>("ping");
  const { log, lines } = capture();
  await ping(context("ping", payload, log));
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, "info");
  assert.equal(lines[0]!.msg, "ping received");
  assert.equal(lines[0]!.hook_id, 512345678);
  assert.equal(lines[0]!.zen, "Design for failure.");
  assert.equal(lines[0]!.repository, "octo-org/hello-world");
});

Deno.test("push handler logs the ref, commit count, pusher and repository", async () => {
  const payload = await example<PushEvent>("push");
  const { log, lines } = capture("info");
  await push(context("push", payload, log));
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.msg, "push received");
  assert.equal(lines[0]!.ref, "refs/heads/main");
  assert.equal(lines[0]!.commits, 2);
  assert.equal(lines[0]!.pusher, "monalisa");
  assert.equal(lines[0]!.repository, "octo-org/hello-world");
  assert.equal(lines[0]!.after, payload.commits[1]!.id);
});

Deno.test("issues handlers log per action", async (t) => {
  const payload = await example<IssuesEvent>("issues");

  await t.step("opened logs number, title and author", async () => {
    const { log, lines } = capture();
    await issues.opened(context("issues", payload, log));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.msg, "issue opened");
    assert.equal(lines[0]!.number, 1347);
    assert.equal(lines[0]!.title, "Found a bug");
    assert.equal(lines[0]!.author, "monalisa");
    assert.deepEqual(lines[0]!.labels, ["bug"]);
  });

  await t.step("closed warns on a retry", async () => {
    const closedPayload: IssuesEvent = {
      ...payload,
      action: "closed",
      issue: { ...payload.issue, state: "closed", state_reason: "completed" },
    };
    const { log, lines } = capture();
    await issues.closed(context("issues", closedPayload, log, { attempt: 2 }));
    assert.deepEqual(lines.map((l) => [l.level, l.msg]), [
      ["warn", "retrying issues.closed"],
      ["info", "issue closed"],
    ]);
    assert.equal(lines[0]!.attempt, 2);
    assert.equal(lines[1]!.reason, "completed");
  });

  await t.step("reopened logs who reopened it", async () => {
    const { log, lines } = capture();
    await issues.reopened(
      context("issues", { ...payload, action: "reopened" }, log),
    );
    assert.equal(lines[0]!.reopened_by, "monalisa");
  });

  await t.step(
    "a control character in a title stays on one escaped line",
    async () => {
      const evil: IssuesEvent = {
        ...payload,
        issue: {
          ...payload.issue,
          title: 'x\n{"level":"error","msg":"forged"}\u2028',
        },
      };
      const { log, raw } = capture();
      await issues.opened(context("issues", evil, log));
      assert.equal(raw.length, 1);
      assert.ok(!/[\n\r\u2028]/.test(raw[0]!));
      assert.ok(raw[0]!.includes("\\n"));
      assert.ok(raw[0]!.includes("\\u2028"));
    },
  );
});

Deno.test("pull_request handlers log per action", async (t) => {
  const payload = await example<PullRequestEvent>("pull_request");

  await t.step("opened logs number, head and base", async () => {
    const { log, lines } = capture();
    await pullRequest.opened(context("pull_request", payload, log));
    assert.equal(lines[0]!.msg, "pull request opened");
    assert.equal(lines[0]!.number, 1348);
    assert.equal(lines[0]!.head, "contributing");
    assert.equal(lines[0]!.base, "main");
    assert.equal(lines[0]!.draft, false);
  });

  await t.step("synchronize logs the head sha", async () => {
    const sha = "1111111111111111111111111111111111111111";
    const sync: PullRequestEvent = {
      ...payload,
      action: "synchronize",
      before: payload.pull_request.head.sha,
      after: sha,
      pull_request: {
        ...payload.pull_request,
        head: { ...payload.pull_request.head, sha },
      },
    };
    const { log, lines } = capture();
    await pullRequest.synchronize(
      context("pull_request", sync, log, { attempt: 3 }),
    );
    assert.equal(lines[0]!.msg, "pull request updated");
    assert.equal(lines[0]!.sha, sha);
    assert.equal(lines[0]!.before, payload.pull_request.head.sha);
    assert.equal(lines[0]!.attempt, 3);
  });

  await t.step("closed tells merged from unmerged", async () => {
    for (const merged of [true, false]) {
      const { log, lines } = capture();
      const closed: PullRequestEvent = {
        ...payload,
        action: "closed",
        pull_request: {
          ...payload.pull_request,
          state: "closed",
          merged,
          merge_commit_sha: "e5bd3914e2e596debea16f433f57875b5b90bcd6",
        },
      };
      await pullRequest.closed(context("pull_request", closed, log));
      assert.equal(
        lines[0]!.msg,
        merged ? "pull request merged" : "pull request closed",
      );
      assert.equal(lines[0]!.merged, merged);
      assert.equal(
        lines[0]!.merge_commit_sha,
        merged ? "e5bd3914e2e596debea16f433f57875b5b90bcd6" : undefined,
      );
    }
  });

  await t.step("ready_for_review lists the requested reviewers", async () => {
    const { log, lines } = capture();
    await pullRequest.ready_for_review(
      context("pull_request", { ...payload, action: "ready_for_review" }, log),
    );
    assert.deepEqual(lines[0]!.reviewers, ["hubot"]);
  });
});

Deno.test("* handler logs event, action and delivery at debug level only", async (t) => {
  const payload = await example<Record<string, unknown>>("star");

  await t.step("debug", async () => {
    const { log, lines } = capture("debug");
    await all(context("star", payload, log));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, "debug");
    assert.equal(lines[0]!.event, "star");
    assert.equal(lines[0]!.action, "created");
    assert.equal(lines[0]!.delivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  });

  await t.step("info", async () => {
    const { log, lines } = capture("info");
    await all(context("star", payload, log));
    assert.equal(lines.length, 0);
  });
});

Deno.test("HANDLERS registers the shipped modules", async (t) => {
  await t.step("keys are * and event names", () => {
    assert.deepEqual(Object.keys(HANDLERS), [
      "*",
      "ping",
      "push",
      "issues",
      "pull_request",
    ]);
  });

  await t.step("every export of every module is a function", () => {
    for (const [event, mod] of Object.entries(HANDLERS)) {
      const names = Object.keys(mod);
      assert.ok(names.length > 0, `${event} exports nothing`);
      for (const name of names) {
        assert.equal(typeof mod[name], "function", `${event}.${name}`);
      }
    }
  });

  await t.step("modules export what the examples need", () => {
    assert.deepEqual(Object.keys(HANDLERS["*"]!), ["default"]);
    assert.deepEqual(Object.keys(HANDLERS.ping!), ["default"]);
    assert.deepEqual(Object.keys(HANDLERS.push!), ["default"]);
    assert.deepEqual(Object.keys(HANDLERS.issues!).sort(), [
      "closed",
      "opened",
      "reopened",
    ]);
    assert.deepEqual(Object.keys(HANDLERS.pull_request!).sort(), [
      "closed",
      "opened",
      "ready_for_review",
      "synchronize",
    ]);
  });

  await t.step("routes: * first, then event, then action", () => {
    const names = (event: string, action?: string) =>
      routeDelivery(HANDLERS, event, action).map((r) => r.name);
    assert.deepEqual(names("push"), ["*", "push"]);
    assert.deepEqual(names("issues", "opened"), ["*", "issues.opened"]);
    assert.deepEqual(names("issues", "labeled"), ["*"]);
    assert.deepEqual(names("pull_request", "synchronize"), [
      "*",
      "pull_request.synchronize",
    ]);
    assert.deepEqual(names("star", "created"), ["*"]);
  });
});

Deno.test("every example runs through HANDLERS without an error", async (t) => {
  const handled = new Set(["ping", "push", "issues", "pull_request"]);
  for (const event of await exampleNames()) {
    await t.step(event, async () => {
      const payload = await example<Record<string, unknown>>(event);
      const { log, raw } = capture("debug");
      const result = await runHandlers({
        registry: HANDLERS,
        event,
        action: typeof payload.action === "string" ? payload.action : undefined,
        delivery: `d-${event}`,
        attempt: 1,
        payload,
        log,
        timeoutMs: 5_000,
      });
      assert.equal(result.outcome, handled.has(event) ? "ok" : "skipped");
      assert.ok(raw.length >= 1, "the * handler logs every event");
      // Handlers log chosen fields, never a whole payload or object.
      for (const line of raw) {
        assert.ok(!line.includes("node_id"), line);
        assert.ok(line.length < 1000, line);
      }
    });
  }
});
