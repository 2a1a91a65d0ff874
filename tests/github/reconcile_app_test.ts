// Reconciliation in the running server: createApp with
// RECONCILE_INTERVAL_MINUTES, a fake GitHub on loopback whose redeliveries
// really reach hookgate, and two apps sharing one KV file.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import { FIRST_PASS_DELAY_MS } from "../../lib/github/reconcile_loop.ts";
import { hookKeys } from "../../lib/store/keys.ts";
import {
  addHookDeliveries,
  deliveryItem,
  type FakeDeliveryItem,
  startFakeGitHub,
} from "../fixtures/fake_github.ts";
import {
  captureLogger,
  deliveryRequest,
  testConfig,
  waitFor,
} from "../_helpers.ts";

const TOKEN = "ghp_reconcileAPPtest0123456789";
const HOOK = "/repos/octo/hello/hooks/42";
const MINUTE = 60_000;

/** The delivery GitHub sends (or redelivers) for `guid`, signed. */
function githubDelivery(baseUrl: string, guid: string) {
  return deliveryRequest({
    url: `${baseUrl}/webhook`,
    event: "issues",
    id: guid,
    headers: {
      "x-github-hook-id": "42",
      "x-github-hook-installation-target-type": "repository",
      "x-github-hook-installation-target-id": "1296269",
    },
    body: JSON.stringify({
      action: "opened",
      guid,
      repository: {
        name: "hello",
        full_name: "octo/hello",
        owner: { login: "octo" },
      },
      sender: { login: "monalisa" },
    }),
  });
}

interface Running {
  app: App;
  url: string;
  logs: ReturnType<typeof captureLogger>;
  start: () => void;
  stop: () => Promise<void>;
}

async function serve(env: Record<string, string>): Promise<Running> {
  const logs = captureLogger("debug");
  const app = await createApp({
    config: testConfig({ LOG_LEVEL: "debug", ...env }),
    log: logs.log,
    registry: {},
    worker: { pollMs: 50 },
    reconcile: { firstDelayMs: 100, paceMs: 10 },
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const controller = new AbortController();
  return {
    app,
    url: `http://127.0.0.1:${server.addr.port}`,
    logs,
    start: () => app.start(controller.signal),
    stop: async () => {
      controller.abort();
      await server.shutdown();
      await app.close(1000);
    },
  };
}

Deno.test("the one failed, unstored guid of a hook's list is redelivered soon after start, once, with two apps on one KV", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-reconcile-app-" });
  await using github = await startFakeGitHub({ personalToken: TOKEN });
  const now = Date.now();
  let target = "";
  const items: FakeDeliveryItem[] = [
    deliveryItem(4, "g-first", now - 1 * MINUTE, 200),
    deliveryItem(3, "g-lost", now - 2 * MINUTE, 0),
    deliveryItem(2, "g-had", now - 3 * MINUTE, 0),
    deliveryItem(1, "g-ok", now - 4 * MINUTE, 200),
  ];
  const hook = addHookDeliveries(github, HOOK, {
    items,
    pageSize: 2,
    // As GitHub does: the redelivery is sent to the webhook URL.
    redeliver: async (_id, item) => {
      const res = await fetch(await githubDelivery(target, item!.guid));
      await res.body?.cancel();
      return { status: 202, body: {} };
    },
  });
  const env = {
    KV_PATH: `${dir}/hookgate.kv`,
    RECONCILE_INTERVAL_MINUTES: "1",
    GITHUB_TOKEN: TOKEN,
    GITHUB_API_URL: github.url,
  };
  const a = await serve(env);
  const b = await serve(env);
  target = a.url;
  try {
    // GitHub got through with these two (g-had timed out on GitHub's side
    // after hookgate stored it): app A learns the hook from them.
    for (const guid of ["g-first", "g-had"]) {
      const res = await fetch(await githubDelivery(a.url, guid));
      assert.equal(res.status, 202, await res.text());
    }
    await waitFor(
      async () => (await a.app.kv.get(hookKeys.hook("42"))).value,
      5000,
      "the hook remembered",
    );
    a.start();
    b.start();

    await waitFor(
      () => a.app.store.get("g-lost"),
      15_000,
      "g-lost redelivered and stored",
    );
    const passed = (r: Running) =>
      r.logs.lines.some((l) => l.msg === "reconciliation pass");
    const skipped = (r: Running) =>
      r.logs.lines.some((l) =>
        l.msg === "reconciliation pass skipped: another process holds the lease"
      );
    await waitFor(
      () => (passed(a) && skipped(b)) || (passed(b) && skipped(a)),
      5000,
      "one pass, one skip",
    );
    assert.deepEqual(hook.guids, ["g-lost"], "exactly the lost guid, once");
    const line = [...a.logs.lines, ...b.logs.lines].find((l) =>
      l.msg === "reconciliation pass"
    )!;
    assert.equal(line.level, "info");
    assert.equal(line.redelivered, 1);
    assert.equal(line.alreadyStored, 1);
    assert.equal(line.failed, 2);
    const metrics = await (await a.app.fetch(
      new Request("http://hookgate.test/metrics"),
      { remoteAddr: { hostname: "127.0.0.1", transport: "tcp" } },
    )).text();
    const owner = passed(a) ? a : b;
    assert.equal(
      owner.app.metrics.value("webhook_reconcile_redeliveries_total", {
        result: "accepted",
      }),
      1,
    );
    assert.match(metrics, /webhook_reconcile_last_success_timestamp_seconds/);
    for (const r of [a, b]) {
      assert.ok(!r.logs.raw.join("\n").includes(TOKEN), "no token logged");
    }
  } finally {
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the first pass comes within 30 s of start by default; no credentials: off, warned", async () => {
  assert.ok(FIRST_PASS_DELAY_MS >= 10_000 && FIRST_PASS_DELAY_MS <= 30_000);
  const logs = captureLogger();
  const app = await createApp({
    config: testConfig({ RECONCILE_INTERVAL_MINUTES: "5" }),
    log: logs.log,
    registry: {},
  });
  await app.close(100);
  assert.ok(
    logs.lines.some((l) =>
      l.level === "warn" &&
      String(l.msg).startsWith("RECONCILE_INTERVAL_MINUTES is set but")
    ),
  );
});
