/**
 * Describing what was thrown, for logs and error fields: one line, bounded
 * in size. It never decides what is safe to show; callers pass only errors
 * whose text carries no secret.
 *
 * @module
 */

/** How long a description may grow before it is cut. */
const MAX_DESCRIPTION = 1000;

/**
 * A one-line, size-bounded description of anything thrown: `Name: message`
 * for an `Error`, JSON (or `String()`) for anything else.
 *
 * @example
 * ```ts
 * import { describeError } from "./errors.ts";
 * describeError(new TypeError("bad")); // "TypeError: bad"
 * ```
 */
export function describeError(err: unknown): string {
  let text: string;
  if (err instanceof Error) text = `${err.name}: ${err.message}`;
  else {
    try {
      text = typeof err === "string" ? err : JSON.stringify(err) ?? String(err);
    } catch {
      text = String(err);
    }
  }
  return text.length > MAX_DESCRIPTION
    ? text.slice(0, MAX_DESCRIPTION) + "…"
    : text;
}

/**
 * The message alone: `err.message` for an `Error`, `String(err)` otherwise.
 *
 * @example
 * ```ts
 * import { errorMessage } from "./errors.ts";
 * errorMessage(new Error("closed")); // "closed"
 * ```
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A problem with how the server was started (a permission, a setting) that
 * its message explains to the operator in full.
 *
 * @example
 * ```ts
 * import { StartupError } from "./errors.ts";
 * new StartupError("add --allow-read=./lib").message; // "add --allow-read=./lib"
 * ```
 */
export class StartupError extends Error {
  /** @param message what is wrong and how to fix it */
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}
