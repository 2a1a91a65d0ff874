// The worker and the admin API through a whole app on real KV: accept → lease
// → handlers → outcome, retries, timeouts, the concurrency cap, replay.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import { createWorker, reservedUntil } from "../../lib/worker/worker.ts";
import type { HandlerContext, HandlerRegistry } from "../../lib/dispatch.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";
import {
  captureLogger,
  deliveryRequest,
  fakeInfo,
  testConfig,
  waitFor,
} from "../_helpers.ts";

interface Running extends AsyncDisposable {
  app: App;
  post(init?: Parameters<typeof deliveryRequest>[0]): Promise<Response>;
  logs: ReturnType<typeof captureLogger>;
  waitStatus(id: string, status: string, ms?: number): Promise<void>;
}

async function run(
  registry: HandlerRegistry,
  env: Record<string, string> = {},
): Promise<Running> {
  const logs = captureLogger("info");
  const kv = await Deno.openKv(":memory:");
  const app = await createApp({
    config: testConfig(env),
    log: logs.log,
    kv,
    registry,
    worker: { pollMs: 20, retryBaseMs: 10, leaseMs: 300 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  return {
    app,
    logs,
    async post(init = {}) {
      return await app.fetch(await deliveryRequest(init), fakeInfo());
    },
    async waitStatus(id, status, ms = 5000) {
      await waitFor(
        async () => (await app.store.get(id))?.status === status,
        ms,
        `${id} ${status}`,
      );
    },
    async [Symbol.asyncDispose]() {
      stop.abort();
      await app.close(1000);
      kv.close();
    },
  };
}

Deno.test("a handler that throws twice then succeeds is done after 3 attempts", async () => {
  let calls = 0;
  const attempts: number[] = [];
  await using r = await run({
    push: {
      default(ctx: HandlerContext) {
        attempts.push(ctx.attempt);
        if (++calls < 3) throw new Error(`boom ${calls}`);
      },
    },
  });
  const res = await r.post({ id: "retry-me", event: "push" });
  assert.equal(res.status, 202);
  await res.body?.cancel();
  await r.waitStatus("retry-me", "done");
  const record = await r.app.store.get("retry-me");
  assert.equal(record?.attempts, 3);
  assert.equal(record?.error, null);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(
    r.app.metrics.value("webhook_handler_runs_total", {
      event: "push",
      handler: "push",
      result: "error",
    }),
    2,
  );
  assert.equal(
    r.app.metrics.value("webhook_handler_runs_total", {
      event: "push",
      handler: "push",
      result: "ok",
    }),
    1,
  );
  const failed = r.logs.lines.filter((l) => l.msg === "delivery failed");
  assert.equal(failed.length, 2);
  assert.equal(failed[0]!.delivery, "retry-me");
  const done = r.logs.lines.find((l) => l.msg === "delivery done");
  assert.ok(done && typeof done.ms === "number" && done.event === "push");
});

Deno.test("a hanging handler times out, is retried and ends dead", async () => {
  let aborted = 0;
  await using r = await run({
    push: {
      default(ctx: HandlerContext) {
        ctx.signal.addEventListener("abort", () => aborted++);
        return new Promise(() => {}); // never settles
      },
    },
  }, { HANDLER_TIMEOUT_MS: "30", MAX_ATTEMPTS: "2" });
  (await r.post({ id: "hang", event: "push" })).body?.cancel();
  await r.waitStatus("hang", "dead");
  const record = await r.app.store.get("hang");
  assert.equal(record?.attempts, 2);
  assert.match(record?.error ?? "", /timed out after 30 ms/);
  assert.equal(aborted, 2, "each attempt's signal fired");
  assert.equal(
    r.app.metrics.value("webhook_handler_runs_total", {
      event: "push",
      handler: "push",
      result: "timeout",
    }),
    2,
  );
});

Deno.test("a dead delivery that comes again is queued again", async () => {
  let fail = true;
  await using r = await run({
    push: {
      default() {
        if (fail) throw new Error("not yet");
      },
    },
  }, { MAX_ATTEMPTS: "1" });
  const body = JSON.stringify({ ref: "refs/heads/main" });
  (await r.post({ id: "again", event: "push", body })).body?.cancel();
  await r.waitStatus("again", "dead");
  fail = false;
  const res = await r.post({ id: "again", event: "push", body });
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { status: "queued", delivery: "again" });
  await r.waitStatus("again", "done");
});

Deno.test("never more than MAX_CONCURRENCY handlers run at once", async () => {
  let active = 0;
  let peak = 0;
  await using r = await run({
    push: {
      async default() {
        active++;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 20));
        active--;
      },
    },
  }, { MAX_CONCURRENCY: "3" });
  const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
  await Promise.all(
    ids.map(async (id) => (await r.post({ id, event: "push" })).body?.cancel()),
  );
  for (const id of ids) await r.waitStatus(id, "done");
  assert.equal(peak, 3, `peak was ${peak}`);
  assert.equal(r.app.worker.peak, 3);
});

