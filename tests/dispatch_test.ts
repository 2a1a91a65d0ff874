import assert from "node:assert/strict";
import {
  type Handler,
  type HandlerContext,
  type HandlerRegistry,
  HandlerTimeoutError,
  hasEventHandler,
  routeDelivery,
  runHandlers,
  type RunOptions,
} from "../lib/dispatch.ts";
import { createLogger, NULL_LOGGER } from "../lib/ops/log.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const noop: Handler = () => {};

/** runHandlers() options for one `issues` delivery, with `overrides`. */
function options(
  overrides: Partial<RunOptions> & Pick<RunOptions, "registry">,
): RunOptions {
  return {
    event: "issues",
    action: "opened",
    delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    attempt: 1,
    payload: { action: "opened" },
    log: NULL_LOGGER,
    timeoutMs: 1000,
    ...overrides,
  };
}

/** A handler that waits until its signal aborts, then rejects with the reason. */
const untilAborted: Handler = (ctx: HandlerContext) =>
  new Promise<void>((_, reject) => {
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
      once: true,
    });
  });

Deno.test(
  "routeDelivery() orders *, then the event default, then event.action",
  SANITIZE,
  () => {
    const registry: HandlerRegistry = {
      "*": { default: noop },
      issues: { opened: noop, default: noop, closed: noop },
    };
    assert.deepEqual(
      routeDelivery(registry, "issues", "opened").map((r) => r.name),
      ["*", "issues", "issues.opened"],
    );
  },
);

Deno.test(
  "routeDelivery() returns the very handler functions of the registry",
  SANITIZE,
  () => {
    const star: Handler = () => {};
    const all: Handler = () => {};
    const opened: Handler = () => {};
    const routes = routeDelivery(
      { "*": { default: star }, issues: { default: all, opened } },
      "issues",
      "opened",
    );
    assert.deepEqual(routes.map((r) => r.handler), [star, all, opened]);
  },
);

Deno.test(
  "routeDelivery() picks the handlers that exist",
  SANITIZE,
  async (t) => {
    const table: [
      string,
      HandlerRegistry,
      string,
      string | undefined,
      string[],
    ][] = [
      ["an empty registry", {}, "push", undefined, []],
      ["only *", { "*": { default: noop } }, "push", undefined, ["*"]],
      [
        "* and an unknown event",
        { "*": { default: noop }, push: { default: noop } },
        "fork",
        undefined,
        [
          "*",
        ],
      ],
      [
        "an event default only",
        { push: { default: noop } },
        "push",
        undefined,
        [
          "push",
        ],
      ],
      [
        "an event default with an unhandled action",
        { issues: { default: noop } },
        "issues",
        "closed",
        [
          "issues",
        ],
      ],
      [
        "an action export only",
        { issues: { opened: noop } },
        "issues",
        "opened",
        ["issues.opened"],
      ],
      [
        "an action export, but no action",
        { issues: { opened: noop } },
        "issues",
        undefined,
        [],
      ],
      ["another action", { issues: { opened: noop } }, "issues", "closed", []],
      [
        "action named default",
        { issues: { default: noop } },
        "issues",
        "default",
        ["issues"],
      ],
      ["event named *", { "*": { default: noop } }, "*", undefined, ["*"]],
      [
        "event named * with an action",
        { "*": { default: noop, opened: noop } },
        "*",
        "opened",
        ["*"],
      ],
      [
        "a * module without default",
        { "*": { opened: noop } },
        "issues",
        "opened",
        [],
      ],
      [
        "a * default that is not a function",
        { "*": { default: "x" } },
        "push",
        undefined,
        [],
      ],
      [
        "an event default that is not a function",
        { push: { default: 42 } },
        "push",
        undefined,
        [],
      ],
      [
        "an action export that is not a function",
        { issues: { opened: "x" } },
        "issues",
        "opened",
        [],
      ],
      [
        "an event name that differs in case",
        { push: { default: noop } },
        "Push",
        undefined,
        [],
      ],
    ];
    for (const [name, registry, event, action, expected] of table) {
      await t.step(name, () => {
        assert.deepEqual(
          routeDelivery(registry, event, action).map((r) => r.name),
          expected,
        );
      });
    }
  },
);

