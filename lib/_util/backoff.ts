/**
 * Exponential backoff with equal jitter, for every retry loop: the meta
 * refresher after a failed fetch and the worker after a failed attempt.
 * Pure: the source of randomness is passed in.
 *
 * @module
 */

/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  /** The ceiling of the first retry, in ms; it doubles with each attempt. */
  baseMs: number;
  /** The largest ceiling, in ms. */
  maxMs: number;
  /** Source of jitter in `[0, 1)`. @default Math.random */
  random?: () => number;
}

/**
 * The wait before retry number `attempt` (1 for the first): a ceiling of
 * `baseMs × 2^(attempt-1)`, capped at `maxMs`, and a delay spread over
 * `[ceiling/2, ceiling)` (equal jitter: never a hot loop, never in step).
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * backoffDelay(3, { baseMs: 1000, maxMs: 60_000, random: () => 0 }); // 2000
 * ```
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { baseMs, maxMs, random = Math.random } = options;
  const ceiling = Math.min(
    maxMs,
    baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30),
  );
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
