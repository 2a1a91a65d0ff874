// The webhook's steps end to end are in server_test.ts (through
// createHandler); here, the record it builds from a checked request.

import assert from "node:assert/strict";
import { inspectPayload } from "../../lib/http/payload.ts";
import { toIncomingDelivery } from "../../lib/http/webhook.ts";

const encoder = new TextEncoder();

function inspected(body: Uint8Array) {
  const result = inspectPayload(body, "json");
  if (!result.ok) throw new Error(result.message);
  return result;
}

Deno.test("toIncomingDelivery() keeps only the allowlisted headers and the payload's fields", () => {
  const body = encoder.encode(JSON.stringify({
    action: "opened",
    repository: { full_name: "octo/hello" },
    sender: { login: "octocat" },
  }));
  const headers = new Headers({
    "x-github-event": "issues",
    "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "x-github-hook-id": "42",
    "x-github-hook-installation-target-type": "repository",
    "x-github-hook-installation-target-id": "7",
    "x-hub-signature-256": "sha256=" + "ab".repeat(32),
    "user-agent": "GitHub-Hookshot/abc1234",
    "content-type": "application/json",
    authorization: "Bearer secret",
  });
  const delivery = toIncomingDelivery(
    headers,
    body,
    "json",
    inspected(body),
    "d1",
    1234,
  );
  assert.deepEqual(delivery, {
    id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    event: "issues",
    action: "opened",
    hookId: "42",
    target: { type: "repository", id: "7" },
    headers: {
      "x-github-event": "issues",
      "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      "x-github-hook-id": "42",
      "x-github-hook-installation-target-type": "repository",
      "x-github-hook-installation-target-id": "7",
      "user-agent": "GitHub-Hookshot/abc1234",
      "content-type": "application/json",
    },
    body,
    kind: "json",
    digest: "d1",
    receivedAt: 1234,
    repository: "octo/hello",
    sender: "octocat",
    payload: {
      action: "opened",
      repository: { full_name: "octo/hello" },
      sender: { login: "octocat" },
    },
  });
  assert.equal(delivery.body, body, "the raw bytes, not a copy");
});

Deno.test("toIncomingDelivery() names a target only when both its headers are present", async (t) => {
  const body = encoder.encode("{}");
  const base = { "x-github-event": "ping", "x-github-delivery": "1" };
  const table: [string, Record<string, string>, unknown][] = [
    ["neither", {}, undefined],
    [
      "type only",
      { "x-github-hook-installation-target-type": "organization" },
      undefined,
    ],
    ["id only", { "x-github-hook-installation-target-id": "9" }, undefined],
    [
      "both",
      {
        "x-github-hook-installation-target-type": "integration",
        "x-github-hook-installation-target-id": "9",
      },
      { type: "integration", id: "9" },
    ],
  ];
  for (const [name, extra, target] of table) {
    await t.step(name, () => {
      const delivery = toIncomingDelivery(
        new Headers({ ...base, ...extra }),
        body,
        "json",
        inspected(body),
        "d",
        0,
      );
      assert.deepEqual(delivery.target, target);
      assert.equal(delivery.hookId, undefined);
      assert.equal(delivery.action, undefined);
    });
  }
});
