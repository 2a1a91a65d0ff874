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

/** One `-x`, `--name`, `--name=value` or `--name value` argument. */
export interface OptionArg {
  /** `--name`, without any `=value`. */
  readonly name: string;
  /** Its value: what follows `=`, or else the next argument (consumed). */
  value(): string;
  /** For a switch: throws when it came with `=value`. */
  flag(): true;
}

/**
 * Walks a command line: `onOption` gets each option (and returns `"help"` to
 * stop at once), `onPositional` everything else, including all that follows
 * `--` (unless `endOfOptions` is false: then `--` itself is positional).
 * Returns `"help"` when an option asked for it.
 *
 * @example
 * ```ts
 * import { walkArgs } from "./_cli.ts";
 * const seen: string[] = [];
 * walkArgs(["--url=x", "push", "--kv", "a.kv"], (option) => {
 *   seen.push(`${option.name} ${option.value()}`);
 * }, (arg) => seen.push(arg));
 * seen; // ["--url x", "push", "--kv a.kv"]
 * ```
 */
export function walkArgs(
  args: readonly string[],
  onOption: (option: OptionArg) => "help" | void,
  onPositional: (arg: string) => void,
  { endOfOptions = true }: {
    /** Whether `--` ends the options (else it goes to `onPositional`). */
    endOfOptions?: boolean;
  } = {},
): "help" | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--" && endOfOptions) {
      for (const rest of args.slice(i + 1)) onPositional(rest);
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      onPositional(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const option: OptionArg = {
      name,
      value() {
        if (eq !== -1) return arg.slice(eq + 1);
        const next = args[i + 1];
        if (next === undefined) throw new UsageError(`${name} needs a value`);
        i++;
        return next;
      },
      flag() {
        if (eq !== -1) throw new UsageError(`${name} takes no value`);
        return true;
      },
    };
    if (onOption(option) === "help") return "help";
  }
  return undefined;
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