Deno.test(
  "routeDelivery() never routes an event to Object.prototype",
  SANITIZE,
  async (t) => {
    const registry: HandlerRegistry = { push: { default: noop } };
    const names = [
      "__proto__",
      "constructor",
      "toString",
      "valueOf",
      "hasOwnProperty",
      "isPrototypeOf",
      "propertyIsEnumerable",
      "toLocaleString",
      "__defineGetter__",
      "__lookupGetter__",
    ];
    for (const event of names) {
      await t.step(event, () => {
        assert.deepEqual(routeDelivery(registry, event, undefined), []);
        assert.deepEqual(routeDelivery(registry, event, "toString"), []);
      });
    }
  },
);

Deno.test(
  "routeDelivery() never routes an action to Object.prototype",
  SANITIZE,
  async (t) => {
    const registry: HandlerRegistry = { issues: { default: noop } };
    for (
      const action of [
        "__proto__",
        "constructor",
        "toString",
        "valueOf",
        "hasOwnProperty",
      ]
    ) {
      await t.step(action, () => {
        assert.deepEqual(
          routeDelivery(registry, "issues", action).map((r) => r.name),
          ["issues"],
        );
      });
    }
  },
);

Deno.test(
  "routeDelivery() routes an own action named like a prototype method",
  SANITIZE,
  () => {
    const registry: HandlerRegistry = { issues: { toString: noop } };
    assert.deepEqual(
      routeDelivery(registry, "issues", "toString").map((r) => r.name),
      ["issues.toString"],
    );
  },
);

Deno.test("hasEventHandler() ignores the * route", SANITIZE, async (t) => {
  await t.step("none", () => assert.equal(hasEventHandler([]), false));
  await t.step(
    "only *",
    () => assert.equal(hasEventHandler([{ name: "*", handler: noop }]), false),
  );
  await t.step("an event", () => {
    assert.equal(
      hasEventHandler([{ name: "*", handler: noop }, {
        name: "push",
        handler: noop,
      }]),
      true,
    );
  });
  await t.step("an action", () => {
    assert.equal(
      hasEventHandler([{ name: "issues.opened", handler: noop }]),
      true,
    );
  });
});

Deno.test(
  "runHandlers() runs every handler in order and reports ok",
  SANITIZE,
  async () => {
    const ran: string[] = [];
    const result = await runHandlers(options({
      registry: {
        "*": { default: () => void ran.push("*") },
        issues: {
          default: async () => {
            await Promise.resolve();
            ran.push("issues");
          },
          opened: () => void ran.push("issues.opened"),
          closed: () => void ran.push("issues.closed"),
        },
      },
    }));
    assert.equal(result.outcome, "ok");
    assert.deepEqual(ran, ["*", "issues", "issues.opened"]);
  },
);

Deno.test(
  "runHandlers() waits for one handler before starting the next",
  SANITIZE,
  async () => {
    const ran: string[] = [];
    await runHandlers(options({
      registry: {
        issues: {
          default: async () => {
            ran.push("default start");
            await new Promise((resolve) => setTimeout(resolve, 10));
            ran.push("default end");
          },
          opened: () => void ran.push("opened"),
        },
      },
    }));
    assert.deepEqual(ran, ["default start", "default end", "opened"]);
  },
);

Deno.test(
  "runHandlers() measures ms with the injected clock",
  SANITIZE,
  async () => {
    const times = [1000, 1010, 1040, 1042.5];
    const result = await runHandlers(options({
      registry: { issues: { default: noop } },
      now: () => times.shift() ?? 9999,
    }));
    assert.deepEqual(result, {
      outcome: "ok",
      ms: 42.5,
      runs: [{ handler: "issues", result: "ok", ms: 30 }],
    });
  },
);

Deno.test(
  "runHandlers() reports skipped when only * exists, and still runs *",
  SANITIZE,
  async () => {
    let starRan = 0;
    const result = await runHandlers(options({
      registry: {
        "*": { default: () => void starRan++ },
        push: { default: noop },
      },
    }));
    assert.equal(result.outcome, "skipped");
    assert.equal(starRan, 1);
  },
);

Deno.test(
  "runHandlers() reports skipped when no handler exists",
  SANITIZE,
  async () => {
    const result = await runHandlers(
      options({ registry: {}, event: "fork", action: undefined }),
    );
    assert.equal(result.outcome, "skipped");
  },
);

