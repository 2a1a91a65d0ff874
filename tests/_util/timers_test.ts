import assert from "node:assert/strict";
import { sleep, withTimeout } from "../../lib/_util/timers.ts";

Deno.test("sleep() resolves after its time, or at once when the signal aborts", async () => {
  const started = Date.now();
  await sleep(20, new AbortController().signal);
  assert.ok(Date.now() - started >= 15);
  const stop = new AbortController();
  stop.abort();
  const t = Date.now();
  await sleep(10_000, stop.signal);
  assert.ok(Date.now() - t < 1000);
});

Deno.test("withTimeout() settles as the promise does, or rejects naming what did not answer", async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 1000, "x"), 7);
  await assert.rejects(
    withTimeout(Promise.reject(new Error("own")), 1000, "x"),
    /own/,
  );
  await assert.rejects(
    withTimeout(new Promise(() => {}), 10, "the store"),
    /^Error: the store did not answer within 10 ms$/,
  );
});
