/**
 * The deliveries dashboard at `GET /dashboard`: one self-contained HTML page
 * (inline CSS and JS, no CDN, no build step, no external asset) that lists
 * recent deliveries like GitHub's "Recent Deliveries", filters them, shows one
 * delivery's headers, payload and last error, and replays it. The page only
 * talks to the admin API (`lib/admin.ts`) with the browser's credentials; it
 * renders every stored value with `textContent`, never as HTML.
 *
 * It serves the page and nothing else: listing, reading and replaying are the
 * admin API's, with its cross-site checks. Access is HTTP Basic (any user
 * name, `ADMIN_TOKEN` as the password, so a browser prompts) or `Bearer`;
 * without `ADMIN_TOKEN` the page answers 404.
 *
 * @module
 */

import { isAuthorized } from "../admin.ts";
import { errorResponse } from "../../http/responses.ts";
import type { Route } from "../../http/server.ts";

/** Payloads larger than this are not fetched by the page, only linked. */
export const PREVIEW_BYTES = 256 * 1024;

/** Options of {@link createDashboardRoute}. */
export interface DashboardOptions {
  /** `ADMIN_TOKEN`; unset or empty hides the dashboard (404). */
  token: string | undefined;
}

/**
 * A fresh random nonce for one response's scripts and styles: 16 random
 * bytes in base64.
 *
 * @example
 * ```ts
 * import { createNonce } from "./route.ts";
 * createNonce().length; // 24
 * ```
 */
export function createNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/**
 * The `Content-Security-Policy` of the page: nothing but its own nonced
 * script and style, `fetch` to this origin, and images from here or `data:`.
 *
 * @example
 * ```ts
 * import { contentSecurityPolicy } from "./route.ts";
 * contentSecurityPolicy("abc").startsWith("default-src 'none'"); // true
 * ```
 */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * The response headers of the page for one nonce: the CSP plus `nosniff`,
 * no referrer, no caching and no framing.
 *
 * @example
 * ```ts
 * import { dashboardHeaders } from "./route.ts";
 * dashboardHeaders("abc")["cache-control"]; // "no-store"
 * ```
 */
export function dashboardHeaders(nonce: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": contentSecurityPolicy(nonce),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
  };
}

/**
 * The dashboard route: `GET`/`HEAD` `/dashboard` (`/dashboard/` redirects
 * there); `null` (not mine) for every other path.
 *
 * @example
 * ```ts
 * import { createDashboardRoute } from "./route.ts";
 * const route = createDashboardRoute({ token: "s3cret" });
 * const url = new URL("http://localhost/dashboard");
 * const res = await route(new Request(url, { headers: { authorization: "Bearer s3cret" } }), url);
 * res?.status; // 200
 * ```
 */
export function createDashboardRoute(options: DashboardOptions): Route {
  const { token } = options;
  return (request, url) => {
    if (url.pathname !== "/dashboard" && url.pathname !== "/dashboard/") {
      return null;
    }
    if (!token) return errorResponse(404, "not_found", "Nothing here.");
    if (url.pathname === "/dashboard/") {
      // Browsers resend Basic credentials without a new challenge only below
      // the "directory" of the page that was challenged: "/" for
      // "/dashboard", but "/dashboard/" for "/dashboard/", which would leave
      // the page's calls to "/deliveries" unauthenticated.
      return new Response(null, {
        status: 308,
        headers: { location: `/dashboard${url.search}` },
      });
    }
    if (!isAuthorized(request, token)) {
      return errorResponse(
        401,
        "unauthorized",
        "Sign in with any user name and the ADMIN_TOKEN as the password.",
        {
          "www-authenticate": 'Basic realm="hookgate"',
          "cache-control": "no-store",
        },
      );
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorResponse(405, "method_not_allowed", "Use GET.", {
        allow: "GET, HEAD",
      });
    }
    const nonce = createNonce();
    return new Response(
      request.method === "HEAD" ? null : renderDashboard(nonce),
      { headers: dashboardHeaders(nonce) },
    );
  };
}