Deno.test(
  "runHandlers() captures a failure with the handler's name",
  SANITIZE,
  async (t) => {
    const table: [string, Handler, string][] = [
      ["a sync throw", () => {
        throw new Error("boom");
      }, "Error: boom"],
      ["a sync throw of a TypeError", () => {
        throw new TypeError("bad type");
      }, "TypeError: bad type"],
      [
        "a rejection",
        () => Promise.reject(new RangeError("out")),
        "RangeError: out",
      ],
      ["an async throw", async () => {
        await Promise.resolve();
        throw new Error("later");
      }, "Error: later"],
      ["a thrown string", () => {
        throw "just a string";
      }, "just a string"],
      ["a thrown object", () => {
        throw { code: 7 };
      }, '{"code":7}'],
      ["a thrown undefined", () => {
        throw undefined;
      }, "undefined"],
      ["a rejection with null", () => Promise.reject(null), "null"],
    ];
    for (const [name, handler, error] of table) {
      await t.step(name, async () => {
        const result = await runHandlers(options({
          registry: { issues: { default: noop, opened: handler } },
        }));
        assert.equal(result.outcome, "error");
        assert.ok(result.outcome === "error");
        assert.equal(result.handler, "issues.opened");
        assert.equal(result.error, error);
      });
    }
  },
);

Deno.test(
  "runHandlers() stops at the first failing handler",
  SANITIZE,
  async () => {
    const ran: string[] = [];
    const result = await runHandlers(options({
      registry: {
        "*": {
          default: () => {
            throw new Error("star failed");
          },
        },
        issues: {
          default: () => void ran.push("issues"),
          opened: () => void ran.push("opened"),
        },
      },
    }));
    assert.ok(result.outcome === "error");
    assert.equal(result.handler, "*");
    assert.deepEqual(ran, []);
  },
);

Deno.test(
  "runHandlers() reports timeout for a hanging handler and aborts its signal",
  SANITIZE,
  async () => {
    let signal: AbortSignal | undefined;
    const started = performance.now();
    const result = await runHandlers(options({
      registry: {
        issues: {
          opened: (ctx: HandlerContext) => {
            signal = ctx.signal;
            return new Promise(() => {}); // never settles, ignores the signal
          },
        },
      },
      timeoutMs: 50,
    }));
    const elapsed = performance.now() - started;
    assert.ok(result.outcome === "timeout", JSON.stringify(result));
    assert.equal(result.handler, "issues.opened");
    assert.equal(
      result.error,
      "HandlerTimeoutError: handler timed out after 50 ms",
    );
    assert.ok(result.ms >= 40, `ms ${result.ms}`);
    assert.ok(elapsed >= 40 && elapsed < 2000, `elapsed ${elapsed}`);
    assert.ok(signal?.aborted);
    assert.ok(signal.reason instanceof HandlerTimeoutError);
  },
);

Deno.test(
  "runHandlers() reports timeout when the handler rejects on abort",
  SANITIZE,
  async () => {
    const result = await runHandlers(options({
      registry: { issues: { default: untilAborted } },
      timeoutMs: 20,
    }));
    assert.ok(result.outcome === "timeout", JSON.stringify(result));
    assert.equal(result.handler, "issues");
    assert.equal(
      result.error,
      "HandlerTimeoutError: handler timed out after 20 ms",
    );
  },
);

Deno.test(
  "runHandlers() reports timeout for a handler that resolves when its signal fires",
  SANITIZE,
  async () => {
    const result = await runHandlers(options({
      registry: {
        issues: {
          // Resolves only once its signal fires, as a well-behaved slow handler does.
          default: (ctx: HandlerContext) =>
            new Promise<void>((resolve) =>
              ctx.signal.addEventListener("abort", () => resolve())
            ),
        },
      },
      timeoutMs: 20,
    }));
    assert.equal(result.outcome, "timeout");
  },
);

Deno.test(
  "runHandlers() bounds the whole attempt by one timeoutMs",
  SANITIZE,
  async () => {
    const wait = () => new Promise<void>((resolve) => setTimeout(resolve, 40));
    const result = await runHandlers(options({
      registry: { issues: { default: wait, opened: wait } },
      timeoutMs: 60,
    }));
    assert.ok(result.outcome === "timeout", JSON.stringify(result));
    assert.equal(result.handler, "issues.opened");
    // Let the second handler's own timer finish so the sanitizer stays happy.
    await new Promise((resolve) => setTimeout(resolve, 40));
  },
);

Deno.test(
  "runHandlers() clears its timer when the handlers finish quickly",
  SANITIZE,
  async () => {
    // A long timeoutMs: a timer left behind would fail the test's op sanitizer.
    const result = await runHandlers(options({
      registry: { issues: { default: noop } },
      timeoutMs: 60_000,
    }));
    assert.equal(result.outcome, "ok");
  },
);