Deno.test("a delivery with no handler for its event is skipped; * still sees it", async () => {
  const seen: string[] = [];
  await using r = await run({
    "*": { default: (ctx: HandlerContext) => void seen.push(ctx.event) },
  });
  (await r.post({ id: "s1", event: "star" })).body?.cancel();
  await r.waitStatus("s1", "skipped");
  assert.deepEqual(seen, ["star"]);
});

Deno.test("a large payload is parsed for the handlers only after its 202 is sent", async () => {
  let ran = false;
  await using r = await run({
    push: { default: () => void (ran = true) },
  });
  // Over 1 MiB: only scanned on receipt, parsed for the handlers later.
  const body = JSON.stringify({ pad: "x".repeat(1_200_000) });
  const res = await r.post({ id: "big", event: "push", body });
  await res.body?.cancel();
  assert.equal(res.status, 202);
  assert.equal(ran, false, "the handler ran before the 202 was returned");
  await r.waitStatus("big", "done");
  assert.equal(ran, true);
});

Deno.test("a handler gets event, action, delivery, attempt, payload, logger and signal", async () => {
  let got: HandlerContext | undefined;
  await using r = await run({
    issues: { opened: (ctx: HandlerContext) => void (got = ctx) },
  });
  const body = JSON.stringify({ action: "opened", issue: { number: 7 } });
  (await r.post({ id: "ctx", event: "issues", body })).body?.cancel();
  await r.waitStatus("ctx", "done");
  assert.equal(got?.event, "issues");
  assert.equal(got?.action, "opened");
  assert.equal(got?.delivery, "ctx");
  assert.equal(got?.attempt, 1);
  assert.deepEqual(got?.payload, { action: "opened", issue: { number: 7 } });
  assert.ok(got?.signal instanceof AbortSignal);
  assert.equal(typeof got?.log.info, "function");
});

