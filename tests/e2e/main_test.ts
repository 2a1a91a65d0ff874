// End to end: the real main.ts as a subprocess with `deno task start`'s
// flags, real fetch, real KV files; start-up errors, signals, SIGKILL
// recovery and two processes sharing one KV file.

import assert from "node:assert/strict";
import { freePort, postDelivery, startServer, waitFor } from "../_helpers.ts";

const BASE_ENV = {
  GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
  IP_ALLOWLIST: "off",
  ADMIN_TOKEN: "admin-t0ken-for-tests",
};

function pushBody(n: number | string): string {
  return JSON.stringify({
    ref: "refs/heads/main",
    before: "0".repeat(40),
    after: "1".repeat(40),
    created: false,
    deleted: false,
    forced: false,
    commits: [{ id: "1".repeat(40), message: `commit ${n}` }],
    head_commit: null,
    pusher: { name: "monalisa", email: null },
    repository: {
      id: 1,
      name: "hello",
      full_name: "octo-org/hello",
      private: false,
    },
    sender: { login: "monalisa", id: 1 },
  });
}

async function deliveries(
  url: string,
): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${url}/deliveries?limit=1000`, {
    headers: { authorization: `Bearer ${BASE_ENV.ADMIN_TOKEN}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).deliveries;
}

Deno.test("main.ts refuses to start without GITHUB_WEBHOOK_SECRET, naming it", async () => {
  const server = await startServer({ IP_ALLOWLIST: "off" }, {
    waitForListen: false,
  });
  const exit = await server.child.status;
  await server.stop();
  assert.equal(exit.code, 1);
  assert.ok(
    server.lines.some((l) => l.includes("GITHUB_WEBHOOK_SECRET")),
    server.lines.join("\n"),
  );
});

Deno.test("main.ts reports every bad variable at once and exits non-zero", async () => {
  const server = await startServer({
    GITHUB_WEBHOOK_SECRET: "weak-secret-xyz",
    ADMIN_TOKEN: "adm1n",
    MAX_BODY_BYTES: "lots",
    TRUSTED_PROXIES: "10.0.0.0/33",
    EXTRA_ALLOWED_CIDRS: "0.0.0.0/0",
    LOG_LEVEL: "loud",
  }, { waitForListen: false });
  const exit = await server.child.status;
  await server.stop();
  assert.equal(exit.code, 1);
  const out = server.lines.join("\n");
  for (
    const name of [
      "GITHUB_WEBHOOK_SECRET is shorter than 16 characters",
      "ADMIN_TOKEN is shorter than 16 characters",
      "MAX_BODY_BYTES",
      "TRUSTED_PROXIES",
      "EXTRA_ALLOWED_CIDRS holds 0.0.0.0/0, wider than /8",
      "LOG_LEVEL",
    ]
  ) {
    assert.match(out, new RegExp(name), `names ${name}`);
  }
  assert.doesNotMatch(out, /weak-secret-xyz|adm1n/, "never the values");
  assert.doesNotMatch(out, /listening/);
});

Deno.test("main.ts accepts signed deliveries, runs the push handler and exits 0 on SIGTERM", async () => {
  const server = await startServer({
    ...BASE_ENV,
    KV_PATH: "./data/hookgate.kv",
  });
  try {
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();

    const first = await postDelivery(server.url, {
      event: "push",
      id: "e2e-1",
      body: pushBody(1),
    });
    assert.deepEqual(first, {
      status: 202,
      body: { status: "queued", delivery: "e2e-1" },
    });
    const again = await postDelivery(server.url, {
      event: "push",
      id: "e2e-1",
      body: pushBody(1),
    });
    assert.equal(again.status, 200);
    const bad = await postDelivery(server.url, {
      event: "push",
      body: pushBody(2),
      secret: "nope",
    });
    assert.equal(bad.status, 401);

    const line = await server.waitForLine(/"msg":"push received"/);
    const parsed = JSON.parse(line);
    assert.equal(parsed.delivery, "e2e-1");
    assert.equal(parsed.ref, "refs/heads/main");
    assert.equal(parsed.commits, 1);
    const done = JSON.parse(await server.waitForLine(/"msg":"delivery done"/));
    assert.equal(done.delivery, "e2e-1");
    assert.equal(done.event, "push");
    assert.equal(typeof done.ms, "number");

    const out = server.lines.join("\n");
    assert.ok(
      !out.includes(BASE_ENV.GITHUB_WEBHOOK_SECRET),
      "the secret never reaches a log",
    );
    assert.ok(
      !out.includes(BASE_ENV.ADMIN_TOKEN),
      "the admin token never reaches a log",
    );
  } finally {
    const status = await server.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.ok(server.lines.some((l) => l.includes('"msg":"stopped"')));
  }
});

