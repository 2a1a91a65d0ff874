import assert from "node:assert/strict";
import { createBodyBudget, readBody } from "../../lib/http/body.ts";
import { chunked, patternBytes, streamOf } from "../_helpers.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const OPTIONS = { maxBytes: 1024, timeoutMs: 5000 };

Deno.test("readBody() returns no bytes for a null body", SANITIZE, async () => {
  const result = await readBody(null, OPTIONS);
  assert.ok(result.ok);
  assert.equal(result.bytes.byteLength, 0);
  assert.ok(result.bytes.buffer instanceof ArrayBuffer);
});

Deno.test(
  "readBody() returns no bytes for an empty stream",
  SANITIZE,
  async (t) => {
    await t.step("without a length", async () => {
      assert.deepEqual(await readBody(streamOf([]).stream, OPTIONS), {
        ok: true,
        bytes: new Uint8Array(0),
      });
    });
    await t.step("with Content-Length: 0", async () => {
      assert.deepEqual(
        await readBody(streamOf([]).stream, { ...OPTIONS, expectedLength: 0 }),
        {
          ok: true,
          bytes: new Uint8Array(0),
        },
      );
    });
  },
);

Deno.test("readBody() reads a Request body", SANITIZE, async () => {
  const request = new Request("http://hookgate.test/webhook", {
    method: "POST",
    body: '{"zen":"hi"}',
  });
  const result = await readBody(request.body, OPTIONS);
  assert.ok(result.ok);
  assert.equal(new TextDecoder().decode(result.bytes), '{"zen":"hi"}');
});

Deno.test(
  "readBody() reassembles many chunks in order",
  SANITIZE,
  async (t) => {
    const data = patternBytes(5000);
    const table: [string, number, number | undefined][] = [
      ["1-byte chunks", 1, undefined],
      ["7-byte chunks", 7, undefined],
      ["7-byte chunks with the exact length", 7, 5000],
      ["1000-byte chunks with the exact length", 1000, 5000],
      ["one chunk", 5000, undefined],
      ["one chunk with the exact length", 5000, 5000],
    ];
    for (const [name, size, expectedLength] of table) {
      await t.step(name, async () => {
        const result = await readBody(streamOf(chunked(data, size)).stream, {
          maxBytes: 10_000,
          timeoutMs: 5000,
          expectedLength,
        });
        assert.ok(result.ok);
        assert.deepEqual(result.bytes, data);
      });
    }
  },
);

Deno.test(
  "readBody() copes with a declared length that is wrong",
  SANITIZE,
  async (t) => {
    const data = patternBytes(300);
    const table: [string, number, number][] = [
      ["declared smaller, first chunk overflows", 100, 300],
      ["declared smaller, a later chunk overflows", 250, 100],
      ["declared smaller, exactly at a chunk boundary", 200, 100],
      ["declared zero", 0, 50],
      ["declared larger", 1000, 100],
      ["declared larger, one chunk", 1000, 300],
      ["declared one byte larger", 301, 7],
      ["declared one byte smaller", 299, 7],
    ];
    for (const [name, expectedLength, size] of table) {
      await t.step(name, async () => {
        const result = await readBody(streamOf(chunked(data, size)).stream, {
          maxBytes: 2000,
          timeoutMs: 5000,
          expectedLength,
        });
        assert.ok(result.ok);
        assert.equal(result.bytes.byteLength, 300);
        assert.deepEqual(result.bytes, data);
      });
    }
  },
);

Deno.test(
  "readBody() accepts a body of exactly maxBytes",
  SANITIZE,
  async (t) => {
    for (
      const [name, size, expectedLength] of [["one chunk", 64, undefined], [
        "many chunks",
        3,
        undefined,
      ], ["with its length", 5, 64]] as const
    ) {
      await t.step(name, async () => {
        const data = patternBytes(64);
        const result = await readBody(streamOf(chunked(data, size)).stream, {
          maxBytes: 64,
          timeoutMs: 5000,
          expectedLength,
        });
        assert.ok(result.ok);
        assert.deepEqual(result.bytes, data);
      });
    }
  },
);

