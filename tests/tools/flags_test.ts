import assert from "node:assert/strict";
import { productionFlags } from "../../tools/flags.ts";
import { loadConfig } from "../../lib/config/config.ts";
import { SECRET } from "../_helpers.ts";

Deno.test("productionFlags() adds each FORWARD_URLS host to --allow-net, once", () => {
  const [net] = productionFlags(loadConfig({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    FORWARD_URLS:
      "https://staging.example.com/webhook,http://10.0.0.5:8000/hook,http://0.0.0.0:8000/x",
  }));
  assert.equal(
    net,
    "--allow-net=0.0.0.0:8000,staging.example.com:443,10.0.0.5:8000",
  );
});

const FLAGS = new URL("../../tools/flags.ts", import.meta.url).pathname;

async function run(args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout).trim(),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("deno task start's flags pass Deno only the OTEL_* lines of .env, literally, in a 0600 file", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-otel-flags-" });
  try {
    await Deno.writeTextFile(
      `${cwd}/.env`,
      [
        // Deno's own parser would expand $o9p0 and cut at #: it must never see it.
        "GITHUB_WEBHOOK_SECRET=Q1w2e3r4t5y6u7i8$o9p0-zz#zzzz",
        "OTEL_DENO=true",
        'OTEL_EXPORTER_OTLP_HEADERS="x-api-key=a$b#c"',
        "OTEL_SERVICE_NAME=it's-quoted",
      ].join("\n") + "\n",
    );
    const flags = await run([
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-write=./data",
      FLAGS,
      "--start",
    ], cwd);
    assert.equal(flags.stdout, "--env-file=./data/otel.env");
    assert.match(flags.stderr, /OTEL_SERVICE_NAME in \.env holds a quote/);
    const written = await Deno.readTextFile(`${cwd}/data/otel.env`);
    assert.equal(
      written,
      "OTEL_DENO='true'\nOTEL_EXPORTER_OTLP_HEADERS='x-api-key=a$b#c'\n",
    );
    assert.equal(
      (await Deno.stat(`${cwd}/data/otel.env`)).mode! & 0o777,
      0o600,
    );
    // What Deno makes of it: literal values, telemetry on, no secret loaded.
    await Deno.writeTextFile(
      `${cwd}/probe.ts`,
      `console.log(JSON.stringify({
        on: Symbol.for("opentelemetry.js.api.1") in globalThis,
        headers: Deno.env.get("OTEL_EXPORTER_OTLP_HEADERS"),
        secret: Deno.env.get("GITHUB_WEBHOOK_SECRET") ?? null,
      }));`,
    );
    const probe = await run([
      "run",
      "--allow-env",
      "--env-file=./data/otel.env",
      "probe.ts",
    ], cwd);
    assert.deepEqual(JSON.parse(probe.stdout), {
      on: true,
      headers: "x-api-key=a$b#c",
      secret: null,
    });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
