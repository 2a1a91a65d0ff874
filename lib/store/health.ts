/**
 * Whether the delivery store's writes are working: a count of consecutive
 * write failures, fed by the accept path (every `store.accept`) and by the
 * readiness probe's own small write. After `failuresToUnready` failures in a
 * row the store is unhealthy (and `/readyz` answers 503) until a write
 * succeeds again.
 *
 * It writes nothing and answers no request: `worker/accept.ts` and
 * `http/probes.ts` report to it, and `/readyz` reads it.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";

/** Options of {@link createStoreHealth}. */
export interface StoreHealthOptions {
  /** Consecutive failed writes that make the store unhealthy. @default 3 */
  failuresToUnready?: number;
  /** @default Date.now */
  now?: (() => number) | undefined;
}

/** What {@link StoreHealth.status} says. */
export interface StoreHealthStatus {
  /** False after `failuresToUnready` failed writes in a row. */
  healthy: boolean;
  /** Failed writes since the last one that succeeded. */
  consecutiveFailures: number;
  /** Why the last write failed; null once one succeeds. */
  lastError: string | null;
  /** When a write last succeeded or failed (ms since the epoch); null before any. */
  lastWriteAt: number | null;
}

/** The health of the store's writes, reported to as they happen. */
export interface StoreHealth {
  /** A write succeeded: healthy again. */
  succeeded(): void;
  /** A write failed with `err`. */
  failed(err: unknown): void;
  /** The current state. */
  status(): StoreHealthStatus;
}

/**
 * Makes the store's write health: healthy until `failuresToUnready` writes
 * fail in a row, healthy again at the first write that succeeds.
 *
 * @example
 * ```ts
 * import { createStoreHealth } from "./health.ts";
 * const health = createStoreHealth({ failuresToUnready: 2 });
 * health.failed(new Error("disk I/O error"));
 * health.failed(new Error("disk I/O error"));
 * health.status().healthy; // false
 * health.succeeded();
 * health.status().healthy; // true
 * ```
 */
export function createStoreHealth(
  options: StoreHealthOptions = {},
): StoreHealth {
  const { failuresToUnready = 3, now = Date.now } = options;
  const state = {
    failures: 0,
    lastError: null as string | null,
    lastWriteAt: null as number | null,
  };
  return {
    succeeded() {
      state.failures = 0;
      state.lastError = null;
      state.lastWriteAt = now();
    },
    failed(err) {
      state.failures++;
      state.lastError = errorMessage(err);
      state.lastWriteAt = now();
    },
    status() {
      return {
        healthy: state.failures < failuresToUnready,
        consecutiveFailures: state.failures,
        lastError: state.lastError,
        lastWriteAt: state.lastWriteAt,
      };
    },
  };
}
