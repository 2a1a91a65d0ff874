// The delivery status machine: every transition, as pure functions.

import assert from "node:assert/strict";
import {
  finishAttempt,
  giveUpRecord,
  holdsLease,
  INTERRUPTED_ERROR,
  leaseRecord,
  newRecord,
  rearmRecord,
  reclaimRecord,
  releaseRecord,
  renewRecord,
  startRecord,
} from "../../lib/store/lifecycle.ts";
import type {
  DeliveryRecord,
  IncomingDelivery,
} from "../../lib/store/types.ts";

const delivery: IncomingDelivery = {
  id: "d1",
  event: "issues",
  action: "opened",
  hookId: "7",
  target: { type: "repository", id: "2" },
  headers: { "x-github-event": "issues" },
  body: new Uint8Array(10),
  kind: "json",
  digest: "ab".repeat(32),
  receivedAt: 900,
  payload: { action: "opened" },
  repository: "octo/repo",
  sender: "octocat",
};

const BODY = { upload: "u1", chunks: 1 };
const backoff = { baseMs: 1000, maxMs: 8000, random: () => 0 };

/** A queued record due at 1,000 with 3 attempts, changed by `over`. */
function record(over: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    ...newRecord(delivery, BODY, { now: 1_000, maxAttempts: 3 }),
    ...over,
  };
}

/** A record running attempt `attempts` (of 3), leased until 5,000. */
function running(attempts = 1, over: Partial<DeliveryRecord> = {}) {
  return record({
    status: "running",
    attempts,
    startedAt: 2_000,
    dueAt: 5_000,
    ...over,
  });
}

Deno.test("newRecord() makes a queued record due now with no attempt", () => {
  const r = newRecord(delivery, BODY, { now: 1_000, maxAttempts: 3 });
  const { body: _body, payload: _payload, ...kept } = delivery;
  assert.deepEqual(r, {
    ...kept,
    size: 10,
    upload: "u1",
    chunks: 1,
    status: "queued",
    attempts: 0,
    attemptLimit: 3,
    updatedAt: 1_000,
    startedAt: null,
    finishedAt: null,
    dueAt: 1_000,
    durationMs: null,
    error: null,
    replays: 0,
  });
  assert.ok(!("payload" in r), "the parsed payload is never stored");
});

Deno.test("newRecord() with leaseUntil makes it running its first attempt until then", () => {
  const r = newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts: 3,
    leaseUntil: 4_000,
  });
  assert.equal(r.status, "running");
  assert.equal(r.attempts, 1);
  assert.equal(r.startedAt, 1_000);
  assert.equal(r.dueAt, 4_000);
  assert.equal(r.owner, undefined, "no owner given");
});

Deno.test("newRecord() with leaseUntil and owner records who holds the lease; a queued one has no owner", () => {
  const leased = newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts: 3,
    leaseUntil: 4_000,
    owner: "p1",
  });
  assert.equal(leased.owner, "p1");
  const queued = newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts: 3,
    owner: "p1",
  });
  assert.ok(!("owner" in queued));
});

/** A fast-path record leased until 5,000 while every slot was busy. */
function waiting(maxAttempts = 1): DeliveryRecord {
  return newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts,
    leaseUntil: 5_000,
    owner: "p1",
    waiting: true,
  });
}

Deno.test("newRecord() with leaseUntil and waiting leases it with no attempt counted", () => {
  const r = waiting(3);
  assert.equal(r.status, "running");
  assert.equal(r.waiting, true);
  assert.equal(r.attempts, 0);
  assert.equal(r.dueAt, 5_000);
  assert.equal(r.owner, "p1");
  const counted = newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts: 3,
    leaseUntil: 5_000,
    waiting: false,
  });
  assert.ok(!("waiting" in counted), "a counted lease has no mark");
  const queued = newRecord(delivery, BODY, {
    now: 1_000,
    maxAttempts: 3,
    waiting: true,
  });
  assert.equal(queued.status, "queued");
  assert.ok(!("waiting" in queued), "no lease, nothing waits");
});

Deno.test("startRecord() counts a waiting lease's attempt once, keeping the lease", () => {
  const r = waiting(3);
  const started = startRecord(r, 2_500);
  const { waiting: _waiting, ...lease } = r;
  assert.deepEqual(started, { ...lease, attempts: 1, updatedAt: 2_500 });
  assert.ok(!("waiting" in started));
  assert.ok(
    holdsLease(started, r),
    "the same lease: renewals and the outcome hold",
  );
  assert.equal(startRecord(started, 3_000), started, "counted already");
  assert.equal(r.attempts, 0, "its input is unchanged");
});

