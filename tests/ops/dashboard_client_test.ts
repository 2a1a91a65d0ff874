// The dashboard's browser script, its pure parts under Deno: formatting,
// filtering, the detail fields, JSON highlighting, the preview's bytes. The
// parts that touch the page run in headless chromium (dashboard_test.ts).

import assert from "node:assert/strict";
import * as client from "../../lib/ops/dashboard/client.ts";
import {
  badgeClass,
  bodyUrl,
  bulkReplayFilter,
  countLabel,
  detailFields,
  downloadName,
  eventLabel,
  eventNames,
  filterDeliveries,
  firstBytes,
  formatAgo,
  formatBytes,
  formatDuration,
  formatWhen,
  jsonSegments,
  pad2,
  prettyPayload,
  replayAllLabel,
  replayAllQuestion,
  replayProgressText,
  sameDay,
  visibleText,
} from "../../lib/ops/dashboard/client.ts";
import type { DeliveryDetail } from "../../lib/ops/admin.ts";
import type { DeliverySummary } from "../../lib/store/types.ts";

/** A local time as ISO text, so that the expectations hold in any time zone. */
function local(
  y: number,
  mo: number,
  d: number,
  h = 0,
  mi = 0,
  s = 0,
): string {
  return new Date(y, mo - 1, d, h, mi, s).toISOString();
}

function summary(overrides: Partial<DeliverySummary> = {}): DeliverySummary {
  return {
    id: "d-1",
    event: "push",
    action: null,
    status: "done",
    attempts: 1,
    receivedAt: local(2025, 1, 2, 3, 4, 5),
    finishedAt: local(2025, 1, 2, 3, 4, 6),
    error: null,
    repository: "octo-org/hello-world",
    sender: "octocat",
    durationMs: 35,
    size: 2048,
    hookId: "481516",
    ...overrides,
  };
}

function detail(overrides: Partial<DeliveryDetail> = {}): DeliveryDetail {
  return {
    ...summary(),
    headers: {},
    target: { type: "repository", id: "1296269" },
    contentKind: "json",
    replays: 0,
    startedAt: local(2025, 1, 2, 3, 4, 5),
    runs: [],
    ...overrides,
  };
}

Deno.test("formatDuration() reads as ms, s or min", async (t) => {
  const table: [number | null | undefined, string][] = [
    [null, "—"],
    [undefined, "—"],
    [0, "0 ms"],
    [35.4, "35 ms"],
    [999.4, "999 ms"],
    [1000, "1.00 s"],
    [2345, "2.35 s"],
    [9999, "10.00 s"],
    [12000, "12.0 s"],
    [59999, "60.0 s"],
    [60000, "1.0 min"],
    [90000, "1.5 min"],
  ];
  for (const [ms, text] of table) {
    await t.step(String(ms), () => assert.equal(formatDuration(ms), text));
  }
});

Deno.test("formatAgo() counts back from now in s, min, h or d", async (t) => {
  const now = Date.UTC(2025, 0, 10, 12, 0, 0);
  const before = (ms: number) => new Date(now - ms).toISOString();
  const table: [string, string][] = [
    [before(0), "0 s ago"],
    [before(-5000), "0 s ago"],
    [before(59_000), "59 s ago"],
    [before(60_000), "1 min ago"],
    [before(26 * 60_000), "26 min ago"],
    [before(90 * 60_000), "2 h ago"],
    [before(47 * 3600_000), "47 h ago"],
    [before(48 * 3600_000), "2 d ago"],
    ["not a date", "—"],
  ];
  for (const [iso, text] of table) {
    await t.step(`${iso} → ${text}`, () => {
      assert.equal(formatAgo(iso, now), text);
    });
  }
});

Deno.test("formatWhen() and sameDay() show local time, the date only when it differs", () => {
  assert.equal(pad2(7), "07");
  assert.equal(pad2(12), "12");
  assert.equal(formatWhen(local(2025, 1, 2, 3, 4, 5)), "2025-01-02 03:04:05");
  assert.equal(formatWhen(null), "—");
  assert.equal(formatWhen(""), "—");
  assert.equal(formatWhen("soon"), "soon");
  const ref = local(2025, 1, 2, 23, 0, 0);
  assert.equal(sameDay(local(2025, 1, 2, 23, 59, 1), ref), "23:59:01");
  assert.equal(
    sameDay(local(2025, 1, 3, 0, 0, 1), ref),
    "2025-01-03 00:00:01",
  );
  assert.equal(sameDay(null, ref), "—");
});

