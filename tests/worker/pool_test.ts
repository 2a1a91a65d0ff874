// The Worker pool: handlers run in isolates, and nothing they do — a
// synchronous loop, Deno.exit, a hang, a floating rejection — reaches the
// process running the pool.

import assert from "node:assert/strict";
import { createPool } from "../../lib/worker/pool.ts";
import type { HandlerJob } from "../../lib/worker/run.ts";
import { createDeadlines } from "../../lib/_util/deadline.ts";
import { captureLogger, waitFor } from "../_helpers.ts";
import type { GitHubCall, GitHubHost } from "../../lib/github/client.ts";

const MODULE = new URL("../fixtures/hostile_handlers.ts", import.meta.url).href;

function job(
  event: string,
  payload: unknown = {},
  timeoutMs = 2000,
): HandlerJob {
  return {
    event,
    action: undefined,
    delivery: `d-${event}`,
    attempt: 1,
    body: new TextEncoder().encode(JSON.stringify(payload)),
    kind: "json",
    timeoutMs,
  };
}

function pool(size = 2, graceMs = 200) {
  const { log, lines } = captureLogger();
  const deadlines = createDeadlines();
  return {
    pool: createPool({ module: MODULE, size, deadlines, log, graceMs }),
    log,
    lines,
  };
}

const never = new AbortController().signal;

Deno.test("a handler runs in an isolate and its log lines reach the delivery's logger", async () => {
  const { pool: p, log, lines } = pool();
  try {
    const result = await p.run(
      job("ok"),
      log.child({ delivery: "d-ok" }),
      never,
    );
    assert.equal(result.outcome, "ok");
    const line = lines.find((l) => l.msg === "handled in an isolate");
    assert.equal(line?.delivery, "d-ok");
    assert.equal(line?.handler, "ok");
  } finally {
    await p.close();
  }
});

Deno.test("a synchronous loop does not stall the pool's own event loop, and is ended at its deadline", async () => {
  const { pool: p, log } = pool(2, 100);
  try {
    // The main isolate's timers keep firing while the isolate spins.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const spinning = p.run(job("spin", {}, 300), log, never);
    const other = await p.run(job("ok"), log, never);
    assert.equal(other.outcome, "ok", "another job ran while one spins");
    const result = await spinning;
    clearInterval(ticker);
    assert.equal(result.outcome, "timeout");
    assert.match(
      result.outcome === "timeout" ? result.error : "",
      /did not stop; its Worker was terminated/,
    );
    assert.ok(ticks >= 10, `the main isolate's timers ran (${ticks} ticks)`);
    assert.equal((await p.run(job("ok"), log, never)).outcome, "ok");
  } finally {
    await p.close();
  }
});

Deno.test("Deno.exit in a handler ends only its isolate, and the attempt fails saying so", async () => {
  const { pool: p, log } = pool();
  try {
    const result = await p.run(job("exit"), log, never);
    assert.equal(result.outcome, "error");
    assert.match(
      result.outcome === "error" ? result.error : "",
      /Deno\.exit\(1\)/,
    );
    assert.equal((await p.run(job("ok"), log, never)).outcome, "ok");
  } finally {
    await p.close();
  }
});

Deno.test("floating rejections and throws from timers are contained in the isolate and logged", async () => {
  const { pool: p, log, lines } = pool(1);
  try {
    assert.equal((await p.run(job("floating"), log, never)).outcome, "ok");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await p.run(job("ok"), log, never)).outcome, "ok");
    const messages = lines.map((l) => l.msg);
    assert.ok(
      messages.includes("unhandled rejection in a handler"),
      messages.join(),
    );
    assert.ok(
      messages.includes("uncaught exception in a handler"),
      messages.join(),
    );
  } finally {
    await p.close();
  }
});

Deno.test("a handler that throws fails its attempt with its error", async () => {
  const { pool: p, log } = pool(1);
  try {
    const result = await p.run(job("throws"), log, never);
    assert.ok(
      result.outcome === "error" && /a handler error/.test(result.error),
    );
    assert.ok(result.outcome === "error" && result.handler === "throws");
  } finally {
    await p.close();
  }
});

Deno.test("a hang times out, and its isolate is replaced so what it left running is ended", async () => {
  const { pool: p, log, lines } = pool(1);
  try {
    await p.run(job("remember"), log, never);
    const result = await p.run(job("hang", {}, 50), log, never);
    assert.equal(result.outcome, "timeout");
    await p.run(job("remember"), log, never);
    const seen = lines.filter((l) => l.msg === "seen").map((l) => l.seen);
    assert.deepEqual(seen, [1, 1], "the second run met a fresh isolate");
  } finally {
    await p.close();
  }
});

Deno.test("a shutdown aborts the handler's signal, and a spinning one is ended after the grace", async () => {
  const { pool: p, log } = pool(2, 100);
  try {
    const stop = new AbortController();
    const polite = p.run(job("abortable", {}, 60_000), log, stop.signal);
    const spinning = p.run(job("spin", {}, 60_000), log, stop.signal);
    await new Promise((r) => setTimeout(r, 100));
    stop.abort(new Error("server shutting down"));
    const [a, b] = await Promise.all([polite, spinning]);
    assert.ok(a.outcome === "error" && /server shutting down/.test(a.error));
    assert.ok(
      b.outcome === "error" && /its Worker was terminated/.test(b.error),
    );
  } finally {
    await p.close();
  }
});

