// The whole trip of a delivery in one process, without a socket: 32 signed
// deliveries at once through app.fetch (verify → parse → group commit, stored
// leased), their handler run from memory, and their outcomes group-committed,
// on :memory: KV. deno bench reports time per 32 deliveries.
//
//   deno bench --allow-net=127.0.0.1 --allow-env --allow-read --allow-write tests/worker/worker_bench.ts

import { createApp } from "../../lib/app.ts";
import { NULL_LOGGER } from "../../lib/ops/log.ts";
import { deliveryRequest, fakeInfo, testConfig } from "../_helpers.ts";

const CONCURRENCY = 32;
const pad = "x".repeat(7_500);
let n = 0;
let handled = 0;
let wanted = 0;
let onHandled: () => void = () => {};

const kv = await Deno.openKv(":memory:");
const app = await createApp({
  config: testConfig({ MAX_CONCURRENCY: String(CONCURRENCY) }),
  log: NULL_LOGGER,
  kv,
  registry: {
    push: {
      default() {
        if (++handled === wanted) onHandled();
      },
    },
  },
});
const stop = new AbortController();
app.start(stop.signal);

async function burst(): Promise<void> {
  const requests = await Promise.all(
    Array.from({ length: CONCURRENCY }, () => {
      const id = `bench-${n++}`;
      return deliveryRequest({
        id,
        event: "push",
        body: JSON.stringify({ ref: "refs/heads/main", id, pad }),
      });
    }),
  );
  wanted = handled + CONCURRENCY;
  const all = new Promise<void>((resolve) => onHandled = resolve);
  const responses = await Promise.all(
    requests.map((r) => app.fetch(r, fakeInfo())),
  );
  for (const res of responses) {
    if (res.status !== 202) throw new Error(`unexpected ${res.status}`);
    await res.body?.cancel();
  }
  await all;
  await app.worker.drain(10_000); // every outcome recorded
}

Deno.bench(
  "32 deliveries accepted, run and recorded, :memory: KV",
  async () => await burst(),
);

globalThis.addEventListener("unload", () => {
  stop.abort();
  kv.close();
});
