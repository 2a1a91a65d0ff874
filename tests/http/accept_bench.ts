// The accept path without a socket: verify → parse → store, 32 deliveries at
// once (as 32 connections would), against a store that keeps nothing
// (baseline), :memory: KV, a KV file with group commit, and a KV file with
// one commit per delivery. deno bench reports time per 32 deliveries.
//
//   deno task bench tests/http/accept_bench.ts

import { createLogger } from "../../lib/ops/log.ts";
import { createMetrics } from "../../lib/ops/metrics.ts";
import type { AcceptDelivery } from "../../lib/store/types.ts";
import { createHandler } from "../../lib/http/server.ts";
import { importSecrets, signBody } from "../../lib/security/signature.ts";
import { DeliveryStore } from "../../lib/store/store.ts";
import { fakeInfo, SECRET, testConfig } from "../_helpers.ts";

const CONCURRENCY = 32;
const encoder = new TextEncoder();
const keys = await importSecrets([SECRET]);
const pad = "x".repeat(7_500);
let n = 0;

async function nextRequest(): Promise<Request> {
  const id = `bench-${n++}`;
  const body = encoder.encode(
    JSON.stringify({ ref: "refs/heads/main", id, pad }),
  );
  return new Request("http://bench/webhook", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": id,
      "x-hub-signature-256": await signBody(keys[0]!, body),
    },
    body,
  });
}

function handlerFor(accept: AcceptDelivery) {
  return createHandler({
    config: testConfig(),
    keys,
    allowlist: null,
    accept,
    log: createLogger({ level: "error", write: () => {} }),
    metrics: createMetrics(),
  });
}

async function burst(handle: ReturnType<typeof handlerFor>): Promise<void> {
  const requests = await Promise.all(
    Array.from({ length: CONCURRENCY }, nextRequest),
  );
  const responses = await Promise.all(
    requests.map((r) => handle(r, fakeInfo())),
  );
  for (const res of responses) {
    if (res.status !== 202) throw new Error(`unexpected ${res.status}`);
    await res.body?.cancel();
  }
}

const dir = await Deno.makeTempDir({ prefix: "hookgate-bench-" });
const fileKv = await Deno.openKv(`${dir}/group.kv`);
const singleKv = await Deno.openKv(`${dir}/single.kv`);
const memoryKv = await Deno.openKv(":memory:");
const store = (kv: Deno.Kv, batchMax?: number) =>
  new DeliveryStore({
    kv,
    ttlMs: 86_400_000,
    maxAttempts: 5,
    ...(batchMax ? { batchMax } : {}),
  });

const nothing = handlerFor((d) =>
  Promise.resolve({ status: "queued", id: d.id })
);
const memoryStore = store(memoryKv);
const memoryGrouped = handlerFor((d) => memoryStore.accept(d));
const fileStore = store(fileKv);
const fileGrouped = handlerFor((d) => fileStore.accept(d));
const singleStore = store(singleKv, 1);
const fileSingle = handlerFor((d) => singleStore.accept(d));

Deno.bench("32 deliveries, store keeps nothing", {
  group: "accept",
  baseline: true,
}, async () => await burst(nothing));
Deno.bench(
  "32 deliveries, :memory: KV, group commit",
  { group: "accept" },
  async () => await burst(memoryGrouped),
);
Deno.bench(
  "32 deliveries, KV file, group commit",
  { group: "accept" },
  async () => await burst(fileGrouped),
);
Deno.bench(
  "32 deliveries, KV file, one commit each",
  { group: "accept" },
  async () => await burst(fileSingle),
);

globalThis.addEventListener("unload", () => {
  fileKv.close();
  singleKv.close();
  memoryKv.close();
  Deno.removeSync(dir, { recursive: true });
});