Deno.test("admin API", async (t) => {
  let calls = 0;
  await using r = await run({ push: { default: () => void calls++ } }, {
    ADMIN_TOKEN: "admin-t0ken-for-tests",
  });
  (await r.post({
    id: "adm",
    event: "push",
    body: '{"ref":"x","sender":{"login":"octocat"}}',
  }))
    .body?.cancel();
  await r.waitStatus("adm", "done");
  const call = (
    path: string,
    init: RequestInit = {},
    token: string | null = "admin-t0ken-for-tests",
  ) =>
    r.app.fetch(
      new Request(`http://hookgate.test${path}`, {
        ...init,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...init.headers,
        },
      }),
      fakeInfo(),
    );

  await t.step("401 without or with a wrong token", async () => {
    for (const token of [null, "wrong", "admin-t0ken-for-tests2"]) {
      const res = await call("/deliveries", {}, token);
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, "unauthorized");
    }
  });
  await t.step(
    "GET /deliveries lists newest first with the contract's fields",
    async () => {
      const res = await call("/deliveries?limit=10");
      assert.equal(res.status, 200);
      const { deliveries } = await res.json();
      assert.equal(deliveries.length, 1);
      const d = deliveries[0];
      for (
        const key of [
          "id",
          "event",
          "action",
          "status",
          "attempts",
          "receivedAt",
          "finishedAt",
          "error",
        ]
      ) {
        assert.ok(key in d, `has ${key}`);
      }
      assert.equal(d.id, "adm");
      assert.equal(d.status, "done");
      assert.equal(d.sender, "octocat");
    },
  );
  await t.step("a bad limit is 400", async () => {
    assert.equal((await call("/deliveries?limit=abc")).status, 400);
  });
  await t.step("GET /deliveries/<id> and 404 for an unknown id", async () => {
    const res = await call("/deliveries/adm");
    assert.equal((await res.json()).attempts, 1);
    const missing = await call("/deliveries/nope");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const malformed = await call("/deliveries/%ZZ");
    assert.equal(malformed.status, 404, "a malformed escape is not a 500");
    await malformed.body?.cancel();
  });
  await t.step("GET /deliveries/<id>/body is the raw bytes", async () => {
    const res = await call("/deliveries/adm/body");
    assert.equal(await res.text(), '{"ref":"x","sender":{"login":"octocat"}}');
  });
  await t.step("POST /deliveries/<id>/replay runs it again", async () => {
    const res = await call("/deliveries/adm/replay", { method: "POST" });
    assert.equal(res.status, 202);
    await res.body?.cancel();
    await waitFor(
      async () => (await r.app.store.get("adm"))?.attempts === 2,
      5000,
      "2nd attempt",
    );
    await r.waitStatus("adm", "done");
    assert.equal(calls, 2);
  });
  await t.step("replay by GET is 405; a cross-site POST is 403", async () => {
    assert.equal((await call("/deliveries/adm/replay")).status, 405);
    const res = await call("/deliveries/adm/replay", {
      method: "POST",
      headers: { origin: "https://evil.example" },
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
  });
});

