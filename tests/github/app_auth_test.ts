import assert from "node:assert/strict";
import {
  type AppAuthOptions,
  createAppAuth,
} from "../../lib/github/app_auth.ts";
import { importAppKey } from "../../lib/github/app_key.ts";
import { createRestClient } from "../../lib/github/rest.ts";
import {
  failure,
  FAKE_ISSUES,
  type FakeGitHub,
  type FakeGitHubOptions,
  rateLimited,
  resetLimited,
  startFakeGitHub,
} from "../fixtures/fake_github.ts";
import { rejection } from "./_helpers.ts";
import { makeTestKeys, spkiOf } from "./_keys.ts";

const MINT = "POST /app/installations/{id}/access_tokens";
const MINUTE = 60_000;

async function appKeys() {
  return await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      hash: "SHA-256",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    false,
    ["sign", "verify"],
  );
}

/** A fake GitHub and an AppAuth pointed at it, sharing `clock` when given. */
async function setup(
  fakeOptions: FakeGitHubOptions = {},
  authOptions: Partial<AppAuthOptions> = {},
): Promise<{ github: FakeGitHub; auth: ReturnType<typeof createAppAuth> }> {
  const { privateKey, publicKey } = await appKeys();
  const github = await startFakeGitHub({
    appId: "4242",
    publicKey,
    ...fakeOptions,
  });
  const auth = createAppAuth({
    appId: "4242",
    key: privateKey,
    baseUrl: github.url,
    ...authOptions,
  });
  return { github, auth };
}

/** Every secret the fake handed out or was sent (tokens and JWTs). */
function secretsOf(github: FakeGitHub): string[] {
  const sent = github.requests.map((r) =>
    r.authorization?.replace(/^Bearer /, "") ?? ""
  ).filter((s) => s !== "");
  return [...sent, ...github.minted.map((m) => m.token)];
}

function assertNoSecret(text: string, secrets: readonly string[]): void {
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `a secret leaked into: ${text}`);
    for (const part of secret.split(".")) {
      if (part.length > 16) {
        assert.ok(!text.includes(part), "a JWT part leaked");
      }
    }
  }
}

Deno.test("installationToken() mints under a valid JWT and serves the cached token after", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const first = await auth.installationToken(1);
  const second = await auth.installationToken(1);
  assert.equal(first, second);
  assert.equal(github.minted.length, 1);
  assert.equal(github.minted[0]!.token, first);
  const [mint] = github.requestsOf(MINT);
  assert.equal(mint!.path, "/app/installations/1/access_tokens");
  assert.equal(mint!.auth.kind, "app");
  if (mint!.auth.kind === "app") {
    const { iss, iat, exp } = mint!.auth.claims as {
      iss: number;
      iat: number;
      exp: number;
    };
    assert.equal(iss, 4242);
    assert.ok(exp - iat <= 600);
    assert.ok(iat <= Date.now() / 1000 - 59);
  }
  assert.equal(mint!.headers.get("x-github-api-version"), "2022-11-28");
  assert.equal(mint!.headers.get("accept"), "application/vnd.github+json");
  const other = await auth.installationToken(2);
  assert.notEqual(other, first, "tokens are per installation");
  assert.equal(github.minted.length, 2);
  assert.equal(await auth.jwt(), await auth.jwt(), "the JWT is cached");
});

Deno.test("installationToken() renews a token renewBeforeMs before expires_at", async () => {
  let now = Date.parse("2025-06-02T12:00:00Z");
  const clock = () => now;
  const { github, auth } = await setup(
    { now: clock, tokenLifetimeMs: 10 * MINUTE },
    { now: clock, renewBeforeMs: 5 * MINUTE },
  );
  await using _ = github;
  const first = await auth.installationToken(7);
  now += 4 * MINUTE;
  assert.equal(await auth.installationToken(7), first);
  now += MINUTE + 1000;
  const second = await auth.installationToken(7);
  assert.notEqual(second, first);
  assert.equal(github.minted.length, 2);
  now += 20 * MINUTE;
  const third = await auth.installationToken(7);
  assert.equal(github.minted.length, 3, "a later JWT is minted as time runs");
  assert.notEqual(third, second);
  const jwts = new Set(github.requestsOf(MINT).map((r) => r.authorization));
  assert.equal(jwts.size, 2, "the JWT was renewed after it ran low");
  assert.ok(
    github.requestsOf(MINT).every((r) => r.auth.kind === "app"),
    "renewed before GitHub refused it",
  );
});

