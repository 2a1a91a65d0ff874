/**
 * Opening Deno KV and surviving SQLite's lock: a KV file shared by several
 * processes (`deno serve --parallel`, two receivers on one host) answers
 * `database is locked` to a commit, a read or even `Deno.openKv` while
 * another process writes. {@link retryLocked} retries those, with jitter.
 * Nothing else is retried here.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";

/** Whether an error is SQLite's transient `database is locked` / `busy`. */
export function isLockedError(err: unknown): boolean {
  const message = errorMessage(err);
  return /database is locked|database is busy|SQLITE_BUSY/i.test(message);
}

/**
 * Runs `fn`, retrying while it fails with a lock error, for up to `maxMs`
 * (default 5 s) with growing, jittered pauses; then throws the last error.
 *
 * @example
 * ```ts
 * import { retryLocked } from "./kv.ts";
 * await retryLocked(() => Promise.resolve(1)); // 1
 * ```
 */
export async function retryLocked<T>(
  fn: () => Promise<T>,
  maxMs = 5000,
): Promise<T> {
  const deadline = Date.now() + maxMs;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isLockedError(err) || Date.now() > deadline) throw err;
      const pause = Math.random() * Math.min(2 + attempt * 3, 50);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * Opens the KV named by `KV_PATH`: a file (its folder is created), `:memory:`,
 * a KV Connect URL (`https://…`, with `DENO_KV_ACCESS_TOKEN`), or Deno
 * Deploy's managed KV for `""`.
 */
export async function openKv(path: string): Promise<Deno.Kv> {
  if (path === "") return await Deno.openKv();
  if (path !== ":memory:" && !/^https?:\/\//.test(path)) {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  }
  return await retryLocked(() => Deno.openKv(path), 30_000);
}

/** The part of `Deno.Kv` the store uses, every call retried on lock errors. */
export interface LockSafeKv {
  readonly raw: Deno.Kv;
  get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>>;
  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }>;
  set(
    key: Deno.KvKey,
    value: unknown,
    options?: { expireIn?: number },
  ): Promise<Deno.KvCommitResult>;
  delete(key: Deno.KvKey): Promise<void>;
  /** The whole listing as an array (read again from the start after a lock error). */
  list<T>(
    selector: Deno.KvListSelector,
    options?: Deno.KvListOptions,
  ): Promise<Deno.KvEntry<T>[]>;
  /** An atomic operation whose `commit()` is retried on lock errors. */
  atomic(): Deno.AtomicOperation;
}

/**
 * Wraps a `Deno.Kv` so that every call the store makes survives another
 * process holding SQLite's write lock.
 */
export function lockSafe(kv: Deno.Kv): LockSafeKv {
  return {
    raw: kv,
    get: (key) => retryLocked(() => kv.get(key)),
    getMany: (keys) => retryLocked(() => kv.getMany(keys)),
    set: (key, value, options) =>
      retryLocked(() => kv.set(key, value, options)),
    delete: (key) => retryLocked(() => kv.delete(key)),
    list: <T>(selector: Deno.KvListSelector, options?: Deno.KvListOptions) =>
      retryLocked(() => Array.fromAsync(kv.list<T>(selector, options))),
    atomic() {
      const op = kv.atomic();
      const commit = op.commit.bind(op);
      op.commit = () => retryLocked(commit);
      return op;
    },
  };
}