Deno.test("the admin API answers 404 when ADMIN_TOKEN is unset", async () => {
  await using r = await run({});
  const res = await r.app.fetch(
    new Request("http://x/deliveries", {
      headers: { authorization: "Bearer " },
    }),
    fakeInfo(),
  );
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("fast path: leased deliveries wait in memory for a slot; beyond that they are queued", async () => {
  let release: () => void = () => {};
  let active = 0;
  let peak = 0;
  const ran: string[] = [];
  const attempts: number[] = [];
  await using r = await run({
    push: {
      async default(ctx: HandlerContext) {
        active++;
        peak = Math.max(peak, active);
        ran.push(ctx.delivery);
        attempts.push(ctx.attempt);
        if (ctx.delivery === "hold") {
          await new Promise<void>((resolve) => release = resolve);
        }
        active--;
      },
    },
  }, { MAX_CONCURRENCY: "1" });
  (await r.post({ id: "hold", event: "push" })).body?.cancel();
  await waitFor(() => ran.includes("hold"), 5000, "the first run");
  // The only slot is busy: the next three are leased and wait in memory
  // (1 × MAX_CONCURRENCY × 4 in all), the one after that is stored queued.
  for (const id of ["w1", "w2", "w3", "q1"]) {
    (await r.post({ id, event: "push" })).body?.cancel();
  }
  for (const id of ["w1", "w2", "w3"]) {
    const record = await r.app.store.get(id);
    assert.equal(record?.status, "running", `${id} is leased to this process`);
    // Should the process die now, it lost no attempt: it never ran.
    assert.equal(record?.attempts, 0, `${id} has no attempt counted yet`);
    assert.equal(record?.waiting, true);
  }
  assert.equal((await r.app.store.get("hold"))?.attempts, 1);
  assert.equal((await r.app.store.get("hold"))?.waiting, undefined);
  assert.equal((await r.app.store.get("q1"))?.status, "queued");
  assert.deepEqual(ran, ["hold"], "nothing else ran while the slot was busy");
  release();
  for (const id of ["hold", "w1", "w2", "w3", "q1"]) {
    await r.waitStatus(id, "done");
    assert.equal((await r.app.store.get(id))?.attempts, 1, `${id} ran once`);
  }
  assert.equal(peak, 1, "never more than MAX_CONCURRENCY at once");
  assert.deepEqual(ran.slice(0, 4), ["hold", "w1", "w2", "w3"], "in order");
  assert.deepEqual(attempts.slice(0, 4), [1, 1, 1, 1], "each as attempt 1");
});

Deno.test("fast path: a leased delivery whose process died is re-run when the lease expires", async () => {
  const seen: number[] = [];
  await using r = await run({
    push: { default: (ctx: HandlerContext) => void seen.push(ctx.attempt) },
  });
  // Stored leased as a fast-path acceptance would be, but never run (a crash).
  const body = new TextEncoder().encode('{"ref":"refs/heads/main"}');
  const result = await r.app.store.accept({
    id: "orphaned-lease",
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body,
    kind: "json",
    digest: "f".repeat(64),
    receivedAt: Date.now(),
    repository: undefined,
    sender: undefined,
  }, { leaseUntil: Date.now() + 100 });
  assert.ok(result.status === "queued" && result.leased);
  await r.waitStatus("orphaned-lease", "done");
  assert.deepEqual(seen, [2], "re-run once, as the second attempt");
});

Deno.test("a replay of a running delivery runs it again after the current run", async () => {
  let release: () => void = () => {};
  let calls = 0;
  await using r = await run({
    push: {
      async default() {
        calls++;
        if (calls === 1) {
          await new Promise<void>((resolve) => release = resolve);
        }
      },
    },
  }, { ADMIN_TOKEN: "t-for-the-tests!" });
  (await r.post({ id: "busy", event: "push" })).body?.cancel();
  await waitFor(() => calls === 1, 5000, "the first run");
  const res = await r.app.fetch(
    new Request("http://x/deliveries/busy/replay", {
      method: "POST",
      headers: { authorization: "Bearer t-for-the-tests!" },
    }),
    fakeInfo(),
  );
  assert.equal(res.status, 202);
  await res.body?.cancel();
  release();
  await waitFor(() => calls === 2, 5000, "the replayed run");
  await r.waitStatus("busy", "done");
  assert.equal((await r.app.store.get("busy"))?.attempts, 2);
});

Deno.test("a run cut short by a shutdown does not use up an attempt and is due again", async () => {
  const logs = captureLogger("info");
  const kv = await Deno.openKv(":memory:");
  try {
    const app = await createApp({
      config: testConfig({ MAX_ATTEMPTS: "1" }),
      log: logs.log,
      kv,
      registry: { push: { default: () => new Promise(() => {}) } },
      worker: { pollMs: 20 },
    });
    const stop = new AbortController();
    app.start(stop.signal);
    const res = await app.fetch(
      await deliveryRequest({ id: "cut", event: "push" }),
      fakeInfo(),
    );
    await res.body?.cancel();
    await waitFor(
      async () => (await app.store.get("cut"))?.status === "running",
      5000,
      "running",
    );
    stop.abort();
    await app.close(30); // the handler never ends: aborted after 30 ms
    const record = await app.store.get("cut");
    assert.equal(record?.status, "queued");
    assert.equal(record?.attempts, 0, "the interrupted attempt is not counted");
    assert.match(record?.error ?? "", /shutdown/);
    assert.deepEqual(await app.store.listDue(Date.now(), 10), ["cut"]);
  } finally {
    kv.close();
  }
});

Deno.test("a running app holds the deadline timer until its signal aborts; on Deploy it does not", async () => {
  for (const deploy of [false, true]) {
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig(deploy ? { DENO_DEPLOYMENT_ID: "test" } : {}),
      log: captureLogger("info").log,
      kv,
      registry: {},
      worker: { pollMs: 20 },
    });
    const stop = new AbortController();
    app.start(stop.signal);
    app.deadlines.after(10_000, () => {})(); // as a request's body deadline would
    assert.equal(app.deadlines.running(), !deploy, `deploy: ${deploy}`);
    stop.abort();
    assert.equal(app.deadlines.running(), false, `deploy: ${deploy}`);
    await app.close(1000);
    kv.close();
  }
});

