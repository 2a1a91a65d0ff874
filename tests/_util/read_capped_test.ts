import assert from "node:assert/strict";
import { readCapped, readResponseCapped } from "../../lib/_util/read_capped.ts";
import { chunked, patternBytes, streamOf } from "../_helpers.ts";

const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

Deno.test(
  "readCapped() reads a stream to its end into one buffer",
  SANITIZE,
  async (t) => {
    const data = patternBytes(100);
    const table: [string, number, number | undefined][] = [
      ["one chunk", 100, undefined],
      ["many chunks", 7, undefined],
      ["one byte at a time", 1, undefined],
      ["into a buffer of the expected length", 7, 100],
      ["past a shorter expected length", 7, 40],
      ["short of a longer expected length", 7, 150],
      ["with an expected length over the limit (ignored)", 7, 1000],
    ];
    for (const [name, size, expected] of table) {
      await t.step(name, async () => {
        const reader = streamOf(chunked(data, size)).stream.getReader();
        const bytes = await readCapped(reader, 150, expected);
        assert.deepEqual(bytes, data);
        assert.ok(bytes!.buffer instanceof ArrayBuffer);
        reader.releaseLock();
      });
    }
    await t.step("an empty stream", async () => {
      const reader = streamOf([]).stream.getReader();
      assert.deepEqual(await readCapped(reader, 10), new Uint8Array(0));
      assert.deepEqual(
        await readCapped(streamOf([]).stream.getReader(), 10, 0),
        new Uint8Array(0),
      );
    });
    await t.step("exactly the limit", async () => {
      const reader = streamOf(chunked(data, 10)).stream.getReader();
      assert.deepEqual(await readCapped(reader, 100), data);
    });
  },
);

Deno.test(
  "readCapped() returns null and cancels at once at the first chunk past the limit",
  SANITIZE,
  async (t) => {
    const table: [string, number, number | undefined][] = [
      ["one chunk", 65, undefined],
      ["many chunks", 3, undefined],
      ["one byte at a time", 1, undefined],
      ["under a lying expected length", 5, 60],
    ];
    for (const [name, size, expected] of table) {
      await t.step(name, async () => {
        // 65 bytes and nothing more: the stream would close on the next
        // pull, so only a cancel in the same turn reaches the source.
        const { stream, cancelled } = streamOf(chunked(patternBytes(65), size));
        const reader = stream.getReader();
        assert.equal(await readCapped(reader, 64, expected), null);
        assert.ok(cancelled(), "the stream was cancelled");
      });
    }
    await t.step("it reads nothing past the chunk that crosses", async () => {
      const { stream, pulled } = streamOf(chunked(patternBytes(1000), 10), 0);
      assert.equal(await readCapped(stream.getReader(), 64), null);
      assert.equal(pulled(), 7);
    });
  },
);

Deno.test("readCapped() rejects when a read fails", SANITIZE, async () => {
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error(new Error("connection reset"));
    },
  });
  await assert.rejects(readCapped(stream.getReader(), 10), /connection reset/);
});

Deno.test("readCapped() ignores a cancel that fails", SANITIZE, async () => {
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(patternBytes(20));
    },
    cancel() {
      throw new Error("cannot cancel");
    },
  });
  assert.equal(await readCapped(stream.getReader(), 10), null);
});

Deno.test(
  "readResponseCapped() reads a body within the limit",
  SANITIZE,
  async (t) => {
    await t.step("a whole body", async () => {
      const bytes = await readResponseCapped(new Response('{"hooks":[]}'), 12);
      assert.equal(new TextDecoder().decode(bytes!), '{"hooks":[]}');
    });
    await t.step("streamed", async () => {
      const { stream } = streamOf(chunked(patternBytes(50), 8));
      assert.deepEqual(
        await readResponseCapped(new Response(stream), 50),
        patternBytes(50),
      );
    });
    await t.step("no body", async () => {
      assert.deepEqual(
        await readResponseCapped(new Response(null, { status: 204 }), 0),
        new Uint8Array(0),
      );
    });
  },
);

Deno.test(
  "readResponseCapped() returns null for a body over the limit",
  SANITIZE,
  async (t) => {
    await t.step("declared by Content-Length: cancelled unread", async () => {
      const { stream, cancelled, pulled } = streamOf([patternBytes(10)], 0);
      const response = new Response(stream, {
        headers: { "content-length": "1000" },
      });
      assert.equal(await readResponseCapped(response, 999), null);
      assert.ok(cancelled());
      assert.equal(pulled(), 0);
    });
    await t.step("counted while reading: cancelled", async () => {
      const { stream, cancelled } = streamOf(chunked(patternBytes(100), 10));
      const response = new Response(stream);
      assert.equal(await readResponseCapped(response, 55), null);
      assert.ok(cancelled());
      assert.equal(response.bodyUsed, true);
    });
  },
);

Deno.test(
  "readResponseCapped() rejects when the body fails",
  SANITIZE,
  async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new TypeError("body failed"));
      },
    });
    await assert.rejects(
      readResponseCapped(new Response(stream), 10),
      /body failed/,
    );
  },
);
