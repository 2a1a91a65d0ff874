/**
 * Ends the process on anything left unhandled in the main isolate: an
 * unhandled promise rejection or an exception thrown from a callback (a
 * timer, an event listener) is logged at `error`, and the process exits 1 so
 * that its supervisor (systemd's `Restart=always`, a container runtime)
 * starts a fresh one. Acknowledged deliveries are durable in KV, so exiting
 * loses nothing that was answered 202.
 *
 * It does not contain handler failures: handlers run in Worker isolates,
 * whose rejections and exceptions stay inside their Worker. What reaches this
 * guard is a fault of hookgate's own (or of Deno: a listener whose `accept`
 * failed), and a process in an unknown state must not live on — that is how
 * a receiver once kept running with no listener at all. `lib/boot.ts`
 * installs it once; a library importing `lib/` installs nothing by accident.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import { describeError } from "../_util/errors.ts";

/** Options of {@link guardProcess}. */
export interface GuardOptions {
  /**
   * Ends the process with a status code.
   * @default Deno.exit
   */
  exit?: (code: number) => void;
}

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
export function guardProcess(
  log: Logger,
  options: GuardOptions = {},
): () => void {
  const { exit = Deno.exit } = options;
  const onRejection = (event: PromiseRejectionEvent) => {
    // Our own line, not Deno's: the log stays one JSON object a line.
    event.preventDefault();
    log.error("unhandled rejection: exiting", fieldsOf(event.reason));
    exit(1);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    log.error(
      "uncaught exception: exiting",
      fieldsOf(event.error ?? event.message),
    );
    exit(1);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/** Frames of a stack kept in the log line (the top is where it went wrong). */
const STACK_LINES = 12;

/** The error's description and, for an `Error`, the top of its stack. */
function fieldsOf(reason: unknown): Record<string, string> {
  const fields: Record<string, string> = { error: describeError(reason) };
  if (reason instanceof Error && typeof reason.stack === "string") {
    fields.stack = reason.stack.split("\n").slice(1, 1 + STACK_LINES)
      .map((line) => line.trim()).join(" | ");
  }
  return fields;
}