Deno.test(
  "readBody() stops at maxBytes + 1 with too_large and cancels the stream",
  SANITIZE,
  async (t) => {
    const table: [string, number, number | undefined][] = [
      ["one chunk", 65, undefined],
      ["many chunks", 3, undefined],
      ["one byte at a time", 1, undefined],
      ["under a lying Content-Length", 5, 60],
      ["under a Content-Length above the cap", 5, 65],
    ];
    for (const [name, size, expectedLength] of table) {
      await t.step(name, async () => {
        const { stream, cancelled } = streamOf(chunked(patternBytes(65), size));
        const result = await readBody(stream, {
          maxBytes: 64,
          timeoutMs: 5000,
          expectedLength,
        });
        assert.deepEqual(result, { ok: false, reason: "too_large" });
        assert.ok(cancelled(), "the stream was cancelled");
      });
    }
  },
);

Deno.test(
  "readBody() never reads past the chunk that crosses maxBytes",
  SANITIZE,
  async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new Uint8Array(10)); // endless
      },
    }, { highWaterMark: 0 });
    const result = await readBody(stream, { maxBytes: 95, timeoutMs: 5000 });
    assert.deepEqual(result, { ok: false, reason: "too_large" });
    assert.ok(pulls <= 11, `pulled ${pulls} chunks`);
  },
);

Deno.test(
  "readBody() gives up with timeout on a stream that never ends",
  SANITIZE,
  async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2, 3])); // then nothing, ever
      },
      cancel() {
        cancelled = true;
      },
    });
    const started = performance.now();
    const result = await readBody(stream, { maxBytes: 1024, timeoutMs: 50 });
    const elapsed = performance.now() - started;
    assert.deepEqual(result, { ok: false, reason: "timeout" });
    assert.ok(elapsed >= 40 && elapsed < 2000, `elapsed ${elapsed}`);
    assert.ok(cancelled, "the stream was cancelled");
  },
);

Deno.test(
  "readBody() gives up with timeout on a body that trickles in",
  SANITIZE,
  async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        return new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            controller.enqueue(new Uint8Array([0x7b]));
            resolve();
          }, 5);
        });
      },
      cancel() {
        cancelled = true;
        clearTimeout(timer);
      },
    }, { highWaterMark: 0 });
    const result = await readBody(stream, {
      maxBytes: 1_000_000,
      timeoutMs: 50,
    });
    assert.deepEqual(result, { ok: false, reason: "timeout" });
    assert.ok(cancelled);
    clearTimeout(timer);
  },
);

Deno.test(
  "readBody() reports aborted when the stream errors",
  SANITIZE,
  async (t) => {
    await t.step("at once", async () => {
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.error(new Error("connection reset"));
        },
      });
      assert.deepEqual(await readBody(stream, OPTIONS), {
        ok: false,
        reason: "aborted",
      });
    });
    await t.step("after some chunks", async () => {
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 3) controller.enqueue(new Uint8Array(4));
          else controller.error(new Error("connection reset"));
        },
      });
      assert.deepEqual(
        await readBody(stream, { ...OPTIONS, expectedLength: 100 }),
        {
          ok: false,
          reason: "aborted",
        },
      );
    });
  },
);

Deno.test(
  "readBody() clears its timer when the body arrives in time",
  SANITIZE,
  async () => {
    // A long timeoutMs: a timer left behind would fail the test's op sanitizer.
    const result = await readBody(streamOf([patternBytes(10)]).stream, {
      maxBytes: 100,
      timeoutMs: 60_000,
    });
    assert.ok(result.ok);
  },
);

