// End to end, with real processes on a real KV file: a delivery whose run
// keeps ending its process is dead within MAX_ATTEMPTS restarts while other
// deliveries flow, and after a SIGKILL mid-burst a restarted process takes
// back its predecessor's leases, so every acknowledged delivery runs soon
// after the restart (not when long leases lapse). The server is main.ts with
// two more handlers (tests/fixtures/lease_server.ts).

import assert from "node:assert/strict";
import {
  freePort,
  postDelivery,
  type ServerProcess,
  startServer,
  waitFor,
} from "../_helpers.ts";

const ENTRY = new URL("../fixtures/lease_server.ts", import.meta.url).pathname;
const TOKEN = "admin-t0ken-for-the-lease-tests";

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
  }, { cwd, entry: ENTRY });
}

async function statuses(url: string): Promise<Map<string, string>> {
  const res = await fetch(`${url}/deliveries?limit=1000`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 200);
  const list: Array<{ id: string; status: string }> =
    (await res.json()).deliveries;
  return new Map(list.map((d) => [d.id, d.status]));
}

async function record(
  url: string,
  id: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 200);
  return await res.json();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Posts `ids` as quick `slow` deliveries and waits until each is done. */
async function flows(url: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    assert.equal((await postDelivery(url, { event: "slow", id })).status, 202);
  }
  await waitFor(
    async () => {
      const now = await statuses(url);
      return ids.every((id) => now.get(id) === "done");
    },
    10_000,
    `${ids.join(", ")} done`,
  );
}

Deno.test("a delivery whose run keeps killing its process ends dead within MAX_ATTEMPTS restarts; others flow", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-crashloop-" });
  const env = { MAX_ATTEMPTS: "2", PORT: String(freePort()), SLOW_MS: "20" };
  const ran = (attempt: number) => `${cwd}/data/ran-doomed-${attempt}`;
  let server = await start(cwd, env);
  try {
    const res = await postDelivery(server.url, { event: "hang", id: "doomed" });
    assert.equal(res.status, 202);
    for (const attempt of [1, 2]) {
      // The run is under way: the process dies (as by Deno.exit or OOM).
      await waitFor(() => exists(ran(attempt)), 20_000, `run ${attempt}`);
      await flows(server.url, [`ok-${attempt}a`, `ok-${attempt}b`]);
      await server.stop("SIGKILL");
      server = await start(cwd, env);
    }
    // The third process gives it up rather than run it a third time.
    await waitFor(
      async () => (await statuses(server.url)).get("doomed") === "dead",
      20_000,
      "doomed dead",
    );
    const doomed = await record(server.url, "doomed");
    assert.equal(doomed.attempts, 2);
    assert.match(
      String(doomed.error),
      /run ended before recording an outcome 2 times .*given up after 2 attempts/,
    );
    await flows(server.url, ["ok-3a", "ok-3b"]);
    assert.equal(await exists(ran(3)), false, "never run a third time");
    const dead = server.lines.filter((l) => l.includes('"delivery dead"'));
    assert.equal(dead.length, 1, dead.join("\n"));
    assert.equal(JSON.parse(dead[0]!).level, "error");
    assert.equal(JSON.parse(dead[0]!).delivery, "doomed");
  } finally {
    assert.equal((await server.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("after a SIGKILL mid-burst, a restart takes back the leases and every acknowledged delivery runs soon", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-reclaim-" });
  // Default HANDLER_TIMEOUT_MS and MAX_CONCURRENCY; each run takes a second.
  const env = { PORT: String(freePort()), SLOW_MS: "1000" };
  const first = await start(cwd, env);
  const acked: string[] = [];
  try {
    // 48 at once from 8 senders: 8 run, the rest wait leased or queued.
    await Promise.all(Array.from({ length: 8 }, async (_, sender) => {
      for (let i = 0; i < 6; i++) {
        const id = `burst-${sender}-${i}`;
        const res = await postDelivery(first.url, { event: "slow", id });
        if (res.status === 202) acked.push(id);
      }
    }));
    await waitFor(
      async () => {
        let started = 0;
        for await (const file of Deno.readDir(`${cwd}/data`)) {
          if (file.name.startsWith("ran-")) started++;
        }
        return started >= 8; // every slot runs
      },
      10_000,
      "runs under way",
    );
  } finally {
    await first.stop("SIGKILL");
  }
  assert.equal(acked.length, 48);

  // What the dead process left: runs and waits leased to it, not lapsed.
  const kv = await Deno.openKv(`${cwd}/data/hookgate.kv`);
  let leased = 0;
  try {
    for (const id of acked) {
      const r = (await kv.get<{ status: string; dueAt: number }>([
        "hookgate",
        "d",
        id,
      ])).value;
      if (r?.status === "running" && r.dueAt > Date.now()) leased++;
    }
  } finally {
    kv.close();
  }
  assert.ok(leased >= 8, `${leased} deliveries still leased to the dead one`);

  const second = await start(cwd, env);
  try {
    // The old leases were (1 + ahead / 8) × 30 s + 5 s: 35 to 125 s.
    await waitFor(
      async () => {
        const now = await statuses(second.url);
        return acked.every((id) => now.get(id) === "done");
      },
      30_000,
      "every acknowledged delivery done",
    );
    const reclaim = await second.waitForLine(/"reclaimed":/);
    assert.ok(JSON.parse(reclaim).reclaimed >= leased, reclaim);
  } finally {
    assert.equal((await second.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deliveries that only waited for a slot lose no attempt to a SIGKILL: they run after the restart", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-waited-" });
  const env = {
    MAX_CONCURRENCY: "1",
    MAX_ATTEMPTS: "1",
    PORT: String(freePort()),
    SLOW_MS: "20",
  };
  const waited = ["waited-1", "waited-2", "waited-3"];
  const first = await start(cwd, env);
  try {
    const res = await postDelivery(first.url, { event: "hang", id: "stuck" });
    assert.equal(res.status, 202);
    await waitFor(() => exists(`${cwd}/data/ran-stuck-1`), 10_000, "hang runs");
    // The only slot is taken: these are acknowledged and wait in memory.
    for (const id of waited) {
      const res = await postDelivery(first.url, { event: "slow", id });
      assert.equal(res.status, 202);
    }
  } finally {
    await first.stop("SIGKILL");
  }
  const second = await start(cwd, env);
  try {
    await waitFor(
      async () => {
        const now = await statuses(second.url);
        return waited.every((id) => now.get(id) === "done") &&
          now.get("stuck") === "dead";
      },
      30_000,
      "the waiting ones done, the hanging one dead",
    );
    for (const id of waited) {
      assert.equal((await record(second.url, id)).attempts, 1, id);
      assert.ok(await exists(`${cwd}/data/ran-${id}-1`), `${id} ran`);
    }
    // The hanging one used its only attempt, and was given up for it.
    const stuck = await record(second.url, "stuck");
    assert.equal(stuck.attempts, 1);
    assert.match(String(stuck.error), /given up after 1 attempts/);
    assert.equal(await exists(`${cwd}/data/ran-stuck-2`), false);
  } finally {
    assert.equal((await second.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});
