// scanJson() accepts exactly what TextDecoder(fatal) + JSON.parse accept,
// and picks the same fields.

import assert from "node:assert/strict";
import { scanJson } from "../../lib/http/json_scan.ts";

const encoder = new TextEncoder();

function reference(bytes: Uint8Array): { ok: boolean; object: boolean } {
  try {
    const value = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
    return {
      ok: true,
      object: typeof value === "object" && value !== null &&
        !Array.isArray(value),
    };
  } catch {
    return { ok: false, object: false };
  }
}

function agree(bytes: Uint8Array, label: string): void {
  const ref = reference(bytes);
  const got = scanJson(bytes);
  assert.equal(got.ok, ref.ok, `${label}: ok`);
  if (got.ok) assert.equal(got.object, ref.object, `${label}: object`);
}

Deno.test("scanJson() agrees with JSON.parse on valid and invalid texts", async (t) => {
  const texts = [
    "{}",
    "[]",
    " { } ",
    '{"a":1}',
    '{"a":[1,2,{"b":null}],"c":true,"d":false}',
    "1",
    "-0",
    "0.5e+10",
    "1E-2",
    '"x"',
    "null",
    "true",
    '{"s":"\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r"}',
    '{"s":"\\ud800"}',
    '{"😀":"ü"}',
    "",
    " ",
    "{",
    "}",
    "[",
    "{]",
    "[}",
    '{"a"}',
    '{"a":}',
    '{"a":1,}',
    "[1,]",
    "[,1]",
    "{,}",
    '{"a" 1}',
    "01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "1e+",
    "0x10",
    "NaN",
    "Infinity",
    "tru",
    "nul",
    "falsey",
    "[1 2]",
    '{"a":1 "b":2}',
    "'x'",
    '{"a":"\\x"}',
    '{"a":"\\u12"}',
    '{"a":"\\u12g4"}',
    '"\t"',
    '"\n"',
    "{}{}",
    "[] x",
    '{"a":1}\n',
    "\ufeff{}",
    "{\u00a0}",
    '{"a":"b"',
    '{"a":[}',
  ];
  for (const text of texts) {
    await t.step(JSON.stringify(text), () => agree(encoder.encode(text), text));
  }
});

Deno.test("scanJson() rejects invalid UTF-8 that TextDecoder rejects", async (t) => {
  const rows: [string, number[]][] = [
    ["lone continuation", [0x22, 0x80, 0x22]],
    ["overlong 2-byte", [0x22, 0xc0, 0xaf, 0x22]],
    ["overlong 3-byte", [0x22, 0xe0, 0x80, 0xaf, 0x22]],
    ["surrogate", [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ["above U+10FFFF", [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]],
    ["truncated", [0x22, 0xe2, 0x82, 0x22]],
    ["0xff", [0x7b, 0xff, 0x7d]],
    ["valid 4-byte", [0x22, 0xf0, 0x9f, 0x98, 0x80, 0x22]],
    ["valid 3-byte", [0x22, 0xe2, 0x82, 0xac, 0x22]],
  ];
  for (const [name, bytes] of rows) {
    await t.step(name, () => agree(new Uint8Array(bytes), name));
  }
});

Deno.test("scanJson() agrees with JSON.parse on random mutations of a payload", () => {
  const base = encoder.encode(JSON.stringify({
    action: "opened",
    issue: {
      title: 'Ünïcode ✓ "quoted" \\ 😀',
      labels: [{ name: "bug" }],
      number: 12.5e3,
    },
    repository: { full_name: "octo/repo", private: false, topics: [] },
    sender: { login: "octocat", id: -1 },
  }));
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 3000; round++) {
    const bytes = base.slice();
    const edits = 1 + Math.floor(random() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * bytes.length);
      const choices = [
        0x22,
        0x5c,
        0x7b,
        0x7d,
        0x5b,
        0x5d,
        0x2c,
        0x3a,
        0x20,
        0x30,
        0x2d,
        0x65,
        0x80,
        0xff,
        0x0a,
        0x75,
      ];
      bytes[at] = choices[Math.floor(random() * choices.length)]!;
    }
    agree(bytes, `mutation ${round}`);
  }
});

Deno.test("scanJson() picks action, repository.full_name and sender.login like JSON.parse", async (t) => {
  const rows: [string, Record<string, string | undefined>][] = [
    [
      '{"action":"opened","repository":{"full_name":"o/r"},"sender":{"login":"me"}}',
      {
        action: "opened",
        repository: "o/r",
        sender: "me",
      },
    ],
    ['{"action":"a","action":"b"}', { action: "b" }],
    ['{"action":"a","action":3}', {}],
    ['{"x":{"action":"nested"}}', {}],
    ['{"repository":{"owner":{"full_name":"deep"}}}', {}],
    ['{"sender":{"login":["x"]},"y":1}', {}],
    ['{"action":"\\u006fpened"}', { action: "opened" }],
    ['{"repository":{"full_name":"a","x":[{"full_name":"b"}]}}', {
      repository: "a",
    }],
  ];
  for (const [text, want] of rows) {
    await t.step(text, () => {
      const r = scanJson(encoder.encode(text));
      assert.ok(r.ok);
      assert.deepEqual(r.fields, want);
    });
  }
});

Deno.test("scanJson() handles nesting far deeper than JSON.parse callers expect", () => {
  const depth = 100_000;
  const text = '{"a":' + "[".repeat(depth) + "]".repeat(depth) + "}";
  const r = scanJson(encoder.encode(text));
  assert.ok(r.ok && r.object);
  const bad = scanJson(
    encoder.encode('{"a":' + "[".repeat(depth) + "]".repeat(depth - 1) + "}"),
  );
  assert.equal(bad.ok, false);
});
