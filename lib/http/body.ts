/**
 * Reading a request body under a size cap and a deadline. The cap is enforced
 * while streaming, so no more than `maxBytes` (plus one chunk) is ever held;
 * a body that stalls past the deadline is abandoned. A declared length buys
 * one buffer sized up front, within a {@link BodyBudget} the app creates and
 * passes in (no process-wide byte count). Knows nothing of status codes:
 * `webhook.ts` maps the reasons to 413, 408 and 503.
 *
 * @module
 */

import { createDeadlines, type Deadlines } from "../_util/deadline.ts";
import { readCapped } from "../_util/read_capped.ts";

/** The result of {@link readBody}. */
export type BodyResult =
  | { ok: true; bytes: Uint8Array<ArrayBuffer> }
  | { ok: false; reason: "too_large" | "timeout" | "aborted" };

/** Options of {@link readBody}. */
export interface ReadBodyOptions {
  maxBytes: number;
  timeoutMs: number;
  /** The declared `Content-Length`, when valid; used to size one buffer. */
  expectedLength?: number | undefined;
  /**
   * The app's shared deadlines (one interval for every request).
   * @default a set of its own for this read
   */
  deadlines?: Deadlines | undefined;
  /**
   * The app's budget for buffers sized up front from declared lengths.
   * @default a budget of its own for this read
   */
  budget?: BodyBudget | undefined;
}

/** Bytes allocated ahead of arriving body bytes, shared by one app's reads. */
export interface BodyBudget {
  /** Reserves `bytes` when they fit in the budget; whether they did. */
  reserve(bytes: number): boolean;
  /** Gives back bytes that {@link BodyBudget.reserve} took. */
  release(bytes: number): void;
  /** Bytes currently allocated ahead of arriving body bytes (for tests and metrics). */
  allocatedAhead(): number;
}

/** At most this much is allocated ahead of the bytes, across one app's reads. */
const UP_FRONT_BUDGET = 64 * 1024 * 1024;

/**
 * Makes a budget of `maxBytes` for buffers sized up front: declaring 25 MiB
 * and sending one byte must not reserve 25 MiB, however many do it at once.
 *
 * @example
 * ```ts
 * import { createBodyBudget } from "./body.ts";
 * const budget = createBodyBudget(1000);
 * budget.reserve(800); // true
 * budget.reserve(800); // false: only 200 left
 * budget.release(800);
 * ```
 */
export function createBodyBudget(
  maxBytes: number = UP_FRONT_BUDGET,
): BodyBudget {
  let used = 0;
  return {
    reserve(bytes) {
      if (used + bytes > maxBytes) return false;
      used += bytes;
      return true;
    },
    release(bytes) {
      used -= bytes;
    },
    allocatedAhead: () => used,
  };
}

const EMPTY = new Uint8Array(0);

function deadlinesOf(options: ReadBodyOptions): Deadlines {
  return options.deadlines ?? createDeadlines();
}

function budgetOf(options: ReadBodyOptions): BodyBudget {
  return options.budget ?? createBodyBudget();
}
const TIMED_OUT: BodyResult = Object.freeze({ ok: false, reason: "timeout" });
const TOO_LARGE: BodyResult = Object.freeze({ ok: false, reason: "too_large" });
const ABORTED: BodyResult = Object.freeze({ ok: false, reason: "aborted" });

/**
 * Declared lengths from which the body is read straight into one buffer
 * (BYOB): no per-chunk buffers left for the garbage collector, which for a
 * 25 MiB body would otherwise double the memory it takes.
 */
const BYOB_FROM_BYTES = 65_536;

/**
 * Most bytes asked of one BYOB read. The peak memory of reading a request
 * body depends on the views it is read into: on Deno 2.9.6 a 25 MiB body read
 * into views of the whole remaining length peaked at 2.2–2.4 × its size in
 * RSS, into views of at most 1 MiB at 1.2 × (4 MiB: 1.4 ×, 64 KiB: 1.2–1.3 ×;
 * `bench/byob_views.ts`).
 */
const READ_VIEW_BYTES = 1_048_576;

