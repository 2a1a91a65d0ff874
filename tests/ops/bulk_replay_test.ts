// Bulk replay (`POST /deliveries/replay`): the filter's parsing, its 400s
// over HTTP, dead deliveries replayed by one call and run to done, the
// event and time filters, and 500 dead deliveries replayed while 50
// deliveries a second keep arriving.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import type { HandlerRegistry } from "../../lib/dispatch.ts";
import {
  createBulkReplays,
  MAX_FILTER_BYTES,
  parseIsoTime,
  parseReplayFilter,
  type ReplayProgress,
} from "../../lib/ops/admin.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import {
  captureLogger,
  deliveryRequest,
  testConfig,
  waitFor,
} from "../_helpers.ts";

const TOKEN = "bulk-replay-test-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

Deno.test("parseIsoTime() takes a date, or a date and time with a zone", async (t) => {
  const table: [string, number | null][] = [
    ["2025-01-02", Date.UTC(2025, 0, 2)],
    ["2025-01-02T03:04:05Z", Date.UTC(2025, 0, 2, 3, 4, 5)],
    ["2025-01-02T03:04:05.678Z", Date.UTC(2025, 0, 2, 3, 4, 5, 678)],
    ["2025-01-02T03:04Z", Date.UTC(2025, 0, 2, 3, 4)],
    ["2025-01-02T05:04:05+02:00", Date.UTC(2025, 0, 2, 3, 4, 5)],
    ["2025-01-02T03:04:05", null],
    ["2025-13-02", null],
    ["2025-02-30T00:00:00Z", null],
    ["2024-02-29", Date.UTC(2024, 1, 29)],
    ["2025-01-02T24:00:00Z", null],
    ["2025-01-02T03:60Z", null],
    ["yesterday", null],
    ["1735787045000", null],
    [" 2025-01-02", null],
    ["", null],
  ];
  for (const [text, expected] of table) {
    await t.step(JSON.stringify(text), () => {
      assert.equal(parseIsoTime(text), expected);
    });
  }
});

Deno.test("parseReplayFilter() accepts the four statuses with an optional event and times, and names what is wrong otherwise", async (t) => {
  await t.step("good filters", () => {
    for (const status of ["dead", "failed", "done", "skipped"]) {
      assert.deepEqual(parseReplayFilter(JSON.stringify({ status })), {
        ok: true,
        filter: { status },
      });
    }
    assert.deepEqual(
      parseReplayFilter(JSON.stringify({
        status: "dead",
        event: "push",
        since: "2025-01-02T00:00:00Z",
        until: "2025-01-02T00:00:00Z",
      })),
      {
        ok: true,
        filter: {
          status: "dead",
          event: "push",
          since: Date.UTC(2025, 0, 2),
          until: Date.UTC(2025, 0, 2),
        },
      },
    );
  });
  const bad: [string, string, RegExp][] = [
    ["not JSON", "{status:dead}", /JSON object/],
    ["an empty body", "", /JSON object/],
    ["an array", '["dead"]', /JSON object/],
    ["null", "null", /JSON object/],
    ["a missing status", "{}", /status is missing/],
    ["an unknown status", '{"status":"queued"}', /status .*dead, failed/],
    ["a status that is not text", '{"status":1}', /status/],
    ["an unknown field", '{"status":"dead","before":"x"}', /"before"/],
    ["an empty event", '{"status":"dead","event":""}', /event/],
    ["an event that is not text", '{"status":"dead","event":3}', /event/],
    ["a bad since", '{"status":"dead","since":"yesterday"}', /since .*ISO/],
    [
      "a since with no zone",
      '{"status":"dead","since":"2025-01-02T03:04"}',
      /since/,
    ],
    ["a bad until", '{"status":"dead","until":17}', /until .*ISO/],
    [
      "since after until",
      '{"status":"dead","since":"2025-01-03","until":"2025-01-02"}',
      /since is later than until/,
    ],
  ];
  for (const [what, text, message] of bad) {
    await t.step(what, () => {
      const parsed = parseReplayFilter(text);
      assert.equal(parsed.ok, false);
      assert.match((parsed as { message: string }).message, message);
    });
  }
});