Deno.test("a closed pool ends its runs and refuses new ones", async () => {
  const { pool: p, log } = pool(1);
  const spinning = p.run(job("spin", {}, 60_000), log, never);
  await p.close();
  assert.equal((await spinning).outcome, "error");
  assert.equal((await p.run(job("ok"), log, never)).outcome, "error");
  assert.equal(p.isolates, 0);
});

Deno.test("warm() starts isolates ahead of the first jobs, at most the pool's size, and they are reused", async () => {
  const { pool: p, log, lines } = pool(2);
  try {
    p.warm(5);
    assert.equal(p.isolates, 2);
    await p.run(job("remember"), log, never);
    await p.run(job("remember"), log, never);
    assert.equal(p.isolates, 2);
    const seen = lines.filter((l) => l.msg === "seen").map((l) => l.seen);
    assert.deepEqual(seen, [1, 2], "the second job ran in the same isolate");
  } finally {
    await p.close();
  }
});

Deno.test("lines below LOG_LEVEL are dropped in the isolate, not posted", async () => {
  const { log, lines } = captureLogger();
  const p = createPool({
    module: MODULE,
    size: 1,
    deadlines: createDeadlines(),
    log,
    logLevel: "warn",
  });
  try {
    assert.equal((await p.run(job("ok"), log, never)).outcome, "ok");
    assert.equal((await p.run(job("floating"), log, never)).outcome, "ok");
    await new Promise((r) => setTimeout(r, 50));
    const messages = lines.map((l) => l.msg);
    assert.ok(!messages.includes("handled in an isolate"), messages.join());
    assert.ok(messages.includes("unhandled rejection in a handler"));
  } finally {
    await p.close();
  }
});

Deno.test("a handler that closes its isolate does not leave a dead isolate for the next run", async () => {
  const { pool: p, log } = pool(1);
  try {
    assert.equal((await p.run(job("closes"), log, never)).outcome, "ok");
    await new Promise((r) => setTimeout(r, 50));
    const next = await p.run(job("ok", {}, 60_000), log, never);
    assert.equal(next.outcome, "ok", "the next run met a fresh isolate");
  } finally {
    await p.close();
  }
});

Deno.test("fields JSON cannot hold are logged safely, and forged messages end only their run", async () => {
  const { pool: p, log, lines } = pool(1);
  try {
    assert.equal((await p.run(job("badlog"), log, never)).outcome, "ok");
    const odd = lines.find((l) => l.msg === "odd fields");
    assert.equal(odd?.big, "10");
    assert.deepEqual(odd?.loop, { n: "10", self: "[circular]" });
    const forged = await p.run(job("forges"), log, never);
    assert.ok(
      forged.outcome === "error" && /a message of its own/.test(forged.error),
    );
    assert.equal((await p.run(job("ok"), log, never)).outcome, "ok");
  } finally {
    await p.close();
  }
});

Deno.test("ctx.github calls go to the server's host, with the delivery's installation, and answers and errors come back rebuilt", async () => {
  const { log, lines } = captureLogger();
  const calls: { call: GitHubCall; deadline: number }[] = [];
  const forgotten: number[] = [];
  const github: GitHubHost = {
    hasApp: false,
    perform(call, _signal, deadline) {
      calls.push({ call, deadline });
      if (call.route === "GET /missing") {
        return Promise.resolve({
          ok: false,
          error: {
            message: "GET /missing: GitHub answered 404: Not Found",
            kind: "status",
            status: 404,
            githubMessage: "Not Found",
          },
        });
      }
      return Promise.resolve({
        ok: true,
        answer: {
          status: 200,
          headers: [["etag", '"abc"']],
          data: { full_name: "octo/hello" },
          url: "http://x/repos/octo/hello",
        },
      });
    },
    forget: (id) => void forgotten.push(id),
  };
  const p = createPool({
    module: MODULE,
    size: 1,
    deadlines: createDeadlines(),
    log,
    github,
  });
  try {
    const payload = {
      installation: { id: 42 },
      repository: { name: "hello", owner: { login: "octo" } },
      sender: { type: "Bot" },
    };
    const before = Date.now();
    assert.equal((await p.run(job("gh", payload), log, never)).outcome, "ok");
    assert.deepEqual(calls[0]?.call, {
      kind: "request",
      route: "GET /repos/{owner}/{repo}",
      params: { owner: "octo", repo: "hello" },
      as: "installation",
      installation: 42,
    });
    assert.ok(calls[0]!.deadline <= before + 2000 + 100, "the run's deadline");
    const answer = lines.find((l) => l.msg === "gh answer");
    assert.deepEqual(answer, {
      ...answer,
      status: 200,
      etag: '"abc"',
      data: { full_name: "octo/hello" },
      hasApp: false,
      isBot: true,
    });
    const error = lines.find((l) => l.msg === "gh error");
    assert.equal(error?.name, "GitHubApiError");
    assert.equal(error?.status, 404);
    const gone = { action: "deleted", installation: { id: 42 } };
    const deleted = { ...job("installation", gone), action: "deleted" };
    assert.equal((await p.run(deleted, log, never)).outcome, "ok");
    await waitFor(() => forgotten.length > 0, 2000, "the installation dropped");
    assert.deepEqual(forgotten, [42]);
  } finally {
    await p.close();
  }
});
