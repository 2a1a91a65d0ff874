// What fetch cannot send, over a raw socket to a real listener: a delivery
// header sent twice (Headers joins the two as "a, b"), header bytes
// 0x80–0x9F (C1 controls once Deno hands them over as Latin-1), and
// `Expect: 100-continue`, which Deno 2.9.6 answers `100 Continue` before
// the handler has said anything (pinned: README).

import assert from "node:assert/strict";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { type Allowlist, createHandler } from "../../lib/http/server.ts";
import { importSecrets, signBody } from "../../lib/security/signature.ts";
import { captureLogger, encoder, SECRET, testConfig } from "../_helpers.ts";
import { head, rawExchange } from "./_raw.ts";

async function rawServer(allowlist: Allowlist | null = null) {
  const config = testConfig({ MAX_BODY_BYTES: "1000" });
  const accepted: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    createHandler({
      config,
      keys: await importSecrets(config.secrets),
      allowlist,
      accept: (d) => {
        accepted.push(d.id);
        return Promise.resolve({ status: "queued", id: d.id });
      },
      log: captureLogger().log,
      metrics: createMetrics(),
    }),
  );
  return { server, accepted };
}

const BODY = '{"zen":"Keep it simple.","hook_id":1}';

/** A signed delivery's request bytes, with `lines` as its delivery headers. */
async function signedDelivery(
  lines: (string | Uint8Array)[],
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [
    encoder.encode(
      "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        `X-Hub-Signature-256: ${await signBody(
          SECRET,
          encoder.encode(BODY),
        )}\r\n` +
        `Content-Length: ${BODY.length}\r\nConnection: close\r\n`,
    ),
  ];
  for (const line of lines) {
    parts.push(
      typeof line === "string" ? encoder.encode(line) : line,
      encoder.encode("\r\n"),
    );
  }
  parts.push(encoder.encode("\r\n" + BODY));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

Deno.test("delivery headers over a raw socket: sent twice or with C1 bytes → 400 bad_header", async (t) => {
  const { server, accepted } = await rawServer();
  const send = async (lines: (string | Uint8Array)[]) =>
    (await rawExchange(server.addr.port, await signedDelivery(lines))).text;
  try {
    await t.step("each once: 202 (the raw path works)", async () => {
      const text = await send([
        "X-GitHub-Event: ping",
        "X-GitHub-Delivery: raw-ok",
      ]);
      assert.match(text, /^HTTP\/1\.1 202 /);
    });
    await t.step("X-GitHub-Delivery twice → 400", async () => {
      const text = await send([
        "X-GitHub-Event: ping",
        "X-GitHub-Delivery: raw-1",
        "X-GitHub-Delivery: raw-2",
      ]);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(
        text,
        /"error":"bad_header".*X-GitHub-Delivery header must be sent once/,
      );
    });
    await t.step("X-GitHub-Event twice → 400", async () => {
      const text = await send([
        "X-GitHub-Event: ping",
        "X-GitHub-Event: push",
        "X-GitHub-Delivery: raw-3",
      ]);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(
        text,
        /"error":"bad_header".*X-GitHub-Event header must be sent once/,
      );
    });
    await t.step("byte 0x85 in X-GitHub-Event → 400", async () => {
      const text = await send([
        new Uint8Array([
          ...encoder.encode("X-GitHub-Event: pi"),
          0x85,
          ...encoder.encode("ng"),
        ]),
        "X-GitHub-Delivery: raw-4",
      ]);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(text, /"error":"bad_header".*no control characters/);
    });
    assert.deepEqual(accepted, ["raw-ok"]);
  } finally {
    await server.shutdown();
  }
});

function expecting(length: number): string {
  return head(
    "POST /webhook HTTP/1.1",
    "Host: 127.0.0.1",
    "Content-Type: application/json",
    "X-GitHub-Event: ping",
    "X-GitHub-Delivery: expect-1",
    `Content-Length: ${length}`,
    "Expect: 100-continue",
  );
}

Deno.test("Expect: 100-continue is answered 100 before the refusal, and the refusal still comes (pinned: README)", async (t) => {
  await t.step(
    "a declared length over MAX_BODY_BYTES: 100, then 413",
    async () => {
      const { server, accepted } = await rawServer();
      try {
        const { text } = await rawExchange(
          server.addr.port,
          expecting(1_000_000),
          {
            until: /payload_too_large.*\}/,
          },
        );
        assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 413 /);
        assert.deepEqual(accepted, []);
      } finally {
        await server.shutdown();
      }
    },
  );
  await t.step("a peer not on the allowlist: 100, then 403", async () => {
    const { server, accepted } = await rawServer({
      isReady: () => true,
      isAllowed: () => false,
    });
    try {
      const { text } = await rawExchange(server.addr.port, expecting(10), {
        until: /ip_not_allowed.*\}/,
      });
      assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 403 /);
      assert.deepEqual(accepted, []);
    } finally {
      await server.shutdown();
    }
  });
});
