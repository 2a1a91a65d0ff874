import assert from "node:assert/strict";
import { createLogger } from "../../lib/ops/log.ts";
import {
  type CronFn,
  metaCronSchedule,
  scheduleMetaCron,
} from "../../lib/github/meta_cron.ts";

Deno.test("metaCronSchedule() runs every N minutes, hourly from an hour on", async (t) => {
  const cases: [number, string][] = [
    [1, "*/1 * * * *"],
    [60, "*/1 * * * *"],
    [600, "*/10 * * * *"],
    [3540, "*/59 * * * *"],
    [3600, "0 * * * *"],
    [86_400, "0 * * * *"],
  ];
  for (const [seconds, schedule] of cases) {
    await t.step(`${seconds} s`, () => {
      assert.equal(metaCronSchedule(seconds), schedule);
    });
  }
});

Deno.test("scheduleMetaCron() registers a job that refreshes and waits", async () => {
  const registered: [string, string, () => Promise<void>][] = [];
  const cron: CronFn = (name, schedule, handler) =>
    registered.push([name, schedule, handler]);
  const calls: string[] = [];
  const meta = {
    maybeRefresh: () => void calls.push("maybeRefresh"),
    idle: () => {
      calls.push("idle");
      return Promise.resolve();
    },
  };
  const log = createLogger({ write: () => {} });
  assert.equal(scheduleMetaCron(meta, 600, log, cron), true);
  assert.equal(registered.length, 1);
  const [name, schedule, handler] = registered[0]!;
  assert.equal(name, "hookgate: refresh GitHub meta hooks");
  assert.equal(schedule, "*/10 * * * *");
  assert.deepEqual(calls, []);
  await handler();
  assert.deepEqual(calls, ["maybeRefresh", "idle"]);
});

Deno.test("scheduleMetaCron() returns false without Deno.cron, or when it throws", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (line) => lines.push(line) });
  const meta = { maybeRefresh: () => {}, idle: () => Promise.resolve() };
  assert.equal(scheduleMetaCron(meta, 600, log, undefined), false);
  assert.equal(lines.length, 0);
  const refusing: CronFn = () => {
    throw new Error("cron is not enabled");
  };
  assert.equal(scheduleMetaCron(meta, 600, log, refusing), false);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /Deno\.cron unavailable.*cron is not enabled/);
});
