// The process guard: anything unhandled in the main isolate is logged at
// error and ends the process with status 1 (exit injected here; the real
// exit is tests/e2e/guard_test.ts).

import assert from "node:assert/strict";
import { guardProcess } from "../../lib/ops/guard.ts";
import { captureLogger } from "../_helpers.ts";

function guarded() {
  const { log, lines } = captureLogger();
  const exits: number[] = [];
  const remove = guardProcess(log, { exit: (code) => exits.push(code) });
  return { lines, exits, remove };
}

Deno.test("guardProcess() logs an unhandled rejection at error, with its stack, and exits 1", () => {
  const { lines, exits, remove } = guarded();
  try {
    const reason = new Error("floating rejection");
    const promise = Promise.reject(reason);
    promise.catch(() => {}); // this test's own promise is handled
    const event = new PromiseRejectionEvent("unhandledrejection", {
      promise,
      reason,
      cancelable: true,
    });
    globalThis.dispatchEvent(event);
    assert.deepEqual(exits, [1]);
    assert.ok(event.defaultPrevented, "Deno's own report is replaced by ours");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, "error");
    assert.equal(lines[0]!.msg, "unhandled rejection: exiting");
    assert.equal(lines[0]!.error, "Error: floating rejection");
    assert.match(String(lines[0]!.stack), /guard_test\.ts/);
  } finally {
    remove();
  }
});

Deno.test("guardProcess() logs an uncaught exception at error and exits 1", () => {
  const { lines, exits, remove } = guarded();
  try {
    const event = new ErrorEvent("error", {
      error: new TypeError("thrown from a timer"),
      message: "thrown from a timer",
      cancelable: true,
    });
    globalThis.dispatchEvent(event);
    assert.deepEqual(exits, [1]);
    assert.ok(event.defaultPrevented);
    assert.equal(lines[0]!.msg, "uncaught exception: exiting");
    assert.equal(lines[0]!.error, "TypeError: thrown from a timer");
  } finally {
    remove();
  }
});

Deno.test("guardProcess() describes a rejection that is not an Error", () => {
  const { lines, exits, remove } = guarded();
  try {
    const promise = Promise.reject({ code: 7 });
    promise.catch(() => {});
    globalThis.dispatchEvent(
      new PromiseRejectionEvent("unhandledrejection", {
        promise,
        reason: { code: 7 },
        cancelable: true,
      }),
    );
    assert.deepEqual(exits, [1]);
    assert.equal(lines[0]!.error, '{"code":7}');
    assert.equal(lines[0]!.stack, undefined);
  } finally {
    remove();
  }
});

Deno.test("the function guardProcess() returns removes the guards", () => {
  const { exits, remove } = guarded();
  remove();
  globalThis.dispatchEvent(new ErrorEvent("error", { message: "after" }));
  assert.deepEqual(exits, []);
});
