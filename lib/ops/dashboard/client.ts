/**
 * The dashboard's browser script, type-checked and linted with the rest of
 * the tree: {@link dashboardClient} lists deliveries (polling the admin API),
 * filters them, shows one delivery's headers, payload and last error, and
 * replays it, or replays every delivery the filters show at once (after a
 * confirmation, with its progress). It renders every stored value with `textContent`, never as
 * HTML, and with its bidirectional-control characters shown as escapes
 * ({@link visibleText}), so that a repository or sender name cannot reorder
 * what is shown around it.
 *
 * It runs in the browser only. `page.ts` inlines the source of every function
 * exported here, then calls `dashboardClient(settings)`: under Deno a
 * function's source text is the transpiled JavaScript, so the page gets plain
 * JavaScript with no build step. Hence the rules of this file: its only
 * values are exported functions (no other top-level value, no value import:
 * the browser gets none of them), which reach the page only through
 * `globalThis` and their arguments. The DOM types they use are declared
 * here, narrowly: `lib="dom"` would give the server's modules a `document`
 * too. The pure ones (formatting, filtering, tokenizing) are tested under
 * Deno like any module.
 *
 * @module
 */

import type { DeliveryDetail } from "../admin.ts";
import type { DeliverySummary } from "../../store/types.ts";

/** What the server tells the script: its limits and the statuses it knows. */
export interface ClientSettings {
  /** The delay between two refreshes of the list, in milliseconds. */
  pollMs: number;
  /** How many deliveries the list asks for. */
  listLimit: number;
  /** Payloads larger than this are not fetched unless asked for, then only their start. */
  previewBytes: number;
  /** The statuses with a badge colour of their own. */
  statuses: readonly string[];
}

// The DOM as far as the script uses it. One element type serves for every
// element (a <select>'s `value` and a <button>'s `disabled` alike).

/** A DOM text node. */
export interface TextNode {
  readonly nodeType: number;
}

/** What an element can hold. */
export type Child = El | TextNode;

/** A DOM element, with the properties of the few kinds the page uses. */
export interface El {
  className: string;
  textContent: string | null;
  hidden: boolean;
  title: string;
  tabIndex: number;
  value: string;
  checked: boolean;
  disabled: boolean;
  type: string;
  href: string;
  readonly dataset: Record<string, string | undefined>;
  readonly classList: { toggle(token: string, force?: boolean): boolean };
  readonly children: ArrayLike<El>;
  readonly options: ArrayLike<El>;
  readonly nextElementSibling: El | null;
  readonly previousElementSibling: El | null;
  appendChild(child: Child): void;
  replaceChildren(...children: Child[]): void;
  setAttribute(name: string, value: string): void;
  closest(selector: string): El | null;
  focus(): void;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
}

/** A DOM event (click, keydown, change). */
export interface DomEvent {
  readonly target: El;
  readonly key: string;
  preventDefault(): void;
}

