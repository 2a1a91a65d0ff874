/**
 * Benchmark (e): the KV write ceiling, no HTTP. Stores distinct deliveries
 * (the benchmark's 7.7 KB push bodies, digested with `lib/digest.ts`) in a
 * KV file the way `lib/store.ts`
 * accepts a delivery that fits in one commit — a record, its body chunk, the
 * digest key, the time index and the due index, with the id and digest
 * checked to be new — `--batch` deliveries per atomic commit, one commit
 * after another, for `--duration` seconds. Prints `{"started":true}` when it
 * starts, then `{"deliveries","seconds","perSecond","commitSeconds"}`, and
 * exits when its stdin closes (so the caller can read its CPU time and peak
 * RSS from /proc first, which Deno only lets `--allow-all` read).
 *
 * deno run --config deno.json --allow-read --allow-write bench/servers/kv_ceiling.ts \
 *   --path /tmp/x/ceiling.kv --duration 10 --batch 32
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  deliveryIdFor,
  nonceFor,
  pushTemplate,
  randomSalt,
} from "./_payload.ts";
import { sha256Hex } from "../../lib/_util/digest.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    path: { type: "string" },
    duration: { type: "string", default: "10" },
    batch: { type: "string", default: "32" },
  },
});
if (!values.path) throw new TypeError("Cannot run: --path is required");
const seconds = Number(values.duration);
const batch = Number(values.batch);
if (!(batch >= 1 && batch <= 50)) {
  throw new RangeError(
    `Cannot run as 'batch' must be 1 to 50 (KV allows 100 checks a commit): current value is ${values.batch}`,
  );
}

const ROOT = "hookgate";
const TTL_MS = 7 * 86_400_000;
const encoder = new TextEncoder();
const template = await pushTemplate();
const salt = randomSalt();

const kv = await Deno.openKv(values.path);
try {
  let n = 0;
  let commitMs = 0;
  console.log(JSON.stringify({ started: true }));
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const op = kv.atomic();
    for (let j = 0; j < batch; j++, n++) {
      const id = deliveryIdFor(salt, n);
      const body = encoder.encode(
        template.prefix + nonceFor(salt, n) + template.suffix,
      );
      const digest = await sha256Hex(body);
      const now = Date.now();
      // As lib/store.ts names uploads: time first, so chunks append.
      const upload = now.toString(36).padStart(9, "0") + "-" +
        crypto.randomUUID();
      const record = {
        id,
        event: "push",
        action: undefined,
        hookId: "1",
        target: { type: "repository", id: "1" },
        headers: {
          "content-type": "application/json",
          "user-agent": "GitHub-Hookshot/bench",
          "x-github-delivery": id,
          "x-github-event": "push",
          "x-github-hook-id": "1",
        },
        repository: "octo-org/hello-world",
        sender: "monalisa",
        kind: "json",
        digest,
        size: body.byteLength,
        upload,
        chunks: 1,
        status: "queued",
        attempts: 0,
        attemptLimit: 5,
        receivedAt: now,
        updatedAt: now,
        startedAt: null,
        finishedAt: null,
        dueAt: now,
        durationMs: null,
        error: null,
        replays: 0,
      };
      const idKey = [ROOT, "d", id];
      const digestKey = [ROOT, "digest", digest];
      const expireIn = TTL_MS;
      op.check({ key: idKey, versionstamp: null })
        .check({ key: digestKey, versionstamp: null })
        .set(idKey, record, { expireIn })
        .set(digestKey, id, { expireIn })
        .set([ROOT, "t", now, id], id, { expireIn })
        .set([ROOT, "due", now, id], id, { expireIn })
        .set([ROOT, "b", upload, 0], body, { expireIn });
    }
    const t0 = performance.now();
    const res = await op.commit();
    commitMs += performance.now() - t0;
    if (!res.ok) throw new Error("a ceiling commit failed its checks");
  }
  const elapsed = (performance.now() - start) / 1000;
  console.log(JSON.stringify({
    deliveries: n,
    seconds: elapsed,
    perSecond: n / elapsed,
    commitSeconds: commitMs / 1000,
  }));
  // The caller reads our CPU time (by thread, KV's writer thread still
  // alive) and peak RSS from /proc, then closes stdin.
  await Deno.stdin.readable.pipeTo(new WritableStream());
} finally {
  kv.close();
}
