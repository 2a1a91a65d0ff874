import assert from "node:assert/strict";
import { createAppAuth } from "../../lib/github/app_auth.ts";
import { createGitHubBroker } from "../../lib/github/broker.ts";
import type { HookTarget } from "../../lib/github/hook_deliveries.ts";
import { startFakeGitHub } from "../fixtures/fake_github.ts";

const TOKEN = "ghp_brokerHOOKclient0123456789";
const REPO: HookTarget = {
  kind: "repo",
  owner: "octo",
  repo: "hello",
  hookId: "42",
};

Deno.test("broker.hookClient() picks the credentials that may administer a hook", async (t) => {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      hash: "SHA-256",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    false,
    ["sign", "verify"],
  );
  await using github = await startFakeGitHub({
    appId: "5",
    publicKey,
    personalToken: TOKEN,
  });
  github.route("GET /repos/{owner}/{repo}/hooks/{id}/deliveries", () => ({
    status: 200,
    body: [],
  }));
  github.route("GET /app/hook/deliveries", () => ({ status: 200, body: [] }));
  const app = createAppAuth({
    appId: "5",
    key: privateKey,
    baseUrl: github.url,
  });
  const signal = new AbortController().signal;
  const path = "GET /repos/octo/hello/hooks/42/deliveries";
  const last = () => github.requests.at(-1)!.auth.kind;

  await t.step(
    "GITHUB_TOKEN for a repository hook, even with an App",
    async () => {
      const broker = createGitHubBroker({
        baseUrl: github.url,
        app,
        token: TOKEN,
      });
      await broker.hookClient(REPO, 9, signal)!.request(path);
      assert.equal(last(), "personal");
    },
  );
  await t.step("else the installation's token", async () => {
    const broker = createGitHubBroker({ baseUrl: github.url, app });
    await broker.hookClient(REPO, 9, signal)!.request(path);
    assert.equal(last(), "installation");
    assert.equal(github.minted.at(-1)!.installationId, 9);
    assert.equal(broker.hookClient(REPO, undefined, signal), null);
  });
  await t.step(
    "the App's JWT for the App's hook; none without an App",
    async () => {
      const broker = createGitHubBroker({
        baseUrl: github.url,
        app,
        token: TOKEN,
      });
      await broker.hookClient({ kind: "app" }, undefined, signal)!.request(
        "GET /app/hook/deliveries",
      );
      assert.equal(last(), "app");
      const tokenOnly = createGitHubBroker({
        baseUrl: github.url,
        token: TOKEN,
      });
      assert.equal(
        tokenOnly.hookClient({ kind: "app" }, undefined, signal),
        null,
      );
      const none = createGitHubBroker({ baseUrl: github.url });
      assert.equal(none.hookClient(REPO, 9, signal), null);
    },
  );
});