/** The browser's globals that the script uses besides `fetch`. */
export interface Browser {
  document: {
    readonly hidden: boolean;
    readonly activeElement: El | null;
    getElementById(id: string): El | null;
    createElement(tag: string): El;
    createTextNode(text: string): TextNode;
    addEventListener(type: string, listener: (event: DomEvent) => void): void;
  };
  history: { replaceState(data: null, unused: string, url: string): void };
  location: {
    readonly pathname: string;
    readonly search: string;
    readonly hash: string;
  };
  /** The browser's yes-or-no dialog. */
  confirm(message: string): boolean;
  /** The browser's timers (the program's types are Node's, with `Timeout`). */
  setTimeout(handler: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

/** What the page holds between two events. */
export interface State {
  deliveries: DeliverySummary[];
  selected: string | null;
  detail: DeliveryDetail | null;
  payloadFor: string | null;
  timer: number;
  /** Counts list loads, so that a stale answer is dropped. */
  seq: number;
  /** Counts detail loads, likewise. */
  detailSeq: number;
  /** The bulk replay being followed, while it runs. */
  bulkJob: string | null;
}

/** The JSON body of `POST /deliveries/replay`. */
export interface ReplayFilterBody {
  status: string;
  event?: string;
  since?: string;
  until?: string;
}

/** A bulk replay's progress, as `GET /deliveries/replay/<job>` answers it. */
export interface BulkProgress {
  total: number;
  replayed: number;
  failed: number;
  done: boolean;
  truncated?: boolean;
}

/** The running page, passed to every function that touches it. */
export interface Page {
  settings: ClientSettings;
  browser: Browser;
  state: State;
  /** The element of an id the page has. */
  $(id: string): El;
  /** A new element, with a class and a text when given. */
  el(tag: string, className?: string | null, text?: unknown): El;
  /** A new text node. */
  text(text: string): TextNode;
}

/** One piece of a payload as highlighted: a JSON token's class, or null for plain text. */
export interface Segment {
  text: string;
  className: string | null;
}

/**
 * The page script: sets up the page's state, wires its controls, opens the
 * delivery named in the URL's fragment and starts polling.
 */
export function dashboardClient(settings: ClientSettings): void {
  const browser = globalThis as unknown as Browser;
  const { document, location } = browser;
  const page: Page = {
    settings,
    browser,
    state: {
      deliveries: [],
      selected: null,
      detail: null,
      payloadFor: null,
      timer: 0,
      seq: 0,
      detailSeq: 0,
      bulkJob: null,
    },
    $: (id) => document.getElementById(id) as El,
    el(tag, className, text) {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined && text !== null) {
        node.textContent = visibleText(String(text));
      }
      return node;
    },
    text: (text) => document.createTextNode(visibleText(text)),
  };
  listen(page);
  const fromHash = location.hash.length > 1
    ? decodeURIComponent(location.hash.slice(1))
    : null;
  if (fromHash) select(page, fromHash);
  refresh(page);
}

/** Wires the rows, the keyboard, the buttons, the filters and live refresh. */
export function listen(page: Page): void {
  const { $, state, browser } = page;
  const { document } = browser;
  $("rows").addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (tr && tr.dataset.id) select(page, tr.dataset.id);
  });
  $("rows").addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr");
    if (!tr || !tr.dataset.id) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      select(page, tr.dataset.id);
    }
    if (e.key === "ArrowDown" && tr.nextElementSibling) {
      e.preventDefault();
      tr.nextElementSibling.focus();
    }
    if (e.key === "ArrowUp" && tr.previousElementSibling) {
      e.preventDefault();
      tr.previousElementSibling.focus();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.selected) select(page, null);
  });
  $("d-close").addEventListener("click", () => {
    select(page, null);
  });
  $("d-replay").addEventListener("click", () => replay(page));
  $("replay-all").addEventListener("click", () => replayAll(page));
  $("filter-status").addEventListener("change", () => renderList(page));
  $("filter-event").addEventListener("change", () => renderList(page));
  $("live-toggle").addEventListener("change", () => {
    if ($("live-toggle").checked) refresh(page);
    else {
      browser.clearTimeout(state.timer);
      setLive(page, "", "Paused");
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && $("live-toggle").checked) refresh(page);
  });
}

/**
 * `text` with each bidirectional-control character (U+202A–U+202E,
 * U+2066–U+2069, U+200E, U+200F, U+061C) written as a visible escape such
 * as `\u202E`: shown as they are, they reorder the text around them (a
 * sender `"\u202Egnp.exe"` would read `exe.png`).
 */
export function visibleText(text: string): string {
  return text.replace(
    /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0"),
  );
}

/** A same-origin, uncached JSON request to the admin API. */
export function api(path: string, init?: RequestInit): Promise<Response> {
  return fetch(path, {
    credentials: "same-origin",
    cache: "no-store",
    headers: { accept: "application/json" },
    ...init,
  });
}

/** The admin API's path of a delivery's body. */
export function bodyUrl(id: string): string {
  return "/deliveries/" + encodeURIComponent(id) + "/body";
}

