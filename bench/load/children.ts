/**
 * Subprocess plumbing for the load benchmark: a group that tracks every
 * child it spawns so that all can be stopped at once (also on Ctrl-C), a
 * command run for its output, and a line reader that keeps a child's pipes
 * from filling up. It knows nothing of servers, wrk or /proc.
 *
 * @module
 */

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