Deno.test("reservedUntil() leases a fast-path delivery for one lease length, however many are ahead", () => {
  const limits = { maxConcurrency: 2, leaseMs: 15_000 };
  assert.equal(reservedUntil(0, 1_000, limits), 16_000, "a free slot");
  assert.equal(reservedUntil(2, 1_000, limits), 16_000, "behind one round");
  assert.equal(reservedUntil(7, 1_000, limits), 16_000, "it is renewed");
});

Deno.test("reservedUntil() refuses once the local queue holds four times MAX_CONCURRENCY", () => {
  const limits = { maxConcurrency: 2, leaseMs: 15_000 };
  assert.equal(reservedUntil(8, 1_000, limits), null);
  assert.equal(reservedUntil(9, 1_000, limits), null);
});

/** A delivery as the receiver hands it to the store. */
function incoming(id: string): IncomingDelivery {
  const body = new TextEncoder().encode(
    `{"ref":"refs/heads/main","n":"${id}"}`,
  );
  return {
    id,
    event: "push",
    action: undefined,
    hookId: undefined,
    target: undefined,
    headers: {},
    body,
    kind: "json",
    digest: id.padEnd(64, "0"),
    receivedAt: Date.now(),
    repository: undefined,
    sender: undefined,
  };
}

Deno.test("a lapsed lease whose run had used its last attempt ends dead, logged once, and is not run again", async () => {
  const ran: string[] = [];
  await using r = await run({
    push: { default: (ctx: HandlerContext) => void ran.push(ctx.delivery) },
  }, { MAX_ATTEMPTS: "2" });
  // Stored leased by a process that died during the run (attempt 1), then
  // taken again by one that died too (attempt 2).
  const dead = new DeliveryStore({
    kv: r.app.kv,
    ttlMs: 60_000,
    maxAttempts: 2,
  });
  const accepted = await dead.accept(incoming("doomed"), {
    leaseUntil: Date.now() + 100,
  });
  assert.ok(accepted.status === "queued" && accepted.leased);
  await dead.update(accepted.leased, {
    ...accepted.leased.value,
    attempts: 2,
    lapses: 1,
  });
  await r.waitStatus("doomed", "dead");
  const record = await r.app.store.get("doomed");
  assert.equal(record?.attempts, 2);
  assert.match(
    record?.error ?? "",
    /ended before recording an outcome 2 times \(the process or its Worker died\): given up after 2 attempts/,
  );
  (await r.post({ id: "fine", event: "push" })).body?.cancel();
  await r.waitStatus("fine", "done");
  assert.deepEqual(ran, ["fine"], "the doomed delivery never ran again");
  const errors = r.logs.lines.filter((l) => l.level === "error");
  assert.deepEqual(errors.map((l) => [l.msg, l.delivery, l.status]), [
    ["delivery dead", "doomed", "dead"],
  ]);
});

Deno.test("a lease is short and renewed while its run lasts; the outcome commits over the renewals", async () => {
  let release: () => void = () => {};
  await using r = await run({
    push: {
      default: () => new Promise<void>((resolve) => release = resolve),
    },
  });
  (await r.post({ id: "long", event: "push" })).body?.cancel();
  const first = (await r.app.store.get("long"))!;
  assert.equal(first.status, "running");
  assert.ok(first.dueAt! <= Date.now() + 300, "a lease of leaseMs (300 ms)");
  // Well past the first lease's end, nobody else can take it: it was renewed.
  await waitFor(() => Date.now() > first.dueAt! + 300, 5000, "two leases");
  const renewed = (await r.app.store.get("long"))!;
  assert.ok(renewed.dueAt! > first.dueAt!, "renewed");
  const other = new DeliveryStore({
    kv: r.app.kv,
    ttlMs: 60_000,
    maxAttempts: 5,
  });
  assert.equal(await other.lease("long", Date.now() + 1000), null);
  release();
  await r.waitStatus("long", "done");
  const done = (await r.app.store.get("long"))!;
  assert.equal(done.attempts, 1, "ran once");
  assert.equal(done.dueAt, null);
  assert.ok(
    !r.logs.lines.some((l) => /lease lost/.test(String(l.msg))),
    "the outcome was recorded against the renewed lease",
  );
});

