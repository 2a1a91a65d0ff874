/**
 * Hook scripts: the executable files in `HOOKS_DIR` that handle a delivery,
 * as the contract's "Script hooks" section defines them. For one delivery
 * this module names the candidates (`E-name-B`, `E-name`, `E`, `all`), keeps
 * those that are regular executable files resolving inside `HOOKS_DIR`, and
 * runs them one after another until one fails: argv `[payload file, event]`,
 * the payload on stdin, `HOOKS_DIR` as the working directory, a clean
 * environment, a process group of its own that is killed at the timeout, at
 * shutdown, and once more when the script exits (a backgrounded child does
 * not outlive its script; a daemon must detach itself, e.g. through
 * systemd), and the last 64 KiB of its combined output.
 *
 * It does not know about KV, HTTP, retries, metrics or records: it returns
 * plain {@link ScriptRun} reports and the worker decides what they mean.
 * It cannot reach a process that left the group on its own (`setsid`): such
 * a process is not killed; the run stops reading the output it holds open
 * about a second after the script ends, and a payload write it blocks on
 * stdin stays pending (in the background) until it exits. Under a narrow
 * `--allow-run=<paths>`, groups are signalled through the `kill` binary when
 * that is listed too, else only the script itself (one warning).
 *
 * @module
 */

import { describeError } from "../_util/errors.ts";
import { sleep } from "../_util/timers.ts";
import {
  branchOf,
  headShaOf,
  repositoryNameOf,
  safeBranch,
} from "../github/refs.ts";
import { type Logger, NULL_LOGGER } from "../ops/log.ts";
import { createTracer, endTargetSpan, type Tracer } from "../ops/tracing.ts";

/** One script's report. */
export interface ScriptRun {
  /** The script's name relative to `HOOKS_DIR`: `"push-myapp-main"`, `"push-myapp-feature/x"`. */
  handler: string;
  ok: boolean;
  /** Null when the script ended by a signal or never started. */
  exitCode: number | null;
  /** The signal that ended the script (`"SIGKILL"`), or null. */
  signal: string | null;
  timedOut: boolean;
  ms: number;
  /** The last `outputMax` bytes of stdout and stderr, in the order they were read. */
  output: Uint8Array;
  /** What went wrong, when `!ok`. */
  error?: string;
}

/** What a script is told about one delivery attempt. */
export interface ScriptJob {
  event: string;
  action: string | undefined;
  delivery: string;
  attempt: number;
  /** The JSON payload bytes, exactly as given to stdin and written to the temp file. */
  json: Uint8Array;
  /** The parsed payload, for the repository, branch, commit and sender. */
  payload: Record<string, unknown>;
}

/** Options of {@link runScript} and {@link createScriptRunner}. */
export interface ScriptsOptions {
  /** `HOOKS_DIR` as configured; the runner resolves it (symlinks) at first use. */
  dir: string;
  /** `PATH`, `HOME` and the `HOOKS_ENV` values, read by the caller. */
  baseEnv: Record<string, string>;
  /** `HANDLER_TIMEOUT_MS`: how long one script may run. */
  timeoutMs: number;
  /**
   * How long after SIGTERM the group gets SIGKILL.
   * @default {3000}
   */
  killGraceMs?: number;
  /**
   * How many bytes of output a report keeps (the last ones).
   * @default {65536}
   */
  outputMax?: number;
  /**
   * Where the payload files go.
   * @default {the OS temp dir}
   */
  tempDir?: string;
  /**
   * Where skipped scripts and kill fallbacks are reported.
   * @default {NULL_LOGGER}
   */
  log?: Logger;
  /** A span per script run. @default Deno's, when `OTEL_DENO=true` */
  tracer?: Tracer;
}

/** Runs a delivery's scripts; see {@link createScriptRunner}. */
export interface ScriptRunner {
  /**
   * Looks the delivery's scripts up and runs them in order, stopping at the
   * first failure. `token` (the scripts' `GITHUB_TOKEN`) may be a function,
   * called only when there is a script to run; when it rejects, the run is
   * one failed report, `(GITHUB_TOKEN)`.
   */
  run(
    job: ScriptJob,
    token: string | undefined | (() => Promise<string | undefined>),
    signal: AbortSignal,
  ): Promise<ScriptRun[]>;
  /** Kills every running script's group and resolves when they are reaped. */
  close(): Promise<void>;
  /** Scripts running now. */
  readonly active: number;
}

