/**
 * What each handler and script run of a delivery's attempts reported, kept
 * with the delivery for `GET /deliveries/<id>` and the dashboard: one entry
 * per run (TypeScript handlers without exit code or output; scripts with
 * the last 64 KiB of their output; forward targets with their HTTP status). KV holds at most 64 KiB a value, so a
 * run's output is kept in two parts of 32 KiB.
 *
 * It stores and reads reports; what runs and what is reported is the
 * worker's.
 *
 * @module
 */

import { deliveryKeys } from "./keys.ts";
import type { LockSafeKv } from "./kv.ts";

/** One run as reported, and as the admin API shows it. */
export interface RunReport {
  /**
   * The handler (`push`, `issues.opened`, `*`), the script (`push-app-main`)
   * or the forward target (`forward:staging.example.com`).
   */
  handler: string;
  /** `"handler"` (TypeScript), `"script"` or `"forward"` (`FORWARD_URLS`). */
  kind: "handler" | "script" | "forward";
  attempt: number;
  ok: boolean;
  ms: number;
  /** A script's exit status; null when a signal ended it or it never started. */
  exitCode?: number | null;
  /** A script's signal, when one ended it. */
  signal?: string | null;
  /** A forward target's HTTP status, when it answered. */
  status?: number;
  /** Why it failed, when it did. */
  error?: string;
  /** A script's last 64 KiB of combined stdout and stderr. */
  output?: string;
}

/** A run to store: its output as bytes (the last 64 KiB). */
export type RunToStore = Omit<RunReport, "output" | "attempt"> & {
  output?: Uint8Array;
};

/** The bytes of one output part (two parts hold 64 KiB). */
export const OUTPUT_PART = 32_768;
/** The most output kept of one run. */
export const OUTPUT_MAX = 2 * OUTPUT_PART;

/** Part 0 of a stored run: the report, and the start of its output. */
interface StoredRun extends Omit<RunReport, "output"> {
  output?: Uint8Array;
}

/**
 * Stores the runs of one attempt of delivery `id` (replacing what an
 * earlier try of the same attempt number stored: one cut short by a
 * shutdown), in one commit.
 */
export async function saveRuns(
  kv: LockSafeKv,
  id: string,
  attempt: number,
  runs: readonly RunToStore[],
  expireIn: number,
): Promise<void> {
  for (
    const old of await kv.list({
      prefix: [...deliveryKeys.runs(id), attempt],
    })
  ) await kv.delete(old.key);
  if (runs.length === 0) return;
  const op = kv.atomic();
  runs.forEach((run, index) => {
    const tail = run.output?.subarray(
      Math.max(0, run.output.byteLength - OUTPUT_MAX),
    );
    const { output: _output, ...report } = run;
    const head: StoredRun = {
      ...report,
      attempt,
      ...(tail ? { output: tail.slice(0, OUTPUT_PART) } : {}),
    };
    op.set(deliveryKeys.run(id, attempt, index, 0), head, { expireIn });
    if (tail && tail.byteLength > OUTPUT_PART) {
      op.set(
        deliveryKeys.run(id, attempt, index, 1),
        tail.slice(OUTPUT_PART),
        { expireIn },
      );
    }
  });
  await op.commit();
}

/**
 * The runs of delivery `id`, oldest attempt first, their output decoded
 * (bytes that are not UTF-8, or a character cut by the 64 KiB tail, show
 * as U+FFFD).
 */
export async function listRuns(
  kv: LockSafeKv,
  id: string,
): Promise<RunReport[]> {
  const runs: RunReport[] = [];
  let bytes: Uint8Array[] = [];
  const flush = () => {
    const last = runs.at(-1);
    if (last && bytes.length > 0) {
      const all = new Uint8Array(bytes.reduce((n, b) => n + b.byteLength, 0));
      let at = 0;
      for (const b of bytes) {
        all.set(b, at);
        at += b.byteLength;
      }
      last.output = new TextDecoder().decode(all);
    }
    bytes = [];
  };
  for (
    const entry of await kv.list<StoredRun | Uint8Array>({
      prefix: deliveryKeys.runs(id),
    })
  ) {
    const value = entry.value;
    if (value instanceof Uint8Array) {
      bytes.push(value);
      continue;
    }
    flush();
    const { output, ...report } = value;
    runs.push(report);
    if (output) bytes.push(output);
  }
  flush();
  return runs;
}

/** Deletes every run of delivery `id` (it expired). */
export async function deleteRuns(kv: LockSafeKv, id: string): Promise<void> {
  for (const entry of await kv.list({ prefix: deliveryKeys.runs(id) })) {
    await kv.delete(entry.key);
  }
}
