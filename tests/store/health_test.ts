import assert from "node:assert/strict";
import { createStoreHealth } from "../../lib/store/health.ts";

Deno.test("createStoreHealth() is unhealthy after 3 failed writes in a row and healthy at the next success", () => {
  let clock = 1_000;
  const health = createStoreHealth({ now: () => clock });
  assert.deepEqual(health.status(), {
    healthy: true,
    consecutiveFailures: 0,
    lastError: null,
    lastWriteAt: null,
  });
  health.failed(new Error("disk I/O error"));
  health.failed(new Error("disk I/O error"));
  assert.equal(health.status().healthy, true, "two failures are not enough");
  health.succeeded();
  assert.equal(health.status().consecutiveFailures, 0, "a success resets");
  for (let i = 0; i < 3; i++) {
    clock += 10;
    health.failed(new TypeError("attempt to write a readonly database"));
  }
  assert.deepEqual(health.status(), {
    healthy: false,
    consecutiveFailures: 3,
    lastError: "attempt to write a readonly database",
    lastWriteAt: 1_030,
  });
  clock = 2_000;
  health.succeeded();
  assert.deepEqual(health.status(), {
    healthy: true,
    consecutiveFailures: 0,
    lastError: null,
    lastWriteAt: 2_000,
  });
});

Deno.test("createStoreHealth() takes its threshold", () => {
  const health = createStoreHealth({ failuresToUnready: 1 });
  health.failed("closed");
  assert.equal(health.status().healthy, false);
  assert.equal(health.status().lastError, "closed");
});
