// What a handler can do to a real server process, with handlers in the
// pool's Worker isolates (tests/fixtures/hostile_server.ts): Deno.exit ends
// only its isolate; exhausting the heap ends the process (a V8 limit), and
// then the delivery is dead within MAX_ATTEMPTS restarts while others flow.

import assert from "node:assert/strict";
import {
  freePort,
  postDelivery,
  type ServerProcess,
  startServer,
  waitFor,
} from "../_helpers.ts";

const ENTRY = new URL("../fixtures/hostile_server.ts", import.meta.url)
  .pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "admin-token-for-the-hostile-handler-tests";

function start(
  cwd: string,
  env: Record<string, string>,
): Promise<ServerProcess> {
  return startServer({
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    IP_ALLOWLIST: "off",
    ADMIN_TOKEN: TOKEN,
    KV_PATH: "./data/hookgate.kv",
    ...env,
  }, {
    cwd,
    entry: ENTRY,
    // A small heap, so that exhausting it takes a moment, not 4 GB.
    // The isolates load the fixture's handlers too.
    extraFlags: [
      "--v8-flags=--max-old-space-size=96",
      `--allow-read=.env,./data,${ROOT}lib,${ROOT}tests/fixtures`,
    ],
  });
}

async function record(
  url: string,
  id: string,
): Promise<Record<string, unknown> | null> {
  const res = await fetch(`${url}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  return await res.json();
}

async function done(url: string, id: string): Promise<void> {
  assert.equal((await postDelivery(url, { event: "ok", id })).status, 202);
  await waitFor(
    async () => (await record(url, id))?.status === "done",
    15_000,
    `${id} done`,
  );
}

Deno.test("Deno.exit in a handler fails its attempt and the server serves on", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-exit-" });
  const server = await start(cwd, { PORT: String(freePort()) });
  try {
    const res = await postDelivery(server.url, { event: "exit", id: "quits" });
    assert.equal(res.status, 202);
    const quits = await waitFor(
      async () => {
        const r = await record(server.url, "quits");
        return r?.status === "failed" ? r : null;
      },
      15_000,
      "quits failed",
    );
    assert.match(String(quits.error), /a handler called Deno\.exit\(1\)/);
    await done(server.url, "after-exit");
  } finally {
    assert.equal((await server.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a handler exhausting the heap ends dead within MAX_ATTEMPTS restarts while other deliveries flow", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-oom-" });
  const env = { MAX_ATTEMPTS: "2", PORT: String(freePort()) };
  let server = await start(cwd, env);
  try {
    const res = await postDelivery(server.url, { event: "oom", id: "hoard" });
    assert.equal(res.status, 202, "acknowledged before the run began");
    for (let restart = 1; restart <= 2; restart++) {
      // The run exhausts the heap: V8 ends the whole process.
      const status = await server.child.status;
      assert.notEqual(status.code, 0, `crash ${restart}`);
      server = await start(cwd, env);
      await done(server.url, `ok-${restart}`);
    }
    const hoard = await waitFor(
      async () => {
        const r = await record(server.url, "hoard");
        return r?.status === "dead" ? r : null;
      },
      20_000,
      "hoard dead",
    );
    assert.equal(hoard.attempts, 2);
    assert.match(String(hoard.error), /given up after 2 attempts/);
    await done(server.url, "ok-after");
  } finally {
    await server.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});