/** The signals {@link killGroup} sends. */
export type KillSignal = "SIGTERM" | "SIGKILL";

/**
 * How {@link killGroup} reached the process: `group` with `Deno.kill`,
 * `command` through the `kill` binary, `gone` when the group has no process
 * left; `leader` when the group could not be signalled and only the leader
 * was (if it had not exited yet, `child.kill`); `failed` when the group
 * could not be signalled and no `child` was given.
 */
export type KillResult = "group" | "command" | "leader" | "gone" | "failed";

const DEFAULT_KILL_GRACE_MS = 3000;
const DEFAULT_OUTPUT_MAX = 65_536;
/** How long output is still read after the group is killed. */
const DRAIN_MS = 1000;
/** The longest file name Linux and macOS accept, in bytes. */
const NAME_MAX = 255;
const SAFE_PART = /^[A-Za-z0-9._-]+$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const NOT_ALLOWED =
  "not allowed to run: add it to --allow-run (deno task flags prints the flags)";

/** Whether an event or repository name may be part of a file name. */
function safePart(part: string): boolean {
  return SAFE_PART.test(part) && part !== "." && part !== "..";
}

/** Whether every segment of a relative name fits in a file name. */
function fitsNameMax(name: string): boolean {
  const encoder = new TextEncoder();
  return name.split("/").every((s) => encoder.encode(s).length <= NAME_MAX);
}

/**
 * The script names a delivery may have, relative to `HOOKS_DIR`, in the
 * contract's order: `E-name-B`, `E-name`, `E`, `all`. A candidate whose
 * parts are missing or unsafe is left out (the branch per `safeBranch`, the
 * event and repository name as `[A-Za-z0-9._-]+`); a `/` in the branch is a
 * sub-folder.
 *
 * @example
 * ```ts
 * import { scriptCandidates } from "./scripts.ts";
 * const payload = { ref: "refs/heads/feature/x", repository: { name: "myapp" } };
 * scriptCandidates("push", payload); // ["push-myapp-feature/x", "push-myapp", "push", "all"]
 * scriptCandidates("push", { ref: "refs/tags/v1", repository: { name: "myapp" } }); // ["push-myapp", "push", "all"]
 * ```
 */
export function scriptCandidates(event: string, payload: unknown): string[] {
  const names: string[] = [];
  if (safePart(event)) {
    const repo = repositoryNameOf(payload);
    if (repo !== undefined && safePart(repo)) {
      const branch = branchOf(event, payload);
      if (branch !== undefined && safeBranch(branch)) {
        names.push(`${event}-${repo}-${branch}`);
      }
      names.push(`${event}-${repo}`);
    }
    names.push(event);
  }
  names.push("all");
  return [...new Set(names)].filter(fitsNameMax);
}

/** Why a present candidate cannot run, or null when it can. */
async function rejectReason(
  real: string,
  realDir: string,
): Promise<string | null> {
  const prefix = realDir.endsWith("/") ? realDir : realDir + "/";
  if (!real.startsWith(prefix)) return "it resolves outside HOOKS_DIR";
  const info = await Deno.stat(real);
  if (!info.isFile) return "it is not a regular file";
  if (((info.mode ?? 0) & 0o111) === 0) return "it is not executable";
  return null;
}

/** Whether a candidate that did not resolve is a broken symlink (worth a warning). */
async function isBrokenLink(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSymlink;
  } catch {
    return false;
  }
}

/** Whether an error means "nothing is there" (no warning). */
function isMissing(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound ||
    err instanceof Deno.errors.NotADirectory;
}

/**
 * The candidates that can run, in order, each with its real path: present,
 * a regular file with an execute bit, resolving (symlinks included) inside
 * `realPath(dir)`. A missing candidate is skipped silently; a present one
 * that cannot run (a directory, not executable, a symlink out of the folder
 * or a broken one) is skipped with a warning on `log` naming why; one this
 * process may not look at (its permissions) is added to `denied`. Never
 * rejects: an unreadable `dir` gives no scripts and a warning.
 *
 * @example
 * ```ts
 * import { findScripts } from "./scripts.ts";
 * await findScripts(".", ["no-such-hook"]); // []
 * ```
 */
