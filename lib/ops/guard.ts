/**
 * Keeps the process alive whatever a handler does: an unhandled promise
 * rejection or an exception thrown from a timer callback is logged and
 * swallowed instead of ending the process. `main.ts` installs it once; a
 * library importing `lib/` installs nothing by accident.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import { describeError } from "../_util/errors.ts";

/**
 * Installs the guards on `globalThis` and returns a function that removes
 * them.
 *
 * @example
 * ```ts
 * import { guardProcess } from "./guard.ts";
 * import { NULL_LOGGER } from "./log.ts";
 * const remove = guardProcess(NULL_LOGGER);
 * remove();
 * ```
 */
export function guardProcess(log: Logger): () => void {
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    log.error("unhandled rejection", { error: describeError(event.reason) });
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    log.error("uncaught exception", {
      error: describeError(event.error ?? event.message),
    });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}
