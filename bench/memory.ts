/**
 * Memory under large deliveries, measured on a real main.ts subprocess
 * (KV file, IP_ALLOWLIST=off):
 *
 * 0. the floor: a bare Deno.serve (bench/servers/ceiling.ts) reading the same
 *    25 MiB body, its peak RSS growth over idle until it answers;
 * 1. one 25 MiB delivery accepted: the server's peak RSS (VmHWM) growth over
 *    its idle RSS up to the 202, as a multiple of the body size (target:
 *    under 3×), then the peak once the handlers have had the parsed payload;
 * 2. 100 concurrent 1 MiB deliveries, fifteen rounds: RSS after each round, to
 *    show that nothing grows without bound (no leak).
 *
 *   deno task bench:memory
 *
 * Everything runs in {@link main}, under `import.meta.main`: importing this
 * module does nothing. It writes no file; the figures go to stdout.
 *
 * @module
 */

import { signBody } from "../lib/security/signature.ts";
import { freePort } from "./_subprocess.ts";
import { statusBytes } from "./load/proc.ts";

const SECRET = "bench-secret";
/** Rounds of 100 concurrent 1 MiB deliveries. */
const ROUNDS = 15;
/** Rounds after which RSS should stop growing (measured: it settles by 5). */
const SETTLED_AFTER = 5;
/**
 * Growth a round (least squares over the settled rounds) above which the
 * verdict is "look for a leak": keeping 2 % of the 100 MiB a round receives.
 */
const LEAK_MIB_PER_ROUND = 2;
const encoder = new TextEncoder();

function procStatus(pid: number): { rss: number; hwm: number } {
  // Deno grants /proc only to --allow-all; `cat` needs just --allow-run.
  const out = new Deno.Command("cat", { args: [`/proc/${pid}/status`] })
    .outputSync();
  return parseStatus(new TextDecoder().decode(out.stdout));
}

/**
 * Current (`VmRSS`) and peak (`VmHWM`) RSS from /proc/<pid>/status, in bytes.
 *
 * @example
 * ```ts
 * import { parseStatus } from "./memory.ts";
 * parseStatus("VmHWM:\t 8 kB\nVmRSS:\t 4 kB\n"); // { rss: 4096, hwm: 8192 }
 * ```
 */
export function parseStatus(text: string): { rss: number; hwm: number } {
  return { rss: statusBytes(text, "VmRSS"), hwm: statusBytes(text, "VmHWM") };
}

async function procStatusAsync(
  pid: number,
): Promise<{ rss: number; hwm: number }> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] })
    .output();
  return parseStatus(new TextDecoder().decode(out.stdout));
}

/**
 * Slope of the least-squares line through `ys` at x = 0, 1, 2, …
 *
 * @example
 * ```ts
 * import { leastSquaresSlope } from "./memory.ts";
 * leastSquaresSlope([1, 3, 5]); // 2
 * ```
 */
export function leastSquaresSlope(ys: readonly number[]): number {
  const n = ys.length;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/**
 * A push-like payload of exactly `bytes` bytes, padded with many commits to
 * look like GitHub's, ending in a newline.
 *
 * @example
 * ```ts
 * import { payload } from "./memory.ts";
 * payload(8_000, "warm").byteLength; // 8000
 * ```
 */
export function payload(bytes: number, tag: string): Uint8Array<ArrayBuffer> {
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

interface Server {
  child: Deno.ChildProcess;
  port: number;
  dir: string;
}

/** Starts `script` (relative to this file) on a free port; waits until it answers. */
async function startServer(
  script: string,
  env: Record<string, string>,
  readyPath: string,
): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "hookgate-mem-" });
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      new URL(script, import.meta.url).pathname,
    ],
    cwd: dir,
    env: { ...env, PORT: String(port) },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (let i = 0;; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}${readyPath}`)).body
        ?.cancel();
      return { child, port, dir };
    } catch {
      if (i > 200) throw new Error(`${script} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function stopServer(server: Server): Promise<void> {
  server.child.kill("SIGTERM");
  await server.child.status;
  await Deno.remove(server.dir, { recursive: true });
}

/**
 * Posts `body` after a warm-up and returns the idle RSS and the last peak
 * seen before the answer arrived (the peak of the path that answers).
 */
