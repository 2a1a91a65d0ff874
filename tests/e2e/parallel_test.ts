// `deno serve --parallel` runs the same main.ts in two isolates sharing one
// KV file: every delivery is accepted once and handled once, duplicates are
// caught across isolates, and /metrics sums both isolates.

import assert from "node:assert/strict";
import { postDelivery, startServer, waitFor } from "../_helpers.ts";

Deno.test("deno serve --parallel: 500 deliveries plus duplicates, each handled exactly once", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-parallel-" });
  const server = await startServer({
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    IP_ALLOWLIST: "off",
    KV_PATH: "./data/hookgate.kv",
    ADMIN_TOKEN: "parallel-admin-token",
  }, { cwd, parallel: 2 });
  try {
    const body = (i: number) =>
      JSON.stringify({
        ref: "refs/heads/main",
        commits: [],
        pusher: { name: "monalisa" },
        repository: { full_name: "octo-org/hello" },
        n: i,
      });
    const sends: { id: string; i: number }[] = [];
    for (let i = 0; i < 500; i++) sends.push({ id: `par-${i}`, i });
    for (let i = 0; i < 500; i += 5) sends.push({ id: `par-${i}`, i }); // 100 duplicates
    const statuses = new Map<number, number>();
    const queued = new Set<string>();
    for (let start = 0; start < sends.length; start += 24) {
      await Promise.all(
        sends.slice(start, start + 24).map(async ({ id, i }) => {
          const res = await postDelivery(server.url, {
            event: "push",
            id,
            body: body(i),
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 202) {
            assert.ok(!queued.has(id), `${id} acknowledged twice`);
            queued.add(id);
          }
        }),
      );
    }
    assert.equal(statuses.get(202), 500, JSON.stringify([...statuses]));
    assert.equal(statuses.get(200), 100);

    const done = () =>
      server.lines.filter((l) => l.includes('"msg":"delivery done"'))
        .map((l) => JSON.parse(l.slice(l.indexOf("{"))).delivery as string);
    await waitFor(() => done().length >= 500, 30_000, "500 deliveries done");
    const outcomes = done();
    assert.equal(outcomes.length, 500);
    assert.equal(new Set(outcomes).size, 500, "each handled exactly once");
    const handled = server.lines.filter((l) =>
      l.includes('"msg":"push received"')
    );
    assert.equal(handled.length, 500);
    // /metrics sums the two isolates, whichever one answers.
    await waitFor(
      async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return /webhook_deliveries_total\{event="push",outcome="accepted"\} 500\b/
          .test(text) &&
          /hookgate_isolates 2\b/.test(text);
      },
      5000,
      "summed metrics",
    );
  } finally {
    const status = await server.stop();
    assert.equal(status.code, 0);
    await Deno.remove(cwd, { recursive: true });
  }
});
