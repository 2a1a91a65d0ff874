/**
 * Waiting: {@link sleep} resolves after a time or when a signal aborts, and
 * never rejects, so loops that wait between tries can stop at once. It owns
 * no timer beyond the wait itself.
 *
 * @module
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts; never rejects.
 *
 * @example
 * ```ts
 * import { sleep } from "./timers.ts";
 * await sleep(1, new AbortController().signal);
 * ```
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const id = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