Deno.test("installationToken() shares one mint among concurrent callers", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const tokens = await Promise.all(
    Array.from({ length: 5 }, () => auth.installationToken(3)),
  );
  assert.equal(new Set(tokens).size, 1);
  assert.equal(github.requestsOf(MINT).length, 1);
});

Deno.test("a 401 after a mint gets one fresh mint and one retry", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const client = createRestClient({
    baseUrl: github.url,
    getToken: ({ fresh }) => auth.installationToken(5, { fresh }),
  });
  await client.request("GET /repos/{owner}/{repo}/issues", {
    owner: "o",
    repo: "r",
  });
  github.revoke(github.minted[0]!.token);
  const { status } = await client.request("GET /repos/{owner}/{repo}/issues", {
    owner: "o",
    repo: "r",
  });
  assert.equal(status, 200);
  assert.equal(github.minted.length, 2);
  const calls = github.requestsOf("GET /repos/{owner}/{repo}/issues");
  assert.deepEqual(
    calls.map((r) => r.authorization),
    [
      `Bearer ${github.minted[0]!.token}`,
      `Bearer ${github.minted[0]!.token}`,
      `Bearer ${github.minted[1]!.token}`,
    ],
  );
  assert.equal(await auth.installationToken(5), github.minted[1]!.token);
});

Deno.test("the clock is corrected from GitHub's Date header, ahead or behind", async (t) => {
  for (const offset of [60 * MINUTE, -60 * MINUTE]) {
    await t.step(
      `GitHub ${offset > 0 ? "ahead" : "behind"} by an hour`,
      async () => {
        const { github, auth } = await setup({ clockOffsetMs: offset });
        await using _ = github;
        const token = await auth.installationToken(1);
        assert.equal(token, github.minted[0]!.token);
        assert.ok(Math.abs(auth.skewMs - offset) < 2000, String(auth.skewMs));
        const mints = github.requestsOf(MINT);
        assert.equal(
          mints.length,
          2,
          "the skewed JWT was refused, then one more",
        );
        assert.equal(mints[1]!.auth.kind, "app");
        await auth.installationToken(2);
        assert.equal(github.requestsOf(MINT).length, 3, "corrected once");
      },
    );
  }
});

Deno.test("a rate-limited mint is waited out with the injected sleep", async () => {
  const sleeps: number[] = [];
  const { github, auth } = await setup({}, {
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  await using _ = github;
  github.script(
    MINT,
    rateLimited(30),
    resetLimited(Date.now() / 1000 + 120),
  );
  const token = await auth.installationToken(1);
  assert.equal(token, github.minted[0]!.token);
  assert.equal(sleeps[0], 30_000);
  assert.ok(sleeps[1]! > 100_000 && sleeps[1]! < 130_000, String(sleeps[1]));
});

Deno.test("a rate limit past the deadline reaches the caller at once", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const logs: string[] = [];
  const client = createRestClient({
    baseUrl: github.url,
    getToken: ({ fresh }) => auth.installationToken(1, { fresh }),
    onRateLimit: (notice) => logs.push(notice.message),
    sleep: () => Promise.resolve(),
  });
  github.script("GET /repos/{owner}/{repo}/issues", rateLimited(3600));
  const err = await rejection(
    client.paginate("GET /repos/{owner}/{repo}/issues", {
      owner: "o",
      repo: "r",
    }, { deadline: Date.now() + 60_000 }),
  );
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.status, 429);
  assert.deepEqual(logs, []);
  github.script("GET /repos/{owner}/{repo}/issues", rateLimited(1));
  const items = await client.paginate("GET /repos/{owner}/{repo}/issues", {
    owner: "o",
    repo: "r",
  }, { deadline: Date.now() + 60_000 });
  assert.equal(items.length, FAKE_ISSUES.length);
  assert.equal(logs.length, 1);
  assertNoSecret([err.message, ...logs].join("\n"), secretsOf(github));
});

