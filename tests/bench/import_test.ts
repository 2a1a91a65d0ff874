import assert from "node:assert/strict";

// The sanitizers fail a test that leaves a process, listener or timer behind:
// importing the benchmarks must start nothing.
Deno.test("bench/load.ts and bench/memory.ts start nothing when imported", async () => {
  const load = await import("../../bench/load.ts");
  const memory = await import("../../bench/memory.ts");
  assert.equal(typeof load.main, "function");
  assert.equal(typeof memory.main, "function");
});
