import assert from "node:assert/strict";
import { createAppAuth } from "../../lib/github/app_auth.ts";
import { createHookMemory } from "../../lib/github/hooks_seen.ts";
import {
  type HookResult,
  MARK_OVERLAP_MS,
  type PassHook,
  reconcilePass,
} from "../../lib/github/reconcile.ts";
import { createReconciler } from "../../lib/github/reconcile_loop.ts";
import { createRestClient, type RestClient } from "../../lib/github/rest.ts";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { hookKeys } from "../../lib/store/keys.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import {
  addHookDeliveries,
  deliveryItem,
  failure,
  type FakeDeliveryItem,
  type FakeGitHub,
  rateLimited,
  startFakeGitHub,
} from "../fixtures/fake_github.ts";
import { captureLogger } from "../_helpers.ts";

const TOKEN = "ghp_reconcileTEST0123456789";
const APP_ID = "777";
const MINUTE = 60_000;
const NOW = Date.now();
const ago = (minutes: number) => NOW - minutes * MINUTE;

const REPO = "/repos/octo/hello/hooks/42";
const ORG = "/orgs/octo-org/hooks/7";
const APP = "/app/hook";

/**
 * The repository hook, newest first, two a page: page 4 reaches past the
 * 3-day window and ends the listing.
 *
 * - g-ok-later failed, then a redelivery got 200: left alone
 * - g-lost failed twice and is not stored: redelivered through 109
 * - g-stored failed but hookgate has it: left alone
 * - g-refused failed and is not stored: GitHub answers 422
 * - g-ancient is past the window
 */
function repoItems(): FakeDeliveryItem[] {
  return [
    deliveryItem(110, "g-ok-later", ago(5), 200, { redelivery: true }),
    deliveryItem(109, "g-lost", ago(10), 0, { redelivery: true }),
    deliveryItem(108, "g-stored", ago(20), 503),
    deliveryItem(107, "g-ok-later", ago(30), 503),
    deliveryItem(106, "g-lost", ago(40), 502),
    deliveryItem(105, "g-refused", ago(50), 500),
    deliveryItem(104, "g-ancient", ago(4 * 24 * 60), 500),
  ];
}

const STORED = new Map([["g-stored", "done"], ["g-app-stored", "dead"]]);

async function appKeys() {
  return await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      hash: "SHA-256",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    false,
    ["sign", "verify"],
  );
}

/** A fake GitHub with the three hooks; a successful redelivery adds a 200 attempt, as GitHub would show it. */
async function startHooks() {
  const { privateKey, publicKey } = await appKeys();
  const github = await startFakeGitHub({
    appId: APP_ID,
    publicKey,
    personalToken: TOKEN,
  });
  let nextId = 1000;
  const lists: Record<string, FakeDeliveryItem[]> = {
    [REPO]: repoItems(),
    [ORG]: [
      deliveryItem(202, "g-org-ok", ago(16), 200),
      deliveryItem(201, "g-org-lost", ago(15), 500),
    ].sort((a, b) => b.delivered_at.localeCompare(a.delivered_at)),
    [APP]: [
      deliveryItem(301, "g-app-lost", ago(3), 0),
      deliveryItem(300, "g-app-stored", ago(4), 500),
    ],
  };
  const record = (path: string, pageSize?: number) =>
    addHookDeliveries(github, path, {
      items: lists[path]!,
      ...(pageSize ? { pageSize } : {}),
      redeliver: (_id, item) => {
        if (item?.guid === "g-refused") {
          return failure(422, "Validation Failed");
        }
        lists[path]!.unshift(
          deliveryItem(nextId++, item!.guid, Date.now(), 200, {
            redelivery: true,
          }),
        );
        return { status: 202, body: {} };
      },
    });
  const hooks = {
    repo: record(REPO, 2),
    org: record(ORG),
    app: record(APP),
  };
  const auth = createAppAuth({
    appId: APP_ID,
    key: privateKey,
    baseUrl: github.url,
  });
  return { github, hooks, auth, lists };
}

/** Clients as the server makes them, with a recorded sleep. */
function clients(
  github: FakeGitHub,
  auth: ReturnType<typeof createAppAuth>,
  sleeps: number[],
) {
  const sleep = (ms: number) => {
    sleeps.push(ms);
    return Promise.resolve();
  };
  return (hook: PassHook): RestClient =>
    createRestClient({
      baseUrl: github.url,
      sleep,
      ...(hook.target.kind === "app"
        ? { getToken: ({ fresh }) => auth.jwt({ fresh }) }
        : { token: TOKEN }),
    });
}