Deno.test("paginate() under an installation token reads all three pages", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const client = createRestClient({
    baseUrl: github.url,
    getToken: ({ fresh }) => auth.installationToken(9, { fresh }),
  });
  const items = await client.paginate("GET /repos/{owner}/{repo}/issues", {
    owner: "o",
    repo: "r",
  });
  assert.deepEqual(items, FAKE_ISSUES);
  const pages = github.requestsOf("GET /repos/{owner}/{repo}/issues");
  assert.deepEqual(pages.map((r) => r.search), ["", "?page=2", "?page=3"]);
  assert.ok(pages.every((r) => r.auth.kind === "installation"));
  assert.equal(github.minted.length, 1);
});

Deno.test("failed mints reject with GitHub's status and message, and no token or JWT", async (t) => {
  await t.step("404 from GitHub", async () => {
    const { github, auth } = await setup();
    await using _ = github;
    await auth.installationToken(1);
    github.script(MINT, failure(404, "Not Found"));
    const err = await rejection(auth.installationToken(2));
    assert.equal(err.status, 404);
    assert.equal(err.githubMessage, "Not Found");
    assertNoSecret(`${err.message} ${err.stack}`, secretsOf(github));
  });
  await t.step("a key GitHub does not know", async () => {
    const { github } = await setup();
    await using _ = github;
    const stranger = createAppAuth({
      appId: "4242",
      key: (await appKeys()).privateKey,
      baseUrl: github.url,
    });
    const err = await rejection(stranger.installationToken(1));
    assert.equal(err.status, 401);
    assert.equal(github.requestsOf(MINT).length, 2, "one fresh retry");
    assertNoSecret(`${err.message} ${err.stack}`, secretsOf(github));
  });
  await t.step("an answer without a token", async () => {
    const { github, auth } = await setup();
    await using _ = github;
    github.script(MINT, { status: 201, body: { expires_at: "soon" } });
    const err = await rejection(auth.installationToken(1));
    assert.equal(err.kind, "invalid");
    // A failed mint is not cached: the next call mints again.
    assert.equal(await auth.installationToken(1), github.minted[0]!.token);
  });
});

Deno.test("forget() drops a token; an aborted caller leaves the mint to others", async () => {
  const { github, auth } = await setup();
  await using _ = github;
  const first = await auth.installationToken(1);
  auth.forget(1);
  const second = await auth.installationToken(1);
  assert.notEqual(second, first);
  auth.forget(2);
  const aborted = new AbortController();
  const waiting = auth.installationToken(2, { signal: aborted.signal });
  const other = auth.installationToken(2);
  aborted.abort(new Error("gone"));
  await assert.rejects(waiting, /gone/);
  assert.equal(await other, github.minted.at(-1)!.token);
  await assert.rejects(
    auth.installationToken(3, { signal: AbortSignal.abort(new Error("x")) }),
    /x/,
  );
  assert.throws(() => auth.installationToken(0), TypeError);

  // When every caller has gone, the mint itself is aborted.
  const { promise: held, resolve: release } = Promise.withResolvers<void>();
  github.route(MINT, async () => {
    await held;
    return failure(500);
  });
  const alone = new AbortController();
  const lone = auth.installationToken(4, { signal: alone.signal });
  while (github.requestsOf(MINT).length < 4) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  alone.abort(new Error("left"));
  await assert.rejects(lone, /left/);
  release();
});

const keys = await makeTestKeys();
Deno.test({
  name: "an openssl PKCS#1 key, imported, authenticates against its public key",
  ignore: keys === null,
  fn: async () => {
    const imported = await importAppKey(keys!.pkcs1.replaceAll("\n", "\\n"));
    assert.ok(imported.ok);
    await using github = await startFakeGitHub({
      appId: "Iv1.abc123",
      publicKey: spkiOf(keys!.publicPem),
    });
    const auth = createAppAuth({
      appId: "Iv1.abc123",
      key: imported.key,
      baseUrl: github.url,
    });
    assert.equal(await auth.installationToken(1), github.minted[0]!.token);
    const mint = github.requestsOf(MINT)[0]!;
    assert.equal(
      mint.auth.kind === "app" ? mint.auth.claims.iss : "",
      "Iv1.abc123",
    );
  },
});