/** The class of a status badge: its colour, or `unknown`'s. */
export function badgeClass(
  status: string,
  statuses: readonly string[],
): string {
  const known = statuses.indexOf(status) >= 0;
  return "badge badge-" + (known ? status : "unknown");
}

/** `event.action`, or the event alone. */
export function eventLabel(
  d: Pick<DeliverySummary, "event" | "action">,
): string {
  return d.action ? d.event + "." + d.action : d.event;
}

/** A duration for people: `850 ms`, `2.35 s`, `12.0 s`, `1.5 min`; `—` when unknown. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

/** How long before `now` the time `iso` was: `5 s ago` … `3 d ago`; `—` when unreadable. */
export function formatAgo(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (!isFinite(t)) return "—";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return s + " s ago";
  const m = Math.round(s / 60);
  if (m < 60) return m + " min ago";
  const h = Math.round(m / 60);
  if (h < 48) return h + " h ago";
  return Math.round(h / 24) + " d ago";
}

/** Two digits. */
export function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** A local `YYYY-MM-DD hh:mm:ss`; `—` for none, the text itself when unreadable. */
export function formatWhen(iso: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return String(iso);
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" +
    pad2(d.getDate()) + " " + pad2(d.getHours()) + ":" +
    pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
}

/** {@link formatWhen}, or the time alone when it falls on the same day as `ref`. */
export function sameDay(iso: string | null, ref: string): string {
  const full = formatWhen(iso);
  return iso && ref && full.slice(0, 10) === formatWhen(ref).slice(0, 10)
    ? full.slice(11)
    : full;
}

/** A size for people: `512 B`, `1.5 KiB`, `2.0 MiB`; `—` for no number. */
export function formatBytes(n: number): string {
  if (typeof n !== "number") return "—";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

/** The name the page suggests for a downloaded body. */
export function downloadName(id: string, kind: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, "_") +
    (kind === "form" ? ".txt" : ".json");
}

/** The deliveries that pass the status and event filters (`""`: any). */
export function filterDeliveries(
  deliveries: DeliverySummary[],
  status: string,
  event: string,
): DeliverySummary[] {
  return deliveries.filter((d) =>
    (!status || d.status === status) && (!event || d.event === event)
  );
}

/** `6 deliveries`, or `2 of 6 deliveries` when a filter hides some. */
export function countLabel(shown: number, total: number): string {
  return (shown === total ? "" : shown + " of ") + total +
    (total === 1 ? " delivery" : " deliveries");
}

/** The event filter's choices: every listed event, and the current one, sorted. */
export function eventNames(
  deliveries: DeliverySummary[],
  current: string,
): string[] {
  const seen: Record<string, true> = {};
  deliveries.forEach((d) => {
    seen[d.event] = true;
  });
  if (current) seen[current] = true;
  return Object.keys(seen).sort();
}

/** The detail view's label and value pairs, two pairs a row: the longer values on the left. */
export function detailFields(d: DeliveryDetail): [string, string][] {
  return [
    ["Repository", d.repository || "—"],
    ["Sender", d.sender || "—"],
    ["Received", formatWhen(d.receivedAt)],
    [
      "Attempts",
      String(d.attempts) + (d.replays ? " (replayed " + d.replays + "×)" : ""),
    ],
    ["Started", sameDay(d.startedAt, d.receivedAt)],
    ["Duration", formatDuration(d.durationMs)],
    ["Finished", sameDay(d.finishedAt, d.receivedAt)],
    ["Size", formatBytes(d.size) + (d.contentKind === "form" ? " (form)" : "")],
    ["Target", d.target ? d.target.type + " " + d.target.id : "—"],
    ["Hook", d.hookId || "—"],
    ...(d.orderKey ? [["Order key", d.orderKey] as [string, string]] : []),
    ...(d.after ? [["Waits for", d.after] as [string, string]] : []),
    ...(d.traceId ? [["Trace", d.traceId] as [string, string]] : []),
  ];
}