const PASS_HOOKS: PassHook[] = [
  {
    id: "42",
    target: { kind: "repo", owner: "octo", repo: "hello", hookId: "42" },
    since: ago(3 * 24 * 60),
  },
  {
    id: "7",
    target: { kind: "org", org: "octo-org", hookId: "7" },
    since: ago(3 * 24 * 60),
  },
  { id: "9", target: { kind: "app" }, since: ago(3 * 24 * 60) },
];

const isStored = (guid: string) => Promise.resolve(STORED.get(guid) ?? null);

Deno.test("reconcilePass() redelivers exactly the failed, unstored guids of repository, organization and App hooks, once", async (t) => {
  const { github, hooks, auth } = await startHooks();
  await using _ = github;
  // The organization's first list call is rate limited.
  github.script(`GET ${ORG}/deliveries`, rateLimited(1));
  const logs = captureLogger();
  const metrics = createMetrics();
  const sleeps: number[] = [];
  const results = new Map<string, HookResult>();
  const counts = await reconcilePass({
    hooks: PASS_HOOKS,
    clientFor: clients(github, auth, sleeps),
    isStored,
    log: logs.log,
    metrics,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    onHook: (hook, result) => {
      results.set(hook.id, result);
    },
  });

  await t.step("the right guids, each once, oldest first", () => {
    assert.deepEqual(hooks.repo.guids, ["g-refused", "g-lost"]);
    assert.deepEqual(hooks.repo.redelivered, [105, 109], "latest attempts");
    assert.deepEqual(hooks.org.guids, ["g-org-lost"]);
    assert.deepEqual(hooks.app.guids, ["g-app-lost"]);
  });

  await t.step("the counts", () => {
    assert.deepEqual(counts, {
      hooks: 3,
      listed: 10,
      failed: 6,
      redelivered: 3,
      alreadyStored: 2,
      errors: 1,
    });
    assert.equal(
      metrics.value("webhook_reconcile_redeliveries_total", {
        result: "accepted",
      }),
      3,
    );
    assert.equal(
      metrics.value("webhook_reconcile_redeliveries_total", {
        result: "refused",
      }),
      1,
    );
  });

  await t.step("paging: four pages of two, stopping past the window", () => {
    const gets = github.requestsOf(`GET ${REPO}/deliveries`);
    assert.deepEqual(
      gets.map((r) => new URLSearchParams(r.search).get("cursor")),
      [
        null,
        "v1_2",
        "v1_4",
        "v1_6",
      ],
    );
  });

  await t.step("the rate limit waited out, redeliveries paced", () => {
    assert.equal(github.requestsOf(`GET ${ORG}/deliveries`).length, 2);
    assert.ok(sleeps.includes(1000), `sleeps: ${sleeps}`);
  });

  await t.step(
    "credentials: the token for hooks, the App's JWT for its own",
    () => {
      for (const r of github.requests) {
        if (r.path.startsWith("/app/")) assert.equal(r.auth.kind, "app");
        // (The scripted rate limit answers before authenticating.)
        else assert.equal(r.authorization, `Bearer ${TOKEN}`);
      }
      assert.ok(github.requests.some((r) => r.auth.kind === "personal"));
    },
  );

  await t.step("the 422 is logged at warn, not fatal", () => {
    const refused = logs.lines.filter((l) =>
      l.msg === "reconciliation: GitHub refused a redelivery"
    );
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.level, "warn");
    assert.equal(refused[0]!.delivery, "g-refused");
    assert.equal(refused[0]!.status, 422);
    assert.ok(!logs.raw.join("\n").includes(TOKEN));
  });

  await t.step("marks: just before the newest attempt seen", () => {
    const repo = results.get("42")!;
    assert.equal(
      repo.mark,
      Math.floor(ago(5) / 1000) * 1000 - MARK_OVERLAP_MS,
    );
  });

  await t.step("a second pass from the marks redelivers nothing", async () => {
    const before = github.requests.length;
    const again = await reconcilePass({
      hooks: PASS_HOOKS.map((h) => ({ ...h, since: results.get(h.id)!.mark! })),
      clientFor: clients(github, auth, sleeps),
      isStored,
      log: logs.log,
    });
    assert.equal(again.redelivered, 0);
    assert.equal(again.errors, 0);
    assert.ok(
      github.requests.slice(before).every((r) => r.method === "GET"),
      "only list calls",
    );
  });
});

