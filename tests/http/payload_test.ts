import assert from "node:assert/strict";
import {
  type BodyKind,
  bodyKind,
  decodePayload,
  payloadAction,
} from "../../lib/http/payload.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const encoder = new TextEncoder();

function bytes(...parts: (string | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    out.push(...(typeof part === "string" ? encoder.encode(part) : part));
  }
  return Uint8Array.from(out);
}

function form(json: string): Uint8Array {
  return encoder.encode(new URLSearchParams({ payload: json }).toString());
}

Deno.test(
  "bodyKind() maps Content-Type to json or form",
  SANITIZE,
  async (t) => {
    const table: [string | null, BodyKind | null][] = [
      ["application/json", "json"],
      ["application/json; charset=utf-8", "json"],
      ["application/json;charset=UTF-8", "json"],
      ["Application/JSON", "json"],
      ["APPLICATION/JSON; CHARSET=UTF-8", "json"],
      ["  application/json  ", "json"],
      ["application/json ; charset=utf-8", "json"],
      ["application/x-www-form-urlencoded", "form"],
      ["application/x-www-form-urlencoded; charset=utf-8", "form"],
      ["Application/X-WWW-Form-Urlencoded", "form"],
      [null, null],
      ["", null],
      [";", null],
      ["text/plain", null],
      ["text/json", null],
      ["application/jsonx", null],
      ["application/json5", null],
      ["application/vnd.github+json", null],
      ["application/ld+json", null],
      ["multipart/form-data; boundary=x", null],
      ["application/x-www-form-urlencoded-x", null],
      ["json", null],
      ["application/json, text/plain", null],
      ["application/ json", null],
    ];
    for (const [contentType, expected] of table) {
      await t.step(
        JSON.stringify(contentType),
        () => assert.equal(bodyKind(contentType), expected),
      );
    }
  },
);

Deno.test("decodePayload() decodes a JSON object", SANITIZE, async (t) => {
  const table: [string, Uint8Array, Record<string, unknown>][] = [
    ["an object", bytes('{"zen":"Keep it simple.","hook_id":1}'), {
      zen: "Keep it simple.",
      hook_id: 1,
    }],
    ["an empty object", bytes("{}"), {}],
    ["surrounding whitespace", bytes(' \n\t{"a":1}\r\n '), { a: 1 }],
    ["non-ASCII text", bytes('{"title":"ünïcødé ✓ 🚀"}'), {
      title: "ünïcødé ✓ 🚀",
    }],
    ["escaped control characters", bytes('{"t":"a\\nb\\u0000"}'), {
      t: "a\nb\u0000",
    }],
    [
      "a 4-byte UTF-8 sequence",
      bytes('{"e":"', [0xf0, 0x9f, 0x98, 0x80], '"}'),
      { e: "😀" },
    ],
    ["a BOM at the start is dropped", bytes([0xef, 0xbb, 0xbf], '{"a":1}'), {
      a: 1,
    }],
    ["a nested structure", bytes('{"a":{"b":[{"c":null}]}}'), {
      a: { b: [{ c: null }] },
    }],
  ];
  for (const [name, body, expected] of table) {
    await t.step(
      name,
      () =>
        assert.deepEqual(decodePayload(body, "json"), {
          ok: true,
          payload: expected,
        }),
    );
  }
});

Deno.test(
  "decodePayload() keeps a __proto__ key as plain data",
  SANITIZE,
  () => {
    const result = decodePayload(
      bytes('{"__proto__":{"polluted":true},"a":1}'),
      "json",
    );
    assert.ok(result.ok);
    assert.equal(Object.getPrototypeOf(result.payload), Object.prototype);
    assert.ok(Object.hasOwn(result.payload, "__proto__"));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  },
);

Deno.test(
  "decodePayload() rejects bytes that are not valid UTF-8",
  SANITIZE,
  async (t) => {
    const table: [string, Uint8Array][] = [
      ["0xff", bytes('{"a":"', [0xff], '"}')],
      ["0xfe", bytes([0xfe])],
      ["a lone continuation byte", bytes('{"a":"', [0x80], '"}')],
      ["an overlong '/' (C0 AF)", bytes('{"a":"', [0xc0, 0xaf], '"}')],
      ["an overlong NUL (C0 80)", bytes('{"a":"', [0xc0, 0x80], '"}')],
      [
        "a 3-byte overlong (E0 80 AF)",
        bytes('{"a":"', [0xe0, 0x80, 0xaf], '"}'),
      ],
      [
        "an encoded high surrogate (ED A0 80)",
        bytes('{"a":"', [0xed, 0xa0, 0x80], '"}'),
      ],
      [
        "an encoded low surrogate (ED B0 80)",
        bytes('{"a":"', [0xed, 0xb0, 0x80], '"}'),
      ],
      [
        "above U+10FFFF (F4 90 80 80)",
        bytes('{"a":"', [0xf4, 0x90, 0x80, 0x80], '"}'),
      ],
      ["a truncated sequence at the end", bytes('{"a":1}', [0xe2, 0x82])],
      ["a truncated sequence inside", bytes('{"a":"', [0xe2, 0x82], '"}')],
      ["a UTF-16 BOM", bytes([0xff, 0xfe], '{"a":1}')],
    ];
    for (const [name, body] of table) {
      for (const kind of ["json", "form"] as const) {
        await t.step(`${kind}: ${name}`, () => {
          assert.deepEqual(decodePayload(body, kind), {
            ok: false,
            message: "The body is not valid UTF-8.",
          });
        });
      }
    }
  },
);

