/**
 * Waiting: {@link sleep} resolves after a time or when a signal aborts, and
 * never rejects, so loops that wait between tries can stop at once;
 * {@link withTimeout} gives up on a promise that takes too long. Neither owns
 * a timer beyond the wait itself.
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

/**
 * Settles as `promise` does, or rejects with "`what` did not answer within
 * `ms` ms" when it has not settled by then (the promise itself runs on).
 *
 * @example
 * ```ts
 * import { withTimeout } from "./timers.ts";
 * await withTimeout(Promise.resolve(1), 1000, "the store"); // 1
 * ```
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
