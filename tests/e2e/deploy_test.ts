// The Deno Deploy code path, locally: DENO_DEPLOYMENT_ID set, `deno serve`
// serving the default export, `Deno.openKv()` without a path, no writes to
// the working directory, and the meta list refreshed lazily on requests
// (Deno.cron is absent without --unstable-cron) instead of by a timer.

import assert from "node:assert/strict";
import { freePort, postDelivery, waitFor } from "../_helpers.ts";

Deno.test("the Deploy code path starts, serves and refreshes the allowlist on requests", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-deploy-" });
  const denoDir = await Deno.makeTempDir({ prefix: "hookgate-deno-dir-" });
  let hits = 0;
  const meta = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      hits++;
      return Response.json({ hooks: ["127.0.0.0/8", "192.30.252.0/22"] });
    },
  );
  const port = freePort();
  const entry = new URL("../../serve.ts", import.meta.url).pathname;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "serve",
      "--config",
      config,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      `--allow-write=${denoDir}`,
      entry,
    ],
    cwd,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      DENO_DIR: denoDir,
      NO_COLOR: "1",
      DENO_DEPLOYMENT_ID: "local-test",
      GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
      GITHUB_META_URL: `http://127.0.0.1:${meta.addr.port}/meta`,
      GITHUB_META_REFRESH_SECONDS: "1",
      LOG_FORMAT: "json",
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        try {
          const res = await fetch(`${url}/readyz`);
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      30_000,
      "the Deploy path to serve and be ready",
    );
    const first = await postDelivery(url, { event: "ping", id: "deploy-1" });
    assert.equal(first.status, 202);

    // No timer refreshes the list on Deploy: without requests, no fetches.
    const before = hits;
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal(hits, before, "no background timer fetched the meta list");
    // A request on a stale list revalidates it in the background.
    const second = await postDelivery(url, { event: "ping", id: "deploy-2" });
    assert.equal(second.status, 202);
    await waitFor(() => hits > before, 5000, "a lazy refresh");

    const files = [];
    for await (const entry of Deno.readDir(cwd)) files.push(entry.name);
    assert.deepEqual(files, [], "nothing written to the working directory");
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    const [out, err] = await output;
    await meta.shutdown();
    await Deno.remove(cwd, { recursive: true });
    await Deno.remove(denoDir, { recursive: true });
    assert.equal(status.code, 0, out + err);
    assert.match(out + err, /"msg":"stopped"/);
  }
});