/** Reads a byte stream into one buffer of the declared length (plus one byte to see an overlong body). */
async function readInto(
  reader: ReadableStreamBYOBReader,
  options: ReadBodyOptions,
  expected: number,
): Promise<BodyResult> {
  const { maxBytes, timeoutMs } = options;
  let timedOut = false;
  const cancelDeadline = deadlinesOf(options).after(timeoutMs, () => {
    timedOut = true;
    reader.cancel().catch(() => {});
  });
  // The declared length buys one buffer up front only within a budget:
  // declaring 25 MiB and sending one byte must not reserve 25 MiB.
  const declared = Math.min(expected, maxBytes) + 1;
  const budget = budgetOf(options);
  const upFront = budget.reserve(declared);
  let buffer = new ArrayBuffer(
    upFront ? declared : Math.min(declared, GROW_FROM_BYTES),
  );
  let total = 0;
  try {
    while (true) {
      if (total === buffer.byteLength) {
        // Grow as bytes arrive (toward the declared length, then beyond it
        // if the limit allows).
        const target = buffer.byteLength < declared ? declared : maxBytes + 1;
        const bigger = new Uint8Array(Math.min(buffer.byteLength * 2, target));
        bigger.set(new Uint8Array(buffer));
        buffer = bigger.buffer;
      }
      let step: ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;
      try {
        step = await reader.read(
          new Uint8Array(
            buffer,
            total,
            Math.min(buffer.byteLength - total, READ_VIEW_BYTES),
          ),
        );
      } catch {
        return { ok: false, reason: timedOut ? "timeout" : "aborted" };
      }
      if (step.value) buffer = step.value.buffer;
      if (step.done) break;
      total += step.value.byteLength;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        return { ok: false, reason: "too_large" };
      }
    }
    if (timedOut) return { ok: false, reason: "timeout" };
  } finally {
    cancelDeadline();
    if (upFront) budget.release(declared);
  }
  return { ok: true, bytes: new Uint8Array(buffer, 0, total) };
}

/** Without the budget, a buffer starts this small and doubles. */
const GROW_FROM_BYTES = 256 * 1024;

/**
 * Reads `body` to the end, or stops at the first byte past `maxBytes`
 * (`too_large`) or when `timeoutMs` passes (`timeout`).
 *
 * @example
 * ```ts
 * import { readBody } from "./body.ts";
 * const result = await readBody(new Request("http://x", { method: "POST", body: "hi" }).body, {
 *   maxBytes: 10,
 *   timeoutMs: 1000,
 * });
 * result.ok; // true
 * ```
 */
export async function readBody(
  body: ReadableStream<Uint8Array> | null,
  options: ReadBodyOptions,
): Promise<BodyResult> {
  if (body === null) return { ok: true, bytes: EMPTY };
  const { maxBytes, timeoutMs, expectedLength } = options;
  if (expectedLength !== undefined && expectedLength >= BYOB_FROM_BYTES) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: read chunks below.
    }
    if (byob !== null) return await readInto(byob, options, expectedLength);
  }
  const reader = body.getReader();
  let timedOut = false;
  const cancelDeadline = deadlinesOf(options).after(timeoutMs, () => {
    timedOut = true;
    reader.cancel().catch(() => {});
  });
  // One buffer when the length is declared (within the budget); chunks
  // otherwise.
  const budget = expectedLength !== undefined && expectedLength <= maxBytes
    ? budgetOf(options)
    : null;
  const upFront = budget !== null && budget.reserve(expectedLength!);
  let bytes: Uint8Array<ArrayBuffer> | null;
  try {
    bytes = await readCapped(
      reader,
      maxBytes,
      upFront ? expectedLength : undefined,
    );
  } catch {
    return { ok: false, reason: timedOut ? "timeout" : "aborted" };
  } finally {
    cancelDeadline();
    if (upFront) budget!.release(expectedLength!);
  }
  if (bytes === null) return TOO_LARGE;
  if (timedOut) return TIMED_OUT;
  return { ok: true, bytes };
}

/** Declared lengths up to which `request.bytes()` reads the body in one call. */
const WHOLE_UP_TO_BYTES = 65_536;

/**
 * Reads a request's body under the same rules as {@link readBody}. A small
 * body of declared length is read in one `request.bytes()` call (the common
 * case: one native read, no stream reader); anything else streams.
 */
export function readRequestBody(
  request: Request,
  options: ReadBodyOptions,
): Promise<BodyResult> {
  const { expectedLength, maxBytes, timeoutMs } = options;
  if (
    expectedLength === undefined || expectedLength > WHOLE_UP_TO_BYTES ||
    expectedLength > maxBytes
  ) {
    return readBody(request.body, options);
  }
  // One promise settled by whichever comes first, the body or the deadline
  // (no Promise.race, no extra promises: this runs for every delivery).
  return new Promise<BodyResult>((resolve) => {
    const cancel = deadlinesOf(options).after(
      timeoutMs,
      () => resolve(TIMED_OUT),
    );
    request.bytes().then(
      (bytes) => {
        cancel();
        resolve(
          bytes.byteLength > maxBytes
            ? TOO_LARGE
            : { ok: true, bytes: bytes as Uint8Array<ArrayBuffer> },
        );
      },
      () => {
        cancel();
        resolve(ABORTED);
      },
    );
  });
}
