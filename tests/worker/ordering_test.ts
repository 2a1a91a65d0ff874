// SERIALIZE_BY through whole apps on real KV: deliveries of one key never
// overlap and start in the order they were stored, across two apps sharing
// one KV file (two processes' worth of stores and workers); a failed
// delivery keeps its key until it is done or dead; other keys run at once.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import type { HandlerContext, HandlerRegistry } from "../../lib/dispatch.ts";
import { orderKeyOf } from "../../lib/worker/ordering.ts";
import {
  captureLogger,
  deliveryRequest,
  fakeInfo,
  testConfig,
  waitFor,
} from "../_helpers.ts";

interface Apps extends AsyncDisposable {
  apps: App[];
  post(i: number, id: string, payload: object): Promise<void>;
  waitStatus(id: string, status: string, ms?: number): Promise<void>;
}

/** `n` apps on one KV file, each with its own store and worker. */
async function apps(
  n: number,
  registry: HandlerRegistry,
  env: Record<string, string>,
): Promise<Apps> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-order-" });
  const kvs: Deno.Kv[] = [];
  const list: App[] = [];
  const stop = new AbortController();
  for (let i = 0; i < n; i++) {
    const kv = await Deno.openKv(`${dir}/kv`);
    kvs.push(kv);
    const app = await createApp({
      config: testConfig(env),
      log: captureLogger("info").log,
      kv,
      registry,
      worker: { pollMs: 20, retryBaseMs: 10, leaseMs: 2000 },
    });
    app.start(stop.signal);
    list.push(app);
  }
  return {
    apps: list,
    async post(i, id, payload) {
      const res = await list[i]!.fetch(
        await deliveryRequest({
          id,
          event: "push",
          body: JSON.stringify(payload),
        }),
        fakeInfo(),
      );
      assert.equal(res.status, 202, await res.text());
    },
    async waitStatus(id, status, ms = 10_000) {
      await waitFor(
        async () => (await list[0]!.store.get(id))?.status === status,
        ms,
        `${id} ${status}`,
      );
    },
    async [Symbol.asyncDispose]() {
      stop.abort();
      for (const app of list) await app.close(1000);
      for (const kv of kvs) kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function push(repo: string, branch = "main", n = 0): object {
  return {
    ref: `refs/heads/${branch}`,
    after: String(n).padStart(40, "0"),
    repository: { full_name: repo, name: repo.split("/")[1] },
    sender: { login: "octocat" },
    nonce: crypto.randomUUID(),
  };
}

/** A push handler that notes when each delivery starts and ends. */
function tracker(ms: number, fail?: (ctx: HandlerContext) => boolean) {
  const events: string[] = [];
  let active = 0;
  let most = 0;
  const registry: HandlerRegistry = {
    push: {
      async default(ctx: HandlerContext) {
        active++;
        most = Math.max(most, active);
        events.push(`start ${ctx.delivery}`);
        try {
          await new Promise((r) => setTimeout(r, ms));
          if (fail?.(ctx)) throw new Error("deploy failed");
        } finally {
          active--;
          events.push(`end ${ctx.delivery}`);
        }
      },
    },
  };
  return { registry, events, most: () => most };
}

Deno.test("orderKeyOf: repository, branch, and none without a repository", () => {
  const base = {
    event: "push",
    body: new Uint8Array(0),
    kind: "json",
  } as const;
  assert.equal(
    orderKeyOf("repository", { ...base, repository: "o/r", payload: {} }),
    "o/r",
  );
  assert.equal(
    orderKeyOf("branch", {
      ...base,
      repository: "o/r",
      payload: { ref: "refs/tags/v1" },
    }),
    "o/r",
    "a tag push has no branch: the repository is the key",
  );
  assert.equal(
    orderKeyOf("branch", {
      ...base,
      repository: "o/r",
      body: new TextEncoder().encode('{"ref":"refs/heads/dev"}'),
      payload: undefined,
    }),
    "o/r#dev",
    "a large body is parsed for its branch",
  );
  assert.equal(
    orderKeyOf("repository", { ...base, repository: undefined, payload: {} }),
    undefined,
  );
});

Deno.test("six pushes to one repository across two apps never overlap and start in the order they were stored", async () => {
  const t = tracker(40);
  await using a = await apps(2, t.registry, { SERIALIZE_BY: "repository" });
  const ids = ["p1", "p2", "p3", "p4", "p5", "p6"];
  for (const [i, id] of ids.entries()) {
    await a.post(i % 2, id, push("octo/app", "main", i));
  }
  for (const id of ids) await a.waitStatus(id, "done");
  assert.equal(t.most(), 1, t.events.join("\n"));
  assert.deepEqual(t.events, ids.flatMap((id) => [`start ${id}`, `end ${id}`]));
  const first = await a.apps[0]!.store.get("p1");
  assert.equal(first?.orderKey, "octo/app");
});

Deno.test("a failed delivery keeps its key: the next one starts only after its retry is done", async () => {
  const t = tracker(10, (ctx) => ctx.delivery === "f1" && ctx.attempt === 1);
  await using a = await apps(1, t.registry, { SERIALIZE_BY: "repository" });
  await a.post(0, "f1", push("octo/app"));
  await waitFor(() => t.events.includes("end f1"), 5000, "f1's first run");
  await a.post(0, "f2", push("octo/app"));
  await a.waitStatus("f2", "done");
  assert.deepEqual(t.events, [
    "start f1",
    "end f1",
    "start f1",
    "end f1",
    "start f2",
    "end f2",
  ]);
  assert.equal((await a.apps[0]!.store.get("f1"))?.attempts, 2);
});

Deno.test("a dead delivery hands its key on; other repositories and branches are not held up", async () => {
  const t = tracker(60, (ctx) => ctx.delivery === "d1");
  await using a = await apps(1, t.registry, {
    SERIALIZE_BY: "branch",
    MAX_ATTEMPTS: "2",
  });
  await a.post(0, "d1", push("octo/app", "main"));
  await a.post(0, "d2", push("octo/app", "main"));
  await a.post(0, "other-repo", push("octo/lib", "main"));
  await a.post(0, "other-branch", push("octo/app", "dev"));
  await a.waitStatus("d1", "dead");
  await a.waitStatus("d2", "done");
  await a.waitStatus("other-repo", "done");
  await a.waitStatus("other-branch", "done");
  const started = t.events.filter((e) => e.startsWith("start"));
  assert.ok(
    started.indexOf("start d2") > started.lastIndexOf("start d1"),
    t.events.join("\n"),
  );
  // Other keys ran while d1 was still being tried.
  assert.ok(t.most() >= 2, t.events.join("\n"));
  assert.ok(
    t.events.indexOf("start other-repo") < t.events.lastIndexOf("end d1"),
    t.events.join("\n"),
  );
});

Deno.test("a delivery that waits says which one it waits for, and is not counted an attempt", async () => {
  const t = tracker(300);
  await using a = await apps(1, t.registry, { SERIALIZE_BY: "repository" });
  await a.post(0, "w1", push("octo/app"));
  await waitFor(() => t.events.includes("start w1"), 5000, "w1 runs");
  await a.post(0, "w2", push("octo/app"));
  await waitFor(
    async () => (await a.apps[0]!.store.get("w2"))?.after === "w1",
    5000,
    "w2 waits for w1",
  );
  const waiting = await a.apps[0]!.store.get("w2");
  assert.equal(waiting?.status, "queued");
  assert.equal(waiting?.attempts, 0);
  await a.waitStatus("w2", "done");
  assert.equal((await a.apps[0]!.store.get("w2"))?.after, undefined);
});