Deno.test(
  "readBody() returns exactly the bytes of chunks that are views",
  SANITIZE,
  async (t) => {
    const backing = patternBytes(100);
    await t.step("one view", async () => {
      const result = await readBody(
        streamOf([backing.subarray(10, 20)]).stream,
        OPTIONS,
      );
      assert.ok(result.ok);
      assert.equal(result.bytes.byteLength, 10);
      assert.deepEqual(
        Array.from(result.bytes),
        Array.from(backing.subarray(10, 20)),
      );
    });
    await t.step("several views", async () => {
      const result = await readBody(
        streamOf([backing.subarray(10, 20), backing.subarray(50, 55)]).stream,
        OPTIONS,
      );
      assert.ok(result.ok);
      assert.deepEqual(Array.from(result.bytes), [
        ...backing.subarray(10, 20),
        ...backing.subarray(50, 55),
      ]);
    });
  },
);

Deno.test(
  "readBody() copies chunks into its own buffer when the length is declared",
  SANITIZE,
  async () => {
    const chunk = patternBytes(8);
    const result = await readBody(
      streamOf([chunk, patternBytes(8, 100)]).stream,
      {
        ...OPTIONS,
        expectedLength: 16,
      },
    );
    assert.ok(result.ok);
    chunk.fill(0);
    assert.deepEqual(
      result.bytes,
      Uint8Array.from([...patternBytes(8), ...patternBytes(8, 100)]),
    );
  },
);

function byteStream(
  total: number,
  chunk = 10_000,
  stallAfter = Infinity,
  /** Receives the size of every view a BYOB read offers. */
  views: number[] = [],
): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (sent >= stallAfter) return new Promise(() => {}); // never more
      if (sent >= total) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const n = Math.min(chunk, total - sent);
      const data = new Uint8Array(n).map((_, i) => (sent + i) % 251);
      const request = controller.byobRequest;
      if (request?.view) {
        views.push(request.view.byteLength);
        const view = new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        );
        const m = Math.min(n, view.byteLength);
        view.set(data.subarray(0, m));
        sent += m;
        request.respond(m);
      } else {
        sent += n;
        controller.enqueue(data);
      }
    },
  });
}

Deno.test("readBody() reads a declared-length byte stream into one buffer", async (t) => {
  await t.step("exact length", async () => {
    const r = await readBody(byteStream(200_000), {
      maxBytes: 1_000_000,
      timeoutMs: 5000,
      expectedLength: 200_000,
    });
    assert.ok(r.ok);
    assert.equal(r.bytes.byteLength, 200_000);
    assert.ok(r.bytes.every((b, i) => b === i % 251));
  });
  await t.step(
    "offers views of at most 1 MiB per read",
    async () => {
      const views: number[] = [];
      const total = 3 * 1_048_576 + 5;
      const r = await readBody(byteStream(total, total, Infinity, views), {
        maxBytes: 4_000_000,
        timeoutMs: 5000,
        expectedLength: total,
      });
      assert.ok(r.ok);
      assert.equal(r.bytes.byteLength, total);
      assert.ok(r.bytes.every((b, i) => b === i % 251));
      assert.ok(views.length >= 4, `${views.length} reads`);
      assert.ok(Math.max(...views) <= 1_048_576, `views: ${views.join(", ")}`);
    },
  );
  await t.step("more than declared, within the limit: grows", async () => {
    const r = await readBody(byteStream(120_000), {
      maxBytes: 1_000_000,
      timeoutMs: 5000,
      expectedLength: 100_000,
    });
    assert.ok(r.ok);
    assert.equal(r.bytes.byteLength, 120_000);
    assert.ok(r.bytes.every((b, i) => b === i % 251));
  });
  await t.step("more than the limit → too_large", async () => {
    const r = await readBody(byteStream(200_000), {
      maxBytes: 150_000,
      timeoutMs: 5000,
      expectedLength: 100_000,
    });
    assert.deepEqual(r, { ok: false, reason: "too_large" });
  });
  await t.step("a stall → timeout", async () => {
    const r = await readBody(byteStream(200_000, 10_000, 50_000), {
      maxBytes: 1_000_000,
      timeoutMs: 50,
      expectedLength: 200_000,
    });
    assert.deepEqual(r, { ok: false, reason: "timeout" });
  });
});

