// What SERIALIZE_BY costs: 32 signed pushes at once through app.fetch, until
// every handler ran, on :memory: KV, with no ordering (the fast path), with
// SERIALIZE_BY=repository and 32 repositories (no waiting, but no fast path
// and one queue read per lease), and with all 32 in one repository (one at a
// time, each woken by the end of the one before). deno bench reports time
// per 32 deliveries; the ratios are in README's "Ordering" section.
//
//   deno bench --allow-net=127.0.0.1 --allow-env --allow-read --allow-write tests/worker/ordering_bench.ts

import { type App, createApp } from "../../lib/app.ts";
import { NULL_LOGGER } from "../../lib/ops/log.ts";
import { deliveryRequest, fakeInfo, testConfig } from "../_helpers.ts";

const CONCURRENCY = 32;
let n = 0;

interface Bench {
  app: App;
  burst(repos: number): Promise<void>;
}

async function bench(serializeBy: string): Promise<Bench> {
  let handled = 0;
  let wanted = 0;
  let onHandled: () => void = () => {};
  const kv = await Deno.openKv(":memory:");
  const app = await createApp({
    config: testConfig({
      MAX_CONCURRENCY: String(CONCURRENCY),
      SERIALIZE_BY: serializeBy,
    }),
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
  globalThis.addEventListener("unload", () => {
    stop.abort();
    kv.close();
  });
  return {
    app,
    async burst(repos) {
      const requests = await Promise.all(
        Array.from({ length: CONCURRENCY }, (_, i) => {
          const id = `bench-${n++}`;
          const repo = `octo/app-${i % repos}`;
          return deliveryRequest({
            id,
            event: "push",
            body: JSON.stringify({
              ref: "refs/heads/main",
              id,
              repository: { full_name: repo, name: repo.slice(5) },
            }),
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
    },
  };
}

const none = await bench("none");
const spread = await bench("repository");
const one = await bench("repository");

Deno.bench("SERIALIZE_BY unset: 32 pushes", {
  group: "ordering",
  baseline: true,
}, async () => await none.burst(32));
Deno.bench(
  "SERIALIZE_BY=repository, 32 repositories",
  { group: "ordering" },
  async () => await spread.burst(32),
);
Deno.bench(
  "SERIALIZE_BY=repository, one repository",
  { group: "ordering" },
  async () => await one.burst(1),
);
