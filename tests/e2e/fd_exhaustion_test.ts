// Running out of file descriptors: the real server under a low `ulimit -n`,
// exhausted by idle connections that hold half-sent headers, then the
// connections released. `accept` fails with EMFILE and Deno.serve's listener
// ends; the server must then serve again (main.ts listens again) or have
// exited non-zero (serve.ts: the runtime's listener, the process guard) —
// never live on without a listener, as it did when the guard swallowed the
// rejection.

import assert from "node:assert/strict";
import { freePort } from "../_helpers.ts";
import { inheritedEnv } from "../../bench/_subprocess.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const encoder = new TextEncoder();
/** Enough for Deno and hookgate to start, few enough to exhaust quickly. */
const FD_LIMIT = 128;

interface Limited {
  lines: string[];
  exited: () => Deno.CommandStatus | null;
  waitForLine(pattern: RegExp, ms: number): Promise<boolean>;
  stop(): Promise<Deno.CommandStatus>;
}

/** hookgate's code, which the handler Workers load from disk. */
const LIB = new URL("../../lib", import.meta.url).pathname;

/** `deno <args>` under `ulimit -n FD_LIMIT`, its output collected. */
function spawnLimited(args: string[], port: number): Limited {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n "$0" && exec "$@"',
      String(FD_LIMIT),
      Deno.execPath(),
      ...args,
    ],
    cwd: Deno.makeTempDirSync({ prefix: "hookgate-fd-" }),
    env: {
      ...inheritedEnv(),
      GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
      IP_ALLOWLIST: "off",
      KV_PATH: ":memory:",
      HOST: "127.0.0.1",
      PORT: String(port),
      NO_COLOR: "1",
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
    if (rest) lines.push(rest);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let status: Deno.CommandStatus | null = null;
  const done = child.status.then(async (s) => {
    status = s;
    await pumps;
    return s;
  });
  return {
    lines,
    exited: () => status,
    async waitForLine(pattern, ms) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (lines.some((l) => pattern.test(l))) return true;
        if (status !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      return lines.some((l) => pattern.test(l));
    },
    async stop() {
      if (status === null) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      return await done;
    },
  };
}

/** Opens idle connections holding half-sent headers until one is refused. */
async function exhaust(port: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < 3 * FD_LIMIT; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(encoder.encode("POST /webhook HTTP/1.1\r\nHost: x\r\n"));
    } catch {
      break;
    }
  }
  return conns;
}

/** Whether `GET /healthz` answers 200 within a second. */
async function healthy(port: number): Promise<boolean> {
  let conn: Deno.Conn | null = null;
  const timer = setTimeout(() => conn?.close(), 1000);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      encoder.encode(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      ),
    );
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null &&
      new TextDecoder().decode(buf.subarray(0, n)).startsWith(
        "HTTP/1.1 200",
      );
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}

/** What became of the server after the connections were released. */
async function outcome(
  server: Limited,
  port: number,
): Promise<
  "serving" | "exited non-zero" | "exited 0" | "alive without listener"
> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const status = server.exited();
    if (status !== null) {
      return status.code !== 0 ? "exited non-zero" : "exited 0";
    }
    if (await healthy(port)) return "serving";
    await new Promise((r) => setTimeout(r, 100));
  }
  return "alive without listener";
}

async function exhaustAndRelease(
  args: string[],
  port: number,
  listening: RegExp,
): Promise<{ result: string; output: string }> {
  const server = spawnLimited(args, port);
  try {
    assert.ok(
      await server.waitForLine(listening, 15_000),
      server.lines.join("\n"),
    );
    assert.ok(await healthy(port), "serves before the attack");
    const conns = await exhaust(port);
    const exhausted = await server.waitForLine(/Too many open files/, 10_000);
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* reset by the server */ }
    }
    assert.ok(
      exhausted,
      `EMFILE after ${conns.length} connections:\n${server.lines.join("\n")}`,
    );
    const result = await outcome(server, port);
    return { result, output: server.lines.join("\n") };
  } finally {
    await server.stop();
  }
}

Deno.test("main.ts, out of file descriptors, listens again once idle connections are gone", async () => {
  const port = freePort();
  const { result, output } = await exhaustAndRelease(
    [
      "run",
      "--config",
      `${ROOT}deno.json`,
      "--allow-net",
      "--allow-env",
      `--allow-read=.env,./data,${LIB}`,
      "--allow-write=./data",
      `${ROOT}main.ts`,
    ],
    port,
    /"msg":"listening"/,
  );
  assert.equal(result, "serving", output);
  assert.match(
    output,
    /"level":"error","msg":"listener failed: listening again"/,
  );
  assert.match(output, /"msg":"listening again"/);
});

Deno.test("serve.ts under deno serve, out of file descriptors, exits non-zero (the guard) instead of living on", async () => {
  const port = freePort();
  const { result, output } = await exhaustAndRelease(
    [
      "serve",
      "--config",
      `${ROOT}deno.json`,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--allow-net",
      "--allow-env",
      `--allow-read=.env,./data,${LIB}`,
      "--allow-write=./data",
      `${ROOT}serve.ts`,
    ],
    port,
    /Listening on/,
  );
  assert.equal(result, "exited non-zero", output);
  assert.match(
    output,
    /"level":"error","msg":"unhandled rejection: exiting".*Too many open files/,
  );
});
