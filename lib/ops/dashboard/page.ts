/**
 * The dashboard page: the HTML and CSS shell, and the browser script of
 * `client.ts` inlined into it, so that the page is one self-contained
 * document (no CDN, no build step, no external asset). Its one `<style>` and
 * one `<script>` carry the response's nonce; everything else is fixed and
 * built once, when the module loads.
 *
 * It renders markup and nothing else: the headers, the nonce and who may see
 * the page are `route.ts`'s; what the page does in the browser is
 * `client.ts`'s.
 *
 * @module
 */

import * as client from "./client.ts";
import type { ClientSettings } from "./client.ts";

/** Payloads larger than this are not fetched by the page, only linked. */
export const PREVIEW_BYTES = 256 * 1024;

/** The delivery statuses, in the order of the status filter. */
const STATUSES = [
  "queued",
  "running",
  "done",
  "failed",
  "dead",
  "skipped",
] as const;

/**
 * The page's script as served: the source of every function of `client.ts`
 * (plain JavaScript, as Deno runs it) in one function scope, then
 * `dashboardClient(settings)`. Throws when that text could end the
 * `<script>` element early, or `client.ts` exports a value that is not a
 * function: programmer errors.
 *
 * @example
 * ```ts
 * import { clientScript } from "./page.ts";
 * const script = clientScript({ pollMs: 1000, listLimit: 10, previewBytes: 1, statuses: [] });
 * script.includes("function dashboardClient(settings) {"); // true
 * ```
 */
export function clientScript(settings: ClientSettings): string {
  const functions = Object.entries(client).map(([name, value]) => {
    if (typeof value !== "function") {
      throw new TypeError(
        `Cannot inline the dashboard script: client.ts exports ${name}, which is not a function`,
      );
    }
    return value.toString();
  });
  const script = `
"use strict";
(function () {
${functions.join("\n")}
dashboardClient(${JSON.stringify(settings)});
})();
`;
  if (/<\/script|<!--/i.test(script)) {
    throw new Error(
      "Cannot inline the dashboard script: it contains '</script' or '<!--'",
    );
  }
  return script;
}

/**
 * The page's HTML with `nonce` on its one `<style>` and one `<script>`.
 *
 * @example
 * ```ts
 * import { renderDashboard } from "./page.ts";
 * renderDashboard("abc").includes('<script nonce="abc">'); // true
 * ```
 */
