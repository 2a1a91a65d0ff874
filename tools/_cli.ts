/**
 * What the command-line tools share: the usage error and the handling of
 * `--help` and bad arguments. Not a user-facing tool itself.
 *
 * @module
 */

/** Thrown by a tool's argument parser; the tool prints it with its usage. */
export class UsageError extends Error {
  /** @param message what is wrong with the arguments */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses `args` with `parse` (which returns `null` for `--help`). Returns the
 * options, or the exit status when there is nothing more to do: 0 after
 * printing the usage for `--help`, 2 after printing a usage error.
 *
 * @example
 * ```ts
 * import { parseOrExit, UsageError } from "./_cli.ts";
 * const parse = (args: readonly string[]) => {
 *   if (args.length === 0) throw new UsageError("an event is needed");
 *   return args[0] === "--help" ? null : { event: args[0]! };
 * };
 * parseOrExit(parse, [], "usage: …", () => {}, () => {}); // 2
 * ```
 */
export function parseOrExit<T>(
  parse: (args: readonly string[]) => T | null,
  args: readonly string[],
  usage: string,
  print: (text: string) => void,
  printError: (text: string) => void,
): T | number {
  let options: T | null;
  try {
    options = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    printError(`${err.message}\n\n${usage}`);
    return 2;
  }
  if (options === null) {
    print(usage);
    return 0;
  }
  return options;
}