async function peakUntilAnswer(
  server: Server,
  url: string,
  body: Uint8Array<ArrayBuffer>,
): Promise<{ idle: number; peak: number; status: number }> {
  // Warm up with a small delivery so that code paths are compiled.
  await post(url, payload(8_000, "warm"), "warm");
  await new Promise((r) => setTimeout(r, 500));
  const idle = procStatus(server.child.pid).rss;
  // Sampled while the body goes up: the worker parses a large payload for
  // its handlers only after the 202 is sent, and a reading taken once the
  // answer is in would catch that as well.
  let sampling = true;
  let beforeAnswer = idle;
  const sampler = (async () => {
    while (sampling) {
      const seen = await procStatusAsync(server.child.pid);
      if (sampling) beforeAnswer = seen.hwm;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const status = await post(url, body, "big-25mib");
  sampling = false;
  await sampler;
  return { idle, peak: beforeAnswer, status };
}

/** `grown` bytes as a multiple of the body's size, two decimals. */
function times(grown: number, body: Uint8Array): string {
  return (grown / body.byteLength).toFixed(2);
}

/** The floor: a bare Deno.serve that reads the same body and answers 200. */
async function measureFloor(big: Uint8Array<ArrayBuffer>): Promise<void> {
  const bare = await startServer("./servers/ceiling.ts", {}, "/");
  try {
    const { idle, peak } = await peakUntilAnswer(
      bare,
      `http://127.0.0.1:${bare.port}/`,
      big,
    );
    console.log(
      `bare Deno.serve reading the 25 MiB body (request.arrayBuffer()): peak RSS ${
        mib(peak)
      }, growth over idle ${times(peak - idle, big)}× the body`,
    );
  } finally {
    await stopServer(bare);
  }
}

/** hookgate's peak RSS up to the 202 for the big delivery, then once handled. */
async function measureBig(
  server: Server,
  url: string,
  big: Uint8Array<ArrayBuffer>,
): Promise<void> {
  const { idle, peak, status } = await peakUntilAnswer(server, url, big);
  console.log(`hookgate idle RSS ${mib(idle)}`);
  console.log(
    `25 MiB delivery accepted (${status}): peak RSS ${mib(peak)}, ` +
      `growth over idle ${times(peak - idle, big)}× the body (target < 3×)`,
  );
  await new Promise((r) => setTimeout(r, 3000)); // let the worker run it
  const after = procStatus(server.child.pid);
  console.log(
    `…and handled (payload parsed for the handlers): peak RSS ${
      mib(after.hwm)
    }, growth ${times(after.hwm - idle, big)}× the body`,
  );
}

/** {@link ROUNDS} rounds of 100 concurrent 1 MiB deliveries, and the RSS trend. */
async function measureRounds(server: Server, url: string): Promise<void> {
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const statuses = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          post(url, payload(1024 * 1024, `r${round}-${i}`), `r${round}-${i}`),
      ),
    );
    const ok = statuses.filter((s) => s === 202).length;
    await new Promise((r) => setTimeout(r, 2000));
    const rss = procStatus(server.child.pid).rss;
    rounds.push(rss);
    console.log(
      `round ${round + 1}: 100 × 1 MiB, ${ok} accepted; RSS ${mib(rss)}`,
    );
  }
  // The allocator settles over the first rounds; a leak keeps growing after.
  const settled = rounds.slice(SETTLED_AFTER - 1);
  const slope = leastSquaresSlope(settled) / 1048576;
  const low = Math.min(...settled);
  const high = Math.max(...settled);
  console.log(
    `rounds ${SETTLED_AFTER}–${ROUNDS}: RSS ${mib(low)} to ${mib(high)}, ` +
      `trend ${slope.toFixed(2)} MiB a round ` +
      (slope < LEAK_MIB_PER_ROUND
        ? `(under ${LEAK_MIB_PER_ROUND}: no leak)`
        : `(${LEAK_MIB_PER_ROUND} or more: look for a leak)`),
  );
}

/** Runs the three measurements, one server after the other. */
export async function main(): Promise<void> {
  const big = payload(25 * 1024 * 1024, "big");
  await measureFloor(big);
  const server = await startServer("../main.ts", {
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    HOST: "127.0.0.1",
    KV_PATH: "./data/hookgate.kv",
    LOG_LEVEL: "warn",
  }, "/healthz");
  const url = `http://127.0.0.1:${server.port}/webhook`;
  try {
    await measureBig(server, url, big);
    await measureRounds(server, url);
  } finally {
    await stopServer(server);
  }
}

if (import.meta.main) await main();
