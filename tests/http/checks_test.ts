import assert from "node:assert/strict";
import {
  checkHeader,
  declaredLength,
  isIdentityEncoding,
  MAX_HEADER_LENGTH,
} from "../../lib/http/checks.ts";

Deno.test("checkHeader() tells a missing, a bad and a sane header apart", async (t) => {
  const table: [string, string | null, "missing" | "bad" | "ok"][] = [
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
