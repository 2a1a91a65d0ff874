// End to end, "many hosts" (contract section "Many hosts"): several hookgate
// processes share one KV over KV Connect, served by the test KV Connect
// server (tests/fixtures/kv_connect/server.ts, with self-hosted denokv's
// limits) as a process of its own. The hookgate processes are main.ts with a
// `count` handler that appends `<delivery> <attempt> <pid>` to
// ./data/runs.log (tests/fixtures/many_hosts_server.ts); they all run in one
// working directory, so that log shows every run of every process, and a
// delivery run twice at one attempt shows as two lines.
//
// Covered: 2,000 deliveries spread across three processes, each run exactly
// once, no commit refused for its size; dedupe across processes; a process
// SIGKILLed mid-burst loses nothing it acknowledged; the KV server restarted
// (with its data file) while the receivers answer 503, then recover alone.
// One test is ignored for a lib/ bug: /readyz hangs while the KV is down.

import assert from "node:assert/strict";
import {
  freePort,
  postDelivery,
  SECRET,
  type ServerProcess,
  startServer,
  waitFor,
} from "../_helpers.ts";

const ENTRY = new URL("../fixtures/many_hosts_server.ts", import.meta.url)
  .pathname;
const KV_SERVER = new URL("../fixtures/kv_connect/server.ts", import.meta.url)
  .pathname;
const ADMIN = "admin-t0ken-for-the-many-hosts-tests";
const KV_TOKEN = "kv-connect-t0ken-many-hosts";
/** The webhook's default accept timeout (`acceptTimeoutMs`, lib/http/server.ts). */
const ACCEPT_TIMEOUT_MS = 8_000;
/** How long a probe may take to answer: load balancers give up at 5 s or less. */
const READYZ_MS = 5_000;

// ---------------------------------------------------------------------------
// The KV Connect server as a process

interface KvProcess {
  port: number;
  url: string;
  stats(): Promise<KvStats>;
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

interface KvStats {
  commits: number;
  refused: number;
  refusals: Record<string, number>;
  maxChecks: number;
  maxMutations: number;
  maxReadRanges: number;
  maxInFlight: number;
}

async function startKv(
  options: { port?: number; data?: string } = {},
): Promise<KvProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      KV_SERVER,
      "--port",
      String(options.port ?? 0),
      "--token",
      KV_TOKEN,
      "--limits",
      "denokv",
      ...(options.data ? ["--data", options.data] : []),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* nothing else is printed */ }
  })();
  const { listening } = JSON.parse(text) as { listening: number };
  const url = `http://127.0.0.1:${listening}`;
  let status: Promise<Deno.CommandStatus> | null = null;
  return {
    port: listening,
    url,
    async stats() {
      const res = await fetch(`${url}/_control/stats`, {
        headers: { authorization: `Bearer ${KV_TOKEN}` },
      });
      assert.equal(res.status, 200);
      return await res.json();
    },
    stop(signal: Deno.Signal = "SIGTERM") {
      status ??= (async () => {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
        const s = await child.status;
        await drained;
        return s;
      })();
      return status;
    },
  };
}

// ---------------------------------------------------------------------------
// hookgate processes

function startHost(
  cwd: string,
  kv: KvProcess,
  host: string,
  port = freePort(),
): Promise<ServerProcess> {
  return startServer({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    ADMIN_TOKEN: ADMIN,
    KV_PATH: kv.url,
    DENO_KV_ACCESS_TOKEN: KV_TOKEN,
    HOSTNAME: host,
    PORT: String(port),
  }, { cwd, entry: ENTRY });
}

async function startHosts(
  cwd: string,
  kv: KvProcess,
): Promise<ServerProcess[]> {
  return await Promise.all(
    ["host-a", "host-b", "host-c"].map((h) => startHost(cwd, kv, h)),
  );
}

async function stopAll(procs: ServerProcess[]): Promise<void> {
  const statuses = await Promise.all(procs.map((p) => p.stop()));
  for (const [i, s] of statuses.entries()) {
    assert.equal(s.code, 0, procs[i]!.lines.slice(-20).join("\n"));
  }
}

