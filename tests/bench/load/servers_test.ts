import assert from "node:assert/strict";
import { serverCommand } from "../../../bench/load/servers.ts";
import { inheritedEnv } from "../../../bench/_subprocess.ts";

Deno.test("serverCommand() runs (a) and (b) on the server core with only PORT readable", () => {
  const a = serverCommand("a", 8000, { extraEnv: { X: "1" }, parallel: 4 }, []);
  assert.equal(a.cores, "0");
  assert.deepEqual(a.env, {});
  assert.ok(a.args.includes("--allow-env=PORT"));
  assert.match(a.args.at(-1)!, /\/bench\/servers\/ceiling\.ts$/);
  const b = serverCommand("b", 8000, { extraEnv: {}, parallel: 1 }, [
    "--cpu-prof",
  ]);
  assert.match(b.args.at(-1)!, /\/bench\/servers\/minimal\.ts$/);
  assert.equal(b.args[3], "--cpu-prof");
});

Deno.test("serverCommand() runs hookgate as deno task start does, --env on top", () => {
  const c = serverCommand("c", 8000, {
    extraEnv: { MAX_CONCURRENCY: "32", LOG_LEVEL: "info" },
    parallel: 1,
  }, []);
  assert.equal(c.cores, "0");
  assert.equal(c.args[0], "run");
  assert.match(c.args.at(-1)!, /\/main\.ts$/);
  assert.equal(c.env.KV_PATH, ":memory:");
  assert.equal(c.env.IP_ALLOWLIST, "off");
  assert.equal(c.env.LOG_LEVEL, "info");
  assert.equal(c.env.MAX_CONCURRENCY, "32");
  assert.equal(c.env.DENO_JOBS, undefined);
  const d = serverCommand("d", 8000, { extraEnv: {}, parallel: 1 }, []);
  assert.equal(d.env.KV_PATH, "./data/hookgate.kv");
});

Deno.test("serverCommand() gives hookgate every core under --parallel", () => {
  const c = serverCommand("d", 8123, { extraEnv: {}, parallel: 2 }, [], 4);
  assert.equal(c.cores, "0-3");
  assert.deepEqual(c.args.slice(0, 6), [
    "serve",
    "--parallel",
    "--port",
    "8123",
    "--host",
    "127.0.0.1",
  ]);
  assert.match(c.args.at(-1)!, /\/serve\.ts$/);
  assert.equal(c.env.DENO_JOBS, "2");
  assert.equal(
    serverCommand("c", 1, { extraEnv: {}, parallel: 2 }, [], 1).cores,
    "0-1",
  );
});

Deno.test("serverCommand() runs hookgate from another checkout when given its root", () => {
  const root = "/tmp/hookgate-baseline-x/tree/";
  const d = serverCommand("d", 8000, { extraEnv: {}, parallel: 1, root }, []);
  assert.equal(d.args[d.args.indexOf("--config") + 1], `${root}deno.json`);
  assert.ok(d.args.includes(`--allow-read=.env,./data,${root}lib`));
  assert.equal(d.args.at(-1), `${root}main.ts`);
  assert.equal(d.env.KV_PATH, "./data/hookgate.kv");
  // Without it, this checkout's; (a) and (b) are always this checkout's.
  const here = serverCommand("d", 8000, { extraEnv: {}, parallel: 1 }, []);
  assert.ok(!here.args.at(-1)!.startsWith(root));
  assert.match(here.args.at(-1)!, /\/main\.ts$/);
  const a = serverCommand("a", 8000, { extraEnv: {}, parallel: 1, root }, []);
  assert.ok(a.args.every((arg) => !arg.includes(root)));
});

Deno.test("serverCommand() gives hookgate no OTEL_* variable unless --env or the caller adds one", () => {
  const d = serverCommand("d", 8000, { extraEnv: {}, parallel: 1 }, []);
  assert.deepEqual(Object.keys(d.env).filter((k) => k.startsWith("OTEL_")), []);
  // Nor does the benchmark's own environment reach it (startServer clears it).
  Deno.env.set("OTEL_DENO", "true");
  try {
    assert.deepEqual(
      Object.keys(inheritedEnv()).filter((k) => k.startsWith("OTEL_")),
      [],
    );
  } finally {
    Deno.env.delete("OTEL_DENO");
  }
  const on = serverCommand("d", 8000, {
    extraEnv: { OTEL_DENO: "true" },
    parallel: 1,
  }, []);
  assert.equal(on.env.OTEL_DENO, "true");
});
