import assert from "node:assert/strict";
import { createDeadlines } from "../../lib/_util/deadline.ts";

const deadlines = createDeadlines();
const deadline = deadlines.after;
const holdDeadlines = deadlines.hold;
const deadlineTimerRunning = deadlines.running;

Deno.test("deadline() fires once after its time and not when cancelled", async () => {
  const fired: string[] = [];
  const cancelLate = deadline(10_000, () => fired.push("late"));
  deadline(20, () => fired.push("soon"));
  const cancelled = deadline(20, () => fired.push("cancelled"));
  cancelled();
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(fired, ["soon"]);
  cancelLate(); // the last pending deadline: the shared interval stops
});

Deno.test("deadline() fires a short deadline on time even while a long one is pending", async () => {
  const cancelLong = deadline(60_000, () => {});
  const started = Date.now();
  let firedAfter = -1;
  await new Promise<void>((resolve) =>
    deadline(30, () => {
      firedAfter = Date.now() - started;
      resolve();
    })
  );
  cancelLong();
  assert.ok(firedAfter >= 30, `fired after ${firedAfter} ms`);
});

Deno.test("holdDeadlines() keeps the timer between deadlines; deadlines still fire; release stops it", async () => {
  // The op sanitizer fails this test if the interval outlives the release.
  deadline(10_000, () => {})(); // not held: the timer goes with the deadline
  assert.equal(deadlineTimerRunning(), false);
  const release = holdDeadlines();
  assert.equal(deadlineTimerRunning(), false, "a hold alone starts no timer");
  deadline(10_000, () => {})(); // the only deadline, gone: the timer stays
  assert.equal(deadlineTimerRunning(), true);
  const fired: string[] = [];
  await new Promise<void>((resolve) =>
    deadline(20, () => {
      fired.push("held");
      resolve();
    })
  );
  await new Promise((r) => setTimeout(r, 30)); // ticks with nothing pending
  assert.deepEqual(fired, ["held"]);
  assert.equal(deadlineTimerRunning(), true);
  release();
  assert.equal(deadlineTimerRunning(), false);
  release(); // twice is harmless
});

Deno.test("releasing a hold leaves a pending deadline to fire on time", async () => {
  const release = holdDeadlines();
  const fired = new Promise<string>((resolve) =>
    deadline(20, () => resolve("fired"))
  );
  release();
  assert.equal(await fired, "fired");
});

Deno.test("createDeadlines() makes independent sets: one's interval is not the other's", () => {
  const a = createDeadlines();
  const b = createDeadlines();
  const cancel = a.after(10_000, () => {});
  assert.equal(a.running(), true);
  assert.equal(b.running(), false);
  cancel();
  assert.equal(a.running(), false);
});
