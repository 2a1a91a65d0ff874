import assert from "node:assert/strict";
import {
  createHookMemory,
  type HookSource,
  hookTargetOf,
  seenHookOf,
} from "../../lib/github/hooks_seen.ts";
import { createAccept } from "../../lib/worker/accept.ts";
import type { IncomingDelivery } from "../../lib/store/types.ts";

const repoHook: HookSource = {
  hookId: "42",
  target: { type: "repository", id: "1296269" },
  repository: "octo/hello",
  payload: { installation: { id: 7 } },
};

Deno.test("seenHookOf() reads the hook from the headers and the payload", async (t) => {
  await t.step("repository: owner/name and the installation", () => {
    assert.deepEqual(seenHookOf(repoHook, 5), {
      hookId: "42",
      type: "repository",
      targetId: "1296269",
      repository: "octo/hello",
      installation: 7,
      lastSeen: 5,
    });
  });
  await t.step("organization: the payload's login first", () => {
    const hook = seenHookOf({
      hookId: "7",
      target: { type: "organization", id: "9" },
      repository: "someone/else",
      payload: { organization: { login: "octo-org" } },
    }, 0);
    assert.equal(hook?.org, "octo-org");
    assert.equal(hook?.repository, undefined);
  });
  await t.step("organization: else the repository's owner", () => {
    const hook = seenHookOf({
      hookId: "7",
      target: { type: "organization", id: "9" },
      repository: "octo-org/hello",
    }, 0);
    assert.equal(hook?.org, "octo-org");
  });
  await t.step("integration: nothing else needed", () => {
    assert.deepEqual(
      seenHookOf({
        hookId: "9",
        target: { type: "integration", id: "777" },
        repository: undefined,
      }, 1),
      { hookId: "9", type: "integration", targetId: "777", lastSeen: 1 },
    );
  });
  const nulls: [string, HookSource][] = [
    ["no hook id", { ...repoHook, hookId: undefined }],
    ["a hook id that is not a number", { ...repoHook, hookId: "4x" }],
    ["no target", { ...repoHook, target: undefined }],
    ["a business hook", {
      ...repoHook,
      target: { type: "business", id: "1" },
    }],
    ["a repository hook without a repository", {
      ...repoHook,
      repository: undefined,
    }],
    ["a repository name with a path", {
      ...repoHook,
      repository: "a/b/c",
    }],
    ["an organization hook without a login", {
      hookId: "7",
      target: { type: "organization", id: "9" },
      repository: undefined,
      payload: { organization: { login: "bad login" } },
    }],
  ];
  for (const [name, source] of nulls) {
    await t.step(`null: ${name}`, () => {
      assert.equal(seenHookOf(source, 0), null);
    });
  }
});

Deno.test("hookTargetOf() maps a remembered hook to its REST path's parts", () => {
  assert.deepEqual(hookTargetOf(seenHookOf(repoHook, 0)!), {
    kind: "repo",
    owner: "octo",
    repo: "hello",
    hookId: "42",
  });
  assert.deepEqual(
    hookTargetOf({
      hookId: "7",
      type: "organization",
      targetId: "9",
      org: "octo-org",
      lastSeen: 0,
    }),
    { kind: "org", org: "octo-org", hookId: "7" },
  );
  assert.equal(
    hookTargetOf({
      hookId: "7",
      type: "organization",
      targetId: "9",
      lastSeen: 0,
    }),
    null,
  );
});

Deno.test("createHookMemory() writes a hook once per process, again after rewriteMs", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let now = 1000;
    const sets: unknown[] = [];
    const counted = new Proxy(kv, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop === "set") {
          return (...args: unknown[]) => {
            sets.push(args[0]);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const news: string[] = [];
    const hooks = createHookMemory({
      kv: counted,
      now: () => now,
      rewriteMs: 10_000,
      onNew: (hook) => news.push(hook.hookId),
    });
    for (let i = 0; i < 5; i++) hooks.seen(repoHook);
    hooks.seen({ hookId: undefined, target: undefined, repository: undefined });
    await hooks.idle();
    assert.equal(sets.length, 1);
    assert.deepEqual(news, ["42"]);
    now += 10_000;
    hooks.seen(repoHook);
    await hooks.idle();
    assert.equal(sets.length, 2, "written again a rewriteMs later");
    assert.deepEqual(news, ["42"], "not new the second time");
    const listed = await hooks.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.lastSeen, 11_000);

    // Another app on the same KV (a restart) writes it again, once.
    const again = createHookMemory({ kv: counted, now: () => now });
    again.seen(repoHook);
    again.seen(repoHook);
    await again.idle();
    assert.equal(sets.length, 3);
  } finally {
    kv.close();
  }
});

Deno.test("createAccept() tells the hook memory of new deliveries only, after storing them", async () => {
  const seen: string[] = [];
  let stored = 0;
  const results = ["queued", "duplicate"] as const;
  const accept = createAccept({
    store: {
      accept: (delivery) => {
        stored++;
        if (stored === 1) assert.equal(seen.length, 0, "not before storing");
        return Promise.resolve({
          status: results[stored - 1]!,
          id: delivery.id,
        });
      },
    },
    worker: {
      reserve: () => null,
      runLeased: () => {},
      release: () => {},
      wake: () => {},
    },
    hooks: { seen: (delivery) => seen.push(String(delivery.hookId)) },
  });
  const delivery = {
    id: "d1",
    hookId: "42",
    body: new Uint8Array(2),
  } as unknown as IncomingDelivery;
  await accept(delivery);
  await accept(delivery);
  assert.deepEqual(seen, ["42"]);
});