/** The heading of one run in the detail view: attempt, name, result, exit, time. */
export function runLabel(run: DeliveryDetail["runs"][number]): string {
  const result = run.ok
    ? "ok"
    : run.signal
    ? "killed by " + run.signal
    : run.exitCode !== undefined && run.exitCode !== null
    ? "exit " + run.exitCode
    : "failed";
  return "#" + run.attempt + " " + (run.kind === "script" ? "script " : "") +
    run.handler + " · " + result + " · " + formatDuration(run.ms);
}

/** The runs of each attempt, each script's output below its heading. */
export function renderRuns(page: Page, d: DeliveryDetail): void {
  const { $, el } = page;
  const runs = d.runs || [];
  $("d-runs-box").hidden = runs.length === 0;
  const nodes: El[] = [];
  for (const run of runs) {
    const head = el(
      "div",
      run.ok ? "run" : "run failed",
      visibleText(runLabel(run)),
    );
    nodes.push(head);
    if (run.error && !run.ok) {
      nodes.push(el("div", "muted", visibleText(run.error)));
    }
    if (run.output !== undefined) {
      nodes.push(
        el("pre", "output mono", visibleText(run.output || "(no output)")),
      );
    }
  }
  $("d-runs").replaceChildren(...nodes);
}

/**
 * A payload as shown: a form's `payload` field, indented when it is JSON
 * (`json: true`), else the text as it is.
 */
export function prettyPayload(
  text: string,
  kind: string,
): { json: boolean; text: string } {
  if (kind === "form") {
    try {
      const field = new URLSearchParams(text).get("payload");
      if (field !== null) text = field;
    } catch { /* show as is */ }
  }
  try {
    return { json: true, text: JSON.stringify(JSON.parse(text), null, 2) };
  } catch {
    return { json: false, text: text };
  }
}

/** Indented JSON cut into keys (`j-k`), strings (`j-s`), literals (`j-l`), numbers (`j-n`) and plain text. */
export function jsonSegments(text: string): Segment[] {
  const token =
    /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  const out: Segment[] = [];
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = token.exec(text)) !== null) {
    if (m.index > last) {
      out.push({ text: text.slice(last, m.index), className: null });
    }
    const className = m[1] ? (m[2] ? "j-k" : "j-s") : m[3] ? "j-l" : "j-n";
    out.push({ text: m[1] || m[0], className });
    if (m[2]) out.push({ text: m[2], className: null });
    last = token.lastIndex;
  }
  if (last < text.length) out.push({ text: text.slice(last), className: null });
  return out;
}

/** The first `limit` bytes of `chunks`, in one buffer. */
export function firstBytes(chunks: Uint8Array[], limit: number): Uint8Array {
  const size = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const buf = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (let i = 0; i < chunks.length && at < buf.length; i++) {
    const part = chunks[i]!.subarray(0, buf.length - at);
    buf.set(part, at);
    at += part.length;
  }
  return buf;
}

/** A status badge. */
export function badge(page: Page, status: string): El {
  return page.el("span", badgeClass(status, page.settings.statuses), status);
}

/** The live indicator: its dot's colour (`ok`, `error` or none) and text. */
export function setLive(page: Page, kind: string, text: string): void {
  page.$("live-dot").className = "dot" + (kind ? " " + kind : "");
  page.$("live-text").textContent = text;
}

/** The banner above the list; hidden when `text` is empty. */
export function setNotice(page: Page, text: string): void {
  const notice = page.$("notice");
  notice.hidden = !text;
  notice.textContent = text || "";
}

/** The event filter's options, rebuilt only when the set of events changed. */
export function syncEventOptions(page: Page): void {
  const select = page.$("filter-event");
  const current = select.value;
  const events = eventNames(page.state.deliveries, current);
  const have = Array.from(select.options).slice(1).map((o) => o.value);
  if (have.join("\n") === events.join("\n")) return;
  const all = page.el("option", null, "All events");
  all.value = "";
  const options = [all];
  events.forEach((name) => {
    const option = page.el("option", null, name);
    option.value = name;
    options.push(option);
  });
  select.replaceChildren(...options);
  select.value = current;
}