Deno.test("a lapsed waiting lease is leased again, not given up, even at the attempt limit", () => {
  const lapsed = waiting(1);
  assert.equal(giveUpRecord(lapsed, 6_000), null);
  const again = leaseRecord(lapsed, 6_000, 9_000, "p2")!;
  assert.equal(again.status, "running");
  assert.equal(again.attempts, 1, "its first attempt: it never ran");
  assert.equal(again.lapses, undefined, "no run lapsed");
  assert.ok(!("waiting" in again), "this lease counted its attempt");
  assert.equal(again.owner, "p2");
  // Once started and lapsed, the same record at its limit is given up.
  assert.equal(
    leaseRecord(startRecord(lapsed, 2_000), 6_000, 9_000)?.status,
    "dead",
  );
});

Deno.test("releaseRecord() of a waiting lease takes no attempt back (none was counted)", () => {
  const r = releaseRecord(waiting(3), 3_000);
  assert.equal(r.status, "queued");
  assert.equal(r.attempts, 0);
  assert.ok(!("waiting" in r));
  assert.equal(
    releaseRecord(startRecord(waiting(3), 2_000), 3_000).attempts,
    0,
  );
});

Deno.test("leaseRecord() takes a due record: running, one more attempt, due at the lease's end", () => {
  const queued = record();
  const r = leaseRecord(queued, 1_500, 9_000);
  assert.deepEqual(r, {
    ...queued,
    status: "running",
    attempts: 1,
    startedAt: 1_500,
    updatedAt: 1_500,
    dueAt: 9_000,
  });
  assert.equal(queued.status, "queued", "the input is not changed");
});

Deno.test("leaseRecord() takes a record due exactly now", () => {
  assert.equal(leaseRecord(record(), 1_000, 9_000)?.attempts, 1);
});

Deno.test("leaseRecord() returns null when the record is not due yet", () => {
  assert.equal(leaseRecord(record(), 999, 9_000), null);
  const failed = record({ status: "failed", attempts: 1, dueAt: 3_000 });
  assert.equal(leaseRecord(failed, 2_999, 9_000), null);
});

Deno.test("leaseRecord() takes a failed record once its backoff has passed", () => {
  const failed = record({ status: "failed", attempts: 1, dueAt: 3_000 });
  const r = leaseRecord(failed, 3_000, 9_000);
  assert.equal(r?.status, "running");
  assert.equal(r?.attempts, 2);
});

Deno.test("leaseRecord() returns null for a final record", () => {
  for (const status of ["done", "skipped", "dead"] as const) {
    assert.equal(
      leaseRecord(record({ status, dueAt: null }), 1e12, 2e12),
      null,
    );
  }
});

Deno.test("leaseRecord() leaves a running record alone until its lease expires, then takes it again", () => {
  const r = running();
  assert.equal(leaseRecord(r, 4_999, 9_000), null);
  const again = leaseRecord(r, 5_000, 9_000);
  assert.equal(again?.status, "running");
  assert.equal(again?.attempts, 2, "the lost run counts as an attempt");
  assert.equal(again?.startedAt, 5_000);
  assert.equal(holdsLease(again!, r), false, "the first run lost its lease");
});

Deno.test("leaseRecord() records its owner, and counts a lapsed run it takes again", () => {
  const r = leaseRecord(running(1, { owner: "dead" }), 5_000, 9_000, "p2");
  assert.equal(r?.owner, "p2");
  assert.equal(r?.lapses, 1, "the first run ended without an outcome");
  const fresh = leaseRecord(record(), 1_000, 9_000, "p2");
  assert.equal(fresh?.owner, "p2");
  assert.ok(!("lapses" in fresh!), "a queued record did not lapse");
});

Deno.test("leaseRecord() gives up a lapsed run that had used its last attempt instead of running it again", () => {
  const crashed = running(3, { lapses: 2 });
  assert.equal(leaseRecord(crashed, 4_999, 9_000, "p2"), null, "still leased");
  const r = leaseRecord(crashed, 5_000, 9_000, "p2");
  assert.deepEqual(r, giveUpRecord(crashed, 5_000));
  assert.equal(r?.status, "dead");
});

