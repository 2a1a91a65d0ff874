/**
 * Reading a request body under a size cap and a deadline. The cap is enforced
 * while streaming, so no more than `maxBytes` (plus one chunk) is ever held;
 * a body that stalls past the deadline is abandoned. Knows nothing of status
 * codes: `server.ts` maps the reasons to 413 and 408.
 *
 * @module
 */

import { createDeadlines, type Deadlines } from "../_util/deadline.ts";

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
}

const EMPTY = new Uint8Array(0);

function deadlinesOf(options: ReadBodyOptions): Deadlines {
  return options.deadlines ?? createDeadlines();
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
  const upFront = reserveUpFront(declared);
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
    if (upFront) upFrontBytes -= declared;
  }
  return { ok: true, bytes: new Uint8Array(buffer, 0, total) };
}

/** Bytes of all bodies being read into buffers sized up front. */
let upFrontBytes = 0;
/** At most this much is allocated ahead of the bytes, across all requests. */
const UP_FRONT_BUDGET = 64 * 1024 * 1024;
/** Without the budget, a buffer starts this small and doubles. */
const GROW_FROM_BYTES = 256 * 1024;

/** Bytes currently allocated ahead of arriving body bytes (for tests and metrics). */
export function bytesAllocatedAhead(): number {
  return upFrontBytes;
}

function reserveUpFront(bytes: number): boolean {
  if (upFrontBytes + bytes > UP_FRONT_BUDGET) return false;
  upFrontBytes += bytes;
  return true;
}

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
  // One buffer when the length is declared; chunks otherwise.
  const upFront = expectedLength !== undefined && expectedLength <= maxBytes &&
    reserveUpFront(expectedLength);
  let buffer = upFront ? new Uint8Array(expectedLength) : null;
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch {
        return { ok: false, reason: timedOut ? "timeout" : "aborted" };
      }
      if (step.done) break;
      const chunk = step.value;
      total += chunk.byteLength;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        return { ok: false, reason: "too_large" };
      }
      if (buffer !== null && total <= buffer.byteLength) {
        buffer.set(chunk, total - chunk.byteLength);
      } else {
        if (buffer !== null) {
          // More bytes than declared: fall back to chunks.
          chunks.push(buffer.subarray(0, total - chunk.byteLength));
          buffer = null;
        }
        chunks.push(chunk);
      }
    }
    if (timedOut) return { ok: false, reason: "timeout" };
  } finally {
    cancelDeadline();
    if (upFront) upFrontBytes -= expectedLength!;
  }
  if (buffer !== null) {
    return {
      ok: true,
      bytes: total === buffer.byteLength ? buffer : buffer.slice(0, total),
    };
  }
  if (chunks.length === 1 && chunks[0]!.buffer instanceof ArrayBuffer) {
    const only = chunks[0]!;
    return {
      ok: true,
      bytes: new Uint8Array(
        only.buffer as ArrayBuffer,
        only.byteOffset,
        only.byteLength,
      ),
    };
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
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
