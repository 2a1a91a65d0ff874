// Handlers in Worker isolates, seen from the network: a handler spinning
// synchronously delays no 202 and stalls no other delivery, and is ended at
// its timeout.

import assert from "node:assert/strict";
import { createApp } from "../../lib/app.ts";
import { postDelivery, testConfig, waitFor } from "../_helpers.ts";
import { NULL_LOGGER } from "../../lib/ops/log.ts";

const MODULE = new URL("../fixtures/hostile_handlers.ts", import.meta.url).href;

Deno.test("a handler spinning synchronously delays no 202 and no other delivery, and is ended at its timeout", async () => {
  const app = await createApp({
    config: testConfig({ HANDLER_TIMEOUT_MS: "4000", MAX_CONCURRENCY: "2" }),
    log: NULL_LOGGER,
    handlersModule: MODULE,
    worker: { pollMs: 50, retryBaseMs: 60_000 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    const spun = await postDelivery(url, {
      event: "spin",
      id: "spin-1",
      body: "{}",
    });
    assert.equal(spun.status, 202);
    await waitFor(
      async () => (await app.store.get("spin-1"))?.status === "running",
      5000,
      "the spinning run",
    );
    for (let i = 0; i < 20; i++) {
      const res = await postDelivery(url, {
        event: "ok",
        id: `ok-${i}`,
        body: JSON.stringify({ i }),
      });
      assert.equal(res.status, 202);
    }
    await waitFor(
      async () => {
        const done = await Promise.all(
          Array.from({ length: 20 }, (_, i) => app.store.get(`ok-${i}`)),
        );
        return done.every((r) => r?.status === "done");
      },
      10_000,
      "the other deliveries done",
    );
    assert.equal(
      (await app.store.get("spin-1"))?.status,
      "running",
      "every other delivery was done while the handler still spun",
    );
    const ended = await waitFor(
      async () => {
        const r = await app.store.get("spin-1");
        return r?.status === "failed" ? r : null;
      },
      10_000,
      "the spinning run ended",
    );
    assert.match(ended.error ?? "", /did not stop; its Worker was terminated/);
  } finally {
    stop.abort();
    await server.shutdown();
    await app.close(1000);
  }
});

Deno.test("without read access to lib/ the server stops at start, naming the flag", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-noread-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "--no-prompt",
        "--allow-net",
        "--allow-env",
        "--allow-read=./data",
        "--allow-write=./data",
        new URL("../../main.ts", import.meta.url).pathname,
      ],
      cwd,
      env: {
        GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
        IP_ALLOWLIST: "off",
        KV_PATH: ":memory:",
        PORT: "0",
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, text);
    assert.match(
      text,
      /Cannot start: Handlers run in Worker isolates.*--allow-read/,
    );
    assert.doesNotMatch(text, /It's a Secret/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
