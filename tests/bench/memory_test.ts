import assert from "node:assert/strict";
import { leastSquaresSlope, parseStatus, payload } from "../../bench/memory.ts";

Deno.test("leastSquaresSlope() is the trend per step, 0 for a flat line", () => {
  assert.equal(leastSquaresSlope([1, 3, 5, 7]), 2);
  assert.equal(leastSquaresSlope([4, 4, 4]), 0);
  assert.equal(leastSquaresSlope([3, 1, 2]), -0.5);
});

Deno.test("parseStatus() reads VmRSS and VmHWM in bytes", () => {
  assert.deepEqual(
    parseStatus("Name:\tdeno\nVmHWM:\t  300 kB\nVmRSS:\t  200 kB\n"),
    { rss: 200 * 1024, hwm: 300 * 1024 },
  );
});

Deno.test("payload() is exactly the size asked, JSON ending in a newline", () => {
  for (const bytes of [8_000, 1024 * 1024]) {
    const body = payload(bytes, "t");
    assert.equal(body.byteLength, bytes);
    assert.equal(body.at(-1), 0x0a);
    const parsed = JSON.parse(new TextDecoder().decode(body));
    assert.equal(parsed.tag, "t");
  }
});