Deno.test("giveUpRecord() turns a lapsed running record at its attempt limit into dead, saying why", () => {
  const r = giveUpRecord(running(3, { lapses: 1 }), 6_000);
  assert.equal(r?.status, "dead");
  assert.equal(r?.attempts, 3, "no attempt is added");
  assert.equal(r?.lapses, 2);
  assert.equal(r?.dueAt, null);
  assert.equal(r?.finishedAt, 6_000);
  assert.equal(
    r?.error,
    "its run ended before recording an outcome 2 times (the process or its Worker died): given up after 3 attempts",
  );
  assert.match(giveUpRecord(running(3), 6_000)?.error ?? "", /outcome once/);
});

Deno.test("giveUpRecord() leaves alone what is still leased, has attempts left, or is not running", () => {
  assert.equal(giveUpRecord(running(3), 4_999), null, "lease not lapsed");
  assert.equal(giveUpRecord(running(2), 6_000), null, "an attempt is left");
  for (const status of ["queued", "failed"] as const) {
    assert.equal(
      giveUpRecord(record({ status, attempts: 3, dueAt: 1_000 }), 6_000),
      null,
      status,
    );
  }
  assert.equal(
    giveUpRecord(running(3, { attemptLimit: 6 }), 6_000),
    null,
    "replayed: more attempts",
  );
});

Deno.test("renewRecord() moves only the lease's end", () => {
  const r = running(1, { owner: "p1" });
  assert.deepEqual(renewRecord(r, 20_000), { ...r, dueAt: 20_000 });
  assert.equal(holdsLease(renewRecord(r, 20_000), r), true);
});

Deno.test("reclaimRecord() makes a gone owner's running record due now, nothing else", () => {
  const r = running(1, { owner: "gone" });
  assert.deepEqual(reclaimRecord(r, "gone", 3_000), { ...r, dueAt: 3_000 });
  assert.equal(reclaimRecord(r, "alive", 3_000), null, "another owner's");
  assert.equal(reclaimRecord(r, "gone", 5_000), null, "due already");
  assert.equal(
    reclaimRecord(record({ owner: "gone" }), "gone", 500),
    null,
    "not running",
  );
  const taken = leaseRecord(reclaimRecord(r, "gone", 3_000)!, 3_000, 9_000);
  assert.equal(taken?.attempts, 2, "taken again at once, counting an attempt");
});

Deno.test("releaseRecord() gives back a lease unrun: queued, due now, the attempt not counted", () => {
  const r = releaseRecord(running(1, { rerun: true }), 3_000);
  assert.equal(r.status, "queued");
  assert.equal(r.attempts, 0);
  assert.equal(r.dueAt, 3_000);
  assert.equal(r.rerun, false, "it runs again anyway");
});

Deno.test("holdsLease() is true for the run that was leased, false once it changed", () => {
  const leased = running();
  assert.equal(holdsLease({ ...leased, updatedAt: 3_000 }, leased), true);
  assert.equal(holdsLease({ ...leased, startedAt: 2_001 }, leased), false);
  assert.equal(holdsLease({ ...leased, status: "done" }, leased), false);
  assert.equal(holdsLease({ ...leased, status: "queued" }, leased), false);
  assert.equal(
    holdsLease({ ...leased, owner: "another" }, leased),
    false,
    "another owner's lease",
  );
});

Deno.test("rearmRecord() queues a final record with MAX_ATTEMPTS more attempts", async (t) => {
  for (const status of ["dead", "done", "skipped"] as const) {
    await t.step(status, () => {
      const final = record({
        status,
        attempts: 3,
        dueAt: null,
        finishedAt: 4_000,
        error: status === "dead" ? "boom" : null,
        replays: 1,
      });
      assert.deepEqual(rearmRecord(final, 6_000, 3), {
        ...final,
        status: "queued",
        attemptLimit: 6,
        dueAt: 6_000,
        finishedAt: null,
        updatedAt: 6_000,
        replays: 2,
      });
    });
  }
});

Deno.test("rearmRecord() makes a waiting record due now and changes nothing else", () => {
  const later = record({ status: "failed", attempts: 1, dueAt: 9_000 });
  assert.deepEqual(rearmRecord(later, 6_000, 3), {
    ...later,
    dueAt: 6_000,
    updatedAt: 6_000,
  });
  const overdue = record({ dueAt: 1_000 });
  assert.equal(rearmRecord(overdue, 6_000, 3).dueAt, 1_000, "never later");
  assert.equal(rearmRecord(overdue, 6_000, 3).replays, 0);
});

Deno.test("rearmRecord() of a running record marks it to run again after this run", () => {
  const r = running(3);
  assert.deepEqual(rearmRecord(r, 3_000, 3), {
    ...r,
    rerun: true,
    attemptLimit: 6,
    updatedAt: 3_000,
    replays: 1,
  });
});