Deno.test("claimSeat() takes back the leases of the process that had the seat: they run at once", async () => {
  const ran: number[] = [];
  await using r = await run({
    push: { default: (ctx: HandlerContext) => void ran.push(ctx.attempt) },
  });
  const dead = new DeliveryStore({
    kv: r.app.kv,
    ttlMs: 60_000,
    maxAttempts: 5,
  });
  await dead.takeSeat("a seat");
  // Leased to the dead process for one of its lease lengths (this worker's
  // is 300 ms; the reclaim looks one lease and a second ahead).
  await dead.accept(incoming("orphan"), { leaseUntil: Date.now() + 1_200 });
  assert.equal(await r.app.worker.claimSeat("a seat"), 1);
  await r.waitStatus("orphan", "done");
  assert.deepEqual(ran, [2], "run again, as its second attempt");
  assert.ok(
    r.logs.lines.some((l) => l.reclaimed === 1),
    "the reclaim is logged",
  );
  assert.equal(await r.app.worker.claimSeat("a seat"), 0, "its own seat now");
});

Deno.test("a drain gives back the leases waiting for a slot: queued, attempt not counted, never started", async () => {
  const ran: string[] = [];
  let release: () => void = () => {};
  const logs = captureLogger("info");
  const kv = await Deno.openKv(":memory:");
  try {
    const app = await createApp({
      config: testConfig({ MAX_CONCURRENCY: "1" }),
      log: logs.log,
      kv,
      registry: {
        push: {
          default(ctx: HandlerContext) {
            ran.push(ctx.delivery);
            return new Promise<void>((resolve) => release = resolve);
          },
        },
      },
      worker: { pollMs: 20 },
    });
    const stop = new AbortController();
    app.start(stop.signal);
    for (const id of ["busy", "waiting"]) {
      const res = await app.fetch(
        await deliveryRequest({ id, event: "push" }),
        fakeInfo(),
      );
      await res.body?.cancel();
    }
    await waitFor(() => ran.includes("busy"), 5000, "the first run");
    assert.equal((await app.store.get("waiting"))?.status, "running");
    stop.abort();
    const closed = app.close(5000);
    release(); // the running one ends within the drain
    await closed;
    assert.deepEqual(ran, ["busy"], "the waiting one never started");
    assert.equal((await app.store.get("busy"))?.status, "done");
    const waiting = await app.store.get("waiting");
    assert.equal(waiting?.status, "queued");
    assert.equal(waiting?.attempts, 0, "no attempt used");
    assert.deepEqual(await app.store.listDue(Date.now(), 10), ["waiting"]);
    assert.ok(!logs.lines.some((l) => l.level === "error"), "no error line");
  } finally {
    kv.close();
  }
});

Deno.test("a pass leasing as a drain begins starts nothing: the lease is given back, its attempt not counted", async () => {
  const kv = await Deno.openKv(":memory:");
  const logs = captureLogger("info");
  try {
    const store = new DeliveryStore({ kv, ttlMs: 60_000, maxAttempts: 1 });
    await store.accept(incoming("late"));
    // The pass's lease commit is slow: the drain begins while it is taken.
    const lease = store.lease.bind(store);
    store.lease = async (id, until) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return await lease(id, until);
    };
    const ran: string[] = [];
    const worker = createWorker({
      store,
      registry: {
        push: { default: (ctx: HandlerContext) => void ran.push(ctx.delivery) },
      },
      log: logs.log,
      maxConcurrency: 2,
      handlerTimeoutMs: 1000,
    });
    const ticked = worker.tick();
    assert.equal(await worker.drain(1000), true);
    assert.equal(await ticked, 0, "the pass started nothing");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(ran, [], "the handler never ran");
    const record = await store.get("late");
    assert.equal(record?.status, "queued", "given back before drain() ended");
    assert.equal(record?.attempts, 0, "its attempt not counted");
    assert.ok(!logs.lines.some((l) => l.level === "error"), "no error line");
  } finally {
    kv.close();
  }
});

