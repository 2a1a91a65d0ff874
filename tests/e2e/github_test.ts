// ctx.github end to end: the README's handlers, in the pool's isolates, call
// a fake GitHub API on loopback that verifies the App's RS256 JWT. Five
// deliveries of one installation mint one token; a secondary rate limit is
// waited out inside the attempt; GITHUB_TOKEN alone works; no credential
// reaches a log line; a bad key stops the server without printing it.

import assert from "node:assert/strict";
import { createApp } from "../../lib/app.ts";
import {
  captureLogger,
  postDelivery,
  testConfig,
  waitFor,
} from "../_helpers.ts";
import {
  type FakeGitHub,
  rateLimited,
  startFakeGitHub,
} from "../fixtures/fake_github.ts";

const HANDLERS = new URL("../fixtures/readme_handlers.ts", import.meta.url)
  .href;
const APP_ID = "12345";

/** A fresh RSA key pair: the private half as PEM, `\n`-escaped as in a .env. */
async function appKey(): Promise<{ pem: string; publicKey: CryptoKey }> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  const b64 = btoa(String.fromCharCode(...der)).match(/.{1,64}/g)!.join("\\n");
  return {
    pem: `-----BEGIN PRIVATE KEY-----\\n${b64}\\n-----END PRIVATE KEY-----\\n`,
    publicKey: pair.publicKey,
  };
}

function issueOpened(n: number, installation?: number) {
  return JSON.stringify({
    action: "opened",
    issue: { number: n, title: `Issue ${n}`, user: { login: "monalisa" } },
    repository: {
      name: "hello-world",
      full_name: "octo-org/hello-world",
      owner: { login: "octo-org" },
    },
    sender: { login: "monalisa", type: "User" },
    ...(installation ? { installation: { id: installation } } : {}),
  });
}

function commentsRoute(fake: FakeGitHub) {
  fake.route(
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    ({ params }) => ({
      status: 201,
      body: { id: Number(params.issue_number) },
    }),
  );
}

async function withApp(
  env: Record<string, string>,
  run: (url: string, logs: ReturnType<typeof captureLogger>) => Promise<void>,
) {
  const logs = captureLogger("debug");
  const app = await createApp({
    config: testConfig({ LOG_LEVEL: "debug", ...env }),
    log: logs.log,
    handlersModule: HANDLERS,
    worker: { pollMs: 50 },
  });
  const stop = new AbortController();
  app.start(stop.signal);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    await run(`http://127.0.0.1:${server.addr.port}`, logs);
  } finally {
    stop.abort();
    await server.shutdown();
    await app.close(1000);
  }
}

Deno.test("five deliveries of one installation mint one token, and every call carries it with GitHub's headers", async () => {
  const { pem, publicKey } = await appKey();
  await using fake = await startFakeGitHub({ appId: APP_ID, publicKey });
  commentsRoute(fake);
  await withApp({
    GITHUB_APP_ID: APP_ID,
    GITHUB_APP_PRIVATE_KEY: pem,
    GITHUB_API_URL: fake.url,
  }, async (url, logs) => {
    for (let n = 1; n <= 5; n++) {
      const res = await postDelivery(url, {
        event: "issues",
        id: `issue-${n}`,
        body: issueOpened(n, 7),
      });
      assert.equal(res.status, 202);
    }
    const route = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments";
    await waitFor(
      () => fake.requestsOf(route).length === 5,
      15_000,
      "5 comments",
    );
    assert.equal(fake.minted.length, 1, "one mint for the installation");
    const token = fake.minted[0]!.token;
    for (const request of fake.requestsOf(route)) {
      assert.equal(request.authorization, `Bearer ${token}`);
      assert.equal(
        request.headers.get("accept"),
        "application/vnd.github+json",
      );
      assert.equal(request.headers.get("x-github-api-version"), "2022-11-28");
      assert.match(request.headers.get("user-agent") ?? "", /hookgate/);
      assert.match(
        String((request.json as { body: string }).body),
        /Thanks, @monalisa!/,
      );
    }
    const everything = logs.raw.join("\n");
    assert.ok(!everything.includes(token), "the token is in no log line");
    assert.ok(!everything.includes("eyJ"), "no JWT is in any log line");
  });
});

Deno.test("a secondary rate limit is waited out inside the attempt", async () => {
  const { pem, publicKey } = await appKey();
  await using fake = await startFakeGitHub({ appId: APP_ID, publicKey });
  const route = "POST /repos/{owner}/{repo}/check-runs";
  fake.route(route, () => ({ status: 201, body: { id: 99 } }));
  fake.script(route, rateLimited(1));
  await withApp({
    GITHUB_APP_ID: APP_ID,
    GITHUB_APP_PRIVATE_KEY: pem,
    GITHUB_API_URL: fake.url,
    HANDLER_TIMEOUT_MS: "10000",
  }, async (url, logs) => {
    const res = await postDelivery(url, {
      event: "pull_request",
      id: "pr-1",
      body: JSON.stringify({
        action: "opened",
        number: 3,
        pull_request: {
          number: 3,
          title: "Add a README",
          draft: false,
          user: { login: "monalisa" },
          head: {
            ref: "readme",
            sha: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
          },
          base: { ref: "main" },
        },
        repository: {
          name: "hello-world",
          full_name: "octo-org/hello-world",
          owner: { login: "octo-org" },
        },
        sender: { login: "monalisa", type: "User" },
        installation: { id: 8 },
      }),
    });
    assert.equal(res.status, 202);
    await waitFor(
      () => logs.lines.some((l) => l.msg === "check run created"),
      15_000,
      "the check run",
    );
    assert.equal(fake.requestsOf(route).length, 2, "refused once, then made");
    const done = logs.lines.find((l) =>
      l.msg === "delivery done" && l.delivery === "pr-1"
    );
    assert.equal(done?.attempt, 1, "within the first attempt");
  });
});

Deno.test("GITHUB_TOKEN alone authenticates ctx.github", async () => {
  const personal = "ghp_personalTokenForTheFake0123456789";
  await using fake = await startFakeGitHub({ personalToken: personal });
  commentsRoute(fake);
  await withApp({
    GITHUB_TOKEN: personal,
    GITHUB_API_URL: fake.url,
  }, async (url, logs) => {
    const res = await postDelivery(url, {
      event: "issues",
      id: "issue-token",
      body: issueOpened(11),
    });
    assert.equal(res.status, 202);
    const route = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments";
    await waitFor(
      () => fake.requestsOf(route).length === 1,
      15_000,
      "a comment",
    );
    assert.equal(
      fake.requestsOf(route)[0]!.authorization,
      `Bearer ${personal}`,
    );
    assert.equal(fake.minted.length, 0);
    assert.ok(!logs.raw.join("\n").includes(personal));
  });
});

Deno.test("a bad App key stops the server at start, naming the variable and never printing the key", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-badkey-" });
  const secretLine =
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCsecretPART";
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "--no-prompt",
        "--allow-net",
        "--allow-env",
        `--allow-read=./data,${new URL("../../lib", import.meta.url).pathname}`,
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
        GITHUB_APP_ID: APP_ID,
        GITHUB_APP_PRIVATE_KEY:
          `-----BEGIN RSA PRIVATE KEY-----\\n${secretLine}\\n-----END RSA PRIVATE KEY-----`,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, text);
    assert.match(text, /GITHUB_APP_PRIVATE_KEY/);
    assert.ok(!text.includes(secretLine.slice(0, 24)), text);
    assert.ok(!text.includes("secretPART"), text);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