export async function findScripts(
  dir: string,
  candidates: string[],
  log: Logger = NULL_LOGGER,
  denied: string[] = [],
): Promise<{ handler: string; path: string }[]> {
  let realDir: string;
  try {
    realDir = await Deno.realPath(dir);
  } catch (err) {
    log.warn("HOOKS_DIR cannot be read", { error: describeError(err) });
    return [];
  }
  const found: { handler: string; path: string }[] = [];
  for (const handler of candidates) {
    const path = `${realDir}/${handler}`;
    try {
      const real = await Deno.realPath(path);
      const reason = await rejectReason(real, realDir);
      if (reason === null) found.push({ handler, path: real });
      else log.warn("hook script skipped", { handler, reason });
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) denied.push(handler);
      else if (!isMissing(err)) {
        log.warn("hook script skipped", {
          handler,
          reason: describeError(err),
        });
      } else if (await isBrokenLink(path)) {
        log.warn("hook script skipped", {
          handler,
          reason: "it is a broken symlink",
        });
      }
    }
  }
  return found;
}

/**
 * The folder hook scripts' payload files are written to: `TMPDIR` when this
 * process may read it, else `/tmp`. `deno task flags` and the start-up
 * permission check use the same answer.
 *
 * @example
 * ```ts
 * import { scriptTempDir } from "./scripts.ts";
 * scriptTempDir().length > 0; // true
 * ```
 */
export function scriptTempDir(): string {
  const granted = Deno.permissions.querySync({
    name: "env",
    variable: "TMPDIR",
  }).state === "granted";
  return (granted ? Deno.env.get("TMPDIR") : undefined) || "/tmp";
}

/**
 * The real path of every script `dir` holds, in sub-folders too (branch
 * names with a `/`): each regular file with an execute bit that resolves
 * inside `realPath(dir)`, once, sorted. For `deno task flags`' narrow
 * `--allow-run` and the start-up permission check. Rejects when `dir`
 * cannot be read.
 *
 * @example
 * ```ts
 * import { listScripts } from "./scripts.ts";
 * await listScripts("./lib/handlers"); // [] (TypeScript is not executable)
 * ```
 */
export async function listScripts(dir: string): Promise<string[]> {
  const realDir = await Deno.realPath(dir);
  const found = new Set<string>();
  const seen = new Set<string>();
  const walk = async (folder: string, depth: number): Promise<void> => {
    if (depth > 16 || seen.has(folder)) return;
    seen.add(folder);
    for await (const entry of Deno.readDir(folder)) {
      let real: string;
      try {
        real = await Deno.realPath(`${folder}/${entry.name}`);
      } catch {
        continue; // a broken link
      }
      if (real !== realDir && !real.startsWith(realDir + "/")) continue;
      const info = await Deno.stat(real);
      if (info.isDirectory) await walk(real, depth + 1);
      else if ((await rejectReason(real, realDir)) === null) found.add(real);
    }
  };
  await walk(realDir, 0);
  return [...found].sort();
}

/** A string fit for an environment variable: no control character, else "". */
function plain(value: unknown): string {
  return typeof value === "string" && !CONTROL.test(value) ? value : "";
}

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/**
 * A script's whole environment: `base` (PATH, HOME, the HOOKS_ENV values)
 * and the `HOOKGATE_*` variables, each always set (`""` when unknown or
 * when the payload's text holds control characters; the branch also when it
 * is unsafe as a path), and `GITHUB_TOKEN` only when `token` is given.
 *
 * @example
 * ```ts
 * import { scriptEnv } from "./scripts.ts";
 * const job = {
 *   event: "push", action: undefined, delivery: "d-1", attempt: 1, json: new Uint8Array(),
 *   payload: { ref: "refs/heads/main", repository: { name: "myapp", full_name: "octo/myapp" } },
 * };
 * const env = scriptEnv({ PATH: "/usr/bin" }, job, undefined);
 * env.HOOKGATE_REPOSITORY; // "octo/myapp"
 * env.HOOKGATE_BRANCH; // "main"
 * "GITHUB_TOKEN" in env; // false
 * ```
 */