Deno.test(
  "runHandlers() aborts the handler when the outer signal aborts",
  SANITIZE,
  async () => {
    const outer = new AbortController();
    let signal: AbortSignal | undefined;
    const running = runHandlers(options({
      registry: {
        issues: {
          default: (ctx: HandlerContext) => {
            signal = ctx.signal;
            return untilAborted(ctx);
          },
        },
      },
      timeoutMs: 5000,
      signal: outer.signal,
    }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    outer.abort(new Error("shutting down"));
    const result = await running;
    assert.ok(result.outcome === "error", JSON.stringify(result));
    assert.equal(result.handler, "issues");
    assert.equal(result.error, "Error: shutting down");
    assert.ok(signal?.aborted);
  },
);

Deno.test(
  "runHandlers() describes a default outer abort as an AbortError",
  SANITIZE,
  async () => {
    const outer = new AbortController();
    const running = runHandlers(options({
      registry: { issues: { default: untilAborted } },
      timeoutMs: 5000,
      signal: outer.signal,
    }));
    await Promise.resolve();
    outer.abort();
    const result = await running;
    assert.ok(result.outcome === "error", JSON.stringify(result));
    assert.match(result.error, /^AbortError: /);
  },
);

Deno.test({
  ...SANITIZE,
  // Regression test (found by review).
  name:
    "runHandlers() does not run handlers when the outer signal has already aborted",
  fn: async () => {
    const outer = new AbortController();
    outer.abort(new Error("shutting down"));
    let aborted: boolean | undefined;
    const result = await runHandlers(options({
      registry: {
        issues: {
          default: (ctx: HandlerContext) => void (aborted = ctx.signal.aborted),
        },
      },
      signal: outer.signal,
    }));
    assert.ok(result.outcome === "error", JSON.stringify(result));
    assert.equal(result.error, "Error: shutting down");
    assert.notEqual(aborted, false);
  },
});

Deno.test(
  "runHandlers() removes its listener from the outer signal",
  SANITIZE,
  async () => {
    const outer = new AbortController();
    const added: unknown[] = [];
    const removed: unknown[] = [];
    const signal = outer.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener =
      ((type: string, listener: EventListener, opts?: unknown) => {
        added.push(listener);
        add(type, listener, opts as AddEventListenerOptions);
      }) as typeof signal.addEventListener;
    signal.removeEventListener =
      ((type: string, listener: EventListener, opts?: unknown) => {
        removed.push(listener);
        remove(type, listener, opts as EventListenerOptions);
      }) as typeof signal.removeEventListener;
    await runHandlers(
      options({ registry: { issues: { default: noop } }, signal }),
    );
    assert.equal(added.length, 1);
    assert.deepEqual(removed, added);
  },
);

Deno.test(
  "runHandlers() gives each handler the full context",
  SANITIZE,
  async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      level: "debug",
      write: (line) => lines.push(JSON.parse(line)),
    }).child({ delivery: "d-1" });
    const payload = { action: "opened", issue: { number: 1 } };
    const seen: HandlerContext[] = [];
    const record: Handler = (ctx: HandlerContext) => {
      seen.push(ctx);
      ctx.log.info("handled");
    };
    const result = await runHandlers({
      registry: { "*": { default: record }, issues: { opened: record } },
      event: "issues",
      action: "opened",
      delivery: "d-1",
      attempt: 3,
      payload,
      log,
      timeoutMs: 1000,
    });
    assert.equal(result.outcome, "ok");
    assert.equal(seen.length, 2);
    for (const ctx of seen) {
      assert.equal(ctx.event, "issues");
      assert.equal(ctx.action, "opened");
      assert.equal(ctx.delivery, "d-1");
      assert.equal(ctx.attempt, 3);
      assert.equal(ctx.payload, payload);
      assert.ok(ctx.signal instanceof AbortSignal);
      assert.equal(ctx.signal.aborted, false);
    }
    assert.deepEqual(
      lines.map((l) => [l.msg, l.delivery, l.handler]),
      [["handled", "d-1", "*"], ["handled", "d-1", "issues.opened"]],
    );
  },
);

Deno.test(
  "runHandlers() passes an undefined action through",
  SANITIZE,
  async () => {
    let action: string | undefined = "unset";
    await runHandlers(options({
      registry: {
        push: { default: (ctx: HandlerContext) => void (action = ctx.action) },
      },
      event: "push",
      action: undefined,
    }));
    assert.equal(action, undefined);
  },
);

Deno.test("HandlerTimeoutError names the timeout", SANITIZE, () => {
  const err = new HandlerTimeoutError(250);
  assert.ok(err instanceof Error);
  assert.equal(err.name, "HandlerTimeoutError");
  assert.equal(err.message, "handler timed out after 250 ms");
});