/** One row of the list. */
export function row(page: Page, d: DeliverySummary): El {
  const { el } = page;
  const tr = el("tr");
  tr.dataset.id = d.id;
  tr.dataset.status = d.status;
  tr.tabIndex = 0;
  if (d.id === page.state.selected) tr.className = "selected";
  const status = el("td", "c-status");
  status.appendChild(badge(page, d.status));
  const event = el("td", "c-event");
  event.appendChild(el("span", "name mono", eventLabel(d)));
  event.appendChild(el("span", "id mono", d.id));
  const repo = el("td", "c-repo", d.repository || "—");
  if (d.repository) repo.title = visibleText(d.repository);
  const sender = el("td", "c-sender", d.sender || "—");
  const received = el("td", "c-received", formatAgo(d.receivedAt, Date.now()));
  received.title = formatWhen(d.receivedAt);
  const took = el("td", "num c-duration", formatDuration(d.durationMs));
  const attempts = el("td", "num c-attempts", d.attempts);
  [status, event, repo, sender, received, took, attempts].forEach((td) => {
    tr.appendChild(td);
  });
  return tr;
}

/** The list under the current filters, keeping the focused row focused. */
export function renderList(page: Page): void {
  const { $, state } = page;
  syncEventOptions(page);
  const shown = filterDeliveries(
    state.deliveries,
    $("filter-status").value,
    $("filter-event").value,
  );
  const active = page.browser.document.activeElement;
  const focused = active && active.dataset ? active.dataset.id : undefined;
  const rows = shown.map((d) => row(page, d));
  $("rows").replaceChildren(...rows);
  if (focused !== undefined) {
    rows.forEach((tr) => {
      if (tr.dataset.id === focused) tr.focus();
    });
  }
  const empty = $("empty");
  empty.hidden = shown.length > 0;
  empty.textContent = state.deliveries.length === 0
    ? "No deliveries yet. They appear here as GitHub sends them."
    : "No delivery matches these filters.";
  $("count").textContent = countLabel(shown.length, state.deliveries.length);
  syncReplayAll(page, shown);
}

/**
 * The filter of "Replay all N shown" for the list's filters: the status
 * (only one a delivery rests in: `dead`, `failed`, `done`, `skipped`), the
 * event, and the receive times the list covers, so that the server selects
 * the deliveries shown and not newer ones (`until`: the newest shown) nor,
 * when the list is cut at `listLimit`, older ones (`since`: the oldest
 * listed). Null when the filters allow no bulk replay.
 */
export function bulkReplayFilter(
  status: string,
  event: string,
  listed: DeliverySummary[],
  shown: DeliverySummary[],
  listLimit: number,
): ReplayFilterBody | null {
  const final = ["dead", "failed", "done", "skipped"];
  if (final.indexOf(status) < 0 || shown.length === 0) return null;
  const filter: ReplayFilterBody = { status: status };
  if (event) filter.event = event;
  const times = shown.map((d) => d.receivedAt).sort();
  filter.until = times[times.length - 1]!;
  if (listed.length >= listLimit) {
    filter.since = listed.map((d) => d.receivedAt).sort()[0]!;
  }
  return filter;
}

/** `Replay all 5 shown`. */
export function replayAllLabel(n: number): string {
  return "Replay all " + n + " shown";
}

/** The question asked before a bulk replay. */
export function replayAllQuestion(n: number, filter: ReplayFilterBody): string {
  return "Replay all " + n + " " + filter.status +
    (filter.event ? " " + filter.event : "") +
    (n === 1 ? " delivery" : " deliveries") +
    " shown? Each runs its handlers again.";
}

