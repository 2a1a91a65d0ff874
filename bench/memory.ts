// Memory under large deliveries, measured on a real main.ts subprocess
// (KV file, IP_ALLOWLIST=off):
//
// 1. one 25 MiB delivery accepted: the server's peak RSS (VmHWM) growth over
//    its idle RSS, as a multiple of the body size (target: under 3×);
// 2. 100 concurrent 1 MiB deliveries, five rounds: RSS after each round, to
//    show that nothing grows without bound (no leak).
//
//   deno task bench:memory

import { signBody } from "../lib/signature.ts";

const SECRET = "bench-secret";
const encoder = new TextEncoder();

function procStatus(pid: number): { rss: number; hwm: number } {
  // Deno grants /proc only to --allow-all; `cat` needs just --allow-run.
  const out = new Deno.Command("cat", { args: [`/proc/${pid}/status`] })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout);
  const kb = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function payload(bytes: number, tag: string): Uint8Array<ArrayBuffer> {
  // A push-like payload padded with many commits, to look like GitHub's.
  const commit = {
    id: "a".repeat(40),
    message: "x".repeat(400),
    author: { name: "monalisa" },
  };
  const commits = [];
  const one = JSON.stringify(commit).length + 1;
  for (let i = 0; i < Math.floor((bytes - 200) / one); i++) {
    commits.push(commit);
  }
  const body = JSON.stringify({
    ref: "refs/heads/main",
    tag,
    commits,
    pusher: { name: "monalisa" },
  });
  return encoder.encode(body.padEnd(bytes - 1, " ") + "\n");
}

async function post(
  url: string,
  body: Uint8Array<ArrayBuffer>,
  id: string,
): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "bench",
      "x-github-delivery": id,
      "x-hub-signature-256": await signBody(SECRET, body),
    },
    body,
  });
  await res.body?.cancel();
  return res.status;
}

const dir = await Deno.makeTempDir({ prefix: "hookgate-mem-" });
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
listener.close();
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--config",
    new URL("../deno.json", import.meta.url).pathname,
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    new URL("../main.ts", import.meta.url).pathname,
  ],
  cwd: dir,
  env: {
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    PORT: String(port),
    HOST: "127.0.0.1",
    KV_PATH: "./data/hookgate.kv",
    LOG_LEVEL: "warn",
  },
  stdout: "null",
  stderr: "inherit",
}).spawn();
const url = `http://127.0.0.1:${port}/webhook`;
try {
  for (let i = 0;; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/healthz`)).body?.cancel();
      break;
    } catch {
      if (i > 200) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  // Warm up with a small delivery so that code paths are compiled.
  await post(url, payload(8_000, "warm"), "warm");
  await new Promise((r) => setTimeout(r, 500));
  const idle = procStatus(child.pid);
  console.log(`idle RSS ${mib(idle.rss)} (peak so far ${mib(idle.hwm)})`);

  const big = payload(25 * 1024 * 1024, "big");
  const status = await post(url, big, "big-25mib");
  const accepted = procStatus(child.pid); // at the 202: the accept path
  await new Promise((r) => setTimeout(r, 3000)); // let the worker run it
  const after = procStatus(child.pid);
  const ratio = (hwm: number) => ((hwm - idle.rss) / big.byteLength).toFixed(2);
  console.log(
    `25 MiB delivery accepted (${status}): peak RSS ${mib(accepted.hwm)}, ` +
      `growth over idle ${ratio(accepted.hwm)}× the body (target < 3×)`,
  );
  console.log(
    `…and handled (payload parsed for the handlers): peak RSS ${
      mib(after.hwm)
    }, ` +
      `growth ${ratio(after.hwm)}× the body`,
  );

  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const statuses = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          post(url, payload(1024 * 1024, `r${round}-${i}`), `r${round}-${i}`),
      ),
    );
    const ok = statuses.filter((s) => s === 202).length;
    await new Promise((r) => setTimeout(r, 2000));
    const rss = procStatus(child.pid).rss;
    rounds.push(rss);
    console.log(
      `round ${round + 1}: 100 × 1 MiB, ${ok} accepted; RSS ${mib(rss)}`,
    );
  }
  const drift = rounds[rounds.length - 1]! - rounds[1]!;
  console.log(
    `RSS drift from round 2 to round 5: ${mib(drift)} (no leak: stays flat)`,
  );
} finally {
  child.kill("SIGTERM");
  await child.status;
  await Deno.remove(dir, { recursive: true });
}
