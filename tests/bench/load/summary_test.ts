import assert from "node:assert/strict";
import {
  ceilingRate,
  median,
  medianCosts,
  rpsOf,
  summarize,
  summaryOf,
} from "../../../bench/load/summary.ts";
import { ceilingOf, runOf } from "./_results.ts";

Deno.test("median() takes the middle value, or the mean of the middle two", () => {
  assert.equal(median([5]), 5);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("median() does not reorder its input", () => {
  const xs = [3, 1, 2];
  median(xs);
  assert.deepEqual(xs, [3, 1, 2]);
});

Deno.test("summarize() groups by mode then server, with medians of the repetitions", () => {
  const summaries = summarize([
    runOf("b", "bad", 300),
    runOf("a", "good", 1000, { p99Ms: 3 }),
    runOf("a", "good", 3000, { rep: 2, p99Ms: 5 }),
    runOf("a", "good", 2000, { rep: 3, p99Ms: 4 }),
    runOf("c", "good", 200),
  ]);
  assert.deepEqual(
    summaries.map((s) => `${s.server} ${s.mode} ${s.runs.length}`),
    ["a good 3", "c good 1", "b bad 1"],
  );
  assert.equal(summaries[0]!.rps, 2000);
  assert.equal(summaries[0]!.p99Ms, 4);
  assert.equal(rpsOf(summaries, "c", "good"), 200);
  assert.equal(rpsOf(summaries, "d", "good"), undefined);
  assert.equal(summaryOf(summaries, "b", "bad")?.rps, 300);
});

Deno.test("ceilingRate() is the median of the ceiling's runs, undefined when it did not run", () => {
  const ceilings = [ceilingOf(100), ceilingOf(300, 2), ceilingOf(200, 3)];
  assert.equal(ceilingRate(ceilings, "e"), 200);
  assert.equal(ceilingRate(ceilings, "e1"), undefined);
});

Deno.test("medianCosts() counts a thread missing from a run as 0 there", () => {
  assert.deepEqual(
    medianCosts([{ main: 1, sw: 4 }, { main: 3 }, { main: 2, x: 1 }]),
    { main: 2, sw: 0, x: 0 },
  );
});
