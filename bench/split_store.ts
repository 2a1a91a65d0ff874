// What a different body store would buy: the KV write ceiling (records,
// dedupe keys, indexes and 7.7 KB bodies all in Deno KV, 32 deliveries per
// atomic commit) against a split store (the same records and keys in KV,
// the bodies appended to a segment file first, with and without an
// fdatasync per batch). Not used by hookgate: a measurement for the
// proposal in bench/RESULTS.md.
//
//   taskset -c 0 deno run --allow-read --allow-write bench/split_store.ts [seconds]

const seconds = Number(Deno.args[0] ?? "5");
const body = new TextEncoder().encode(
  JSON.stringify({ pad: "x".repeat(7_600) }),
);

async function run(mode: "kv" | "split" | "split+fdatasync"): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-split-" });
  const kv = await Deno.openKv(`${dir}/store.kv`);
  const segment = mode === "kv"
    ? null
    : await Deno.open(`${dir}/bodies.seg`, { create: true, append: true });
  let n = 0;
  let offset = 0;
  const started = performance.now();
  try {
    while (performance.now() - started < seconds * 1000) {
      const op = kv.atomic();
      const batch = new Uint8Array(segment ? 32 * body.length : 0);
      for (let j = 0; j < 32; j++, n++) {
        const id = `d${n}`;
        const digest = `h${n}`;
        const now = Date.now();
        const record = {
          id,
          event: "push",
          status: "queued",
          attempts: 0,
          receivedAt: now,
          dueAt: now,
          size: body.length,
          digest,
          headers: {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/bench",
            "x-github-delivery": id,
            "x-github-event": "push",
          },
          ...(segment ? { segment: 0, offset } : {}),
        };
        op.check({ key: ["d", id], versionstamp: null })
          .check({ key: ["h", digest], versionstamp: null })
          .set(["d", id], record)
          .set(["h", digest], id)
          .set(["t", now, id], id)
          .set(["due", now, id], id);
        if (segment) {
          batch.set(body, j * body.length);
          offset += body.length;
        } else op.set(["b", id, 0], body);
      }
      if (segment) {
        // Bodies first, then the records that point at them.
        let written = 0;
        while (written < batch.length) {
          written += await segment.write(batch.subarray(written));
        }
        if (mode === "split+fdatasync") await segment.syncData();
      }
      if (!(await op.commit()).ok) throw new Error("a check failed");
    }
    return n / ((performance.now() - started) / 1000);
  } finally {
    segment?.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const base = await run("kv");
console.log(
  `all in Deno KV:                        ${
    Math.round(base)
  } deliveries/s  1.00`,
);
for (const mode of ["split", "split+fdatasync"] as const) {
  const rate = await run(mode);
  console.log(
    `records in KV, bodies in a segment${
      mode === "split" ? ":          " : " + fdatasync:"
    } ${Math.round(rate)} deliveries/s  ${(rate / base).toFixed(2)}`,
  );
}
