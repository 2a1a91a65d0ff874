// The request path's small pieces, and the whole handler without a socket:
// header parsing (path, content type, signature header) and a request
// rejected for its signature or its headers, against building the request
// alone (baseline).
//
//   deno bench --allow-env --allow-read tests/http/server_bench.ts

import { createLogger } from "../../lib/ops/log.ts";
import { createMetrics } from "../../lib/ops/metrics.ts";
import { bodyKind } from "../../lib/http/payload.ts";
import { createHandler, pathOf } from "../../lib/http/server.ts";
import {
  importSecrets,
  parseSignatureHeader,
} from "../../lib/security/signature.ts";
import { fakeInfo, SECRET, testConfig } from "../_helpers.ts";

const keys = await importSecrets([SECRET]);
const handler = createHandler({
  config: testConfig(),
  keys,
  allowlist: null,
  accept: (d) => Promise.resolve({ status: "queued", id: d.id }),
  log: createLogger({ level: "info", write: () => {} }),
  metrics: createMetrics(),
});
const body = new TextEncoder().encode(
  JSON.stringify({ pad: "x".repeat(7_600) }),
);
const info = fakeInfo();

function request(signature: string, event = "push"): Request {
  return new Request("http://127.0.0.1:8000/webhook", {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(body.length),
      "x-github-event": event,
      "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      "x-hub-signature-256": signature,
    },
    body,
  });
}
const WRONG = "sha256=" + "ab".repeat(32);

Deno.bench("pathOf(request.url)", { group: "parse" }, () => {
  pathOf("http://127.0.0.1:8000/webhook?x=1");
});
Deno.bench(
  "new URL(request.url).pathname",
  { group: "parse", baseline: true },
  () => {
    void new URL("http://127.0.0.1:8000/webhook?x=1").pathname;
  },
);
Deno.bench("bodyKind(content-type)", { group: "parse" }, () => {
  bodyKind("application/json; charset=utf-8");
});
Deno.bench("parseSignatureHeader()", { group: "parse" }, () => {
  parseSignatureHeader(WRONG);
});

Deno.bench(
  "build the request (baseline)",
  { group: "reject", baseline: true },
  async () => {
    await request(WRONG).bytes();
  },
);
Deno.bench("rejected: wrong signature (401)", { group: "reject" }, async () => {
  await (await handler(request(WRONG), info)).body?.cancel();
});
Deno.bench(
  "rejected: bad header, body never read (400)",
  { group: "reject" },
  async () => {
    await (await handler(request(WRONG, "bad\u0001event"), info)).body
      ?.cancel();
  },
);