Deno.test("finishAttempt() marks a successful run done", () => {
  const r = running();
  assert.deepEqual(
    finishAttempt(r, { outcome: "ok", ms: 12.6 }, { now: 3_000, backoff }),
    {
      ...r,
      status: "done",
      updatedAt: 3_000,
      durationMs: 13,
      finishedAt: 3_000,
      dueAt: null,
      error: null,
    },
  );
});

Deno.test("finishAttempt() marks a run with no event handler skipped", () => {
  const r = finishAttempt(running(), { outcome: "skipped", ms: 0 }, {
    now: 3_000,
    backoff,
  });
  assert.equal(r.status, "skipped");
  assert.equal(r.dueAt, null);
});

Deno.test("finishAttempt() marks a failed run failed, due again after the backoff", async (t) => {
  for (const outcome of ["error", "timeout"] as const) {
    await t.step(outcome, () => {
      const r = running(2);
      const next = finishAttempt(r, { outcome, ms: 5, error: "boom" }, {
        now: 3_000,
        backoff,
      });
      assert.deepEqual(next, {
        ...r,
        status: "failed",
        updatedAt: 3_000,
        durationMs: 5,
        dueAt: 3_000 + 1_000, // ceiling 2,000 for attempt 2, random 0
        error: "boom",
      });
    });
  }
});

Deno.test("finishAttempt() caps the retry delay at the backoff's maximum", () => {
  const r = running(9, { attemptLimit: 20 });
  const next = finishAttempt(r, { outcome: "error", ms: 1, error: "x" }, {
    now: 0,
    backoff,
  });
  assert.equal(next.dueAt, 4_000, "half the 8,000 ms ceiling, random 0");
});

Deno.test("finishAttempt() marks a failure on the last attempt dead", () => {
  for (const attempts of [3, 4]) {
    const r = running(attempts);
    const next = finishAttempt(r, { outcome: "timeout", ms: 30, error: "t" }, {
      now: 3_000,
      backoff,
    });
    assert.deepEqual(next, {
      ...r,
      status: "dead",
      updatedAt: 3_000,
      durationMs: 30,
      finishedAt: 3_000,
      dueAt: null,
      error: "t",
    });
  }
});

Deno.test("finishAttempt() queues a run cut short by a shutdown without using up its attempt", () => {
  const r = running(3); // the last attempt: it would be dead otherwise
  const next = finishAttempt(r, { outcome: "error", ms: 8, error: "aborted" }, {
    now: 3_000,
    backoff,
    interrupted: true,
  });
  assert.deepEqual(next, {
    ...r,
    status: "queued",
    attempts: 2,
    updatedAt: 3_000,
    durationMs: 8,
    dueAt: 3_000,
    error: INTERRUPTED_ERROR,
  });
});

Deno.test("finishAttempt() records a run that succeeded during a shutdown as done", () => {
  const next = finishAttempt(running(), { outcome: "ok", ms: 1 }, {
    now: 3_000,
    backoff,
    interrupted: true,
  });
  assert.equal(next.status, "done");
  assert.equal(next.attempts, 1);
});

Deno.test("finishAttempt() queues a run replayed meanwhile again, whatever it did", async (t) => {
  await t.step("ok", () => {
    const r = running(1, { rerun: true, finishedAt: 1_500 });
    assert.deepEqual(
      finishAttempt(r, { outcome: "ok", ms: 2 }, { now: 3_000, backoff }),
      {
        ...r,
        status: "queued",
        rerun: false,
        updatedAt: 3_000,
        durationMs: 2,
        dueAt: 3_000,
        finishedAt: null,
        error: null,
      },
    );
  });
  await t.step("an error on the last attempt is not dead", () => {
    const r = running(3, { rerun: true });
    const next = finishAttempt(r, { outcome: "error", ms: 2, error: "e" }, {
      now: 3_000,
      backoff,
    });
    assert.equal(next.status, "queued");
    assert.equal(next.error, "e");
    assert.equal(next.rerun, false);
    assert.equal(next.attempts, 3);
  });
  await t.step("a shutdown comes first: the attempt does not count", () => {
    const r = running(2, { rerun: true });
    const next = finishAttempt(r, { outcome: "error", ms: 2, error: "e" }, {
      now: 3_000,
      backoff,
      interrupted: true,
    });
    assert.equal(next.status, "queued");
    assert.equal(next.attempts, 1);
    assert.equal(next.rerun, true, "it still runs again");
  });
});