Deno.test("formatBytes() reads as B, KiB or MiB", async (t) => {
  const table: [number, string][] = [
    [0, "0 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [262144, "256.0 KiB"],
    [1048576, "1.0 MiB"],
    [5.5 * 1048576, "5.5 MiB"],
  ];
  for (const [n, text] of table) {
    await t.step(String(n), () => assert.equal(formatBytes(n), text));
  }
  assert.equal(formatBytes(undefined as unknown as number), "—");
});

Deno.test("eventLabel(), badgeClass(), bodyUrl() and downloadName() name things as the page shows them", () => {
  assert.equal(
    eventLabel({ event: "issues", action: "opened" }),
    "issues.opened",
  );
  assert.equal(eventLabel({ event: "push", action: null }), "push");
  const statuses = ["done", "dead"];
  assert.equal(badgeClass("dead", statuses), "badge badge-dead");
  assert.equal(badgeClass("weird", statuses), "badge badge-unknown");
  assert.equal(bodyUrl("a/b c"), "/deliveries/a%2Fb%20c/body");
  assert.equal(downloadName("a/b:c", "json"), "a_b_c.json");
  assert.equal(downloadName("id-1.x", "form"), "id-1.x.txt");
});

Deno.test("filterDeliveries(), countLabel() and eventNames() drive the filters", () => {
  const list = [
    summary({ id: "1", event: "push", status: "done" }),
    summary({ id: "2", event: "issues", status: "dead" }),
    summary({ id: "3", event: "push", status: "dead" }),
  ];
  const ids = (ds: DeliverySummary[]) => ds.map((d) => d.id);
  assert.deepEqual(ids(filterDeliveries(list, "", "")), ["1", "2", "3"]);
  assert.deepEqual(ids(filterDeliveries(list, "dead", "")), ["2", "3"]);
  assert.deepEqual(ids(filterDeliveries(list, "", "push")), ["1", "3"]);
  assert.deepEqual(ids(filterDeliveries(list, "dead", "push")), ["3"]);
  assert.deepEqual(ids(filterDeliveries(list, "queued", "")), []);
  assert.equal(countLabel(3, 3), "3 deliveries");
  assert.equal(countLabel(1, 1), "1 delivery");
  assert.equal(countLabel(2, 6), "2 of 6 deliveries");
  assert.equal(countLabel(0, 0), "0 deliveries");
  assert.deepEqual(eventNames(list, ""), ["issues", "push"]);
  assert.deepEqual(eventNames([], "ping"), ["ping"], "the chosen one stays");
});

Deno.test("detailFields() lists the detail view's pairs in order", () => {
  assert.deepEqual(
    detailFields(detail({
      replays: 2,
      attempts: 3,
      durationMs: 1500,
      contentKind: "form",
    })),
    [
      ["Repository", "octo-org/hello-world"],
      ["Sender", "octocat"],
      ["Received", "2025-01-02 03:04:05"],
      ["Attempts", "3 (replayed 2×)"],
      ["Started", "03:04:05"],
      ["Duration", "1.50 s"],
      ["Finished", "03:04:06"],
      ["Size", "2.0 KiB (form)"],
      ["Target", "repository 1296269"],
      ["Hook", "481516"],
    ],
  );
  const bare = new Map(detailFields(detail({
    repository: null,
    sender: null,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    target: null,
    hookId: null,
  })));
  for (
    const name of [
      "Repository",
      "Sender",
      "Started",
      "Duration",
      "Finished",
      "Target",
      "Hook",
    ]
  ) {
    assert.equal(bare.get(name), "—", name);
  }
  assert.equal(bare.get("Attempts"), "1");
  assert.equal(bare.has("Trace"), false, "no trace when tracing was off");
  const traced = new Map(detailFields(detail({
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  })));
  assert.equal(traced.get("Trace"), "4bf92f3577b34da6a3ce929d0e0e4736");
});

Deno.test("prettyPayload() indents JSON, unwraps a form's payload, and leaves other text alone", () => {
  assert.deepEqual(prettyPayload('{"a":[1,true]}', "json"), {
    json: true,
    text: '{\n  "a": [\n    1,\n    true\n  ]\n}',
  });
  assert.deepEqual(
    prettyPayload("payload=" + encodeURIComponent('{"zen":"x"}'), "form"),
    { json: true, text: '{\n  "zen": "x"\n}' },
  );
  assert.deepEqual(prettyPayload("a=1&b=2", "form"), {
    json: false,
    text: "a=1&b=2",
  });
  assert.deepEqual(prettyPayload("{not json", "json"), {
    json: false,
    text: "{not json",
  });
});

Deno.test("jsonSegments() cuts JSON into keys, strings, literals, numbers and plain text", () => {
  const text = '{\n  "a\\"b": "x",\n  "n": -1.5e3,\n  "t": [true, null]\n}';
  const segments = jsonSegments(text);
  assert.equal(segments.map((s) => s.text).join(""), text, "nothing lost");
  assert.deepEqual(
    segments.filter((s) => s.className !== null).map((s) => [
      s.className,
      s.text,
    ]),
    [
      ["j-k", '"a\\"b"'],
      ["j-s", '"x"'],
      ["j-k", '"n"'],
      ["j-n", "-1.5e3"],
      ["j-k", '"t"'],
      ["j-l", "true"],
      ["j-l", "null"],
    ],
  );
  assert.deepEqual(segments.slice(0, 3), [
    { text: "{\n  ", className: null },
    { text: '"a\\"b"', className: "j-k" },
    { text: ":", className: null },
  ]);
  assert.deepEqual(jsonSegments(""), []);
});

Deno.test("firstBytes() joins the chunks up to the limit", () => {
  const chunks = [
    new Uint8Array([1, 2, 3]),
    new Uint8Array([4, 5]),
    new Uint8Array([6]),
  ];
  assert.deepEqual(firstBytes(chunks, 100), new Uint8Array([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(firstBytes(chunks, 4), new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual(firstBytes(chunks, 3), new Uint8Array([1, 2, 3]));
  assert.deepEqual(firstBytes([], 10), new Uint8Array([]));
});

Deno.test("the client's functions work from their sources alone, as the browser gets them", () => {
  // Rebuilt from source text in a fresh scope: a reference to anything of
  // the module's scope (an import, a constant) would fail here.
  const sources = Object.values(client).map((fn) => fn.toString()).join("\n");
  const detached = new Function(
    `${sources}\nreturn { detailFields, jsonSegments, prettyPayload, countLabel };`,
  )() as Pick<
    typeof client,
    "detailFields" | "jsonSegments" | "prettyPayload" | "countLabel"
  >;
  const d = detail({ replays: 1 });
  assert.deepEqual(detached.detailFields(d), detailFields(d));
  const json = prettyPayload('{"a":1}', "json").text;
  assert.deepEqual(detached.jsonSegments(json), jsonSegments(json));
  assert.deepEqual(
    detached.prettyPayload("payload=%7B%7D", "form"),
    prettyPayload("payload=%7B%7D", "form"),
  );
  assert.equal(detached.countLabel(1, 2), "1 of 2 deliveries");
});

Deno.test("visibleText() writes bidirectional-control characters as escapes and leaves the rest", async (t) => {
  const table: [string, string][] = [
    ["octo-org/\u202Egnp.exe", "octo-org/\\u202Egnp.exe"],
    ["\u202A\u202B\u202C\u202D\u202E", "\\u202A\\u202B\\u202C\\u202D\\u202E"],
    ["\u2066a\u2067b\u2068c\u2069", "\\u2066a\\u2067b\\u2068c\\u2069"],
    ["\u200E\u200F\u061C", "\\u200E\\u200F\\u061C"],
    [
      "plain, ünïcödé, עברית, العربية, 😀",
      "plain, ünïcödé, עברית, العربية, 😀",
    ],
    ["\u200D\u2028", "\u200D\u2028"],
    ["", ""],
  ];
  for (const [text, shown] of table) {
    await t.step(JSON.stringify(text), () => {
      assert.equal(visibleText(text), shown);
    });
  }
});

Deno.test("runLabel() names the attempt, the script or handler, how it ended and its time", () => {
  const base = { attempt: 2, ms: 1500, ok: false } as const;
  assert.equal(
    client.runLabel({
      ...base,
      handler: "push-app-main",
      kind: "script",
      exitCode: 3,
      signal: null,
    }),
    "#2 script push-app-main · exit 3 · 1.50 s",
  );
  assert.equal(
    client.runLabel({
      ...base,
      handler: "deploy",
      kind: "script",
      exitCode: null,
      signal: "SIGKILL",
    }),
    "#2 script deploy · killed by SIGKILL · 1.50 s",
  );
  assert.equal(
    client.runLabel({ ...base, ok: true, handler: "push", kind: "handler" }),
    "#2 push · ok · 1.50 s",
  );
});

Deno.test("detailFields() shows an ordered delivery's key and what it waits for", () => {
  const fields = new Map(
    detailFields(detail({ orderKey: "octo/app", after: "d-0" })),
  );
  assert.equal(fields.get("Order key"), "octo/app");
  assert.equal(fields.get("Waits for"), "d-0");
  assert.equal(new Map(detailFields(detail())).has("Waits for"), false);
});

Deno.test("bulkReplayFilter() sends the list's filters and the times it covers, only for a status a delivery rests in", async (t) => {
  const at = (s: number) =>
    new Date(Date.UTC(2025, 0, 2, 3, 4, s)).toISOString();
  // Newest first, as the admin API lists them.
  const listed = [
    summary({ id: "4", status: "dead", event: "push", receivedAt: at(40) }),
    summary({ id: "3", status: "done", event: "push", receivedAt: at(30) }),
    summary({ id: "2", status: "dead", event: "issues", receivedAt: at(20) }),
    summary({ id: "1", status: "dead", event: "push", receivedAt: at(10) }),
  ];
  const shownFor = (status: string, event: string) =>
    filterDeliveries(listed, status, event);
  await t.step("a list not cut at its limit: no since", () => {
    assert.deepEqual(
      bulkReplayFilter("dead", "", listed, shownFor("dead", ""), 200),
      { status: "dead", until: at(40) },
    );
  });
  await t.step("the event, and until the newest shown", () => {
    assert.deepEqual(
      bulkReplayFilter("done", "push", listed, shownFor("done", "push"), 200),
      { status: "done", event: "push", until: at(30) },
    );
  });
  await t.step("a list cut at its limit: since the oldest listed", () => {
    assert.deepEqual(
      bulkReplayFilter("dead", "issues", listed, shownFor("dead", "issues"), 4),
      { status: "dead", event: "issues", since: at(10), until: at(20) },
    );
  });
  await t.step(
    "no bulk replay for all statuses, queued, running, or nothing shown",
    () => {
      for (const status of ["", "queued", "running"]) {
        assert.equal(
          bulkReplayFilter(status, "", listed, shownFor(status, ""), 200),
          null,
          status,
        );
      }
      assert.equal(bulkReplayFilter("skipped", "", listed, [], 200), null);
    },
  );
});

Deno.test("replayAllLabel(), replayAllQuestion() and replayProgressText() say what a bulk replay does and has done", () => {
  assert.equal(replayAllLabel(500), "Replay all 500 shown");
  assert.equal(
    replayAllQuestion(3, { status: "dead", event: "push" }),
    "Replay all 3 dead push deliveries shown? Each runs its handlers again.",
  );
  assert.equal(
    replayAllQuestion(1, { status: "failed" }),
    "Replay all 1 failed delivery shown? Each runs its handlers again.",
  );
  assert.equal(
    replayProgressText({ total: 500, replayed: 120, failed: 0, done: false }),
    "Replaying 120 of 500…",
  );
  assert.equal(
    replayProgressText({ total: 500, replayed: 500, failed: 0, done: true }),
    "Replayed 500",
  );
  assert.equal(
    replayProgressText({ total: 500, replayed: 118, failed: 2, done: false }),
    "Replaying 120 of 500… (2 could not be re-armed)",
  );
  assert.equal(
    replayProgressText({
      total: 10_000,
      replayed: 10_000,
      failed: 0,
      done: true,
      truncated: true,
    }),
    "Replayed 10000; more remain: replay again for the rest",
  );
});