Deno.test("reconcilePass() keeps the mark before a redelivery that may still succeed, and stops a hook after a 401", async (t) => {
  await using github = await startFakeGitHub({ personalToken: TOKEN });
  const items = [
    deliveryItem(3, "g-new", ago(1), 200),
    deliveryItem(2, "g-a", ago(20), 500),
    deliveryItem(1, "g-b", ago(30), 500),
  ];
  let answer = failure(502);
  const hook = addHookDeliveries(github, REPO, {
    items,
    redeliver: () => answer,
  });
  const logs = captureLogger();
  const results: HookResult[] = [];
  const run = () =>
    reconcilePass({
      hooks: [PASS_HOOKS[0]!],
      clientFor: () =>
        createRestClient({ baseUrl: github.url, token: TOKEN, maxRetries: 0 }),
      isStored: () => Promise.resolve(null),
      log: logs.log,
      paceMs: 0,
      onHook: (_, result) => {
        results.push(result);
      },
    });

  await t.step(
    "a 502: both tried, the mark held at the older one",
    async () => {
      const counts = await run();
      assert.equal(counts.errors, 2);
      assert.deepEqual(hook.guids, ["g-b", "g-a"]);
      assert.equal(results[0]!.mark, Math.floor(ago(30) / 1000) * 1000);
    },
  );

  await t.step("a 401: the rest not attempted", async () => {
    answer = failure(401);
    hook.guids.length = 0;
    const counts = await run();
    assert.equal(counts.errors, 1);
    assert.equal(results[1]!.skipped, 1);
    assert.deepEqual(hook.guids, ["g-b"]);
    assert.ok(
      logs.lines.some((l) =>
        l.msg === "reconciliation: the credentials were refused; stopping"
      ),
    );
  });

  await t.step(
    "a hook that cannot be listed is an error, not the pass's end",
    async () => {
      const counts = await reconcilePass({
        hooks: [
          { ...PASS_HOOKS[1]! }, // no such route: 404
          PASS_HOOKS[0]!,
        ],
        clientFor: () =>
          createRestClient({ baseUrl: github.url, token: TOKEN }),
        isStored: () => Promise.resolve("done"),
        log: logs.log,
      });
      assert.equal(counts.hooks, 1);
      assert.equal(counts.errors, 1);
      assert.equal(counts.alreadyStored, 2);
      assert.ok(
        logs.lines.some((l) =>
          l.msg ===
            "reconciliation: the webhook's deliveries could not be listed" &&
          l.level === "warn" && l.hook === "7"
        ),
      );
    },
  );

  await t.step("no credentials for a hook: skipped, warned", async () => {
    const counts = await reconcilePass({
      hooks: [PASS_HOOKS[2]!],
      clientFor: () => null,
      isStored: () => Promise.resolve(null),
      log: logs.log,
    });
    assert.equal(counts.hooks, 0);
    assert.ok(
      logs.lines.some((l) =>
        l.msg === "reconciliation: no credentials for this webhook, skipped"
      ),
    );
  });
});