Deno.test("finishAttempt() does not change its input", () => {
  const r = running();
  const copy = structuredClone(r);
  finishAttempt(r, { outcome: "error", ms: 1, error: "x" }, {
    now: 3_000,
    backoff,
  });
  assert.deepEqual(r, copy);
});

Deno.test("a delivery's whole life: queued → running → failed → running → dead → replayed → done", () => {
  const opts = { now: 0, backoff };
  let r = record();
  r = leaseRecord(r, 1_000, 2_000)!;
  r = finishAttempt(r, { outcome: "error", ms: 1, error: "a" }, {
    ...opts,
    now: 1_100,
  });
  assert.equal(r.status, "failed");
  assert.equal(leaseRecord(r, 1_100, 9_000), null, "not before its backoff");
  r = leaseRecord(r, r.dueAt!, 9_000)!;
  r = leaseRecord({ ...r, dueAt: 2_000 }, 2_000, 9_000)!; // a lost lease
  assert.equal(r.attempts, 3);
  r = finishAttempt(r, { outcome: "error", ms: 1, error: "c" }, {
    ...opts,
    now: 2_100,
  });
  assert.equal(r.status, "dead");
  r = rearmRecord(r, 3_000, 3);
  assert.equal(r.status, "queued");
  r = leaseRecord(r, 3_000, 9_000)!;
  assert.equal(r.attempts, 4);
  r = finishAttempt(r, { outcome: "ok", ms: 1 }, { ...opts, now: 3_100 });
  assert.equal(r.status, "done");
  assert.equal(r.replays, 1);
  assert.equal(r.attemptLimit, 6);
});

Deno.test("finishAttempt() keeps the targets settled so far while the record fails, and clears them at its end", async (t) => {
  const fail = (settled: string[]) => ({
    outcome: "error" as const,
    ms: 1,
    error: "forward:b.test: answered 500",
    settled,
  });
  await t.step("failed: the union, once each", () => {
    let r = finishAttempt(running(1), fail(["handlers", "forward:a.test"]), {
      now: 3_000,
      backoff,
    });
    assert.deepEqual(r.settled, ["handlers", "forward:a.test"]);
    r = leaseRecord(r, r.dueAt!, 9_000)!;
    assert.deepEqual(
      r.settled,
      ["handlers", "forward:a.test"],
      "kept by a lease",
    );
    r = finishAttempt(r, fail(["forward:c.test"]), { now: 9_100, backoff });
    assert.deepEqual(r.settled, [
      "handlers",
      "forward:a.test",
      "forward:c.test",
    ]);
  });
  await t.step("a failure with nothing settled keeps no field", () => {
    const r = finishAttempt(running(1), fail([]), { now: 3_000, backoff });
    assert.equal("settled" in r, false);
  });
  await t.step("cut short by a shutdown: kept", () => {
    const r = finishAttempt(running(1, { settled: ["handlers"] }), fail([]), {
      now: 3_000,
      backoff,
      interrupted: true,
    });
    assert.deepEqual(r.settled, ["handlers"]);
  });
  await t.step(
    "done and replayed while running: cleared; dead: kept for a replay",
    () => {
      const settled = ["handlers"];
      const done = finishAttempt(
        running(2, { settled }),
        { outcome: "ok", ms: 1, settled: ["forward:b.test"] },
        { now: 3_000, backoff },
      );
      assert.equal(done.status, "done");
      assert.equal("settled" in done, false);
      const dead = finishAttempt(running(3, { settled }), fail(["x"]), {
        now: 3_000,
        backoff,
      });
      assert.equal(dead.status, "dead");
      assert.deepEqual(dead.settled, ["handlers", "x"]);
      const rerun = finishAttempt(
        running(1, { settled, rerun: true }),
        fail(["x"]),
        { now: 3_000, backoff },
      );
      assert.equal(rerun.status, "queued");
      assert.equal("settled" in rerun, false);
    },
  );
});

Deno.test("rearmRecord() keeps the settled targets of a dead or failed record (a replay runs only what did not succeed), and giveUpRecord() keeps them too", () => {
  const settled = ["handlers", "forward:a.test"];
  for (const status of ["failed", "dead", "running"] as const) {
    const r = rearmRecord(record({ status, attempts: 1, settled }), 3_000, 3);
    assert.deepEqual(r.settled, settled, status);
  }
  const lapsed = running(3, { settled, dueAt: 5_000 });
  assert.deepEqual(giveUpRecord(lapsed, 6_000)!.settled, settled);
});
