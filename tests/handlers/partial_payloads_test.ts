// The example handlers only log: a payload missing the fields they log (a
// test payload, a hand-made `deno task send`) must not fail the attempt,
// or the hook scripts that run after them would never run.

import assert from "node:assert/strict";
import { HANDLERS } from "../../lib/handlers/mod.ts";
import { runHandlers } from "../../lib/dispatch.ts";
import { NULL_LOGGER } from "../../lib/ops/log.ts";

const cases: [string, string | undefined][] = [
  ["ping", undefined],
  ["push", undefined],
  ["issues", "opened"],
  ["issues", "closed"],
  ["issues", "reopened"],
  ["pull_request", "opened"],
  ["pull_request", "synchronize"],
  ["pull_request", "closed"],
  ["pull_request", "ready_for_review"],
  ["star", "created"],
];

Deno.test("the example handlers take a payload with none of the fields they log", async (t) => {
  for (const [event, action] of cases) {
    await t.step(`${event}${action ? "." + action : ""}`, async () => {
      const result = await runHandlers({
        registry: HANDLERS,
        event,
        action,
        delivery: "d1",
        attempt: 1,
        payload: action ? { action } : {},
        log: NULL_LOGGER,
        timeoutMs: 1000,
      });
      assert.notEqual(result.outcome, "error", JSON.stringify(result));
    });
  }
});
