import assert from "node:assert/strict";
import { backoffDelay } from "../../lib/_util/backoff.ts";

Deno.test("backoffDelay() doubles its ceiling per attempt, caps it, and jitters over its upper half", async (t) => {
  const at = (attempt: number, random: number) =>
    backoffDelay(attempt, { baseMs: 1000, maxMs: 5000, random: () => random });
  await t.step("the first attempt waits 0.5–1 × the base", () => {
    assert.equal(at(1, 0), 500);
    assert.equal(at(1, 0.999), 1000);
  });
  await t.step("each attempt doubles the ceiling", () => {
    assert.equal(at(2, 0), 1000);
    assert.equal(at(3, 0), 2000);
  });
  await t.step("the ceiling stops at maxMs", () => {
    assert.equal(at(10, 0), 2500);
    assert.equal(at(1000, 0.5), 3750);
  });
  await t.step("attempt 0 or less counts as the first", () => {
    assert.equal(at(0, 0), 500);
  });
});
