import assert from "node:assert/strict";
import { countProfile, type ProfileNode } from "../../../bench/load/profile.ts";

function node(
  id: number,
  functionName: string,
  url: string,
  hitCount: number,
  children: number[] = [],
): ProfileNode {
  return {
    id,
    callFrame: { functionName, url, lineNumber: id - 1 },
    hitCount,
    children,
  };
}

Deno.test("countProfile() charges runtime time to the nearest project function on the stack", () => {
  const nodes = [
    node(1, "(root)", "", 0, [2, 5]),
    node(2, "verify", "file:///repo/lib/sig.ts", 3, [3]),
    node(3, "", "ext:deno_crypto/00_crypto.js", 4, [4]),
    node(4, "op_crypto", "", 1),
    node(5, "(idle)", "", 12, [6]),
    node(6, "gc", "", 2),
  ];
  const counts = countProfile(nodes, "/repo/");
  assert.equal(counts.busy, 10);
  assert.equal(counts.idle, 12);
  assert.deepEqual(Object.fromEntries(counts.self), {
    "verify lib/sig.ts:2": 3,
    "(anonymous) ext:deno_crypto/00_crypto.js:3": 4,
    "op_crypto :4": 1,
    "gc :6": 2,
  });
  assert.deepEqual(Object.fromEntries(counts.charged), {
    "verify lib/sig.ts:2": 8,
    "(runtime) gc :6": 2,
  });
});