Deno.test(
  "decodePayload() rejects text that is not JSON",
  SANITIZE,
  async (t) => {
    const table: [string, string][] = [
      ["empty", ""],
      ["whitespace", "  \n "],
      ["truncated", '{"a":1'],
      ["trailing comma", '{"a":1,}'],
      ["single quotes", "{'a':1}"],
      ["two objects", '{"a":1}{"b":2}'],
      ["a trailing garbage byte", '{"a":1}x'],
      ["a comment", '{"a":1} // c'],
      ["NaN", '{"a":NaN}'],
      ["a raw newline inside a string", '{"a":"x\ny"}'],
      ["two BOMs (only the first is dropped)", "\ufeff\ufeff{}"],
    ];
    for (const [name, text] of table) {
      await t.step(name, () => {
        assert.deepEqual(decodePayload(bytes(text), "json"), {
          ok: false,
          message: "The payload is not valid JSON.",
        });
      });
    }
  },
);

Deno.test(
  "decodePayload() rejects JSON that is not an object",
  SANITIZE,
  async (t) => {
    for (
      const text of [
        "[]",
        '[{"a":1}]',
        "null",
        "42",
        "-1.5",
        '"a string"',
        "true",
        "false",
      ]
    ) {
      await t.step(text, () => {
        assert.deepEqual(decodePayload(bytes(text), "json"), {
          ok: false,
          message: "The payload is not a JSON object.",
        });
      });
    }
  },
);

Deno.test(
  "decodePayload() reads the payload field of a form body",
  SANITIZE,
  async (t) => {
    const json = '{"zen":"Design for failure.","hook_id":7,"sym":"a+b&c=d %"}';
    const expected = {
      zen: "Design for failure.",
      hook_id: 7,
      sym: "a+b&c=d %",
    };
    await t.step("URL-encoded as GitHub sends it", () => {
      assert.deepEqual(decodePayload(form(json), "form"), {
        ok: true,
        payload: expected,
      });
    });
    await t.step("percent-encoded spaces", () => {
      const body = bytes("payload=" + encodeURIComponent(json));
      assert.deepEqual(decodePayload(body, "form"), {
        ok: true,
        payload: expected,
      });
    });
    await t.step("among other fields", () => {
      const body = bytes(
        "other=1&payload=" + encodeURIComponent('{"a":1}') + "&more=2",
      );
      assert.deepEqual(decodePayload(body, "form"), {
        ok: true,
        payload: { a: 1 },
      });
    });
    await t.step("the first of two payload fields", () => {
      const body = bytes("payload=%7B%22a%22%3A1%7D&payload=%7B%22a%22%3A2%7D");
      assert.deepEqual(decodePayload(body, "form"), {
        ok: true,
        payload: { a: 1 },
      });
    });
    await t.step("non-ASCII, percent-encoded", () => {
      assert.deepEqual(decodePayload(form('{"t":"✓ ü"}'), "form"), {
        ok: true,
        payload: { t: "✓ ü" },
      });
    });
  },
);

Deno.test(
  "decodePayload() rejects a form body without a payload field",
  SANITIZE,
  async (t) => {
    for (
      const text of ["", "a=1", "payloads=%7B%7D", "Payload=%7B%7D", '{"a":1}']
    ) {
      await t.step(JSON.stringify(text), () => {
        assert.deepEqual(decodePayload(bytes(text), "form"), {
          ok: false,
          message: "The form body has no 'payload' field.",
        });
      });
    }
  },
);

Deno.test(
  "decodePayload() checks the form's payload field like a JSON body",
  SANITIZE,
  async (t) => {
    await t.step("empty", () => {
      assert.deepEqual(decodePayload(bytes("payload="), "form"), {
        ok: false,
        message: "The payload is not valid JSON.",
      });
    });
    await t.step("not JSON", () => {
      assert.deepEqual(decodePayload(form("{nope"), "form"), {
        ok: false,
        message: "The payload is not valid JSON.",
      });
    });
    await t.step("an array", () => {
      assert.deepEqual(decodePayload(form("[1]"), "form"), {
        ok: false,
        message: "The payload is not a JSON object.",
      });
    });
  },
);

Deno.test(
  "decodePayload() does not read a JSON body as a form",
  SANITIZE,
  () => {
    // A JSON body that happens to contain "payload=" is still parsed whole.
    assert.deepEqual(decodePayload(bytes('{"x":"payload={}"}'), "json"), {
      ok: true,
      payload: { x: "payload={}" },
    });
  },
);

Deno.test(
  "decodePayload() accepts a body whose bytes are a view into a larger buffer",
  SANITIZE,
  () => {
    const buffer = bytes('xx{"a":1}yy');
    assert.deepEqual(decodePayload(buffer.subarray(2, 9), "json"), {
      ok: true,
      payload: { a: 1 },
    });
  },
);

Deno.test(
  "payloadAction() returns a short string action only",
  SANITIZE,
  async (t) => {
    const table: [string, Record<string, unknown>, string | undefined][] = [
      ["a string", { action: "opened" }, "opened"],
      ["an empty string", { action: "" }, ""],
      ["100 characters", { action: "a".repeat(100) }, "a".repeat(100)],
      ["101 characters", { action: "a".repeat(101) }, undefined],
      ["missing", {}, undefined],
      ["a number", { action: 1 }, undefined],
      ["null", { action: null }, undefined],
      ["an object", { action: { name: "opened" } }, undefined],
      ["an array", { action: ["opened"] }, undefined],
    ];
    for (const [name, payload, expected] of table) {
      await t.step(name, () => assert.equal(payloadAction(payload), expected));
    }
  },
);
