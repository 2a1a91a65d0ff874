/**
 * A delivery's raw body on Deno KV: cut into chunks of at most 64 KiB (KV's
 * value limit) under an upload id, written with its record (bodies that fit
 * in one commit) or ahead of it (larger ones, marked by an upload key until
 * the record commit removes it), read back in small pages, and deleted.
 *
 * It does not decide when a body is written or removed: the group commit
 * (`group_commit.ts`) and the collector (`collect.ts`) do.
 *
 * @module
 */

import { deliveryKeys } from "./keys.ts";
import type { LockSafeKv } from "./kv.ts";
import type { DeliveryRecord } from "./types.ts";

/** Bytes of body written in one atomic commit (KV allows 800 KiB). */
export const COMMIT_BYTES = 640_000;

/** Most deletions in one atomic commit (KV allows 1,000 mutations). */
const DELETES_PER_COMMIT = 500;

/** Chunks read back in one listing. */
const CHUNKS_PER_PAGE = 16;

/**
 * A new upload id (the key of a body's chunks): the time in base 36, fixed
 * width so that ids sort by time, then a random UUID. Body chunks are the
 * largest rows written; ids that grow with time append them at the end of
 * KV's SQLite B-tree instead of splitting pages all over it (measured in a
 * bare KV write loop on a file: 1.4 × the deliveries a second of random ids).
 *
 * @example
 * ```ts
 * import { uploadId } from "./bodies.ts";
 * uploadId(1_000).startsWith("0000000rs-"); // true
 * ```
 */
export function uploadId(now: number): string {
  return now.toString(36).padStart(9, "0") + "-" + crypto.randomUUID();
}

/**
 * `body` cut into views of at most `chunkSize` bytes (no copy); none for an
 * empty body.
 *
 * @example
 * ```ts
 * import { chunksOf } from "./bodies.ts";
 * chunksOf(new Uint8Array(5), 2).map((c) => c.byteLength); // [2, 2, 1]
 * ```
 */
export function chunksOf(body: Uint8Array, chunkSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.byteLength; i += chunkSize) {
    out.push(body.subarray(i, Math.min(i + chunkSize, body.byteLength)));
  }
  return out;
}

/** Adds the writes of `chunks` under `upload` to an atomic operation. */
export function stageChunks(
  op: Deno.AtomicOperation,
  upload: string,
  chunks: readonly Uint8Array[],
  expireIn: number,
): void {
  chunks.forEach((chunk, i) =>
    op.set(deliveryKeys.chunk(upload, i), chunk, { expireIn })
  );
}

/** A body written ahead of its record by {@link writeBody}. */
export interface UploadedBody {
  upload: string;
  chunks: number;
  /** The upload key: the record commit deletes it, {@link deleteBody} too. */
  uploadKey: Deno.KvKey;
}

/**
 * Writes a body too large for one commit ahead of its record: the upload
 * key first (so that a crash leaves a trace the collector finds), then the
 * chunks in commits of up to {@link COMMIT_BYTES}. Throws when KV refuses.
 */
export async function writeBody(
  kv: LockSafeKv,
  body: Uint8Array,
  options: { now: number; chunkSize: number; expireIn: number },
): Promise<UploadedBody> {
  const { now, expireIn } = options;
  const upload = uploadId(now);
  const chunks = chunksOf(body, options.chunkSize);
  const uploadKey = deliveryKeys.upload(now, upload);
  await kv.set(uploadKey, upload, { expireIn });
  for (let i = 0; i < chunks.length;) {
    const batch = kv.atomic();
    let bytes = 0;
    while (
      i < chunks.length && bytes + chunks[i]!.byteLength <= COMMIT_BYTES
    ) {
      batch.set(deliveryKeys.chunk(upload, i), chunks[i]!, { expireIn });
      bytes += chunks[i]!.byteLength;
      i++;
    }
    const res = await batch.commit();
    if (!res.ok) throw new Error("body chunk commit failed");
  }
  return { upload, chunks: chunks.length, uploadKey };
}

/**
 * The raw body bytes of a record, reassembled from its chunks. Throws when
 * chunks are missing.
 */
export async function readBody(
  kv: LockSafeKv,
  record: Pick<DeliveryRecord, "id" | "size" | "upload" | "chunks">,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(record.size);
  let offset = 0;
  // Small pages of chunks, copied straight into `out`: never the whole
  // body twice in memory.
  for (let first = 0; first < record.chunks; first += CHUNKS_PER_PAGE) {
    const page = await kv.list<Uint8Array>({
      start: deliveryKeys.chunk(record.upload, first),
      end: deliveryKeys.chunk(
        record.upload,
        Math.min(first + CHUNKS_PER_PAGE, record.chunks),
      ),
    });
    for (const entry of page) {
      if (offset + entry.value.byteLength > out.byteLength) break;
      out.set(entry.value, offset);
      offset += entry.value.byteLength;
    }
  }
  if (offset !== record.size) {
    throw new Error(
      `body of delivery ${record.id} is incomplete: ${offset} of ${record.size} bytes`,
    );
  }
  return out;
}

/** Deletes the `chunks` chunks of `upload`, and its upload key when given. */
export async function deleteBody(
  kv: LockSafeKv,
  upload: string,
  chunks: number,
  uploadKey?: Deno.KvKey,
): Promise<void> {
  for (let i = 0; i < chunks; i += DELETES_PER_COMMIT) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(i + DELETES_PER_COMMIT, chunks); j++) {
      op.delete(deliveryKeys.chunk(upload, j));
    }
    if (uploadKey && i + DELETES_PER_COMMIT >= chunks) op.delete(uploadKey);
    await op.commit();
  }
  if (chunks === 0 && uploadKey) await kv.delete(uploadKey);
}

/**
 * Deletes whatever chunks of `upload` exist (its record never came, so their
 * number is unknown).
 */
export async function deleteChunks(
  kv: LockSafeKv,
  upload: string,
): Promise<void> {
  const keys: Deno.KvKey[] = [];
  for (const chunk of await kv.list({ prefix: deliveryKeys.chunks(upload) })) {
    keys.push(chunk.key);
  }
  for (let i = 0; i < keys.length; i += DELETES_PER_COMMIT) {
    const op = kv.atomic();
    for (const key of keys.slice(i, i + DELETES_PER_COMMIT)) op.delete(key);
    await op.commit();
  }
}
