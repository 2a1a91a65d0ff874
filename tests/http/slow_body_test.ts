// Slow-body attacks against a real listener: a client that declares a body
// and then stalls gets 408 after BODY_TIMEOUT_MS, for small bodies (read in
// one call) and large ones (streamed into one buffer).

import assert from "node:assert/strict";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { createHandler } from "../../lib/http/server.ts";
import { importSecrets } from "../../lib/security/signature.ts";
import { captureLogger, testConfig } from "../_helpers.ts";

async function rawExchange(
  port: number,
  head: string,
  partial: string,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const encoder = new TextEncoder();
    await conn.write(encoder.encode(head + partial));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n") || !text.includes("}")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("a body that stalls is answered 408 on a real listener", async (t) => {
  const config = testConfig({ BODY_TIMEOUT_MS: "100" });
  let accepted = 0;
  const handler = createHandler({
    config,
    keys: await importSecrets(config.secrets),
    allowlist: null,
    accept: (d) => {
      accepted++;
      return Promise.resolve({ status: "queued", id: d.id });
    },
    log: captureLogger().log,
    metrics: createMetrics(),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  try {
    for (const declared of [100, 500_000]) {
      await t.step(`declared ${declared} bytes, 10 sent`, async () => {
        const head = [
          "POST /webhook HTTP/1.1",
          "Host: 127.0.0.1",
          "Content-Type: application/json",
          "X-GitHub-Event: ping",
          "X-GitHub-Delivery: slow-1",
          `Content-Length: ${declared}`,
          "",
          "",
        ].join("\r\n");
        const started = Date.now();
        const answer = await rawExchange(server.addr.port, head, '{"zen":"sl');
        assert.match(answer, /^HTTP\/1\.1 408/);
        assert.match(answer, /"error":"request_timeout"/);
        assert.ok(Date.now() - started >= 90, "not before the deadline");
      });
    }
    assert.equal(accepted, 0);
  } finally {
    await server.shutdown();
  }
});