Deno.test("readBody() reads a large request body from a real Deno.serve", async () => {
  const sent = new Uint8Array(2_000_000).map((_, i) => i % 253);
  let got: Uint8Array | null = null;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const r = await readBody(req.body, {
        maxBytes: 5_000_000,
        timeoutMs: 5000,
        expectedLength: Number(req.headers.get("content-length")),
      });
      if (r.ok) got = r.bytes;
      return new Response(r.ok ? "ok" : r.reason);
    },
  );
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, {
      method: "POST",
      body: sent,
    });
    assert.equal(await res.text(), "ok");
    assert.equal(got!.byteLength, sent.byteLength);
    assert.ok(got!.every((b, i) => b === sent[i]));
  } finally {
    await server.shutdown();
  }
});

Deno.test("readBody() sizes buffers up front only within a budget (declared-but-not-sent bodies)", async () => {
  const declared = 20 * 1024 * 1024;
  const budget = createBodyBudget(); // one app's, shared by its reads
  const reads = Array.from(
    { length: 6 },
    () =>
      readBody(byteStream(declared, 10, 10), {
        maxBytes: 26_214_400,
        timeoutMs: 100,
        expectedLength: declared,
        budget,
      }),
  );
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(
    budget.allocatedAhead() <= 64 * 1024 * 1024,
    `${budget.allocatedAhead()} bytes allocated ahead for 6 × 20 MiB declared`,
  );
  const results = await Promise.all(reads);
  assert.ok(results.every((r) => !r.ok && r.reason === "timeout"));
  assert.equal(budget.allocatedAhead(), 0, "released");
});

Deno.test("createBodyBudget() reserves bytes only while they fit", () => {
  const budget = createBodyBudget(1000);
  assert.equal(budget.reserve(600), true);
  assert.equal(budget.reserve(401), false, "over the budget: nothing taken");
  assert.equal(budget.allocatedAhead(), 600);
  assert.equal(budget.reserve(400), true, "exactly the budget");
  budget.release(600);
  assert.equal(budget.allocatedAhead(), 400);
  budget.release(400);
  assert.equal(budget.allocatedAhead(), 0);
  assert.equal(createBodyBudget().reserve(64 * 1024 * 1024), true, "64 MiB");
  assert.equal(createBodyBudget().reserve(64 * 1024 * 1024 + 1), false);
});

Deno.test(
  "readBody() holds its up-front buffer in the budget it is given, and gives it back",
  SANITIZE,
  async (t) => {
    for (
      const [name, stream] of [
        ["a byte stream (BYOB)", () => byteStream(100_000, 10_000, 50_000)],
        [
          "chunks",
          () => streamOf(chunked(patternBytes(100_000), 10_000)).stream,
        ],
      ] as const
    ) {
      await t.step(name, async () => {
        const budget = createBodyBudget();
        const read = readBody(stream(), {
          maxBytes: 200_000,
          timeoutMs: 50,
          expectedLength: 100_000,
          budget,
        });
        assert.ok(budget.allocatedAhead() >= 100_000, "reserved while reading");
        await read;
        assert.equal(budget.allocatedAhead(), 0, "released");
      });
    }
    await t.step("a budget too small: the body is still read", async () => {
      const budget = createBodyBudget(1000);
      const result = await readBody(byteStream(100_000), {
        maxBytes: 200_000,
        timeoutMs: 5000,
        expectedLength: 100_000,
        budget,
      });
      assert.equal(result.ok && result.bytes.byteLength, 100_000);
      assert.equal(budget.allocatedAhead(), 0);
    });
  },
);
