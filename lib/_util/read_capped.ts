/**
 * Reading a byte stream to its end under a size cap, into one buffer: the
 * one home of "read at most N bytes, or tell me it was larger". The cap is
 * counted while reading, so no more than `limit` bytes (plus one chunk) are
 * ever held, and a stream found too large is cancelled at once.
 * {@link readCapped} reads from a reader its caller holds (which may also
 * cancel it, say on a deadline); {@link readResponseCapped} is the whole job
 * for a fetch `Response`.
 *
 * It knows no deadlines and no status codes, and it does not read into a
 * caller's buffer (BYOB): request bodies do that in `http/body.ts`.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);

/**
 * Reads `reader` to its end into one buffer, or, at the first chunk past
 * `limit`, cancels it and returns `null`. The cancel starts in the same turn
 * as that read (a source with nothing more to send still sees it) and is not
 * waited for; a failed cancel is ignored. With an `expectedLength` of at
 * most `limit`, one buffer of that length is allocated up front and filled
 * as chunks arrive (falling back to chunks when more arrive). The reader's
 * lock stays with the caller. Rejects when a read does.
 *
 * @example
 * ```ts
 * import { readCapped } from "./read_capped.ts";
 * const reader = new Blob(["hello"]).stream().getReader();
 * await readCapped(reader, 3); // null: larger than 3 bytes (and cancelled)
 * reader.releaseLock();
 * ```
 */
export async function readCapped(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  expectedLength?: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  let buffer = expectedLength !== undefined && expectedLength <= limit
    ? new Uint8Array(expectedLength)
    : null;
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const step = await reader.read();
    if (step.done) break;
    const chunk = step.value;
    total += chunk.byteLength;
    if (total > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    if (buffer !== null && total <= buffer.byteLength) {
      buffer.set(chunk, total - chunk.byteLength);
    } else {
      if (buffer !== null) {
        // More bytes than expected: fall back to chunks.
        chunks.push(buffer.subarray(0, total - chunk.byteLength));
        buffer = null;
      }
      chunks.push(chunk);
    }
  }
  if (buffer !== null) {
    return total === buffer.byteLength ? buffer : buffer.slice(0, total);
  }
  return joinChunks(chunks, total);
}

/** The chunks as one buffer: the only chunk itself when there is one. */
function joinChunks(
  chunks: Uint8Array[],
  total: number,
): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1 && chunks[0]!.buffer instanceof ArrayBuffer) {
    const only = chunks[0]!;
    return new Uint8Array(
      only.buffer as ArrayBuffer,
      only.byteOffset,
      only.byteLength,
    );
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Reads a fetch `Response`'s body, or returns `null` (its body cancelled)
 * when it is larger than `limit` bytes: at once when `Content-Length` says
 * so, else at the first chunk past the limit. Rejects when the body fails.
 *
 * @example
 * ```ts
 * import { readResponseCapped } from "./read_capped.ts";
 * const bytes = await readResponseCapped(new Response("{}"), 1024);
 * bytes?.byteLength; // 2
 * ```
 */
export async function readResponseCapped(
  response: Response,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const length = Number(response.headers.get("content-length"));
  if (Number.isFinite(length) && length > limit) {
    await response.body?.cancel();
    return null;
  }
  if (response.body === null) return EMPTY;
  const reader = response.body.getReader();
  try {
    return await readCapped(reader, limit);
  } finally {
    reader.releaseLock();
  }
}