/** A real app served on 127.0.0.1 on a KV file, with the admin API on. */
async function withServer(
  env: Record<string, string>,
  registry: HandlerRegistry,
  fn: (s: { app: App; base: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-bulk-" });
  const kv = await Deno.openKv(`${dir}/hookgate.kv`);
  const app = await createApp({
    config: testConfig({ ADMIN_TOKEN: TOKEN, MAX_ATTEMPTS: "1", ...env }),
    log: captureLogger("info").log,
    kv,
    registry,
    worker: { pollMs: 20, retryBaseMs: 10 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) => app.fetch(request, info),
  );
  try {
    await fn({ app, base: `http://127.0.0.1:${server.addr.port}` });
  } finally {
    stop.abort();
    await app.close(2000);
    await server.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Posts one signed delivery; its status. */
async function post(base: string, id: string, event: string): Promise<number> {
  const res = await fetch(
    await deliveryRequest({ url: `${base}/webhook`, id, event }),
  );
  await res.body?.cancel();
  return res.status;
}

function replay(
  base: string,
  body: unknown,
  headers: Record<string, string> = AUTH,
): Promise<Response> {
  return fetch(`${base}/deliveries/replay`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Polls a job until it is done; its last progress. */
function jobDone(base: string, job: string): Promise<ReplayProgress> {
  return waitFor(
    async () => {
      const res = await fetch(`${base}/deliveries/replay/${job}`, {
        headers: AUTH,
      });
      assert.equal(res.status, 200);
      const progress: ReplayProgress = await res.json();
      return progress.done ? progress : null;
    },
    10_000,
    `replay job ${job} done`,
  );
}

/** A push handler that fails while `failing` is true; ping always succeeds. */
function flaky(): { registry: HandlerRegistry; state: { failing: boolean } } {
  const state = { failing: true };
  return {
    state,
    registry: {
      push: {
        default() {
          if (state.failing) throw new Error("not yet");
        },
      },
      ping: { default() {} },
    },
  };
}

async function statusOf(app: App, id: string): Promise<string | undefined> {
  return (await app.store.get(id))?.status;
}

Deno.test("POST /deliveries/replay answers 400 bad_filter naming the field, 403 cross-site, 401 without the token", async () => {
  await withServer({}, {}, async ({ base }) => {
    const bad: [string, string | unknown, RegExp][] = [
      ["missing status", {}, /status is missing/],
      ["unknown status", { status: "lost" }, /status/],
      ["bad time", { status: "dead", since: "last tuesday" }, /since/],
      ["bad until", { status: "dead", until: "2025-02-30T00:00:00Z" }, /until/],
      [
        "since > until",
        { status: "dead", since: "2025-01-02", until: "2025-01-01" },
        /since is later than until/,
      ],
      ["unknown field", { status: "dead", repo: "x" }, /"repo"/],
      ["not JSON", "status=dead", /JSON object/],
      ["empty", "", /JSON object/],
      [
        "too large",
        JSON.stringify({ status: "dead", event: "x".repeat(MAX_FILTER_BYTES) }),
        new RegExp(`at most ${MAX_FILTER_BYTES} bytes`),
      ],
    ];
    for (const [what, body, message] of bad) {
      const res = await replay(base, body);
      assert.equal(res.status, 400, what);
      const answer = await res.json();
      assert.equal(answer.error, "bad_filter", what);
      assert.match(answer.message, message, what);
    }
    const cross = await replay(base, { status: "dead" }, {
      ...AUTH,
      origin: "https://evil.example",
    });
    assert.equal(cross.status, 403);
    assert.equal((await cross.json()).error, "cross_site");
    const anonymous = await replay(base, { status: "dead" }, {});
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();

    const unknownJob = await fetch(`${base}/deliveries/replay/nope`, {
      headers: AUTH,
    });
    assert.equal(unknownJob.status, 404);
    await unknownJob.body?.cancel();
    // GET /deliveries/replay is still the delivery whose id is "replay".
    const asDelivery = await fetch(`${base}/deliveries/replay`, {
      headers: AUTH,
    });
    assert.equal(asDelivery.status, 404);
    assert.match((await asDelivery.json()).message, /"replay" is stored/);
    const nothing = await replay(base, { status: "dead" });
    assert.equal(nothing.status, 202);
    const empty = await nothing.json();
    assert.equal(empty.replayed, 0);
    assert.deepEqual(await jobDone(base, empty.job), {
      job: empty.job,
      total: 0,
      replayed: 0,
      failed: 0,
      done: true,
      truncated: false,
    });
  });
});

Deno.test("three dead deliveries are replayed by one call and end done", async () => {
  const { registry, state } = flaky();
  await withServer({}, registry, async ({ app, base }) => {
    const ids = ["dead-1", "dead-2", "dead-3"];
    for (const id of ids) assert.equal(await post(base, id, "push"), 202);
    assert.equal(await post(base, "fine", "ping"), 202);
    for (const id of ids) {
      await waitFor(async () => (await statusOf(app, id)) === "dead");
    }
    await waitFor(async () => (await statusOf(app, "fine")) === "done");
    state.failing = false;

    const res = await replay(base, { status: "dead" });
    assert.equal(res.status, 202);
    const answer = await res.json();
    assert.equal(answer.replayed, 3);
    assert.equal(answer.truncated, false);
    assert.equal(answer.progress, `/deliveries/replay/${answer.job}`);
    const progress = await jobDone(base, answer.job);
    assert.equal(progress.replayed, 3);
    assert.equal(progress.failed, 0);
    for (const id of ids) {
      await waitFor(async () => (await statusOf(app, id)) === "done", 5000, id);
      const record = (await app.store.get(id))!;
      assert.equal(record.replays, 1);
      assert.equal(record.attempts, 2);
    }
    const fine = (await app.store.get("fine"))!;
    assert.equal(fine.replays, 0, "a done delivery is not a dead one");
    assert.equal(fine.attempts, 1);
  });
});

Deno.test("a bulk replay selects by event and by receive time, both ends inclusive", async () => {
  const { registry } = flaky(); // push stays failing: replayed ones end dead again
  await withServer({}, registry, async ({ app, base }) => {
    const ids = ["t-1", "t-2", "t-3", "t-4"];
    for (const id of ids) {
      assert.equal(await post(base, id, "push"), 202);
      await new Promise((r) => setTimeout(r, 5)); // distinct receive times
    }
    for (const id of ids) {
      await waitFor(async () => (await statusOf(app, id)) === "dead");
    }
    const at = async (id: string) =>
      new Date((await app.store.get(id))!.receivedAt).toISOString();
    const replays = async () =>
      Object.fromEntries(
        await Promise.all(
          ids.map(async (id) => [id, (await app.store.get(id))!.replays]),
        ),
      );

    // Another event: nothing matches.
    let res = await replay(base, { status: "dead", event: "issues" });
    assert.equal((await res.json()).replayed, 0);
    // Another status: nothing matches.
    res = await replay(base, { status: "done", event: "push" });
    assert.equal((await res.json()).replayed, 0);

    res = await replay(base, {
      status: "dead",
      event: "push",
      since: await at("t-2"),
      until: await at("t-3"),
    });
    assert.equal(res.status, 202);
    const answer = await res.json();
    assert.equal(answer.replayed, 2);
    await jobDone(base, answer.job);
    for (const id of ["t-2", "t-3"]) {
      await waitFor(
        async () => {
          const r = await app.store.get(id);
          return r?.status === "dead" && r.attempts === 2;
        },
        5000,
        `${id} ran again`,
      );
    }
    assert.deepEqual(await replays(), {
      "t-1": 0,
      "t-2": 1,
      "t-3": 1,
      "t-4": 0,
    });

    res = await replay(base, { status: "dead", since: await at("t-4") });
    const last = await res.json();
    assert.equal(last.replayed, 1);
    await jobDone(base, last.job);
    res = await replay(base, { status: "dead", until: await at("t-1") });
    const first = await res.json();
    assert.equal(first.replayed, 1);
    // The re-arming goes on after the answer: let it end within the test.
    await jobDone(base, first.job);
  });
});

Deno.test("createBulkReplays() re-arms in batches, wakes once per batch, and says when the scan was cut", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = Date.UTC(2025, 0, 2);
  const store = new DeliveryStore({
    kv,
    ttlMs: 86_400_000,
    maxAttempts: 1,
    now: () => now,
  });
  try {
    for (let i = 0; i < 7; i++) {
      now += 1000;
      const body = new TextEncoder().encode(`{"n":${i}}`);
      await store.accept({
        id: `s-${i}`,
        event: "push",
        action: undefined,
        hookId: undefined,
        target: undefined,
        headers: {},
        body,
        kind: "json",
        digest: String(i),
        receivedAt: now,
        repository: undefined,
        sender: undefined,
      });
    }
    // Make them final the quick way: what the filter selects is the status.
    for (let i = 0; i < 7; i++) {
      const entry = await store.getEntry(`s-${i}`);
      assert.ok(entry.value);
      await store.update(entry as Deno.KvEntry<typeof entry.value>, {
        ...entry.value,
        status: "skipped",
        dueAt: null,
        attempts: 1,
        finishedAt: now,
      });
    }
    let wakes = 0;
    const bulk = createBulkReplays({
      store,
      wake: () => wakes++,
      batch: 3,
      maxScan: 5,
    });
    const job = await bulk.start({ status: "skipped" });
    assert.equal(job.total, 5, "the scan stops at maxScan");
    assert.equal(job.truncated, true);
    assert.equal(job.done, false);
    const done = await waitFor(() => {
      const p = bulk.progress(job.job);
      return p?.done ? p : null;
    });
    assert.equal(done.replayed, 5);
    assert.equal(wakes, 2, "two batches of at most 3");
    const statuses = await Promise.all(
      Array.from(
        { length: 7 },
        async (_, i) => (await store.get(`s-${i}`))!.status,
      ),
    );
    assert.deepEqual(statuses, [
      "queued",
      "queued",
      "queued",
      "queued",
      "queued",
      "skipped",
      "skipped",
    ], "the oldest first");
    assert.equal(bulk.progress("nope"), null);
    // The rest, by calling again from where the scan stopped.
    assert.equal(
      job.next,
      new Date(Date.UTC(2025, 0, 2, 0, 0, 6)).toISOString(),
    );
    const rest = await bulk.start({
      status: "skipped",
      since: Date.parse(job.next!),
    });
    assert.equal(rest.total, 2);
    assert.equal(rest.truncated, false);
    await waitFor(() => bulk.progress(rest.job)?.done);
  } finally {
    kv.close();
  }
});

/** The `p`-th percentile (0–100) of `values`, in ms. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.ceil(sorted.length * p / 100) - 1)
  ] ?? NaN;
}

/** One posted delivery: its answer, when it was sent and how long the answer took. */
interface Sample {
  id: string;
  status: number;
  at: number;
  ms: number;
}

/** Posts a ping every 20 ms (50 a second) for `ms`; each one's status and time to answer. */
async function stream(
  base: string,
  prefix: string,
  ms: number,
): Promise<Sample[]> {
  const sent: Promise<Sample>[] = [];
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    const id = `${prefix}-${i}`;
    const request = await deliveryRequest({ url: `${base}/webhook`, id });
    sent.push((async () => {
      const at = Date.now();
      const start = performance.now();
      const res = await fetch(request);
      await res.body?.cancel();
      return { id, status: res.status, at, ms: performance.now() - start };
    })());
    await new Promise((r) => setTimeout(r, 20));
  }
  return await Promise.all(sent);
}

Deno.test("500 dead deliveries replayed while 50 deliveries a second keep arriving: every one answered 202, every replayed one runs", async () => {
  const { registry, state } = flaky();
  await withServer({}, registry, async ({ app, base }) => {
    // 500 dead pushes, posted 25 at a time.
    const dead = Array.from({ length: 500 }, (_, i) => `dead-${i}`);
    for (let i = 0; i < dead.length; i += 25) {
      const statuses = await Promise.all(
        dead.slice(i, i + 25).map((id) => post(base, id, "push")),
      );
      assert.ok(statuses.every((s) => s === 202), String(statuses));
    }
    const deadNow = async () =>
      (await app.store.listReceived(
        {},
        10_000,
        (r) => r.status === "dead" && r.event === "push",
      )).ids.length;
    await waitFor(async () => (await deadNow()) === 500, 30_000, "500 dead");

    const before = await stream(base, "before", 3000);

    const doneNow = async () =>
      (await app.store.listReceived(
        {},
        10_000,
        (r) => r.status === "done" && r.event === "push" && r.replays === 1,
      )).ids.length;

    state.failing = false;
    const during = stream(base, "during", 3000);
    await new Promise((r) => setTimeout(r, 200)); // a few before it starts
    const replayAt = Date.now();
    const res = await replay(base, { status: "dead", event: "push" });
    assert.equal(res.status, 202);
    const answer = await res.json();
    assert.equal(answer.replayed, 500);
    const progress = await jobDone(base, answer.job);
    const rearmedAt = Date.now();
    assert.deepEqual(
      [progress.replayed, progress.failed],
      [500, 0],
    );
    await waitFor(async () => (await doneNow()) === 500, 30_000, "500 done");
    const ranAt = Date.now();
    const duringAll = await during;

    for (const sent of [before, duringAll]) {
      assert.ok(sent.length >= 100, `${sent.length} posted`);
      const refused = sent.filter((s) => s.status !== 202);
      assert.deepEqual(refused, [], "every posted delivery got its 202");
    }
    const pings = [...before, ...duringAll].map((s) => s.id);
    await waitFor(
      async () =>
        (await Promise.all(pings.map((id) => statusOf(app, id)))).every((s) =>
          s === "done"
        ),
      30_000,
      "every posted delivery done",
    );
    const describe = (samples: Sample[]) => {
      const ms = samples.map((s) => s.ms);
      return `p99 ${percentile(ms, 99).toFixed(1)} ms, p50 ${
        percentile(ms, 50).toFixed(1)
      } ms, max ${Math.max(...ms).toFixed(1)} ms, n=${ms.length}`;
    };
    const overlapping = duringAll.filter((s) =>
      s.at >= replayAt && s.at <= ranAt
    );
    console.log(
      `bulk replay load (202s of deliveries posted at 50/s): without a replay ${
        describe(before)
      }; while 500 were re-armed (${rearmedAt - replayAt} ms) and ran (${
        ranAt - replayAt
      } ms in all) ${describe(overlapping)}; the whole 3 s window ${
        describe(duringAll)
      }`,
    );
  });
});