Deno.test("deno task start prints no runtime warning: every line is a JSON log line", async () => {
  const server = await startServer({ ...BASE_ENV, KV_PATH: ":memory:" });
  const status = await server.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.ok(server.lines.length > 0);
  for (const line of server.lines) {
    assert.doesNotMatch(line, /Detected|did you mean|warning/i, line);
    assert.equal(typeof JSON.parse(line).msg, "string", line);
  }
});

const HOSTILE =
  new URL("../fixtures/hostile_server.ts", import.meta.url).pathname;

Deno.test("a throwing handler and an unhandled rejection never take the process down", async () => {
  // The hostile fixture's `throws` handler throws, and its `floating`
  // handler leaves a rejection no one handles.
  const server = await startServer({
    ...BASE_ENV,
    KV_PATH: ":memory:",
    MAX_ATTEMPTS: "1",
  }, {
    entry: HOSTILE,
    // The isolates load the fixture's handlers from disk.
    extraFlags: [
      `--allow-read=${new URL("../fixtures", import.meta.url).pathname}`,
    ],
  });
  try {
    const floating = await postDelivery(server.url, {
      event: "floating",
      id: "floating",
      body: "{}",
    });
    assert.equal(floating.status, 202);
    const res = await postDelivery(server.url, {
      event: "throws",
      id: "broken",
      body: '{"n":1}',
    });
    assert.equal(res.status, 202);
    const dead = JSON.parse(
      await server.waitForLine(/"msg":"delivery dead","delivery":"broken"/),
    );
    assert.equal(dead.error, "Error: a handler error");
    // A floating rejection is logged; its delivery's handler returned.
    await server.waitForLine(/"msg":"unhandled rejection in a handler"/);
    await server.waitForLine(/"msg":"delivery done","delivery":"floating"/);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("SIGKILL mid-burst loses nothing that was acknowledged", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-kill-" });
  const env = {
    ...BASE_ENV,
    KV_PATH: "./data/hookgate.kv",
    HANDLER_TIMEOUT_MS: "300",
  };
  const first = await startServer(env, { cwd });
  const acked = new Set<string>();
  let killed = false;
  const sender = (async () => {
    for (let i = 0; i < 400 && !killed; i++) {
      const id = `burst-${i}`;
      try {
        const res = await postDelivery(first.url, {
          event: "push",
          id,
          body: pushBody(id),
        });
        if (res.status === 202) acked.add(id);
      } catch {
        break; // the server died under us
      }
    }
  })();
  await waitFor(() => acked.size >= 40, 20_000, "40 acknowledgements");
  killed = true;
  await first.stop("SIGKILL");
  await sender;
  assert.ok(acked.size >= 40);

  const second = await startServer({ ...env, PORT: String(first.port) }, {
    cwd,
  });
  try {
    await waitFor(
      async () => {
        const list = await deliveries(second.url);
        const byId = new Map(
          list.map((d) => [d.id as string, d.status as string]),
        );
        return [...acked].every((id) =>
          ["done", "skipped", "dead"].includes(byId.get(id) ?? "")
        );
      },
      30_000,
      "every acknowledged delivery to reach a final status",
    );
    const list = await deliveries(second.url);
    for (const d of list.filter((d) => acked.has(d.id as string))) {
      assert.equal(d.status, "done", `${d.id} is done`);
    }
    // Never two recorded outcomes for one delivery across both processes (a
    // line can be missing: SIGKILL may land between the commit and the log).
    const outcomes = [...first.lines, ...second.lines]
      .filter((l) => l.includes('"msg":"delivery done"'))
      .map((l) => JSON.parse(l).delivery as string);
    for (const id of acked) {
      assert.ok(
        outcomes.filter((o) => o === id).length <= 1,
        `${id} recorded once`,
      );
    }
    assert.ok(outcomes.length >= acked.size - 1);
  } finally {
    assert.equal((await second.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("two processes on one KV file share deliveries and dedupe across each other", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-two-" });
  const env = { ...BASE_ENV, KV_PATH: "./data/hookgate.kv" };
  const a = await startServer(env, { cwd });
  const b = await startServer(env, { cwd });
  try {
    const ids = Array.from({ length: 30 }, (_, i) => `shared-${i}`);
    let queued = 0;
    let duplicates = 0;
    for (const [i, id] of ids.entries()) {
      const [one, other] = i % 2 === 0 ? [a, b] : [b, a];
      const results = await Promise.all([
        postDelivery(one.url, { event: "push", id, body: pushBody(id) }),
        postDelivery(other.url, { event: "push", id, body: pushBody(id) }),
      ]);
      for (const r of results) {
        if (r.status === 202) queued++;
        else if (r.status === 200) duplicates++;
        else {throw new Error(
            `unexpected ${r.status}: ${JSON.stringify(r.body)}`,
          );}
      }
    }
    assert.equal(queued, 30, "exactly one 202 per delivery");
    assert.equal(duplicates, 30);
    await waitFor(
      async () => {
        const list = await deliveries(a.url);
        return list.filter((d) => d.status === "done").length === 30;
      },
      20_000,
      "all 30 done",
    );
    // Each outcome's log line follows its commit: give the last ones time.
    const doneLines = () =>
      [...a.lines, ...b.lines].filter((l) =>
        l.includes('"msg":"delivery done"')
      );
    await waitFor(() => doneLines().length >= 30, 5000, "30 outcome lines");
    const outcomes = doneLines().map((l) => JSON.parse(l).delivery as string);
    assert.equal(outcomes.length, 30, "each handled once");
    assert.equal(new Set(outcomes).size, 30);
    const handledByA = a.lines.filter((l) =>
      l.includes('"msg":"delivery done"')
    ).length;
    const handledByB = b.lines.filter((l) =>
      l.includes('"msg":"delivery done"')
    ).length;
    assert.ok(
      handledByA > 0 && handledByB > 0,
      `both worked (a=${handledByA}, b=${handledByB})`,
    );
  } finally {
    assert.equal((await a.stop()).code, 0);
    assert.equal((await b.stop()).code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("main.ts exits non-zero naming KV_PATH when the KV cannot be opened", async () => {
  const port = freePort(); // nothing listens there
  const server = await startServer({
    ...BASE_ENV,
    KV_PATH: `http://127.0.0.1:${port}/`,
    DENO_KV_ACCESS_TOKEN: "test-token",
  }, { waitForListen: false });
  const exit = await server.child.status;
  await server.stop();
  assert.equal(exit.code, 1);
  assert.match(server.lines.join("\n"), /KV_PATH .*could not be opened/);
});

Deno.test("a floating rejection or a timer's throw in a handler never ends the process", async () => {
  const fixture =
    new URL("../fixtures/misbehaving_handlers.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      "--allow-env",
      "--allow-read",
      fixture,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(
    text,
    /"msg":"unhandled rejection in a handler".*floating rejection from a handler/,
  );
  assert.match(
    text,
    /"msg":"uncaught exception in a handler".*thrown from a handler's timer/,
  );
  assert.match(text, /"msg":"alive","status":"done"/);
});

Deno.test("main.ts exits non-zero naming HOST and PORT when it cannot listen", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const server = await startServer(
      { ...BASE_ENV, KV_PATH: ":memory:", PORT: String(port) },
      { waitForListen: false },
    );
    const exit = await server.child.status;
    await server.stop();
    assert.equal(exit.code, 1);
    assert.match(
      server.lines.join("\n"),
      /cannot listen on HOST \\"127\.0\.0\.1\\", PORT \d+.*AddrInUse/,
    );
  } finally {
    taken.close();
  }
});