export function renderDashboard(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Deliveries · hookgate</title>
<link rel="icon" href="${FAVICON}">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${BODY}
<script nonce="${nonce}">${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}

const FAVICON = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">' +
    '<rect width="16" height="16" rx="4" fill="#0969da"/>' +
    '<path d="M4 8h5M7 5l3 3-3 3" stroke="#fff" stroke-width="1.8" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' +
    "</svg>",
);

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f6f8fa; --panel: #ffffff; --fg: #1f2328; --muted: #59636e;
  --line: #d1d9e0; --soft: #eff2f5; --hover: #f3f6fa; --sel: #ddf4ff;
  --accent: #0969da; --code: #f6f8fa;
  --green: #1a7f37; --green-bg: #dafbe1;
  --grey: #59636e; --grey-bg: #eff2f5;
  --blue: #0969da; --blue-bg: #ddf4ff;
  --orange: #bc4c00; --orange-bg: #fff1e5;
  --red: #cf222e; --red-bg: #ffebe9;
  --k: #0550ae; --s: #0a3069; --n: #953800; --l: #8250df;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #151b23; --fg: #e6edf3; --muted: #9198a1;
    --line: #3d444d; --soft: #212830; --hover: #1c232c; --sel: #102a46;
    --accent: #4493f8; --code: #0d1117;
    --green: #3fb950; --green-bg: #12261e; --grey: #9198a1; --grey-bg: #212830;
    --blue: #4493f8; --blue-bg: #121d2f; --orange: #db6d28; --orange-bg: #2b1a0e;
    --red: #f85149; --red-bg: #2d1214;
    --k: #79c0ff; --s: #a5d6ff; --n: #ffa657; --l: #d2a8ff;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Helvetica, Arial, sans-serif;
  background: var(--bg); color: var(--fg);
}
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px; }
header.bar {
  display: flex; align-items: center; gap: 16px; padding: 12px 24px;
  background: var(--panel); border-bottom: 1px solid var(--line);
}
header.bar h1 { font-size: 16px; margin: 0; display: flex; align-items: center; gap: 10px; }
header.bar h1 .logo {
  display: inline-grid; place-items: center; width: 24px; height: 24px; border-radius: 6px;
  background: var(--accent); color: #fff; font-size: 14px;
}
header.bar h1 .sub { color: var(--muted); font-weight: 400; }
.live { margin-left: auto; display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 12px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--grey); }
.dot.ok { background: var(--green); box-shadow: 0 0 0 3px var(--green-bg); }
.dot.error { background: var(--red); box-shadow: 0 0 0 3px var(--red-bg); }
.toolbar { display: flex; align-items: center; gap: 16px; padding: 14px 24px 0; flex-wrap: wrap; }
.toolbar label { display: flex; align-items: center; gap: 6px; color: var(--muted); font-size: 13px; }
select, button {
  font: inherit; font-size: 13px; color: var(--fg); background: var(--panel);
  border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px;
}
button { cursor: pointer; font-weight: 500; }
button:hover:not(:disabled) { background: var(--soft); }
button:disabled { opacity: .6; cursor: default; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover:not(:disabled) { background: var(--accent); filter: brightness(1.1); }
.muted { color: var(--muted); }
.banner {
  margin: 12px 24px 0; padding: 8px 12px; border-radius: 6px;
  background: var(--red-bg); color: var(--red); border: 1px solid var(--red);
}
main { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; padding: 14px 24px 24px; align-items: start; }
main.split { grid-template-columns: minmax(0, 1.45fr) minmax(0, 1fr); }
main.split #deliveries { font-size: 13px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
table { width: 100%; border-collapse: collapse; }
#deliveries th {
  text-align: left; font-size: 12px; font-weight: 600; color: var(--muted);
  padding: 8px 10px; background: var(--soft); border-bottom: 1px solid var(--line); white-space: nowrap;
}
#deliveries td { padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
#deliveries tbody tr:last-child td { border-bottom: 0; }
#deliveries tbody tr { cursor: pointer; }
#deliveries tbody tr:hover { background: var(--hover); }
#deliveries tbody tr.selected { background: var(--sel); }
#deliveries tbody tr:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
#deliveries th.num { text-align: right; }
.c-event .name { font-weight: 600; white-space: nowrap; }
.c-event .id { display: block; color: var(--muted); font-size: 11px; white-space: nowrap; }
main.split .c-event .id { max-width: 150px; overflow: hidden; text-overflow: ellipsis; }
.c-repo, .c-sender { max-width: 220px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.c-received { white-space: nowrap; }
main.split .c-sender { display: none; }
.badge {
  display: inline-flex; align-items: center; gap: 5px; padding: 1px 8px; border-radius: 999px;
  font-size: 12px; font-weight: 600; border: 1px solid currentColor; white-space: nowrap;
}
.badge::before { content: ""; width: 6px; height: 6px; border-radius: 50%; background: currentColor; }
.badge-done { color: var(--green); background: var(--green-bg); }
.badge-skipped { color: var(--grey); background: var(--grey-bg); }
.badge-queued, .badge-running { color: var(--blue); background: var(--blue-bg); }
.badge-failed { color: var(--orange); background: var(--orange-bg); }
.badge-dead { color: var(--red); background: var(--red-bg); }
.badge-unknown { color: var(--grey); background: var(--grey-bg); }
.badge-running::before { animation: pulse 1.2s ease-in-out infinite; }
@keyframes pulse { 50% { opacity: .25; } }
.empty { padding: 32px; text-align: center; color: var(--muted); margin: 0; }
.detail { position: sticky; top: 12px; max-height: calc(100vh - 140px); overflow: auto; padding: 16px 18px; }
.detail-head { display: flex; align-items: flex-start; gap: 12px; }
.detail-head .title { flex: 1; min-width: 0; }
.detail-head h2 { font-size: 16px; margin: 0 0 4px; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.detail-head .id { color: var(--muted); font-size: 12px; word-break: break-all; }
.detail-head .actions { display: flex; gap: 8px; }
.detail h3 { font-size: 13px; margin: 18px 0 6px; display: flex; align-items: center; gap: 10px; }
.detail h3 a { font-weight: 400; font-size: 12px; color: var(--accent); }
#d-replay-msg { margin: 6px 0 0; font-size: 12px; min-height: 1em; }
dl.meta { display: grid; grid-template-columns: max-content minmax(0, 1.3fr) max-content minmax(0, 1fr); gap: 3px 14px; margin: 14px 0 0; font-size: 13px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
table.kv { font-size: 12px; border: 1px solid var(--line); border-radius: 6px; border-collapse: separate; border-spacing: 0; }
table.kv th, table.kv td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.kv tr:last-child th, table.kv tr:last-child td { border-bottom: 0; }
table.kv th { font-weight: 500; color: var(--muted); white-space: nowrap; width: 1%; }
table.kv td { overflow-wrap: anywhere; }
pre {
  margin: 0; padding: 10px 12px; background: var(--code); border: 1px solid var(--line); border-radius: 6px;
  overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere;
}
pre.payload { max-height: 420px; }
main.split pre.payload { max-height: none; }
pre.error { color: var(--red); background: var(--red-bg); border-color: var(--red); }
.runs .run { margin-top: 8px; font-weight: 600; }
.runs .run.failed { color: var(--red); }
pre.output { max-height: 320px; }
.j-k { color: var(--k); } .j-s { color: var(--s); } .j-n { color: var(--n); } .j-l { color: var(--l); }
.note { font-size: 13px; padding: 8px 12px; border-radius: 6px; background: var(--soft); border: 1px solid var(--line); margin: 0 0 8px; }
.note button { margin-left: 8px; }
@media (max-width: 1100px) {
  dl.meta { grid-template-columns: max-content minmax(0, 1fr); }
}
@media (max-width: 900px) {
  main.split { grid-template-columns: minmax(0, 1fr); }
  .detail { position: static; max-height: none; }
  main.split pre.payload { max-height: 420px; }
  .c-sender, .c-duration { display: none; }
}
`;

const STATUS_OPTIONS = STATUSES
  .map((s) => `<option value="${s}">${s}</option>`).join("");

const BODY = `
<header class="bar">
  <h1><span class="logo" aria-hidden="true">&#8594;</span>hookgate <span class="sub">Recent deliveries</span></h1>
  <div class="live" role="status"><span id="live-dot" class="dot"></span><span id="live-text">Connecting…</span></div>
</header>
<div class="toolbar">
  <label>Status <select id="filter-status"><option value="">All</option>${STATUS_OPTIONS}</select></label>
  <label>Event <select id="filter-event"><option value="">All events</option></select></label>
  <label><input type="checkbox" id="live-toggle" checked> Live refresh</label>
  <span id="count" class="muted"></span>
  <button id="replay-all" type="button" title="Run every delivery shown again" hidden></button>
  <span id="replay-all-msg" class="muted" role="status"></span>
</div>
<div id="notice" class="banner" hidden></div>
<main id="main">
  <section class="card list">
    <table id="deliveries">
      <thead><tr>
        <th>Status</th><th>Event</th><th>Repository</th><th class="c-sender">Sender</th>
        <th>Received</th><th class="num c-duration">Duration</th><th class="num">Attempts</th>
      </tr></thead>
      <tbody id="rows"></tbody>
    </table>
    <p id="empty" class="empty" hidden></p>
  </section>
  <section id="detail" class="card detail" hidden aria-live="polite">
    <div class="detail-head">
      <div class="title">
        <h2><span id="d-badge" class="badge"></span><span id="d-title"></span></h2>
        <div id="d-id" class="id mono"></div>
      </div>
      <div class="actions">
        <button id="d-replay" class="primary" type="button" title="Run the stored payload again">Replay</button>
        <button id="d-close" type="button" aria-label="Close">&#215;</button>
      </div>
    </div>
    <p id="d-replay-msg" class="muted"></p>
    <dl id="d-meta" class="meta"></dl>
    <div id="d-error-box" hidden>
      <h3>Last error</h3>
      <pre id="d-error" class="error"></pre>
    </div>
    <div id="d-runs-box" hidden>
      <h3>Runs</h3>
      <div id="d-runs" class="runs"></div>
    </div>
    <h3>Payload <a id="d-download" download>Download</a></h3>
    <div id="d-payload-note" class="note" hidden></div>
    <pre id="d-payload" class="payload mono"></pre>
    <h3>Headers</h3>
    <table id="d-headers" class="kv"></table>
  </section>
</main>
`;

/** The script of every page, computed once (when the module loads), not per request. */
export const DASHBOARD_SCRIPT: string = clientScript({
  pollMs: 2500,
  listLimit: 200,
  previewBytes: PREVIEW_BYTES,
  statuses: STATUSES,
});
