/**
 * What the benchmarks (and the tests' subprocess helpers) give a child
 * process: the few variables Deno needs from our environment, and a free
 * port to listen on. It starts no process itself.
 *
 * @module
 */

/** Variables a subprocess keeps from our environment: only what Deno needs. */
const INHERITED = ["HOME", "DENO_DIR", "PATH", "TMPDIR"] as const;

/**
 * The part of our environment a subprocess started with `clearEnv: true`
 * inherits (HOME, DENO_DIR, PATH, TMPDIR, those that are set).
 *
 * @example
 * ```ts
 * import { inheritedEnv } from "./_subprocess.ts";
 * const env = { ...inheritedEnv(), NO_COLOR: "1" };
 * ```
 */
export function inheritedEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = Deno.env.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 *
 * @example
 * ```ts
 * import { freePort } from "./_subprocess.ts";
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