/**
 * The page's HTML with `nonce` on its one `<style>` and one `<script>`.
 *
 * @example
 * ```ts
 * import { renderDashboard } from "./route.ts";
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
<script nonce="${nonce}">${SCRIPT}</script>
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

const STATUS_OPTIONS = [
  "queued",
  "running",
  "done",
  "failed",
  "dead",
  "skipped",
]
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
    <h3>Payload <a id="d-download" download>Download</a></h3>
    <div id="d-payload-note" class="note" hidden></div>
    <pre id="d-payload" class="payload mono"></pre>
    <h3>Headers</h3>
    <table id="d-headers" class="kv"></table>
  </section>
</main>
`;

// The page script. It is plain ES2020 in a TypeScript string: no template
// literals inside, so the only interpolation is the nonce above.
const SCRIPT = `
"use strict";
(function () {
  var POLL_MS = 2500;
  var LIST_LIMIT = 200;
  var PREVIEW_BYTES = ${PREVIEW_BYTES};
  var STATUSES = ["queued", "running", "done", "failed", "dead", "skipped"];
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    deliveries: [],
    selected: null,
    detail: null,
    payloadFor: null,
    timer: 0,
    seq: 0,
    detailSeq: 0,
  };

  function api(path, init) {
    var options = { credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" } };
    if (init) for (var k in init) options[k] = init[k];
    return fetch(path, options);
  }
  function enc(id) { return encodeURIComponent(id); }
  function bodyUrl(id) { return "/deliveries/" + enc(id) + "/body"; }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function badge(status) {
    var known = STATUSES.indexOf(status) >= 0;
    return el("span", "badge badge-" + (known ? status : "unknown"), status);
  }
  function eventLabel(d) { return d.action ? d.event + "." + d.action : d.event; }
  function duration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
    return (ms / 60000).toFixed(1) + " min";
  }
  function ago(iso) {
    var t = Date.parse(iso);
    if (!isFinite(t)) return "—";
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + " s ago";
    var m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    var h = Math.round(m / 60);
    if (h < 48) return h + " h ago";
    return Math.round(h / 24) + " d ago";
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function when(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  // The time alone when it falls on the same day as "ref".
  function sameDay(iso, ref) {
    var full = when(iso);
    return iso && ref && full.slice(0, 10) === when(ref).slice(0, 10) ? full.slice(11) : full;
  }
  function bytes(n) {
    if (typeof n !== "number") return "—";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function setLive(kind, text) {
    $("live-dot").className = "dot" + (kind ? " " + kind : "");
    $("live-text").textContent = text;
  }
  function setNotice(text) {
    var notice = $("notice");
    notice.hidden = !text;
    notice.textContent = text || "";
  }

  function syncEventOptions() {
    var select = $("filter-event");
    var current = select.value;
    var seen = {};
    state.deliveries.forEach(function (d) { seen[d.event] = true; });
    if (current) seen[current] = true;
    var events = Object.keys(seen).sort();
    var have = Array.prototype.slice.call(select.options, 1).map(function (o) { return o.value; });
    if (have.join("\\n") === events.join("\\n")) return;
    var options = [el("option", null, "All events")];
    options[0].value = "";
    events.forEach(function (name) {
      var option = el("option", null, name);
      option.value = name;
      options.push(option);
    });
    select.replaceChildren.apply(select, options);
    select.value = current;
  }

  function row(d) {
    var tr = el("tr");
    tr.dataset.id = d.id;
    tr.dataset.status = d.status;
    tr.tabIndex = 0;
    if (d.id === state.selected) tr.className = "selected";
    var status = el("td", "c-status");
    status.appendChild(badge(d.status));
    var event = el("td", "c-event");
    event.appendChild(el("span", "name mono", eventLabel(d)));
    event.appendChild(el("span", "id mono", d.id));
    var repo = el("td", "c-repo", d.repository || "—");
    if (d.repository) repo.title = d.repository;
    var sender = el("td", "c-sender", d.sender || "—");
    var received = el("td", "c-received", ago(d.receivedAt));
    received.title = when(d.receivedAt);
    var took = el("td", "num c-duration", duration(d.durationMs));
    var attempts = el("td", "num c-attempts", d.attempts);
    [status, event, repo, sender, received, took, attempts].forEach(function (td) { tr.appendChild(td); });
    return tr;
  }

  function renderList() {
    syncEventOptions();
    var status = $("filter-status").value;
    var event = $("filter-event").value;
    var shown = state.deliveries.filter(function (d) {
      return (!status || d.status === status) && (!event || d.event === event);
    });
    var focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.id : undefined;
    var rows = shown.map(row);
    var tbody = $("rows");
    tbody.replaceChildren.apply(tbody, rows);
    if (focused !== undefined) {
      rows.forEach(function (tr) { if (tr.dataset.id === focused) tr.focus(); });
    }
    var empty = $("empty");
    empty.hidden = shown.length > 0;
    empty.textContent = state.deliveries.length === 0
      ? "No deliveries yet. They appear here as GitHub sends them."
      : "No delivery matches these filters.";
    var total = state.deliveries.length;
    $("count").textContent = (shown.length === total ? "" : shown.length + " of ") +
      total + (total === 1 ? " delivery" : " deliveries");
  }

  function schedule() {
    clearTimeout(state.timer);
    if ($("live-toggle").checked) state.timer = setTimeout(refresh, POLL_MS);
  }

  function refresh() {
    clearTimeout(state.timer);
    if (document.hidden) { schedule(); return Promise.resolve(); }
    var seq = ++state.seq;
    return api("/deliveries?limit=" + LIST_LIMIT).then(function (res) {
      if (res.status === 401) throw new Error("not signed in: reload the page to sign in again");
      if (!res.ok) throw new Error("the admin API answered " + res.status);
      return res.json();
    }).then(function (body) {
      if (seq !== state.seq) return;
      state.deliveries = Array.isArray(body.deliveries) ? body.deliveries : [];
      renderList();
      setNotice("");
      setLive($("live-toggle").checked ? "ok" : "", ($("live-toggle").checked ? "Live · updated " : "Paused · updated ") + new Date().toLocaleTimeString());
      if (state.selected) return loadDetail();
    }).catch(function (err) {
      if (seq !== state.seq) return;
      setLive("error", "Offline");
      setNotice("Cannot load deliveries: " + (err && err.message ? err.message : String(err)) + ". Retrying…");
    }).then(schedule);
  }

  function select(id) {
    state.selected = id;
    state.detail = null;
    state.payloadFor = null;
    history.replaceState(null, "", id ? "#" + enc(id) : location.pathname + location.search);
    Array.prototype.forEach.call($("rows").children, function (tr) {
      tr.classList.toggle("selected", tr.dataset.id === id);
    });
    $("main").classList.toggle("split", !!id);
    $("detail").hidden = !id;
    $("d-replay-msg").textContent = "";
    if (id) {
      $("d-title").textContent = "Loading…";
      $("d-id").textContent = id;
      $("d-badge").hidden = true;
      $("d-meta").replaceChildren();
      $("d-headers").replaceChildren();
      $("d-error-box").hidden = true;
      $("d-payload").replaceChildren();
      $("d-payload-note").hidden = true;
      return loadDetail();
    }
    return Promise.resolve();
  }

  function loadDetail() {
    var id = state.selected;
    var seq = ++state.detailSeq;
    return api("/deliveries/" + enc(id)).then(function (res) {
      if (res.status === 404) return null;
      if (!res.ok) throw new Error("the admin API answered " + res.status);
      return res.json();
    }).then(function (d) {
      if (id !== state.selected || seq !== state.detailSeq) return;
      if (d === null) {
        $("d-title").textContent = "Not found (expired?)";
        $("d-badge").hidden = true;
        $("d-replay").disabled = true;
        return;
      }
      state.detail = d;
      renderDetail(d);
      if (state.payloadFor !== id) {
        state.payloadFor = id;
        return loadPayload(d);
      }
    }).catch(function (err) {
      if (id !== state.selected) return;
      $("d-replay-msg").textContent = "Cannot load this delivery: " + (err && err.message ? err.message : String(err));
    });
  }

  function renderDetail(d) {
    var b = $("d-badge");
    b.hidden = false;
    b.className = badge(d.status).className;
    b.textContent = d.status;
    $("d-title").textContent = eventLabel(d);
    $("d-id").textContent = d.id;
    $("d-replay").disabled = false;
    // Two pairs a row: the longer values on the left.
    var fields = [
      ["Repository", d.repository || "—"],
      ["Sender", d.sender || "—"],
      ["Received", when(d.receivedAt)],
      ["Attempts", String(d.attempts) + (d.replays ? " (replayed " + d.replays + "×)" : "")],
      ["Started", sameDay(d.startedAt, d.receivedAt)],
      ["Duration", duration(d.durationMs)],
      ["Finished", sameDay(d.finishedAt, d.receivedAt)],
      ["Size", bytes(d.size) + (d.contentKind === "form" ? " (form)" : "")],
      ["Target", d.target ? d.target.type + " " + d.target.id : "—"],
      ["Hook", d.hookId || "—"],
    ];
    var nodes = [];
    fields.forEach(function (f) {
      var dt = el("dt", null, f[0]);
      var dd = el("dd", null, f[1]);
      dd.dataset.field = f[0].toLowerCase();
      nodes.push(dt, dd);
    });
    var meta = $("d-meta");
    meta.replaceChildren.apply(meta, nodes);
    $("d-error-box").hidden = !d.error;
    $("d-error").textContent = d.error || "";
    var headers = d.headers || {};
    var trs = Object.keys(headers).sort().map(function (name) {
      var tr = el("tr");
      tr.appendChild(el("th", "mono", name));
      tr.appendChild(el("td", "mono", headers[name]));
      return tr;
    });
    var table = $("d-headers");
    table.replaceChildren.apply(table, trs);
  }

  function pretty(text, kind) {
    if (kind === "form") {
      try {
        var field = new URLSearchParams(text).get("payload");
        if (field !== null) text = field;
      } catch (e) { /* show as is */ }
    }
    try {
      return { json: true, text: JSON.stringify(JSON.parse(text), null, 2) };
    } catch (e) {
      return { json: false, text: text };
    }
  }

  var TOKEN = /("(?:[^"\\\\]|\\\\.)*")(\\s*:)?|\\b(true|false|null)\\b|-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?/g;
  function highlight(text) {
    var out = [];
    var last = 0;
    var m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
      var cls = m[1] ? (m[2] ? "j-k" : "j-s") : m[3] ? "j-l" : "j-n";
      out.push(el("span", cls, m[1] || m[0]));
      if (m[2]) out.push(document.createTextNode(m[2]));
      last = TOKEN.lastIndex;
    }
    if (last < text.length) out.push(document.createTextNode(text.slice(last)));
    return out;
  }

  function showPayload(text, kind, suffix) {
    var pre = $("d-payload");
    pre.hidden = false;
    var p = pretty(text, kind);
    var nodes = p.json ? highlight(p.text) : [document.createTextNode(p.text)];
    if (suffix) nodes.push(el("span", "muted", suffix));
    pre.replaceChildren.apply(pre, nodes);
  }

  function loadPayload(d) {
    var id = d.id;
    var pre = $("d-payload");
    var note = $("d-payload-note");
    $("d-download").href = bodyUrl(id);
    $("d-download").setAttribute("download", id.replace(/[^A-Za-z0-9._-]/g, "_") + (d.contentKind === "form" ? ".txt" : ".json"));
    if (d.size > PREVIEW_BYTES) {
      pre.hidden = true;
      pre.replaceChildren();
      var more = el("button", null, "Show the first 256 KiB");
      more.type = "button";
      more.addEventListener("click", function () {
        more.disabled = true;
        preview(id).catch(function (err) { pre.hidden = false; pre.textContent = "Cannot load the payload: " + err.message; });
      });
      note.replaceChildren(
        document.createTextNode("This payload is " + bytes(d.size) + ", too large to show here without slowing the page. Download it, or "),
        more,
      );
      note.hidden = false;
      return;
    }
    note.hidden = true;
    pre.hidden = false;
    pre.textContent = "Loading…";
    return api(bodyUrl(id)).then(function (res) {
      if (!res.ok) throw new Error("the admin API answered " + res.status);
      return res.text();
    }).then(function (text) {
      if (id === state.selected) showPayload(text, d.contentKind, "");
    }).catch(function (err) {
      if (id === state.selected) pre.textContent = "Cannot load the payload: " + err.message;
    });
  }

  function preview(id) {
    return api(bodyUrl(id)).then(function (res) {
      if (!res.ok || !res.body) throw new Error("the admin API answered " + res.status);
      var reader = res.body.getReader();
      var chunks = [];
      var size = 0;
      function pump() {
        if (size >= PREVIEW_BYTES) return reader.cancel().catch(function () {});
        return reader.read().then(function (r) {
          if (r.done) return;
          chunks.push(r.value);
          size += r.value.length;
          return pump();
        });
      }
      return pump().then(function () {
        var buf = new Uint8Array(Math.min(size, PREVIEW_BYTES));
        var at = 0;
        for (var i = 0; i < chunks.length && at < buf.length; i++) {
          var part = chunks[i].subarray(0, buf.length - at);
          buf.set(part, at);
          at += part.length;
        }
        if (id !== state.selected) return;
        var pre = $("d-payload");
        pre.hidden = false;
        pre.replaceChildren(
          document.createTextNode(new TextDecoder().decode(buf)),
          el("span", "muted", "\\n… the first " + bytes(buf.length) + " only; download the payload for the rest."),
        );
      });
    });
  }

  function replay() {
    var id = state.selected;
    if (!id) return;
    var button = $("d-replay");
    var msg = $("d-replay-msg");
    button.disabled = true;
    msg.textContent = "Replaying…";
    api("/deliveries/" + enc(id) + "/replay", { method: "POST" }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (id !== state.selected) return;
        msg.textContent = res.status === 202
          ? "Replay queued at " + new Date().toLocaleTimeString() + "."
          : "Replay refused: " + (body.message || "HTTP " + res.status);
      });
    }).catch(function (err) {
      msg.textContent = "Replay failed: " + err.message;
    }).then(function () {
      button.disabled = false;
      return refresh();
    });
  }

  $("rows").addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (tr && tr.dataset.id) select(tr.dataset.id);
  });
  $("rows").addEventListener("keydown", function (e) {
    var tr = e.target.closest("tr");
    if (!tr || !tr.dataset.id) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(tr.dataset.id); }
    if (e.key === "ArrowDown" && tr.nextElementSibling) { e.preventDefault(); tr.nextElementSibling.focus(); }
    if (e.key === "ArrowUp" && tr.previousElementSibling) { e.preventDefault(); tr.previousElementSibling.focus(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && state.selected) select(null);
  });
  $("d-close").addEventListener("click", function () { select(null); });
  $("d-replay").addEventListener("click", replay);
  $("filter-status").addEventListener("change", renderList);
  $("filter-event").addEventListener("change", renderList);
  $("live-toggle").addEventListener("change", function () {
    if ($("live-toggle").checked) refresh();
    else { clearTimeout(state.timer); setLive("", "Paused"); }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && $("live-toggle").checked) refresh();
  });

  var fromHash = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : null;
  if (fromHash) select(fromHash);
  refresh();
})();
`;
