/**
 * Subprocess plumbing for the load benchmark: a group that tracks every
 * child it spawns so that all can be stopped at once (also on Ctrl-C), a
 * command run for its output, and a line reader that keeps a child's pipes
 * from filling up; a child that says `{"listening":port}` waited for, and
 * a child stopped gently. It knows nothing of servers, wrk or /proc.
 *
 * @module
 */

import { inheritedEnv } from "../_subprocess.ts";

/** The children of one benchmark run, tracked until they exit. */
export interface Children {
  /** Spawns `cmd` with `args` and tracks it until it exits. */
  spawn(
    cmd: string,
    args: string[],
    options?: Omit<Deno.CommandOptions, "args">,
  ): Deno.ChildProcess;
  /** SIGKILLs every child still running. */
  killAll(): void;
}

/**
 * A group of tracked children.
 *
 * @example
 * ```ts
 * import { createChildren } from "./children.ts";
 * const children = createChildren();
 * // children.spawn("wrk", [...]) … finally children.killAll();
 * ```
 */
export function createChildren(): Children {
  const live = new Set<Deno.ChildProcess>();
  return {
    spawn(cmd, args, options = {}) {
      const child = new Deno.Command(cmd, { args, ...options }).spawn();
      live.add(child);
      child.status.finally(() => live.delete(child));
      return child;
    },
    killAll() {
      for (const child of live) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
    },
  };
}

/**
 * Runs `cmd` to its end and returns what it printed; throws with its
 * stderr if it fails.
 *
 * @example
 * ```ts
 * import { run } from "./children.ts";
 * const cores = (await run("nproc", [])).trim();
 * ```
 */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Whether `cmd` is on the PATH.
 *
 * @example
 * ```ts
 * import { have } from "./children.ts";
 * if (!(await have("wrk"))) console.error("install wrk");
 * ```
 */
export async function have(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads `stream` to its end a line at a time, keeping the last 200 lines
 * in `keep` (so that a child's pipes never fill up) and calling `onLine`
 * with each.
 *
 * @example
 * ```ts
 * import { drain } from "./children.ts";
 * const lines: string[] = [];
 * await drain(ReadableStream.from([new TextEncoder().encode("a\nb")]), lines);
 * // lines: ["a", "b"]
 * ```
 */
export function drain(
  stream: ReadableStream<Uint8Array>,
  keep: string[],
  onLine?: (line: string) => void,
): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        keep.push(line);
        if (keep.length > 200) keep.shift();
        onLine?.(line);
      }
    }
    if (rest) {
      keep.push(rest);
      onLine?.(rest);
    }
  })();
}

/**
 * The port in a child's `{"listening":port}` line, or null for any other
 * line.
 *
 * @example
 * ```ts
 * import { listeningPort } from "./children.ts";
 * listeningPort('{"listening":8123}'); // 8123
 * listeningPort("Warning"); // null
 * ```
 */
export function listeningPort(line: string): number | null {
  if (!line.startsWith("{")) return null;
  try {
    const port = (JSON.parse(line) as { listening?: unknown }).listening;
    return typeof port === "number" && Number.isInteger(port) && port > 0
      ? port
      : null;
  } catch {
    return null;
  }
}

/** A child that said it listens, and its output so far. */
export interface Listening {
  child: Deno.ChildProcess;
  port: number;
  /** Its last lines of output (stdout and stderr). */
  lines: string[];
}

/**
 * Spawns `cmd` with `args` (only the variables Deno needs, plus
 * `NO_COLOR`) and waits for its `{"listening":port}` line on stdout;
 * throws, with its output, if it exits first or `timeoutMs` pass.
 *
 * @example
 * ```ts
 * import { createChildren, spawnListening } from "./children.ts";
 * // const { child, port } = await spawnListening(createChildren(), "the sink", "taskset", args, 30_000);
 * ```
 */
export async function spawnListening(
  children: Children,
  name: string,
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<Listening> {
  const child = children.spawn(cmd, args, {
    env: { ...inheritedEnv(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const lines: string[] = [];
  const { promise, resolve } = Promise.withResolvers<number>();
  drain(child.stdout, lines, (line) => {
    const port = listeningPort(line);
    if (port !== null) resolve(port);
  });
  drain(child.stderr, lines);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    promise,
    child.status.then(() => {
      throw new Error(`${name} exited at start:\n${lines.join("\n")}`);
    }),
    new Promise<never>((_, reject) =>
      timer = setTimeout(
        () => reject(new Error(`${name} did not listen:\n${lines.join("\n")}`)),
        timeoutMs,
      )
    ),
  ]).finally(() => clearTimeout(timer));
  return { child, port, lines };
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves when it
 * has exited.
 *
 * @example
 * ```ts
 * import { stopChild } from "./children.ts";
 * // await stopChild(child, 5000);
 * ```
 */
export async function stopChild(
  child: Deno.ChildProcess,
  graceMs: number,
): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  await child.status;
  clearTimeout(timer);
}
