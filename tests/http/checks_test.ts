import assert from "node:assert/strict";
import {
  checkHeader,
  declaredLength,
  type HeaderCheck,
  isIdentityEncoding,
  MAX_HEADER_LENGTH,
} from "../../lib/http/checks.ts";

Deno.test("checkHeader() tells a missing, a bad, a repeated and a sane header apart", async (t) => {
  const table: [string, string | null, HeaderCheck][] = [
    ["absent", null, "missing"],
    ["empty", "", "missing"],
    ["an event name", "pull_request", "ok"],
    ["a delivery GUID", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "ok"],
    ["exactly the longest", "x".repeat(MAX_HEADER_LENGTH), "ok"],
    ["one character too long", "x".repeat(MAX_HEADER_LENGTH + 1), "bad"],
    ["a control character", "bad\u0001event", "bad"],
    ["a newline", "push\n", "bad"],
    ["DEL", "push\u007f", "bad"],
    ["a space (not a control character)", "push event", "ok"],
    ["C1: U+0080 (byte 0x80 as Deno hands it over)", "push\u0080", "bad"],
    ["C1: U+0085 (next line)", "pu\u0085sh", "bad"],
    ["C1: U+009F", "\u009fpush", "bad"],
    ["U+00A0 (Latin-1, not a control character)", "push\u00a0", "ok"],
    ["U+00E9 (Latin-1 é)", "caf\u00e9", "ok"],
    ["sent twice (as Headers joins it)", "push, issues", "repeated"],
    [
      "two GUIDs joined",
      "72d3162e-cc78-11e3-81ab-4c9367dc0958, 72d3162e-cc78-11e3-81ab-4c9367dc0959",
      "repeated",
    ],
    ["a comma alone", "push,issues", "repeated"],
    ["a control character and a comma: bad first", "a\u0001, b", "bad"],
  ];
  for (const [name, value, expected] of table) {
    await t.step(name, () => assert.equal(checkHeader(value), expected));
  }
});

Deno.test("isIdentityEncoding() accepts only an absent or identity Content-Encoding", async (t) => {
  const table: [string | null, boolean][] = [
    [null, true],
    ["identity", true],
    [" Identity ", true],
    ["IDENTITY", true],
    ["gzip", false],
    ["br", false],
    ["identity, gzip", false],
    ["", false],
  ];
  for (const [value, expected] of table) {
    await t.step(String(value), () => {
      assert.equal(isIdentityEncoding(value), expected);
    });
  }
});

Deno.test("declaredLength() believes only plain digits, at most 15 of them", async (t) => {
  const table: [string | null, number | undefined][] = [
    [null, undefined],
    ["0", 0],
    ["7600", 7600],
    ["007", 7],
    ["999999999999999", 999_999_999_999_999],
    ["1000000000000000", undefined],
    ["-1", undefined],
    ["1.5", undefined],
    [" 12", undefined],
    ["12 ", undefined],
    ["1e3", undefined],
    ["", undefined],
  ];
  for (const [value, expected] of table) {
    await t.step(String(value), () => {
      assert.equal(declaredLength(value), expected);
    });
  }
});
