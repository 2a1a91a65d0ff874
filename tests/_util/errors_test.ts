import assert from "node:assert/strict";
import { describeError, errorMessage } from "../../lib/_util/errors.ts";

const SANITIZE = { sanitizeOps: true, sanitizeResources: true };

Deno.test(
  "describeError() describes anything thrown on one bounded line",
  SANITIZE,
  async (t) => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const table: [string, unknown, string][] = [
      ["an Error", new Error("boom"), "Error: boom"],
      ["a subclass", new TypeError("nope"), "TypeError: nope"],
      ["a string", "plain", "plain"],
      ["a number", 42, "42"],
      ["null", null, "null"],
      ["undefined", undefined, "undefined"],
      ["an object", { a: [1, "b"] }, '{"a":[1,"b"]}'],
      ["a bigint", 10n, "10"],
      ["a circular object", circular, "[object Object]"],
      ["a symbol", Symbol("s"), "Symbol(s)"],
      ["a function", function named() {}, "function named() {}"],
    ];
    for (const [name, value, expected] of table) {
      await t.step(name, () => assert.equal(describeError(value), expected));
    }
    await t.step("1000 characters are kept whole", () => {
      assert.equal(describeError("x".repeat(1000)), "x".repeat(1000));
    });
    await t.step("longer text is cut at 1000 characters", () => {
      assert.equal(describeError("y".repeat(5000)), "y".repeat(1000) + "…");
    });
  },
);

Deno.test("errorMessage() is the message of an Error and String() of anything else", () => {
  assert.equal(errorMessage(new TypeError("closed")), "closed");
  assert.equal(errorMessage("text"), "text");
  assert.equal(errorMessage(42), "42");
});