/** `Replaying 120 of 500…`, then `Replayed 500` (and how many failed, whether more remain). */
export function replayProgressText(p: BulkProgress): string {
  const failed = p.failed ? " (" + p.failed + " could not be re-armed)" : "";
  const more = p.truncated ? "; more remain: replay again for the rest" : "";
  return p.done
    ? "Replayed " + p.replayed + failed + more
    : "Replaying " + (p.replayed + p.failed) + " of " + p.total + "…" +
      failed;
}

/** Shows "Replay all N shown" when the filters allow it and nothing replays. */
export function syncReplayAll(page: Page, shown: DeliverySummary[]): void {
  const { $, state } = page;
  const button = $("replay-all");
  const filter = bulkReplayFilter(
    $("filter-status").value,
    $("filter-event").value,
    state.deliveries,
    shown,
    page.settings.listLimit,
  );
  button.hidden = filter === null;
  button.disabled = state.bulkJob !== null;
  if (filter !== null) button.textContent = replayAllLabel(shown.length);
}

/** Asks, then replays every delivery the filters show, and follows its progress. */
export function replayAll(page: Page): void {
  const { $, state } = page;
  const shown = filterDeliveries(
    state.deliveries,
    $("filter-status").value,
    $("filter-event").value,
  );
  const filter = bulkReplayFilter(
    $("filter-status").value,
    $("filter-event").value,
    state.deliveries,
    shown,
    page.settings.listLimit,
  );
  if (filter === null || state.bulkJob !== null) return;
  if (!page.browser.confirm(replayAllQuestion(shown.length, filter))) return;
  const msg = $("replay-all-msg");
  $("replay-all").disabled = true;
  state.bulkJob = "";
  msg.textContent = "Replaying…";
  api("/deliveries/replay", {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(filter),
  }).then((res) =>
    res.json().catch(() => ({})).then(
      (body: { job?: string; replayed?: number; message?: string }) => {
        if (res.status !== 202 || !body.job) {
          throw new Error(body.message || "HTTP " + res.status);
        }
        state.bulkJob = body.job;
        msg.textContent = replayProgressText({
          total: body.replayed || 0,
          replayed: 0,
          failed: 0,
          done: false,
        });
        return followReplay(page, body.job);
      },
    )
  ).catch((err) => {
    msg.textContent = "Replay refused: " +
      (err && err.message ? err.message : String(err));
  }).then(() => {
    state.bulkJob = null;
    $("replay-all").disabled = false;
    return refresh(page);
  });
}

/** Polls a bulk replay's progress into the message until it is done. */
export function followReplay(page: Page, job: string): Promise<void> {
  return api("/deliveries/replay/" + encodeURIComponent(job)).then((res) => {
    if (!res.ok) throw new Error("the admin API answered " + res.status);
    return res.json();
  }).then((p: BulkProgress) => {
    page.$("replay-all-msg").textContent = replayProgressText(p);
    if (p.done) return;
    return new Promise<void>((resolve) => {
      page.browser.setTimeout(resolve, 300);
    }).then(() => followReplay(page, job));
  });
}

/** The next refresh, when live refresh is on. */
export function schedule(page: Page): void {
  const { browser, state } = page;
  browser.clearTimeout(state.timer);
  if (page.$("live-toggle").checked) {
    state.timer = browser.setTimeout(
      () => refresh(page),
      page.settings.pollMs,
    );
  }
}

/** Loads the list (and the open delivery), then schedules the next load. */
export function refresh(page: Page): Promise<void> {
  const { $, state } = page;
  page.browser.clearTimeout(state.timer);
  if (page.browser.document.hidden) {
    schedule(page);
    return Promise.resolve();
  }
  const seq = ++state.seq;
  return api("/deliveries?limit=" + page.settings.listLimit).then((res) => {
    if (res.status === 401) {
      throw new Error("not signed in: reload the page to sign in again");
    }
    if (!res.ok) throw new Error("the admin API answered " + res.status);
    return res.json();
  }).then((body: { deliveries?: unknown }) => {
    if (seq !== state.seq) return;
    state.deliveries = Array.isArray(body.deliveries) ? body.deliveries : [];
    renderList(page);
    setNotice(page, "");
    const live = $("live-toggle").checked;
    setLive(
      page,
      live ? "ok" : "",
      (live ? "Live · updated " : "Paused · updated ") +
        new Date().toLocaleTimeString(),
    );
    if (state.selected) return loadDetail(page);
  }).catch((err) => {
    if (seq !== state.seq) return;
    setLive(page, "error", "Offline");
    setNotice(
      page,
      "Cannot load deliveries: " +
        (err && err.message ? err.message : String(err)) + ". Retrying…",
    );
  }).then(() => schedule(page));
}