export function scriptEnv(
  base: Record<string, string>,
  job: ScriptJob,
  token: string | undefined,
): Record<string, string> {
  const { payload, event } = job;
  const branch = branchOf(event, payload);
  const env: Record<string, string> = { ...base };
  delete env.GITHUB_TOKEN;
  Object.assign(env, {
    HOOKGATE_EVENT: plain(event),
    HOOKGATE_ACTION: plain(job.action),
    HOOKGATE_DELIVERY: plain(job.delivery),
    HOOKGATE_ATTEMPT: String(job.attempt),
    HOOKGATE_REPOSITORY: plain(field(payload.repository, "full_name")),
    HOOKGATE_BRANCH: branch !== undefined && safeBranch(branch) ? branch : "",
    HOOKGATE_SHA: headShaOf(event, payload) ?? "",
    HOOKGATE_SENDER: plain(field(payload.sender, "login")),
  });
  if (token !== undefined) env.GITHUB_TOKEN = token;
  return env;
}

/** A byte buffer that keeps only the last bytes pushed into it. */
export interface OutputRing {
  /** Appends a chunk, dropping the oldest bytes beyond the capacity. */
  push(chunk: Uint8Array): void;
  /** The kept bytes, oldest first (a copy). */
  bytes(): Uint8Array;
}

/**
 * An {@link OutputRing} of `max` bytes: memory stays at `max` however much
 * is pushed.
 *
 * @example
 * ```ts
 * import { createOutputRing } from "./scripts.ts";
 * const ring = createOutputRing(4);
 * ring.push(new TextEncoder().encode("abc"));
 * ring.push(new TextEncoder().encode("def"));
 * new TextDecoder().decode(ring.bytes()); // "cdef"
 * ```
 */
export function createOutputRing(max: number): OutputRing {
  const buf = new Uint8Array(max);
  let start = 0;
  let length = 0;
  return {
    push(chunk) {
      if (max === 0) return;
      if (chunk.length >= max) {
        buf.set(chunk.subarray(chunk.length - max));
        start = 0;
        length = max;
        return;
      }
      const end = (start + length) % max;
      const first = Math.min(chunk.length, max - end);
      buf.set(chunk.subarray(0, first), end);
      buf.set(chunk.subarray(first), 0);
      const total = length + chunk.length;
      if (total > max) start = (start + total - max) % max;
      length = Math.min(total, max);
    },
    bytes() {
      const out = new Uint8Array(length);
      const first = Math.min(length, max - start);
      out.set(buf.subarray(start, start + first));
      out.set(buf.subarray(0, length - first), first);
      return out;
    },
  };
}

/**
 * Signals a script's whole process group (its pgid is its pid): with
 * `Deno.kill(-pid)`, which a narrow `--allow-run=<paths>` does not allow;
 * then with the `kill` binary; then, given `child`, the leader alone. Never
 * rejects. Throws a `RangeError` for a pid that is not a process group
 * (`0`, `1` or below would signal our own group or every process).
 *
 * @example
 * ```ts ignore
 * import { killGroup } from "./scripts.ts";
 * const child = new Deno.Command("/bin/sh", { args: ["-c", "sleep 9 & wait"], detached: true }).spawn();
 * await killGroup(child.pid, "SIGTERM", child); // "group" with a plain --allow-run
 * await child.status;
 * ```
 */
export async function killGroup(
  pid: number,
  signal: KillSignal,
  child?: Deno.ChildProcess,
): Promise<KillResult> {
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new RangeError(
      `Cannot kill a process group as 'pid' must be an integer above 1: current value is ${pid}`,
    );
  }
  try {
    Deno.kill(-pid, signal);
    return "group";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "gone";
    if (!(err instanceof Deno.errors.NotCapable)) {
      return killLeader(child, signal);
    }
  }
  return await killWithCommand(pid, signal) ?? killLeader(child, signal);
}

