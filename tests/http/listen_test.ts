// listen(): a listener whose `finished` settles (EMFILE on accept, on Deno
// 2.9.6) is replaced; attempts that fail are retried with a growing delay;
// an outage past giveUpMs calls onGiveUp once; shutdown stops it all. Fake
// `serve`s make the failures; the last test uses the real Deno.serve.

import assert from "node:assert/strict";
import { listen, type Serve } from "../../lib/http/listen.ts";
import { captureLogger, waitFor } from "../_helpers.ts";

interface FakeServer {
  fail(error: unknown): void;
  end(): void;
  shutdowns: number;
}

/** A `serve` whose listeners fail on command; `refuse` makes the next calls throw. */
function fakeServe(clock = { now: 0, perListen: 0 }) {
  const servers: FakeServer[] = [];
  const state = { refuse: 0, calls: 0 };
  const serve: Serve = (options) => {
    state.calls++;
    clock.now += clock.perListen;
    if (state.refuse > 0) {
      state.refuse--;
      throw new Error("Too many open files (os error 24)");
    }
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const finished = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const addr: Deno.NetAddr = {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: 8000,
    };
    const server: FakeServer = {
      fail: settle.reject,
      end: settle.resolve,
      shutdowns: 0,
    };
    servers.push(server);
    options.onListen?.(addr);
    return {
      addr,
      finished,
      shutdown() {
        server.shutdowns++;
        settle.resolve();
        return finished;
      },
    } as unknown as Deno.HttpServer<Deno.NetAddr>;
  };
  return { serve, servers, state };
}

function setup(
  options: { giveUpMs?: number; stableMs?: number } = {},
  clock = { now: 0, perListen: 0 },
) {
  const fake = fakeServe(clock);
  const { log, lines } = captureLogger();
  const gaveUp: unknown[] = [];
  const listened: Deno.NetAddr[] = [];
  const listener = listen({
    hostname: "127.0.0.1",
    port: 8000,
    handler: () => new Response("ok"),
    log,
    serve: fake.serve,
    retryMs: 1,
    maxRetryMs: 4,
    onListen: (addr) => listened.push(addr),
    onGiveUp: (error) => gaveUp.push(error),
    now: () => clock.now,
    ...options,
  });
  return { ...fake, listener, lines, gaveUp, listened };
}

Deno.test("listen() listens again when the listener's finished rejects", async () => {
  const t = setup();
  try {
    t.servers[0]!.fail(new Error("Too many open files (os error 24)"));
    await waitFor(() => t.servers.length === 2, 2000, "a second listener");
    assert.equal(t.listened.length, 1, "onListen only for the first listener");
    assert.ok(t.listener.addr() !== null);
    const failed = t.lines.find((l) =>
      l.msg === "listener failed: listening again"
    );
    assert.equal(failed?.level, "error");
    assert.match(String(failed?.error), /Too many open files/);
    assert.ok(t.lines.some((l) => l.msg === "listening again"));
    assert.deepEqual(t.gaveUp, []);
  } finally {
    await t.listener.shutdown();
  }
});

Deno.test("listen() replaces a listener that ends while not shutting down", async () => {
  const t = setup();
  try {
    t.servers[0]!.end();
    await waitFor(() => t.servers.length === 2, 2000, "a second listener");
  } finally {
    await t.listener.shutdown();
  }
});

Deno.test("listen() retries a listen that throws, then gives up once past giveUpMs", async () => {
  const t = setup({ giveUpMs: 60 }, { now: 0, perListen: 10 });
  t.state.refuse = Infinity;
  t.servers[0]!.fail(new Error("Too many open files (os error 24)"));
  await waitFor(() => t.gaveUp.length > 0, 3000, "onGiveUp");
  const calls = t.state.calls;
  assert.ok(calls > 2, `retried (${calls} calls)`);
  assert.equal(t.gaveUp.length, 1);
  assert.match(String(t.gaveUp[0]), /Too many open files/);
  assert.equal(t.listener.addr(), null);
  assert.ok(t.lines.some((l) => l.msg === "cannot listen again: giving up"));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(t.state.calls, calls, "no attempt after giving up");
  await t.listener.shutdown();
});

Deno.test("listen() counts listeners that fail at once as one outage, and gives up", async () => {
  // Each listen "takes" 400 ms and each listener fails at once: the outage
  // begins at the first failure and is 1,200 ms old at the fourth, past
  // giveUpMs.
  const clock = { now: 0, perListen: 400 };
  const t = setup({ giveUpMs: 1000, stableMs: 100 }, clock);
  try {
    for (let i = 0; t.gaveUp.length === 0; i++) {
      assert.ok(i < 5, "gave up within a few failures");
      await waitFor(() => t.servers.length === i + 1, 2000, "a listener");
      t.servers[i]!.fail(new Error("EMFILE"));
      await waitFor(
        () => t.servers.length === i + 2 || t.gaveUp.length > 0,
        2000,
        "a listener or giving up",
      );
    }
    assert.equal(t.servers.length, 4);
    assert.equal(t.gaveUp.length, 1);
  } finally {
    await t.listener.shutdown();
  }
});

Deno.test("listen() starts a new outage after a listener that lasted stableMs", async () => {
  const clock = { now: 0, perListen: 0 };
  const t = setup({ giveUpMs: 1000, stableMs: 100 }, clock);
  try {
    for (let i = 0; i < 4; i++) {
      clock.now += 600; // each listener lasted 600 ms: each failure is new
      t.servers[i]!.fail(new Error("EMFILE"));
      await waitFor(() => t.servers.length === i + 2, 2000, "a listener");
    }
    assert.deepEqual(t.gaveUp, []);
  } finally {
    await t.listener.shutdown();
  }
});

Deno.test("listener.shutdown() stops listening for good", async () => {
  const t = setup();
  t.state.refuse = Infinity;
  t.servers[0]!.fail(new Error("EMFILE"));
  await waitFor(() => t.state.calls >= 2, 2000, "a refused attempt");
  await t.listener.shutdown();
  const calls = t.state.calls;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(t.state.calls, calls, "the pending retry was cancelled");
  assert.equal(t.listener.addr(), null);
});

Deno.test("listener.shutdown() shuts the current listener down, and its end is not a failure", async () => {
  const t = setup();
  await t.listener.shutdown();
  assert.equal(t.servers[0]!.shutdowns, 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(t.servers.length, 1);
  assert.ok(!t.lines.some((l) => l.level === "error"));
});

Deno.test("listen() throws when the first listen fails (a start-up error)", () => {
  const fake = fakeServe();
  fake.state.refuse = 1;
  assert.throws(
    () =>
      listen({
        hostname: "127.0.0.1",
        port: 8000,
        handler: () => new Response("ok"),
        log: captureLogger().log,
        serve: fake.serve,
        onGiveUp: () => {},
      }),
    /Too many open files/,
  );
});

Deno.test("listen() serves with the real Deno.serve", async () => {
  const { log } = captureLogger();
  const listener = listen({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    log,
    onGiveUp: () => {},
  });
  try {
    const res = await fetch(`http://127.0.0.1:${listener.addr()!.port}/`);
    assert.equal(await res.text(), "ok");
  } finally {
    await listener.shutdown();
  }
});