/** Opens a delivery in the detail view (null closes it), in the URL too. */
export function select(page: Page, id: string | null): Promise<void> {
  const { $, state, browser } = page;
  state.selected = id;
  state.detail = null;
  state.payloadFor = null;
  browser.history.replaceState(
    null,
    "",
    id
      ? "#" + encodeURIComponent(id)
      : browser.location.pathname + browser.location.search,
  );
  Array.from($("rows").children).forEach((tr) => {
    tr.classList.toggle("selected", tr.dataset.id === id);
  });
  $("main").classList.toggle("split", !!id);
  $("detail").hidden = !id;
  $("d-replay-msg").textContent = "";
  if (id) {
    $("d-title").textContent = "Loading…";
    $("d-id").textContent = visibleText(id);
    $("d-badge").hidden = true;
    $("d-meta").replaceChildren();
    $("d-headers").replaceChildren();
    $("d-error-box").hidden = true;
    $("d-payload").replaceChildren();
    $("d-payload-note").hidden = true;
    return loadDetail(page);
  }
  return Promise.resolve();
}

/** Loads the open delivery; its payload the first time. */
export function loadDetail(page: Page): Promise<void> {
  const { $, state } = page;
  const id = state.selected;
  if (id === null) return Promise.resolve();
  const seq = ++state.detailSeq;
  return api("/deliveries/" + encodeURIComponent(id)).then((res) => {
    if (res.status === 404) return null;
    if (!res.ok) throw new Error("the admin API answered " + res.status);
    return res.json();
  }).then((d: DeliveryDetail | null) => {
    if (id !== state.selected || seq !== state.detailSeq) return;
    if (d === null) {
      $("d-title").textContent = "Not found (expired?)";
      $("d-badge").hidden = true;
      $("d-replay").disabled = true;
      return;
    }
    state.detail = d;
    renderDetail(page, d);
    if (state.payloadFor !== id) {
      state.payloadFor = id;
      return loadPayload(page, d);
    }
  }).catch((err) => {
    if (id !== state.selected) return;
    $("d-replay-msg").textContent = "Cannot load this delivery: " +
      (err && err.message ? err.message : String(err));
  });
}

/** The detail view of one delivery: title, fields, last error and headers. */
export function renderDetail(page: Page, d: DeliveryDetail): void {
  const { $, el } = page;
  const b = $("d-badge");
  b.hidden = false;
  b.className = badge(page, d.status).className;
  b.textContent = visibleText(d.status);
  $("d-title").textContent = visibleText(eventLabel(d));
  $("d-id").textContent = visibleText(d.id);
  $("d-replay").disabled = false;
  const nodes: El[] = [];
  detailFields(d).forEach(([name, value]) => {
    const dt = el("dt", null, name);
    const dd = el("dd", null, value);
    dd.dataset.field = name.toLowerCase();
    nodes.push(dt, dd);
  });
  $("d-meta").replaceChildren(...nodes);
  $("d-error-box").hidden = !d.error;
  $("d-error").textContent = visibleText(d.error || "");
  renderRuns(page, d);
  const headers = d.headers || {};
  const trs = Object.keys(headers).sort().map((name) => {
    const tr = el("tr");
    tr.appendChild(el("th", "mono", name));
    tr.appendChild(el("td", "mono", headers[name]));
    return tr;
  });
  $("d-headers").replaceChildren(...trs);
}

