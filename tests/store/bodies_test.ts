// Body chunks on :memory: KV.

import assert from "node:assert/strict";
import {
  chunksOf,
  deleteBody,
  deleteChunks,
  readBody,
  uploadId,
  writeBody,
} from "../../lib/store/bodies.ts";
import { memoryKv } from "./_kv.ts";
import { deliveryKeys } from "../../lib/store/keys.ts";

async function count(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  return (await Array.fromAsync(kv.list({ prefix }))).length;
}

Deno.test("uploadId() sorts by time, then is unique", () => {
  const ids = [uploadId(1), uploadId(2), uploadId(36 ** 8 + 5)];
  assert.deepEqual([...ids].sort(), ids);
  assert.notEqual(uploadId(1), uploadId(1));
  assert.match(ids[0]!, /^000000001-[0-9a-f-]{36}$/);
});

Deno.test("chunksOf() cuts a body into views without copying; none for an empty body", () => {
  const body = new Uint8Array([1, 2, 3, 4, 5]);
  const chunks = chunksOf(body, 2);
  assert.deepEqual(chunks.map((c) => [...c]), [[1, 2], [3, 4], [5]]);
  assert.equal(chunks[0]!.buffer, body.buffer);
  assert.deepEqual(chunksOf(new Uint8Array(0), 2), []);
});

Deno.test("writeBody() then readBody() round-trips; deleteBody() removes chunks and upload key", async () => {
  using mem = await memoryKv();
  const { raw, safe: kv } = mem;
  const body = crypto.getRandomValues(new Uint8Array(1_000));
  const up = await writeBody(kv, body, {
    now: 5,
    chunkSize: 64,
    expireIn: 60_000,
  });
  assert.equal(up.chunks, 16);
  assert.deepEqual(up.uploadKey, deliveryKeys.upload(5, up.upload));
  const record = { id: "d", size: 1_000, upload: up.upload, chunks: 16 };
  assert.deepEqual(await readBody(kv, record), body);
  await deleteBody(kv, up.upload, up.chunks, up.uploadKey);
  assert.equal(await count(raw, deliveryKeys.chunks(up.upload)), 0);
  assert.equal((await raw.get(up.uploadKey)).value, null);
});

Deno.test("readBody() throws when chunks are missing", async () => {
  using mem = await memoryKv();
  const { raw, safe: kv } = mem;
  const up = await writeBody(kv, new Uint8Array(100), {
    now: 5,
    chunkSize: 40,
    expireIn: 60_000,
  });
  await raw.delete(deliveryKeys.chunk(up.upload, 1));
  await assert.rejects(
    () => readBody(kv, { id: "d", size: 100, upload: up.upload, chunks: 3 }),
    /body of delivery d is incomplete: 60 of 100 bytes/,
  );
});

Deno.test("deleteChunks() removes every chunk of an upload whose count is unknown", async () => {
  using mem = await memoryKv();
  const { raw, safe: kv } = mem;
  const up = await writeBody(kv, new Uint8Array(700), {
    now: 5,
    chunkSize: 1,
    expireIn: 60_000,
  });
  await deleteChunks(kv, up.upload);
  assert.equal(await count(raw, deliveryKeys.chunks(up.upload)), 0);
});