/** The record's status through one process's admin API (null: not found). */
async function statusOf(url: string, id: string): Promise<string | null> {
  const res = await fetch(`${url}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  assert.equal(res.status, 200);
  return (await res.json()).status;
}

/** Waits until every id is `done`, asking the processes in turn. */
async function allDone(
  urls: string[],
  ids: Iterable<string>,
  ms: number,
): Promise<void> {
  const pending = new Set(ids);
  let last = "";
  await waitFor(
    async () => {
      const now = [...pending];
      await pool(now, 32, async (id, i) => {
        const status = await statusOf(urls[i % urls.length]!, id);
        if (status === "done") pending.delete(id);
        else last = `${id} is ${status}`;
      });
      return pending.size === 0;
    },
    ms,
    `every delivery done (${pending.size} not: ${last})`,
  );
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function pool<T>(
  items: T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await task(items[i]!, i);
      }
    }),
  );
}

interface Run {
  id: string;
  attempt: number;
  pid: number;
}

async function runs(cwd: string): Promise<Run[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${cwd}/data/runs.log`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return text.split("\n").filter((l) => l !== "").map((line) => {
    const [id, attempt, pid] = line.split(" ");
    return { id: id!, attempt: Number(attempt), pid: Number(pid) };
  });
}

/** Each (delivery, attempt) seen more than once in `list`. */
function doubleRuns(list: Run[]): string[] {
  const seen = new Map<string, number>();
  for (const r of list) {
    const key = `${r.id}#${r.attempt}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
}

/** What `/readyz` answers within `ms`, as text ("no answer" when none). */
async function readyzWithin(url: string, ms: number): Promise<string> {
  try {
    const res = await fetch(`${url}/readyz`, {
      signal: AbortSignal.timeout(ms),
    });
    return `${res.status} ${await res.text()}`;
  } catch (err) {
    if (err instanceof DOMException && err.name === "TimeoutError") {
      return `no answer within ${ms} ms`;
    }
    throw err;
  }
}

async function tempDir(prefix: string): Promise<string> {
  const cwd = await Deno.makeTempDir({ prefix });
  await Deno.mkdir(`${cwd}/data`);
  return cwd;
}

// ---------------------------------------------------------------------------

Deno.test("2,000 deliveries across three processes on one KV Connect server each run exactly once, no commit refused", async () => {
  const cwd = await tempDir("hookgate-hosts-burst-");
  const kv = await startKv();
  let hosts: ServerProcess[] = [];
  try {
    hosts = await startHosts(cwd, kv);
    const urls = hosts.map((h) => h.url);
    const ids = Array.from({ length: 2000 }, (_, i) => `burst-${i}`);
    const answers = new Map<number, number>();
    const started = performance.now();
    await pool(ids, 32, async (id, i) => {
      const res = await postDelivery(urls[i % 3]!, { event: "count", id });
      answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
    });
    const acked = performance.now();
    assert.deepEqual([...answers], [[202, 2000]]);

    await waitFor(
      async () => (await runs(cwd)).length >= ids.length,
      60_000,
      "every delivery run",
    );
    await allDone(urls, ids, 30_000);
    const finished = performance.now();

    const list = await runs(cwd);
    assert.deepEqual(doubleRuns(list), []);
    assert.equal(list.length, ids.length);
    assert.deepEqual(new Set(list.map((r) => r.id)), new Set(ids));
    assert.ok(list.every((r) => r.attempt === 1), "all at attempt 1");
    const pids = new Set(list.map((r) => r.pid));
    assert.ok(pids.size >= 2, `runs shared by ${pids.size} processes`);

    const stats = await kv.stats();
    assert.equal(stats.refused, 0, JSON.stringify(stats.refusals));
    assert.ok(stats.maxChecks <= 10, `largest checks ${stats.maxChecks}`);
    assert.ok(stats.maxReadRanges <= 10, `read ranges ${stats.maxReadRanges}`);
    console.log(
      `many hosts: 2000 deliveries, 3 processes, 32 in flight: acked in ${
        Math.round(acked - started)
      } ms (${Math.round(2000 / ((acked - started) / 1000))}/s), all done in ${
        Math.round(finished - started)
      } ms (${
        Math.round(2000 / ((finished - started) / 1000))
      }/s); run by ${pids.size} processes; KV: ${stats.commits} commits, max checks ${stats.maxChecks}, max mutations ${stats.maxMutations}, max in flight ${stats.maxInFlight}`,
    );
    await stopAll(hosts);
    hosts = [];
  } finally {
    await Promise.all(hosts.map((h) => h.stop("SIGKILL")));
    await kv.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a delivery id, or the same body bytes, already taken on one process is a duplicate on another", async () => {
  const cwd = await tempDir("hookgate-hosts-dedupe-");
  const kv = await startKv();
  let hosts: ServerProcess[] = [];
  try {
    hosts = await startHosts(cwd, kv);
    const [a, b, c] = hosts as [ServerProcess, ServerProcess, ServerProcess];
    const body = JSON.stringify({ zen: "Same bytes.", nonce: "fixed-1" });

    const first = await postDelivery(a.url, {
      event: "count",
      id: "d-1",
      body,
    });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const again = await postDelivery(b.url, {
      event: "count",
      id: "d-1",
      body,
    });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { status: "duplicate", delivery: "d-1" });
    const sameBytes = await postDelivery(c.url, {
      event: "count",
      id: "d-2",
      body,
    });
    assert.equal(sameBytes.status, 200);
    assert.deepEqual(sameBytes.body, { status: "duplicate", delivery: "d-1" });

    // At once from all three: exactly one is accepted.
    const raced = await Promise.all(
      hosts.map((h) =>
        postDelivery(h.url, { event: "count", id: "d-3", body: `{"n":3}` })
      ),
    );
    assert.deepEqual(raced.map((r) => r.status).sort(), [200, 200, 202]);

    await allDone([b.url], ["d-1", "d-3"], 10_000);
    assert.equal(await statusOf(c.url, "d-2"), null);
    const list = await runs(cwd);
    assert.deepEqual(list.map((r) => r.id).sort(), ["d-1", "d-3"]);
    await stopAll(hosts);
    hosts = [];
  } finally {
    await Promise.all(hosts.map((h) => h.stop("SIGKILL")));
    await kv.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a process SIGKILLed mid-burst loses nothing it acknowledged, and nothing runs twice at one attempt", async () => {
  const cwd = await tempDir("hookgate-hosts-kill-");
  const kv = await startKv();
  let hosts: ServerProcess[] = [];
  try {
    hosts = await startHosts(cwd, kv);
    const victim = hosts[0]!;
    const urls = hosts.map((h) => h.url);
    const ids = Array.from({ length: 300 }, (_, i) => `kill-${i}`);
    const acked = new Set<string>();
    let posted = 0;
    const killing: { status: Promise<Deno.CommandStatus> | null } = {
      status: null,
    };
    await pool(ids, 24, async (id, i) => {
      // A third of the way through, the first process dies with its runs
      // under way and its answers in flight.
      if (++posted === 100) killing.status = victim.stop("SIGKILL");
      try {
        const res = await postDelivery(urls[i % 3]!, { event: "count", id });
        if (res.status === 202) acked.add(id);
        else assert.fail(`${id}: ${res.status} ${JSON.stringify(res.body)}`);
      } catch (err) {
        // Only the killed process may fail to answer (unacknowledged).
        if (i % 3 !== 0 || killing.status === null) throw err;
      }
    });
    assert.ok(killing.status, "the victim was killed");
    assert.equal((await killing.status).signal, "SIGKILL");
    const ackedByVictim = ids.filter((id, i) => i % 3 === 0 && acked.has(id));
    assert.ok(
      ackedByVictim.length >= 20,
      `victim acked ${ackedByVictim.length}`,
    );
    assert.ok(acked.size >= 200, `acked ${acked.size}`);

    // Restart it in its seat (same port and HOSTNAME on the same KV URL):
    // it takes the killed process's leases back at once, rather than
    // leaving them to lapse (LEASE_MS, 15 s).
    const restartedAt = performance.now();
    hosts[0] = await startHost(cwd, kv, "host-a", victim.port);
    await allDone(hosts.map((h) => h.url), acked, 40_000);
    const reclaim = hosts[0].lines.find((l) =>
      l.includes("took back the leases of the process this one replaces")
    );
    // It held leases at the kill only if runs were under way at that moment.
    if (reclaim !== undefined) assert.ok(JSON.parse(reclaim).reclaimed > 0);
    const doneIn = performance.now() - restartedAt;

    const list = await runs(cwd);
    assert.deepEqual(doubleRuns(list), []);
    const ran = new Set(list.map((r) => r.id));
    assert.deepEqual([...acked].filter((id) => !ran.has(id)), []);
    const retried = list.filter((r) => r.attempt > 1).length;
    console.log(
      `many hosts, SIGKILL (${
        reclaim ? "leases taken back" : "no lease held"
      }): ${acked.size} acknowledged (${ackedByVictim.length} by the killed process), all done ${
        Math.round(doneIn)
      } ms after the restart; ${retried} runs at attempt > 1`,
    );
    const stats = await kv.stats();
    assert.equal(stats.refused, 0, JSON.stringify(stats.refusals));
    await stopAll(hosts);
    hosts = [];
  } finally {
    await Promise.all(hosts.map((h) => h.stop("SIGKILL")));
    await kv.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("the KV server restarted with its data: receivers answer 503 meanwhile, then recover by themselves", async () => {
  const cwd = await tempDir("hookgate-hosts-kvrestart-");
  const data = `${cwd}/kv.jsonl`;
  let kv = await startKv({ data });
  let hosts: ServerProcess[] = [];
  try {
    hosts = await startHosts(cwd, kv);
    const urls = hosts.map((h) => h.url);
    const before = Array.from({ length: 60 }, (_, i) => `before-${i}`);
    await pool(before, 12, async (id, i) => {
      const res = await postDelivery(urls[i % 3]!, { event: "count", id });
      assert.equal(res.status, 202);
    });

    assert.equal((await kv.stop("SIGKILL")).signal, "SIGKILL");
    // While it is down, no receiver can store a delivery: 503, within the
    // webhook's accept timeout.
    const down = await Promise.all(urls.map(async (url, i) => {
      const t0 = performance.now();
      const res = await postDelivery(url, {
        event: "count",
        id: `while-down-${i}`,
      });
      return { res, ms: performance.now() - t0 };
    }));
    for (const { res, ms } of down) {
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.error, "unavailable");
      assert.ok(
        ms < ACCEPT_TIMEOUT_MS + 3000,
        `answered in ${Math.round(ms)} ms`,
      );
    }
    // What /readyz says meanwhile is observed, not asserted here: it does
    // not answer while the KV Connect server is down (see the ignored test
    // below).
    const ready = await readyzWithin(urls[0]!, READYZ_MS);
    console.log(
      `many hosts, KV down: 503 in ${
        down.map((d) => Math.round(d.ms)).join(", ")
      } ms; /readyz ${ready}`,
    );

    kv = await startKv({ port: kv.port, data });
    const after = Array.from({ length: 30 }, (_, i) => `after-${i}`);
    await waitFor(
      async () =>
        (await postDelivery(urls[0]!, { event: "count", id: after[0]! }))
          .status === 202,
      20_000,
      "a delivery accepted after the restart",
    );
    await pool(after.slice(1), 12, async (id, i) => {
      const res = await postDelivery(urls[(i + 1) % 3]!, {
        event: "count",
        id,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
    });
    await allDone(urls, [...before, ...after], 30_000);
    await waitFor(
      async () =>
        (await Promise.all(urls.map((u) => fetch(`${u}/readyz`)))).every(
          (r) => (r.body?.cancel(), r.status === 200),
        ),
      10_000,
      "every receiver ready again",
    );

    const list = await runs(cwd);
    assert.deepEqual(doubleRuns(list), []);
    const ran = new Set(list.map((r) => r.id));
    for (const id of [...before, ...after]) assert.ok(ran.has(id), id);
    // A 503 acknowledged nothing, but its write may still land once the KV
    // is back (GitHub's redelivery is then a duplicate): observed only.
    const late = await Promise.all(
      urls.map((u, i) => statusOf(u, `while-down-${i}`)),
    );
    console.log(
      `many hosts, KV back: the 503'd deliveries are ${JSON.stringify(late)}`,
    );
    await stopAll(hosts);
    hosts = [];
  } finally {
    await Promise.all(hosts.map((h) => h.stop("SIGKILL")));
    await kv.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test({
  name: "/readyz answers 503 within 5 s while the KV Connect server is down",
  async fn() {
    const cwd = await tempDir("hookgate-hosts-readyz-");
    const kv = await startKv();
    let host: ServerProcess | null = null;
    try {
      host = await startHost(cwd, kv, "host-a");
      assert.match(await readyzWithin(host.url, READYZ_MS), /^200 /);
      await kv.stop("SIGKILL");
      const ready = await readyzWithin(host.url, READYZ_MS);
      assert.match(ready, /^503 .*"not_ready"/);
    } finally {
      await host?.stop("SIGKILL");
      await kv.stop();
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