/** Shows a payload, highlighted when it is JSON, with a muted `suffix`. */
export function showPayload(
  page: Page,
  text: string,
  kind: string,
  suffix: string,
): void {
  const pre = page.$("d-payload");
  pre.hidden = false;
  const p = prettyPayload(text, kind);
  const nodes: Child[] = p.json
    ? jsonSegments(p.text).map((s) =>
      s.className === null
        ? page.text(s.text)
        : page.el("span", s.className, s.text)
    )
    : [page.text(p.text)];
  if (suffix) nodes.push(page.el("span", "muted", suffix));
  pre.replaceChildren(...nodes);
}

/** Loads and shows a payload; a large one only on request, and only its start. */
export function loadPayload(
  page: Page,
  d: DeliveryDetail,
): Promise<void> | undefined {
  const { $, state } = page;
  const id = d.id;
  const pre = $("d-payload");
  const note = $("d-payload-note");
  $("d-download").href = bodyUrl(id);
  $("d-download").setAttribute("download", downloadName(id, d.contentKind));
  if (d.size > page.settings.previewBytes) {
    pre.hidden = true;
    pre.replaceChildren();
    const more = page.el("button", null, "Show the first 256 KiB");
    more.type = "button";
    more.addEventListener("click", () => {
      more.disabled = true;
      preview(page, id).catch((err) => {
        pre.hidden = false;
        pre.textContent = "Cannot load the payload: " + err.message;
      });
    });
    note.replaceChildren(
      page.text(
        "This payload is " + formatBytes(d.size) +
          ", too large to show here without slowing the page. Download it, or ",
      ),
      more,
    );
    note.hidden = false;
    return;
  }
  note.hidden = true;
  pre.hidden = false;
  pre.textContent = "Loading…";
  return api(bodyUrl(id)).then((res) => {
    if (!res.ok) throw new Error("the admin API answered " + res.status);
    return res.text();
  }).then((text) => {
    if (id === state.selected) showPayload(page, text, d.contentKind, "");
  }).catch((err) => {
    if (id === state.selected) {
      pre.textContent = "Cannot load the payload: " + err.message;
    }
  });
}

/** Reads the first `previewBytes` of a body and shows them as text. */
export function preview(page: Page, id: string): Promise<void> {
  const limit = page.settings.previewBytes;
  return api(bodyUrl(id)).then((res) => {
    if (!res.ok || !res.body) {
      throw new Error("the admin API answered " + res.status);
    }
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    function pump(): Promise<void> {
      if (size >= limit) return reader.cancel().catch(() => {});
      return reader.read().then((r) => {
        if (r.done) return;
        chunks.push(r.value);
        size += r.value.length;
        return pump();
      });
    }
    return pump().then(() => {
      const buf = firstBytes(chunks, limit);
      if (id !== page.state.selected) return;
      const pre = page.$("d-payload");
      pre.hidden = false;
      pre.replaceChildren(
        page.text(new TextDecoder().decode(buf)),
        page.el(
          "span",
          "muted",
          "\n… the first " + formatBytes(buf.length) +
            " only; download the payload for the rest.",
        ),
      );
    });
  });
}

/** Replays the open delivery, says how that went, and refreshes. */
export function replay(page: Page): void {
  const id = page.state.selected;
  if (!id) return;
  const button = page.$("d-replay");
  const msg = page.$("d-replay-msg");
  button.disabled = true;
  msg.textContent = "Replaying…";
  api("/deliveries/" + encodeURIComponent(id) + "/replay", { method: "POST" })
    .then((res) => {
      return res.json().catch(() => ({})).then(
        (body: { message?: string }) => {
          if (id !== page.state.selected) return;
          msg.textContent = res.status === 202
            ? "Replay queued at " + new Date().toLocaleTimeString() + "."
            : "Replay refused: " + (body.message || "HTTP " + res.status);
        },
      );
    }).catch((err) => {
      msg.textContent = "Replay failed: " + err.message;
    }).then(() => {
      button.disabled = false;
      return refresh(page);
    });
}
