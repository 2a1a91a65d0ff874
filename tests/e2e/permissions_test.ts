// The production guide's flags: the server runs and serves under exactly
// `deno task flags`' output, and everything else is refused.

import assert from "node:assert/strict";
import { CONFIG_VARIABLES, loadConfig } from "../../lib/config/config.ts";
import { productionFlags } from "../../tools/flags.ts";
import { freePort, postDelivery, SECRET, waitFor } from "../_helpers.ts";

Deno.test("productionFlags() names the listen address, the meta host and the data folder", () => {
  assert.deepEqual(
    productionFlags(loadConfig({ GITHUB_WEBHOOK_SECRET: SECRET }), ".env"),
    [
      "--allow-net=0.0.0.0:8000,api.github.com:443",
      `--allow-env=${[...CONFIG_VARIABLES, "HOSTNAME"].join(",")}`,
      `--allow-read=./data,.env,${
        new URL("../../lib", import.meta.url).pathname
      }`,
      "--allow-write=./data",
    ],
  );
  const v6 = productionFlags(
    loadConfig({
      GITHUB_WEBHOOK_SECRET: SECRET,
      HOST: "::",
      PORT: "9000",
      IP_ALLOWLIST: "off",
      KV_PATH: "/var/lib/hookgate/hookgate.kv",
    }),
  );
  assert.equal(v6[0], "--allow-net=[::]:9000");
  assert.equal(
    v6[2],
    `--allow-read=/var/lib/hookgate,${
      new URL("../../lib", import.meta.url).pathname
    }`,
  );
});

Deno.test("productionFlags() adds the API host for ctx.github and the App's key file", async (t) => {
  const LIB = new URL("../../lib", import.meta.url).pathname;
  const flags = (env: Record<string, string>) =>
    productionFlags(loadConfig({ GITHUB_WEBHOOK_SECRET: SECRET, ...env }));
  await t.step("GITHUB_TOKEN alone: api.github.com, once", () => {
    assert.equal(
      flags({ GITHUB_TOKEN: "ghp_abc" })[0],
      "--allow-net=0.0.0.0:8000,api.github.com:443",
    );
    assert.equal(
      flags({ GITHUB_TOKEN: "ghp_abc", IP_ALLOWLIST: "off" })[0],
      "--allow-net=0.0.0.0:8000,api.github.com:443",
    );
  });
  await t.step("no credentials: no API host without the meta fetch", () => {
    assert.equal(flags({ IP_ALLOWLIST: "off" })[0], "--allow-net=0.0.0.0:8000");
  });
  await t.step("an App on GitHub Enterprise Server, key in a file", () => {
    const out = flags({
      GITHUB_APP_ID: "123456",
      GITHUB_APP_PRIVATE_KEY_PATH: "/etc/hookgate/app.pem",
      GITHUB_API_URL: "https://ghe.example.com/api/v3",
      KV_PATH: "/var/lib/hookgate/hookgate.kv",
    });
    assert.equal(
      out[0],
      "--allow-net=0.0.0.0:8000,api.github.com:443,ghe.example.com:443",
    );
    assert.equal(
      out[2],
      `--allow-read=/var/lib/hookgate,/etc/hookgate/app.pem,${LIB}`,
    );
  });
  await t.step(
    "an App with the key in the environment reads no key file",
    () => {
      const out = flags({
        GITHUB_APP_ID: "Iv23liAbCdEf01234567",
        GITHUB_APP_PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----",
        GITHUB_API_URL: "http://127.0.0.1:9999",
        IP_ALLOWLIST: "off",
        KV_PATH: ":memory:",
      });
      assert.equal(out[0], "--allow-net=0.0.0.0:8000,127.0.0.1:9999");
      assert.equal(out[2], `--allow-read=${LIB}`);
    },
  );
});

Deno.test("the server runs under exactly the production flags, and nothing else is allowed", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-perm-" });
  const meta = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ hooks: ["127.0.0.0/8"] }),
  );
  const port = freePort();
  const env = {
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    HOST: "127.0.0.1",
    PORT: String(port),
    GITHUB_META_URL: `http://127.0.0.1:${meta.addr.port}/meta`,
    KV_PATH: `${cwd}/state/hookgate.kv`,
    LOG_FORMAT: "json",
  };
  const flags = productionFlags(loadConfig(env));
  const probe =
    new URL("../fixtures/permission_probe.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      "--no-prompt",
      ...flags,
      probe,
      String(freePort()),
    ],
    cwd,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      NO_COLOR: "1",
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of child.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const stderr = new Response(child.stderr).text();
  try {
    await waitFor(
      () => lines.filter((l) => l.startsWith('{"probe"')).length === 6,
      20_000,
      "probes",
    );
    const results = Object.fromEntries(
      lines.filter((l) => l.startsWith('{"probe"')).map((l) => {
        const { probe, result } = JSON.parse(l);
        return [probe, result];
      }),
    );
    for (const [name, result] of Object.entries(results)) {
      assert.equal(result, "refused", `${name} is refused`);
    }
    // …and the server itself works: listens, fetched the meta list, stores.
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        await res.body?.cancel();
        return res.status === 200;
      },
      10_000,
      "ready",
    );
    const ping = await Deno.readTextFile(
      new URL("../../examples/ping.json", import.meta.url),
    );
    const res = await postDelivery(`http://127.0.0.1:${port}`, {
      event: "ping",
      id: "perm-1",
      body: ping,
    });
    assert.equal(res.status, 202);
    await waitFor(
      () => lines.some((l) => l.includes('"msg":"delivery done"')),
      10_000,
      "done",
    ).catch((err) => {
      throw new Error(`${err.message}; output:\n${lines.join("\n")}`);
    });
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await pump;
    const err = await stderr;
    await meta.shutdown();
    await Deno.remove(cwd, { recursive: true });
    assert.equal(status.code, 0, err);
  }
});