/** `kill -s SIG -- -pid`, or null when that binary may not or cannot run. */
async function killWithCommand(
  pid: number,
  signal: KillSignal,
): Promise<KillResult | null> {
  let proc: Deno.ChildProcess;
  try {
    proc = new Deno.Command("kill", {
      args: ["-s", signal.slice(3), "--", `-${pid}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch {
    return null;
  }
  return (await proc.status).success ? "command" : "gone";
}

function killLeader(
  child: Deno.ChildProcess | undefined,
  signal: KillSignal,
): KillResult {
  if (child === undefined) return "failed";
  try {
    child.kill(signal);
  } catch {
    // The leader has exited already.
  }
  return "leader";
}

/** What runs of one runner share. */
interface Shared {
  log: Logger;
  /** Whether the "only the leader can be killed" warning was given. */
  leaderOnlyWarned: boolean;
}

/** A report of a script that did not start. */
function notStarted(
  handler: string,
  started: number,
  error: string,
): ScriptRun {
  return {
    handler,
    ok: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    ms: Math.round(performance.now() - started),
    output: new Uint8Array(),
    error,
  };
}

function startError(err: unknown): string {
  return err instanceof Deno.errors.NotCapable
    ? NOT_ALLOWED
    : `could not start: ${describeError(err)}`;
}

/** Reads a stream into the ring until it ends or is cancelled. */
function pump(
  stream: ReadableStream<Uint8Array>,
  ring: OutputRing,
): { done: Promise<void>; cancel(): Promise<void> } {
  const reader = stream.getReader();
  const done = (async () => {
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) return;
        ring.push(value);
      }
    } catch {
      // A read error ends the output; the exit status still decides.
    }
  })();
  return { done, cancel: () => reader.cancel().catch(() => {}) };
}

/** Writes the payload to stdin and closes it; never rejects (a script need not read it). */
function feed(
  stdin: WritableStream<Uint8Array>,
  json: Uint8Array,
): Promise<void> {
  const writer = stdin.getWriter();
  return writer.write(json).then(() => writer.close()).catch(() => {});
}

/** Ends a script: SIGTERM to its group at the timeout or abort, SIGKILL `grace` later. */
function watch(
  kill: (signal: KillSignal) => Promise<unknown>,
  timeoutMs: number,
  graceMs: number,
  signal: AbortSignal,
): { stop(): Promise<{ timedOut: boolean; aborted: boolean }> } {
  const state = { timedOut: false, aborted: false, stopping: false };
  const kills: Promise<unknown>[] = [];
  let grace: ReturnType<typeof setTimeout> | undefined;
  const terminate = () => {
    if (state.stopping) return;
    state.stopping = true;
    kills.push(kill("SIGTERM"));
    grace = setTimeout(() => kills.push(kill("SIGKILL")), graceMs);
  };
  const timer = setTimeout(() => {
    state.timedOut = true;
    terminate();
  }, timeoutMs);
  const onAbort = () => {
    state.aborted = true;
    terminate();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  return {
    async stop() {
      clearTimeout(timer);
      clearTimeout(grace);
      signal.removeEventListener("abort", onAbort);
      await Promise.all(kills);
      return { timedOut: state.timedOut, aborted: state.aborted };
    },
  };
}

/** Waits for the output and stdin to finish, at most {@link DRAIN_MS}, then stops reading. */
async function drain(
  pumps: { done: Promise<void>; cancel(): Promise<void> }[],
  fed: Promise<void>,
  handler: string,
  log: Logger,
): Promise<void> {
  const timer = new AbortController();
  const finished = await Promise.race([
    Promise.all([...pumps.map((p) => p.done), fed]).then(() => true),
    sleep(DRAIN_MS, timer.signal).then(() => false),
  ]);
  timer.abort();
  if (finished) return;
  log.warn(
    "a process outside the script's group holds its stdin or output open",
    {
      handler,
    },
  );
  await Promise.all(pumps.map((p) => p.cancel()));
  await Promise.all(pumps.map((p) => p.done));
}

/** The report of a script that ran. */
function report(
  handler: string,
  started: number,
  status: Deno.CommandStatus,
  ended: { timedOut: boolean; aborted: boolean },
  timeoutMs: number,
  output: Uint8Array,
): ScriptRun {
  const signal = status.signal ?? null;
  const exitCode = signal === null ? status.code : null;
  let error: string | undefined;
  if (ended.timedOut) error = `timed out after ${timeoutMs} ms`;
  else if (ended.aborted) {
    error = "interrupted by shutdown" +
      (signal === null ? "" : `: killed by ${signal}`);
  } else if (signal !== null) error = `killed by ${signal}`;
  else if (exitCode !== 0) error = `exit status ${exitCode}`;
  const run: ScriptRun = {
    handler,
    ok: error === undefined,
    exitCode,
    signal,
    timedOut: ended.timedOut,
    ms: Math.round(performance.now() - started),
    output,
  };
  if (error !== undefined) run.error = error;
  return run;
}

/** One script's run from spawn to reaped group, given the payload file. */
async function spawnAndWatch(
  script: { path: string; handler: string; file: string; realDir: string },
  job: ScriptJob,
  env: Record<string, string>,
  options: ScriptsOptions,
  signal: AbortSignal,
  shared: Shared,
  started: number,
): Promise<ScriptRun> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(script.path, {
      args: [script.file, job.event],
      cwd: script.realDir,
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (err) {
    return notStarted(script.handler, started, startError(err));
  }
  const ring = createOutputRing(options.outputMax ?? DEFAULT_OUTPUT_MAX);
  const pumps = [pump(child.stdout, ring), pump(child.stderr, ring)];
  const fed = feed(child.stdin, job.json);
  const kill = async (sig: KillSignal) => {
    const how = await killGroup(child.pid, sig, child);
    if (how === "leader" && !shared.leaderOnlyWarned) {
      shared.leaderOnlyWarned = true;
      shared.log.warn(
        "cannot signal a hook script's process group under a narrow --allow-run: only the script itself is killed, its children may survive; add kill to --allow-run",
        { handler: script.handler },
      );
    }
  };
  const watcher = watch(
    kill,
    options.timeoutMs,
    options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
    signal,
  );
  const status = await child.status;
  const ended = await watcher.stop();
  await kill("SIGKILL"); // whatever the script left behind in its group
  await drain(pumps, fed, script.handler, shared.log);
  return report(
    script.handler,
    started,
    status,
    ended,
    options.timeoutMs,
    ring.bytes(),
  );
}

function tempOptions(dir: string | undefined): Deno.MakeTempOptions {
  const base = { prefix: "hookgate-", suffix: ".json" };
  return dir === undefined ? base : { ...base, dir };
}

/** One run with the payload file made before and removed after, whatever happens. */
async function runOne(
  script: { path: string; handler: string; realDir: string },
  job: ScriptJob,
  env: Record<string, string>,
  options: ScriptsOptions,
  signal: AbortSignal,
  shared: Shared,
): Promise<ScriptRun> {
  const started = performance.now();
  if (signal.aborted) {
    return notStarted(script.handler, started, "not started: shutting down");
  }
  let file: string | undefined;
  try {
    file = await Deno.makeTempFile(tempOptions(options.tempDir));
    await Deno.writeFile(file, job.json);
  } catch (err) {
    await removeQuietly(file);
    return notStarted(
      script.handler,
      started,
      `could not start: cannot write the payload file: ${describeError(err)}`,
    );
  }
  try {
    return await spawnAndWatch(
      { ...script, file },
      job,
      env,
      options,
      signal,
      shared,
      started,
    );
  } finally {
    await removeQuietly(file);
  }
}

async function removeQuietly(path: string | undefined): Promise<void> {
  if (path === undefined) return;
  try {
    await Deno.remove(path);
  } catch {
    // Already gone (the script may remove it), or not ours to force.
  }
}

/**
 * Runs one script for one delivery attempt and reports how it ended; never
 * rejects. `path` is the script's real path ({@link findScripts}), `env` its
 * whole environment ({@link scriptEnv}); `signal` aborting (shutdown) kills
 * its group as the timeout does. The working directory is `options.dir`
 * resolved (symlinks). The payload file is always removed.
 *
 * @example
 * ```ts ignore
 * import { runScript, scriptEnv } from "./scripts.ts";
 * const options = { dir: "./hooks", baseEnv: { PATH: "/usr/bin:/bin" }, timeoutMs: 60_000 };
 * const run = await runScript("/srv/hooks/push", "push", job, scriptEnv(options.baseEnv, job, undefined), options, signal);
 * run.ok; // true when it exited 0 in time
 * ```
 */
export async function runScript(
  path: string,
  handler: string,
  job: ScriptJob,
  env: Record<string, string>,
  options: ScriptsOptions,
  signal: AbortSignal,
): Promise<ScriptRun> {
  const started = performance.now();
  let realDir: string;
  try {
    realDir = await Deno.realPath(options.dir);
  } catch (err) {
    return notStarted(
      handler,
      started,
      `could not start: HOOKS_DIR cannot be read: ${describeError(err)}`,
    );
  }
  const shared = { log: options.log ?? NULL_LOGGER, leaderOnlyWarned: false };
  return await runOne(
    { path, handler, realDir },
    job,
    env,
    options,
    signal,
    shared,
  );
}

/**
 * The worker's script runner. Each {@link ScriptRunner.run} looks the
 * delivery's scripts up afresh (adding one needs no restart), runs them one
 * after another and stops at the first that fails: its report is the last.
 * An unreadable `HOOKS_DIR` gives one failed report named `(hooks-dir)`, so
 * the attempt fails rather than passing without its scripts.
 *
 * @example
 * ```ts ignore
 * import { createScriptRunner } from "./scripts.ts";
 * const scripts = createScriptRunner({ dir: "./hooks", baseEnv: { PATH: "/usr/bin:/bin" }, timeoutMs: 60_000, log });
 * const runs = await scripts.run(job, token, signal);
 * await scripts.close();
 * ```
 */
export function createScriptRunner(options: ScriptsOptions): ScriptRunner {
  const log = options.log ?? NULL_LOGGER;
  const tracer = options.tracer ?? createTracer();
  const shared: Shared = { log, leaderOnlyWarned: false };
  const closing = new AbortController();
  const running = new Set<Promise<ScriptRun>>();
  let realDir: string | undefined;

  async function resolveDir(): Promise<string | ScriptRun> {
    const started = performance.now();
    try {
      return realDir ??= await Deno.realPath(options.dir);
    } catch (err) {
      const error = `HOOKS_DIR cannot be read: ${describeError(err)}`;
      return notStarted("(hooks-dir)", started, error);
    }
  }

  async function track(run: Promise<ScriptRun>): Promise<ScriptRun> {
    running.add(run);
    try {
      return await run;
    } finally {
      running.delete(run);
    }
  }

  async function run(
    job: ScriptJob,
    token: string | undefined | (() => Promise<string | undefined>),
    signal: AbortSignal,
  ): Promise<ScriptRun[]> {
    const dir = await resolveDir();
    if (typeof dir !== "string") return [dir];
    const started = performance.now();
    const candidates = scriptCandidates(job.event, job.payload);
    const denied: string[] = [];
    const scripts = await findScripts(dir, candidates, log, denied);
    if (denied.length > 0) {
      // Not knowing whether it exists must not pass the delivery without it.
      return [notStarted(
        denied[0]!,
        started,
        `not allowed to look it up: add ${dir} to --allow-read (deno task flags prints the flags)`,
      )];
    }
    if (scripts.length === 0) return [];
    let given: string | undefined;
    try {
      given = typeof token === "function" ? await token() : token;
    } catch (err) {
      return [notStarted(
        "(GITHUB_TOKEN)",
        started,
        `no token for the scripts: ${describeError(err)}`,
      )];
    }
    const env = scriptEnv(options.baseEnv, job, given);
    const stop = AbortSignal.any([signal, closing.signal]);
    const runs: ScriptRun[] = [];
    for (const script of scripts) {
      const one = { ...script, realDir: dir };
      const result = await tracer.inSpan(
        "hookgate.script",
        { "hookgate.handler": script.handler },
        async (span) => {
          const run = await track(runOne(one, job, env, options, stop, shared));
          endTargetSpan(span, run);
          return run;
        },
      );
      runs.push(result);
      if (!result.ok) break;
    }
    return runs;
  }

  return {
    run,
    async close() {
      closing.abort();
      await Promise.all(running);
    },
    get active() {
      return running.size;
    },
  };
}
