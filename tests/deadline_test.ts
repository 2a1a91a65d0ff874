import assert from "node:assert/strict";
import { deadline } from "../lib/deadline.ts";

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