Deno.test("createReconciler(): two processes on one KV, the second does nothing during the first's pass", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-reconcile-" });
  await using github = await startFakeGitHub({ personalToken: TOKEN });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let entered!: () => void;
  const inPass = new Promise<void>((resolve) => entered = resolve);
  const hook = addHookDeliveries(github, REPO, {
    items: [deliveryItem(1, "g-lost", ago(2), 500)],
    redeliver: async () => {
      entered();
      await gate;
      return { status: 202, body: {} };
    },
  });
  const kvA = await Deno.openKv(`${dir}/kv`);
  const kvB = await Deno.openKv(`${dir}/kv`);
  try {
    const make = (kv: Deno.Kv) => {
      const store = new DeliveryStore({
        kv,
        ttlMs: 86_400_000,
        maxAttempts: 5,
      });
      const hooks = createHookMemory({ kv });
      hooks.seen({
        hookId: "42",
        target: { type: "repository", id: "1" },
        repository: "octo/hello",
      });
      const logs = captureLogger();
      return {
        hooks,
        logs,
        reconciler: createReconciler({
          hooks,
          kv,
          claim: (job, ms) => store.claim(job, store.owner, ms),
          isStored: async (guid) => (await store.get(guid))?.status ?? null,
          clientFor: () =>
            createRestClient({ baseUrl: github.url, token: TOKEN }),
          intervalMs: 60 * MINUTE,
          log: logs.log,
          paceMs: 0,
        }),
      };
    };
    const a = make(kvA);
    const b = make(kvB);
    await a.hooks.idle();
    await b.hooks.idle();
    const signal = new AbortController().signal;

    const first = a.reconciler.runOnce(signal);
    await inPass;
    const before = github.requests.length;
    assert.equal(await b.reconciler.runOnce(signal), null, "the lease is held");
    assert.equal(github.requests.length, before, "the second sent nothing");
    release();
    const counts = await first;
    assert.equal(counts?.redelivered, 1);
    assert.deepEqual(hook.guids, ["g-lost"]);
    assert.equal(
      await b.reconciler.runOnce(signal),
      null,
      "held till the interval ends",
    );
    assert.ok(a.reconciler.lastSuccess > 0);
    assert.equal(b.reconciler.lastSuccess, 0);
    const mark = await kvB.get<number>(hookKeys.mark("42"));
    assert.equal(typeof mark.value, "number", "the mark is in the shared KV");
    assert.ok(
      a.logs.lines.some((l) =>
        l.msg === "reconciliation pass" && l.level === "info" &&
        l.redelivered === 1 && l.hooks === 1
      ),
    );
  } finally {
    kvA.close();
    kvB.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createReconciler().start() runs a first pass after firstDelayMs, and a catch-up pass when nudged", async () => {
  await using github = await startFakeGitHub({ personalToken: TOKEN });
  const items = [deliveryItem(1, "g-lost", ago(2), 500)];
  const repo = addHookDeliveries(github, REPO, { items });
  const org = addHookDeliveries(github, ORG, {
    items: [deliveryItem(5, "g-org-lost", ago(2), 500)],
  });
  const kv = await Deno.openKv(":memory:");
  const stop = new AbortController();
  try {
    const hooks = createHookMemory({ kv });
    hooks.seen({
      hookId: "42",
      target: { type: "repository", id: "1" },
      repository: "octo/hello",
    });
    await hooks.idle();
    const logs = captureLogger();
    const passes: string[] = [];
    const metrics = createMetrics();
    const reconciler = createReconciler({
      hooks,
      kv,
      claim: () => Promise.resolve(true),
      isStored: () => Promise.resolve(null),
      clientFor: () => createRestClient({ baseUrl: github.url, token: TOKEN }),
      intervalMs: 60 * MINUTE,
      firstDelayMs: 20,
      log: {
        ...logs.log,
        info: (msg, fields) => {
          passes.push(msg);
          logs.log.info(msg, fields);
        },
        warn: logs.log.warn,
        child: logs.log.child,
        debug: logs.log.debug,
        error: logs.log.error,
      },
      metrics,
    });
    const running = reconciler.start(stop.signal);
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 500 && !check(); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(check());
    };
    await until(() => passes.length === 1);
    assert.deepEqual(repo.guids, ["g-lost"]);
    assert.match(
      metrics.render(),
      /webhook_reconcile_last_success_timestamp_seconds [1-9]/,
    );

    // A new organization hook: a catch-up pass covers it (and only it).
    hooks.seen({
      hookId: "7",
      target: { type: "organization", id: "2" },
      repository: "octo-org/x",
    });
    await hooks.idle();
    reconciler.nudge();
    await until(() => passes.length === 2);
    assert.equal(passes[1], "reconciliation pass (new hooks)");
    assert.deepEqual(org.guids, ["g-org-lost"]);
    assert.deepEqual(repo.guids, ["g-lost"], "the marked hook not again");
    assert.equal(github.requestsOf(`GET ${REPO}/deliveries`).length, 1);
    stop.abort();
    await running;
  } finally {
    stop.abort();
    kv.close();
  }
});

Deno.test("createReconciler(): a guid asked for once is not asked for again by the next pass, though GitHub still lists it failed", async () => {
  await using github = await startFakeGitHub({ personalToken: TOKEN });
  const hook = addHookDeliveries(github, REPO, {
    items: [deliveryItem(1, "g-never-comes", ago(2), 502)],
  });
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DeliveryStore({ kv, ttlMs: 86_400_000, maxAttempts: 5 });
    const hooks = createHookMemory({ kv });
    hooks.seen({
      hookId: "42",
      target: { type: "repository", id: "1" },
      repository: "octo/hello",
    });
    await hooks.idle();
    const reconciler = createReconciler({
      hooks,
      kv,
      // A claim that is free again at once: every pass runs.
      claim: () => Promise.resolve(true),
      isStored: async (guid) => (await store.get(guid))?.status ?? null,
      clientFor: () => createRestClient({ baseUrl: github.url, token: TOKEN }),
      intervalMs: 60 * MINUTE,
      log: captureLogger().log,
      paceMs: 0,
    });
    const signal = new AbortController().signal;
    assert.equal((await reconciler.runOnce(signal))?.redelivered, 1);
    assert.equal((await reconciler.runOnce(signal))?.redelivered, 0);
    assert.deepEqual(hook.guids, ["g-never-comes"], "asked for once");
  } finally {
    kv.close();
  }
});
