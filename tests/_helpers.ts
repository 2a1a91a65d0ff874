// Shared test helpers: configs, signed requests, fake `info`, subprocesses.

import { type Config, loadConfig } from "../lib/config/config.ts";
import { createLogger, type Logger } from "../lib/ops/log.ts";
import { signBody } from "../lib/security/signature.ts";
import type { ServeInfo } from "../lib/http/server.ts";
import { freePort, inheritedEnv } from "../bench/_subprocess.ts";

export const SECRET = "It's a Secret to Everybody";
export const encoder = new TextEncoder();

/** A config from the contract's defaults plus `env`. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    KV_PATH: ":memory:",
    ...env,
  });
}

/** `info` as `Deno.serve` gives it, for a peer address. */
export function fakeInfo(hostname = "127.0.0.1"): ServeInfo {
  return { remoteAddr: { hostname, transport: "tcp" } };
}

/** A logger that keeps its lines (parsed JSON) for assertions. */
export function captureLogger(level: "debug" | "info" = "debug"): {
  log: Logger;
  lines: Record<string, unknown>[];
  raw: string[];
} {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = createLogger({
    level,
    write: (line) => {
      raw.push(line);
      lines.push(JSON.parse(line));
    },
  });
  return { log, lines, raw };
}

export interface DeliveryInit {
  event?: string;
  id?: string;
  body?: string | Uint8Array<ArrayBuffer>;
  secret?: string;
  contentType?: string;
  headers?: Record<string, string>;
  url?: string;
  /** Overrides the signature header (null removes it). */
  signature?: string | null;
}

/** A signed webhook POST as GitHub would send it. */
export async function deliveryRequest(
  init: DeliveryInit = {},
): Promise<Request> {
  const body = typeof init.body === "string"
    ? encoder.encode(init.body)
    : init.body ??
      encoder.encode(
        JSON.stringify({
          zen: "Keep it simple.",
          hook_id: 1,
          nonce: crypto.randomUUID(),
        }),
      );
  const headers: Record<string, string> = {
    "content-type": init.contentType ?? "application/json",
    "x-github-event": init.event ?? "ping",
    "x-github-delivery": init.id ?? crypto.randomUUID(),
    "user-agent": "GitHub-Hookshot/abc1234",
    ...init.headers,
  };
  const signature = init.signature === undefined
    ? await signBody(init.secret ?? SECRET, body)
    : init.signature;
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  return new Request(init.url ?? "http://hookgate.test/webhook", {
    method: "POST",
    headers,
    body,
  });
}

/** Bytes 0, 1, 2, … (mod 251) so misplaced chunks show. */
export function patternBytes(
  length: number,
  start = 0,
): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, (_, i) => (start + i) % 251);
}

/** `data` cut into `size`-byte chunks. */
export function chunked(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.byteLength; i += size) {
    out.push(data.slice(i, i + size));
  }
  return out;
}

/** A stream of `chunks`, one per pull, recording pulls and a cancel. */
export function streamOf(chunks: Uint8Array[], highWaterMark = 1): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
  pulled: () => number;
} {
  let cancelled = false;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark });
  return { stream, cancelled: () => cancelled, pulled: () => i };
}

/** Polls `check` every 20 ms until it returns a truthy value or `ms` pass. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  ms = 5000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// A free TCP port on 127.0.0.1: one home with the benchmarks'.
export { freePort };

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SERVE = new URL("../serve.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** A `main.ts` (or, under `deno serve`, `serve.ts`) subprocess with its output collected. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  port: number;
  url: string;
  /** Every line printed so far (stdout and stderr). */
  lines: string[];
  /** Waits for a line matching `pattern`. */
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
  /** SIGTERM (default) and wait for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Runs `main.ts` the way `deno task start` does (explicit flags) with `env`,
 * in a temporary working directory, and waits until it listens.
 */
export async function startServer(
  env: Record<string, string>,
  options: {
    cwd?: string;
    waitForListen?: boolean;
    extraFlags?: string[];
    /** Run under `deno serve --parallel` with this many isolates. */
    parallel?: number;
    /** The module to run instead of `main.ts` (a test fixture). */
    entry?: string;
  } = {},
): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : freePort();
  const cwd = options.cwd ??
    await Deno.makeTempDir({ prefix: "hookgate-test-" });
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      ...(options.parallel
        ? ["serve", "--parallel", "--port", String(port), "--host", "127.0.0.1"]
        : ["run"]),
      "--config",
      `${ROOT}deno.json`,
      "--allow-net",
      "--allow-env",
      `--allow-read=.env,./data,${ROOT}lib`,
      "--allow-write=./data",
      ...(options.extraFlags ?? []),
      options.entry ?? (options.parallel ? SERVE : MAIN),
    ],
    cwd,
    env: {
      ...inheritedEnv(),
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_FORMAT: "json",
      NO_COLOR: "1",
      ...(options.parallel ? { DENO_JOBS: String(options.parallel) } : {}),
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        lines.push(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
      for (const w of waiters) w();
    }
    if (rest) lines.push(rest);
    for (const w of waiters) w();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps;
    return s;
  });

  async function waitForLine(pattern: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (true) {
      const found = lines.find((l) => pattern.test(l));
      if (found) return found;
      if (exited || Date.now() > deadline) {
        throw new Error(
          `no line matching ${pattern} (exited=${exited}); output:\n${
            lines.join("\n")
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 50);
        function done() {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  const proc: ServerProcess = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    waitForLine,
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      return await status;
    },
  };
  if (options.waitForListen !== false) {
    await waitForLine(options.parallel ? /Listening on/ : /"msg":"listening"/);
  }
  return proc;
}

/** Sends a signed delivery to a running server. */
export async function postDelivery(
  baseUrl: string,
  init: DeliveryInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const request = await deliveryRequest({ ...init, url: `${baseUrl}/webhook` });
  const res = await fetch(request);
  return { status: res.status, body: await res.json() };
}

/** The server's body digest, for building deliveries in store tests. */
export { sha256Hex } from "../lib/_util/digest.ts";