Deno.test("a waiting lease whose process died runs elsewhere as its first attempt, even with MAX_ATTEMPTS=1", async () => {
  const ran: number[] = [];
  await using r = await run({
    push: { default: (ctx: HandlerContext) => void ran.push(ctx.attempt) },
  }, { MAX_ATTEMPTS: "1" });
  const dead = new DeliveryStore({
    kv: r.app.kv,
    ttlMs: 60_000,
    maxAttempts: 1,
  });
  const accepted = await dead.accept(incoming("waited"), {
    leaseUntil: Date.now() + 100,
    waiting: true,
  });
  assert.ok(accepted.status === "queued" && accepted.leased);
  assert.equal(accepted.leased.value.attempts, 0);
  await r.waitStatus("waited", "done");
  assert.deepEqual(ran, [1], "run once, as its first attempt");
  assert.equal((await r.app.store.get("waited"))?.lapses, undefined);
});

Deno.test("a waiting lease taken by another process meanwhile is not started here when its slot frees", async () => {
  let release: () => void = () => {};
  const ran: string[] = [];
  await using r = await run({
    push: {
      async default(ctx: HandlerContext) {
        ran.push(ctx.delivery);
        if (ctx.delivery === "hold") {
          await new Promise<void>((resolve) => release = resolve);
        }
      },
    },
  }, { MAX_CONCURRENCY: "1" });
  (await r.post({ id: "hold", event: "push" })).body?.cancel();
  await waitFor(() => ran.includes("hold"), 5000, "the first run");
  (await r.post({ id: "stolen", event: "push" })).body?.cancel();
  // As if its lease had lapsed and another process took it and ran it.
  const entry = await r.app.store.getEntry("stolen");
  assert.equal(entry.value?.waiting, true);
  await r.app.store.update(entry as Deno.KvEntry<DeliveryRecord>, {
    ...entry.value!,
    waiting: undefined,
    status: "done",
    attempts: 1,
    owner: "another",
    startedAt: 1,
    dueAt: null,
  });
  release();
  await r.waitStatus("hold", "done");
  await waitFor(
    () =>
      r.logs.lines.some((l) =>
        /lease lost while it waited/.test(String(l.msg))
      ),
    5000,
    "the lost lease logged",
  );
  assert.deepEqual(ran, ["hold"], "not run here");
  assert.equal((await r.app.store.get("stolen"))?.attempts, 1, "untouched");
});

Deno.test("webhook_queue_oldest_due_seconds says how long the earliest due delivery has waited for a free slot, and 0 once it runs", async () => {
  let skew = 0;
  let release = () => {};
  const blocked = new Promise<void>((r) => release = r);
  const kv = await Deno.openKv(":memory:");
  const app = await createApp({
    config: testConfig({ MAX_CONCURRENCY: "1" }),
    log: captureLogger("info").log,
    kv,
    registry: {
      push: {
        default: (ctx: HandlerContext) =>
          ctx.delivery === "holds-the-slot" ? blocked : undefined,
      },
    },
    now: () => Date.now() + skew,
    worker: { pollMs: 20 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const gauge = () =>
    Number(
      /^webhook_queue_oldest_due_seconds (\S+)$/m.exec(
        app.metrics.render(),
      )?.[1],
    );
  try {
    (await app.fetch(
      await deliveryRequest({ id: "holds-the-slot", event: "push" }),
      fakeInfo(),
    )).body?.cancel();
    await waitFor(() => app.worker.active === 1);
    // Stored queued while the only slot is taken: due now, and waiting.
    await app.store.accept(incoming("waits"), { leaseUntil: undefined });
    skew += 60_000;
    app.worker.wake();
    await waitFor(() => gauge() >= 60, 5000, "the wait on the gauge");
    assert.ok(gauge() < 70, String(gauge()));
    release();
    await waitFor(async () =>
      (await app.store.get("waits"))?.status === "done"
    );
    skew += 10_000;
    app.worker.wake();
    await waitFor(() => gauge() === 0, 5000, "the gauge back at 0");
  } finally {
    release();
    stop.abort();
    await app.close(1000);
    kv.close();
  }
});
