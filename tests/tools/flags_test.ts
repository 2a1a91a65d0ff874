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

Deno.test("deno task start's flags: an earlier otel.env is replaced 0600 or removed, and one that cannot be written leaves the other flags", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-otel-flags-" });
  const start = () =>
    run([
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-write=./data",
      FLAGS,
      "--start",
    ], cwd);
  try {
    await Deno.mkdir(`${cwd}/data`);
    await Deno.writeTextFile(`${cwd}/data/otel.env`, "OLD=1\n", {
      mode: 0o644,
    });
    await Deno.chmod(`${cwd}/data/otel.env`, 0o644);
    await Deno.writeTextFile(`${cwd}/.env`, "OTEL_DENO=true\n");
    assert.equal((await start()).stdout, "--env-file=./data/otel.env");
    assert.equal(
      await Deno.readTextFile(`${cwd}/data/otel.env`),
      "OTEL_DENO='true'\n",
    );
    assert.equal(
      (await Deno.stat(`${cwd}/data/otel.env`)).mode! & 0o777,
      0o600,
    );
    assert.deepEqual(
      [...Deno.readDirSync(`${cwd}/data`)].map((e) => e.name),
      ["otel.env"],
      "no temporary file left",
    );

    // The OTEL lines gone from .env: no flag, and no file left behind.
    await Deno.writeTextFile(`${cwd}/.env`, "PORT=8000\n");
    assert.equal((await start()).stdout, "");
    await assert.rejects(
      Deno.stat(`${cwd}/data/otel.env`),
      Deno.errors.NotFound,
    );

    // data/ not writable (a file in its place): said, and HOOKS_DIR's flags stay.
    await Deno.remove(`${cwd}/data`, { recursive: true });
    await Deno.writeTextFile(`${cwd}/data`, "not a folder");
    await Deno.mkdir(`${cwd}/hooks`);
    await Deno.writeTextFile(
      `${cwd}/.env`,
      `OTEL_DENO=true\nHOOKS_DIR=${cwd}/hooks\n`,
    );
    const blocked = await start();
    assert.match(blocked.stdout, /^--allow-run --allow-read=/);
    assert.ok(!blocked.stdout.includes("--env-file"), blocked.stdout);
    assert.match(
      blocked.stderr,
      /cannot write \.\/data\/otel\.env \(\w+\); the OTEL_\* lines of \.env are not applied/,
    );
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
