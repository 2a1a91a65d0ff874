// The deliveries dashboard: its auth and security headers without a browser,
// then the page itself in a real headless chromium driven over the DevTools
// protocol against a real server with real deliveries.

import assert from "node:assert/strict";
import { type App, createApp } from "../../lib/app.ts";
import {
  contentSecurityPolicy,
  createDashboardRoute,
} from "../../lib/ops/dashboard/route.ts";
import {
  clientScript,
  DASHBOARD_SCRIPT,
  renderDashboard,
} from "../../lib/ops/dashboard/page.ts";
import * as client from "../../lib/ops/dashboard/client.ts";
import type { HandlerContext, HandlerRegistry } from "../../lib/dispatch.ts";
import {
  type Browser,
  findChromium,
  launchChromium,
  type Page,
} from "../_cdp.ts";
import {
  captureLogger,
  deliveryRequest,
  fakeInfo,
  testConfig,
  waitFor,
} from "../_helpers.ts";

const TOKEN = "dashboard-test-token";
const BASIC = `Basic ${btoa(`admin:${TOKEN}`)}`;
const CHROMIUM = findChromium();
if (CHROMIUM === null) {
  console.log(
    "dashboard browser test skipped: chromium not found (apt-get install chromium)",
  );
}

async function withApp(
  env: Record<string, string>,
  fn: (app: App) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const app = await createApp({
    config: testConfig(env),
    log: captureLogger("info").log,
    kv,
  });
  try {
    await fn(app);
  } finally {
    await app.close(100);
    kv.close();
  }
}

function get(
  app: App,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Response> {
  return app.fetch(
    new Request(`http://hookgate.test${path}`, { method, headers }),
    fakeInfo(),
  );
}

/** The peer `Deno.serve` would report. */
const PEER = {
  remoteAddr: { hostname: "127.0.0.1", transport: "tcp" as const },
};

Deno.test("the dashboard answers 404 when ADMIN_TOKEN is unset", async () => {
  await withApp({}, async (app) => {
    for (const path of ["/dashboard", "/dashboard/"]) {
      const res = await get(app, path, { authorization: BASIC });
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error, "not_found");
    }
  });
});

Deno.test("the dashboard asks for HTTP Basic credentials", async (t) => {
  await withApp({ ADMIN_TOKEN: TOKEN }, async (app) => {
    const cases: [string, Record<string, string>][] = [
      ["no credentials", {}],
      ["a wrong Basic password", {
        authorization: `Basic ${btoa("admin:nope")}`,
      }],
      ["a wrong Bearer token", { authorization: "Bearer nope" }],
      ["the token as the Basic user name", {
        authorization: `Basic ${btoa(`${TOKEN}:`)}`,
      }],
    ];
    for (const [name, headers] of cases) {
      await t.step(`401 with ${name}`, async () => {
        const res = await get(app, "/dashboard", headers);
        assert.equal(res.status, 401);
        assert.equal(
          res.headers.get("www-authenticate"),
          'Basic realm="hookgate"',
        );
        assert.equal((await res.json()).error, "unauthorized");
      });
    }
  });
});

Deno.test("the dashboard serves the page with Basic or Bearer credentials", async (t) => {
  await withApp({ ADMIN_TOKEN: TOKEN }, async (app) => {
    const cases: [string, string, string][] = [
      ["Basic", "/dashboard", BASIC],
      ["Basic, any user name", "/dashboard", `Basic ${btoa(`x:${TOKEN}`)}`],
      ["Bearer", "/dashboard", `Bearer ${TOKEN}`],
    ];
    for (const [name, path, authorization] of cases) {
      await t.step(`200 with ${name} on ${path}`, async () => {
        const res = await get(app, path, { authorization });
        assert.equal(res.status, 200);
        assert.equal(
          res.headers.get("content-type"),
          "text/html; charset=utf-8",
        );
        const html = await res.text();
        assert.match(html, /<title>Deliveries · hookgate<\/title>/);
      });
    }
    await t.step(
      "/dashboard/ redirects to /dashboard, before any auth",
      async () => {
        for (const headers of [{}, { authorization: BASIC }]) {
          const res = await get(app, "/dashboard/?x=1", headers);
          assert.equal(res.status, 308);
          assert.equal(res.headers.get("location"), "/dashboard?x=1");
        }
      },
    );
    await t.step("HEAD has the headers and no body", async () => {
      const res = await get(
        app,
        "/dashboard",
        { authorization: BASIC },
        "HEAD",
      );
      assert.equal(res.status, 200);
      assert.ok(res.headers.get("content-security-policy"));
      assert.equal(await res.text(), "");
    });
    await t.step("POST is 405", async () => {
      const res = await get(
        app,
        "/dashboard",
        { authorization: BASIC },
        "POST",
      );
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
      await res.body?.cancel();
    });
    await t.step("other paths are not the dashboard's", async () => {
      for (const path of ["/dashboard/x", "/dashboards", "/dashboard.html"]) {
        const res = await get(app, path, { authorization: BASIC });
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
    });
  });
});

Deno.test("the dashboard page carries strict headers and a fresh nonce", async () => {
  await withApp({ ADMIN_TOKEN: TOKEN }, async (app) => {
    const nonces = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await get(app, "/dashboard", { authorization: BASIC });
      const html = await res.text();
      const csp = res.headers.get("content-security-policy") ?? "";
      const nonce = csp.match(/script-src 'nonce-([A-Za-z0-9+/=]+)'/)?.[1];
      assert.ok(nonce, csp);
      assert.match(nonce, /^[A-Za-z0-9+/]{22}==$/);
      assert.equal(csp, contentSecurityPolicy(nonce));
      assert.equal(
        csp,
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      );
      const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
      assert.deepEqual(scripts, [` nonce="${nonce}"`]);
      const styles = [...html.matchAll(/<style\b([^>]*)>/g)].map((m) => m[1]);
      assert.deepEqual(styles, [` nonce="${nonce}"`]);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("referrer-policy"), "no-referrer");
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      nonces.add(nonce);
    }
    assert.equal(nonces.size, 3, "a new nonce per response");
  });
});

Deno.test("the dashboard page loads nothing from elsewhere and never uses innerHTML", () => {
  const html = renderDashboard("n");
  assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\(/);
  assert.doesNotMatch(
    html,
    /innerHTML|outerHTML|insertAdjacentHTML|document\.write/,
  );
  assert.doesNotMatch(html, /\son[a-z]+=/i, "no inline event handlers");
  assert.match(html, /credentials: "same-origin"/);
});

Deno.test("the served script is the client module as JavaScript, with no TypeScript left", async () => {
  // It parses as a classic script: an annotation, a cast, an `interface` or a
  // non-null `!` would be a syntax error here.
  new Function(DASHBOARD_SCRIPT);
  const source = await Deno.readTextFile(
    new URL("../../lib/ops/dashboard/client.ts", import.meta.url),
  );
  assert.match(source, /dashboardClient\(settings: ClientSettings\): void/);
  assert.match(DASHBOARD_SCRIPT, /^\n"use strict";\n\(function \(\) \{\n/);
  assert.ok(
    DASHBOARD_SCRIPT.includes("\nfunction dashboardClient(settings) {\n"),
  );
  assert.ok(
    DASHBOARD_SCRIPT.endsWith(
      `\ndashboardClient({"pollMs":2500,"listLimit":200,"previewBytes":262144,"statuses":["queued","running","done","failed","dead","skipped"]});\n})();\n`,
    ),
  );
  for (
    const typescript of [
      /\binterface\s+[A-Z]/,
      /\btype\s+[A-Z]\w*\s*=/,
      /\bas\s+(unknown|const|El|string|DeliverySummary)\b/,
      /\((settings|page): /,
      /\bimport\b/,
      /\bexport\b/,
    ]
  ) {
    assert.doesNotMatch(DASHBOARD_SCRIPT, typescript);
  }
  assert.doesNotMatch(DASHBOARD_SCRIPT, /<\/script|<!--/i);
});

Deno.test("the client module's only values are exported functions, all served, and it imports only types", async () => {
  // The browser gets the functions' sources alone: anything else at the
  // module's top level (a constant, a private helper, an import) is not there.
  const source = await Deno.readTextFile(
    new URL("../../lib/ops/dashboard/client.ts", import.meta.url),
  );
  const topLevel = [
    ...source.matchAll(
      /^(export\s+)?(?:default\s+)?(?:async\s+)?(const|let|var|function\*?|class|enum|namespace|import(?!\s+type\b))\s*([\w$]*)/gm,
    ),
  ].map((m) => `${m[1] ?? ""}${m[2]} ${m[3]}`);
  const names = Object.keys(client);
  assert.deepEqual(
    topLevel.sort(),
    names.map((name) => `export function ${name}`).sort(),
  );
  assert.ok(names.includes("dashboardClient"));
  for (const [name, value] of Object.entries(client)) {
    assert.equal(typeof value, "function", name);
    assert.ok(DASHBOARD_SCRIPT.includes(`\n${value.toString()}\n`), name);
  }
});

Deno.test("the page's one script is the served script, under the CSP's nonce", async () => {
  const route = createDashboardRoute({ token: TOKEN });
  const url = new URL("http://hookgate.test/dashboard");
  const res = await route(
    new Request(url, { headers: { authorization: BASIC } }),
    url,
    PEER,
  );
  assert.ok(res);
  const csp = res.headers.get("content-security-policy") ?? "";
  const nonce = csp.match(/script-src 'nonce-([A-Za-z0-9+/=]+)'/)?.[1];
  assert.ok(nonce, csp);
  const scripts = [
    ...(await res.text()).matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g),
  ];
  assert.deepEqual(
    scripts.map((m) => [m[1], m[2]]),
    [[` nonce="${nonce}"`, DASHBOARD_SCRIPT]],
  );
});

Deno.test("clientScript() refuses settings that would end the script element", () => {
  const settings = { pollMs: 1, listLimit: 1, previewBytes: 1 };
  assert.throws(
    () => clientScript({ ...settings, statuses: ["</script><b>"] }),
    /Cannot inline the dashboard script/,
  );
  assert.throws(
    () => clientScript({ ...settings, statuses: ["<!--"] }),
    /Cannot inline the dashboard script/,
  );
  new Function(clientScript({ ...settings, statuses: ["done"] }));
});

Deno.test("createDashboardRoute() leaves other paths to the next route", async () => {
  const route = createDashboardRoute({ token: TOKEN });
  const url = new URL("http://x/deliveries");
  assert.equal(await route(new Request(url), url, PEER), null);
});

// ---------------------------------------------------------------------------
// In a real browser.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MINUTE = 60_000;

const REPO = {
  id: 1296269,
  name: "hello-world",
  full_name: "octo-org/hello-world",
  private: false,
  html_url: "https://github.com/octo-org/hello-world",
  default_branch: "main",
};
const OCTOCAT = { login: "octocat", id: 1, type: "User" };
const MONA = { login: "monalisa", id: 2, type: "User" };

interface Seed {
  id: string;
  event: string;
  body: Record<string, unknown>;
  /** How long ago (by the app's clock) it was received. */
  agoMs: number;
  /** The status to wait for before the next one. */
  settle: string;
}

function commit(i: number): Record<string, unknown> {
  const sha = (i * 2654435761).toString(16).padStart(8, "0").repeat(5);
  return {
    id: sha,
    message: `Regenerate fixtures, part ${i}\n\n${
      "Lorem ipsum dolor sit amet. ".repeat(20)
    }`,
    timestamp: "2025-01-01T12:00:00Z",
    author: { name: "Mona Lisa", email: "mona@example.com" },
    added: [`fixtures/${i}.json`],
    removed: [],
    modified: ["README.md"],
  };
}

const SEEDS: Seed[] = [
  {
    id: "6d1c4e20-ae5f-11ef-8a1b-3f5d7c9e2a10",
    event: "ping",
    body: {
      zen: "Design for failure.",
      hook_id: 481516,
      hook: { type: "Repository", id: 481516, events: ["*"], active: true },
      repository: REPO,
      sender: OCTOCAT,
    },
    agoMs: 26 * MINUTE,
    settle: "skipped",
  },
  {
    id: "a3f0b6d0-ae5f-11ef-9c4e-5b1f2c3d4e50",
    event: "push",
    body: {
      ref: "refs/heads/main",
      before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
      after: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
      commits: [commit(1), commit(2)],
      head_commit: commit(2),
      pusher: { name: "octocat", email: "octocat@example.com" },
      repository: REPO,
      sender: OCTOCAT,
    },
    agoMs: 18 * MINUTE,
    settle: "done",
  },
  {
    id: "c81f2a40-ae5f-11ef-8d6b-7e2a9c0b1d30",
    event: "workflow_run",
    body: {
      action: "completed",
      workflow_run: {
        id: 30433642,
        name: "Deploy",
        head_branch: "main",
        status: "completed",
        conclusion: "success",
      },
      repository: REPO,
      sender: MONA,
    },
    agoMs: 11 * MINUTE,
    settle: "dead",
  },
  {
    id: "e24b7c90-ae5f-11ef-9a3d-2c4e6f8a0b70",
    event: "issues",
    body: {
      action: "opened",
      issue: {
        number: 42,
        title: "<script>alert(1)</script>",
        body: '<img src=x onerror="alert(2)"> and **markdown**',
        state: "open",
        user: MONA,
      },
      repository: REPO,
      sender: MONA,
    },
    agoMs: 6 * MINUTE,
    settle: "done",
  },
  {
    id: "f5a9d310-ae5f-11ef-8f2c-1a3b5c7d9e80",
    event: "push",
    body: {
      ref: "refs/heads/fixtures",
      before: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
      after: "a5c3785ed8d6a35d8e8a8c6f1e5b5cbbd3e3f1d2",
      commits: Array.from({ length: 420 }, (_, i) => commit(i + 3)),
      repository: REPO,
      sender: OCTOCAT,
    },
    agoMs: 2 * MINUTE,
    settle: "done",
  },
  {
    id: "0b6e8f20-ae60-11ef-8b7a-4d6f8a1c3e90",
    event: "pull_request",
    body: {
      action: "opened",
      number: 7,
      pull_request: {
        number: 7,
        title: "Add a dark theme",
        head: { ref: "dark-theme", sha: "9f2c1b0a" },
        base: { ref: "main", sha: "0d1a26e6" },
      },
      repository: REPO,
      sender: MONA,
    },
    agoMs: 0,
    settle: "running",
  },
];

const [PING, PUSH, WORKFLOW, ISSUE, BIG_PUSH, PULL] = SEEDS as [
  Seed,
  Seed,
  Seed,
  Seed,
  Seed,
  Seed,
];

interface Row {
  id: string;
  status: string;
  badge: string;
  event: string;
  repo: string;
  sender: string;
  attempts: string;
}

const ROWS = `[...document.querySelectorAll("#rows tr")].map((tr) => ({
  id: tr.dataset.id,
  status: tr.dataset.status,
  badge: tr.querySelector(".badge").className,
  event: tr.querySelector(".c-event .name").textContent,
  repo: tr.querySelector(".c-repo").textContent,
  sender: tr.querySelector(".c-sender").textContent,
  attempts: tr.querySelector(".c-attempts").textContent,
}))`;

function rowSelector(id: string): string {
  return `#rows tr[data-id="${id}"]`;
}

/** Chooses an option of a `<select>` the way a user does (fires `change`). */
function choose(page: Page, id: string, value: string): Promise<unknown> {
  return page.evaluate(`(() => {
    const select = document.getElementById(${JSON.stringify(id)});
    select.value = ${JSON.stringify(value)};
    select.dispatchEvent(new Event("change"));
  })()`);
}

function isPng1280x800(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return bytes[0] === 0x89 && bytes[1] === 0x50 &&
    view.getUint32(16) === 1280 && view.getUint32(20) === 800;
}

Deno.test({
  name:
    "the dashboard in headless chromium lists, filters, shows and replays real deliveries",
  ignore: CHROMIUM === null,
  async fn() {
    const browserStarting = launchChromium(CHROMIUM!);
    browserStarting.catch(() => {});

    let skew = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => release = resolve);
    let workflowFixed = false;
    const registry: HandlerRegistry = {
      push: { default: () => sleep(35) },
      issues: { opened: () => sleep(20) },
      workflow_run: {
        async completed() {
          await sleep(120);
          if (!workflowFixed) {
            throw new Error(
              "POST https://deploy.internal/hooks answered 502 Bad Gateway",
            );
          }
        },
      },
      pull_request: {
        default(ctx: HandlerContext) {
          return new Promise<void>((resolve) => {
            gate.then(resolve);
            ctx.signal.addEventListener("abort", () => resolve());
          });
        },
      },
    };
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig({
        ADMIN_TOKEN: TOKEN,
        MAX_ATTEMPTS: "1",
        HANDLER_TIMEOUT_MS: "60000",
      }),
      log: captureLogger("info").log,
      kv,
      registry,
      now: () => Date.now() - skew,
      worker: { pollMs: 50, retryBaseMs: 10 },
    });
    const stop = new AbortController();
    app.start(stop.signal);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request, info) => app.fetch(request, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    let browser: Browser | undefined;

    async function post(seed: Seed): Promise<void> {
      const res = await fetch(
        await deliveryRequest({
          id: seed.id,
          event: seed.event,
          body: JSON.stringify(seed.body),
          url: `${base}/webhook`,
          headers: {
            "x-github-hook-id": "481516",
            "x-github-hook-installation-target-type": "repository",
            "x-github-hook-installation-target-id": String(REPO.id),
          },
        }),
      );
      assert.equal(res.status, 202, await res.text());
    }
    async function status(id: string): Promise<string | undefined> {
      return (await app.store.get(id))?.status;
    }

    try {
      // Real deliveries over HTTP, spread over the last half hour.
      for (const seed of SEEDS) {
        skew = seed.agoMs;
        await post(seed);
        await waitFor(
          async () => (await status(seed.id)) === seed.settle,
          5000,
          `${seed.event} ${seed.settle}`,
        );
      }
      assert.ok(
        (await app.store.get(BIG_PUSH.id))!.size > 256 * 1024,
        "the big push is over the preview limit",
      );

      browser = await browserStarting;
      const page = await browser.newPage({
        width: 1280,
        height: 800,
        headers: { authorization: BASIC },
      });
      const dialogs: string[] = [];
      page.on("Page.javascriptDialogOpening", (p) => {
        dialogs.push(String(p.message));
        page.send("Page.handleJavaScriptDialog", { accept: false }).catch(
          () => {},
        );
      });
      const exceptions: string[] = [];
      page.on("Runtime.exceptionThrown", (p) => {
        exceptions.push(JSON.stringify(p.exceptionDetails));
      });
      await page.send("Emulation.setEmulatedMedia", {
        features: [{ name: "prefers-color-scheme", value: "light" }],
      });
      await page.send("Page.addScriptToEvaluateOnNewDocument", {
        source: `window.__violations = [];
          document.addEventListener("securitypolicyviolation", (e) => {
            window.__violations.push(e.violatedDirective + " " + e.blockedURI);
          });`,
      });

      await page.goto(`${base}/dashboard`);
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === ${SEEDS.length}`,
        5000,
        "six rows",
      );

      // The rows: newest first, badge colour classes, event.action.
      const rows = await page.evaluate<Row[]>(ROWS);
      assert.deepEqual(
        rows.map((r) => [r.id, r.status, r.badge, r.event, r.attempts]),
        [
          [
            PULL.id,
            "running",
            "badge badge-running",
            "pull_request.opened",
            "1",
          ],
          [BIG_PUSH.id, "done", "badge badge-done", "push", "1"],
          [ISSUE.id, "done", "badge badge-done", "issues.opened", "1"],
          [
            WORKFLOW.id,
            "dead",
            "badge badge-dead",
            "workflow_run.completed",
            "1",
          ],
          [PUSH.id, "done", "badge badge-done", "push", "1"],
          [PING.id, "skipped", "badge badge-skipped", "ping", "1"],
        ],
      );
      assert.ok(rows.every((r) => r.repo === "octo-org/hello-world"));
      assert.deepEqual(
        rows.map((r) => r.sender),
        ["monalisa", "octocat", "monalisa", "monalisa", "octocat", "octocat"],
      );
      const badgeColours = await page.evaluate<Record<string, string>>(`(() => {
        const out = {};
        for (const b of document.querySelectorAll("#rows .badge")) out[b.textContent] = getComputedStyle(b).color;
        return out;
      })()`);
      assert.deepEqual(badgeColours, {
        running: "rgb(9, 105, 218)",
        done: "rgb(26, 127, 55)",
        dead: "rgb(207, 34, 46)",
        skipped: "rgb(89, 99, 110)",
      });

      // Filters.
      await choose(page, "filter-status", "dead");
      assert.deepEqual(
        (await page.evaluate<Row[]>(ROWS)).map((r) => r.id),
        [WORKFLOW.id],
      );
      await choose(page, "filter-status", "");
      await choose(page, "filter-event", "push");
      assert.deepEqual(
        (await page.evaluate<Row[]>(ROWS)).map((r) => r.id),
        [BIG_PUSH.id, PUSH.id],
      );
      assert.equal(
        await page.evaluate(`document.getElementById("count").textContent`),
        "2 of 6 deliveries",
      );
      await choose(page, "filter-event", "");

      // The issue: its hostile title is text, not markup.
      await page.click(rowSelector(ISSUE.id));
      const payload = await page.waitForFunction<string>(
        `(() => { const t = document.getElementById("d-payload").textContent; return t.includes('"number": 42') && t; })()`,
        5000,
        "the issue payload",
      );
      assert.ok(payload.includes('"title": "<script>alert(1)</script>"'));
      assert.ok(payload.includes('<img src=x onerror=\\"alert(2)\\">'));
      assert.deepEqual(
        await page.evaluate(`[
          document.querySelectorAll("script").length,
          document.querySelectorAll("#detail script, #detail img, #rows img").length,
          document.getElementById("d-title").textContent,
          location.hash,
        ]`),
        [1, 0, "issues.opened", `#${ISSUE.id}`],
      );
      const headers = await page.evaluate<Record<string, string>>(
        `Object.fromEntries([...document.querySelectorAll("#d-headers tr")].map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent]))`,
      );
      assert.equal(headers["x-github-event"], "issues");
      assert.equal(headers["x-github-delivery"], ISSUE.id);
      assert.equal(headers["x-github-hook-id"], "481516");
      assert.equal(headers["x-hub-signature-256"], undefined);

      // The big push: a notice and a download link, the body not fetched.
      await page.click(rowSelector(BIG_PUSH.id));
      const note = await page.waitForFunction<string>(
        `!document.getElementById("d-payload-note").hidden && document.getElementById("d-payload-note").textContent`,
        5000,
        "the large-payload notice",
      );
      assert.match(note, /This payload is \d+\.\d KiB, too large to show here/);
      assert.equal(
        await page.evaluate(
          `document.getElementById("d-download").getAttribute("href")`,
        ),
        `/deliveries/${BIG_PUSH.id}/body`,
      );
      assert.equal(
        await page.evaluate(
          `performance.getEntriesByType("resource").filter((e) => e.name.endsWith(${
            JSON.stringify(`${BIG_PUSH.id}/body`)
          })).length`,
        ),
        0,
        "a large body is not fetched unless asked for",
      );
      await page.click("#d-payload-note button");
      const preview = await page.waitForFunction<string>(
        `document.getElementById("d-payload").textContent.includes("the first 256.0 KiB only") && document.getElementById("d-payload").textContent`,
        5000,
        "the 256 KiB preview",
      );
      assert.ok(preview.startsWith('{"ref":"refs/heads/fixtures"'));

      // The dead workflow run, with its error: the screenshot.
      await page.click(rowSelector(WORKFLOW.id));
      await page.waitForFunction(
        `document.getElementById("d-error").textContent.includes("502 Bad Gateway") && document.getElementById("d-payload").textContent.includes('"conclusion"')`,
        5000,
        "the dead delivery's error and payload",
      );
      await page.evaluate(`document.activeElement.blur()`);
      const png = await page.screenshot();
      assert.ok(isPng1280x800(png), "a 1280x800 PNG");
      // The README's picture is refreshed on request only, so that a test
      // run leaves the work tree clean: UPDATE_SCREENSHOT=1 deno task test
      if (Deno.env.get("UPDATE_SCREENSHOT") === "1") {
        const docs = new URL("../../docs/", import.meta.url);
        await Deno.mkdir(docs, { recursive: true });
        await Deno.writeFile(new URL("dashboard.png", docs), png);
      }

      // Replay: a same-origin POST; the attempt count rises, status done.
      workflowFixed = true;
      await page.click("#d-replay");
      await page.waitForFunction(
        `(() => {
          const tr = document.querySelector(${
          JSON.stringify(rowSelector(WORKFLOW.id))
        });
          return tr && tr.dataset.status === "done" && tr.querySelector(".c-attempts").textContent === "2";
        })()`,
        8000,
        "the replayed delivery done after 2 attempts",
      );
      assert.match(
        await page.evaluate<string>(
          `document.getElementById("d-replay-msg").textContent`,
        ),
        /^Replay queued/,
      );
      await page.waitForFunction(
        `document.getElementById("d-badge").textContent === "done" && document.querySelector('[data-field="attempts"]').textContent === "2 (replayed 1×)"`,
        5000,
        "the detail view updated",
      );
      assert.equal((await app.store.get(WORKFLOW.id))?.attempts, 2);

      // Live refresh: a new delivery appears without a reload.
      skew = 0;
      await post({
        id: "1c7d9e30-ae60-11ef-9e4b-8f0a2b4c6d10",
        event: "push",
        body: { ref: "refs/heads/main", repository: REPO, sender: OCTOCAT },
        agoMs: 0,
        settle: "done",
      });
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === 7`,
        5000,
        "the new delivery listed by polling",
      );

      assert.deepEqual(dialogs, [], "no alert() ran");
      assert.deepEqual(exceptions, [], "no exception in the page");
      assert.deepEqual(await page.evaluate(`window.__violations`), []);

      // And the CSP holds: injected markup could neither run nor load.
      await page.evaluate(`(() => {
        const script = document.createElement("script");
        script.textContent = "window.__injected = true";
        document.body.append(script);
        const img = document.createElement("img");
        img.src = "http://192.0.2.1/pixel.png";
        document.body.append(img);
      })()`);
      const violations = await page.waitForFunction<string[]>(
        `window.__violations.length === 2 && window.__violations.slice().sort()`,
        5000,
        "two CSP violations",
      );
      assert.deepEqual(violations, [
        "img-src http://192.0.2.1/pixel.png",
        "script-src-elem inline",
      ]);
      assert.equal(await page.evaluate(`window.__injected`), undefined);
      await page.close();
    } finally {
      await browser?.close();
      if (!browser) await (await browserStarting.catch(() => null))?.close();
      release();
      stop.abort();
      await app.close(2000);
      await server.shutdown();
      kv.close();
    }
  },
});

Deno.test({
  name:
    "the dashboard in headless chromium prompts for Basic auth and the page's API calls reuse it",
  ignore: CHROMIUM === null,
  async fn() {
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      log: captureLogger("info").log,
      kv,
      registry: {},
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request, info) => app.fetch(request, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await launchChromium(CHROMIUM!);
    try {
      const res = await fetch(
        await deliveryRequest({ url: `${base}/webhook`, event: "ping" }),
      );
      assert.equal(res.status, 202);
      await res.body?.cancel();

      for (const path of ["/dashboard", "/dashboard/"]) {
        // A fresh context each time: nothing cached from the previous one.
        const page = await browser.newPage({ isolated: true });
        const challenges: Record<string, unknown>[] = [];
        page.on("Fetch.requestPaused", (p) => {
          page.send("Fetch.continueRequest", { requestId: p.requestId })
            .catch(() => {});
        });
        page.on("Fetch.authRequired", (p) => {
          challenges.push({
            url: p.request && (p.request as { url: string }).url,
            ...(p.authChallenge as Record<string, unknown>),
          });
          page.send("Fetch.continueWithAuth", {
            requestId: p.requestId,
            authChallengeResponse: {
              response: "ProvideCredentials",
              username: "admin",
              password: TOKEN,
            },
          }).catch(() => {});
        });
        await page.send("Fetch.enable", { handleAuthRequests: true });
        await page.goto(`${base}${path}`);
        await page.waitForFunction(
          `document.querySelectorAll("#rows tr").length === 1`,
          5000,
          `the list loaded with the prompted credentials on ${path}`,
        );
        assert.deepEqual(challenges, [{
          url: `${base}/dashboard`,
          source: "Server",
          origin: base,
          scheme: "basic",
          realm: "hookgate",
        }], "one prompt, for the page only");
        await page.close();
      }
    } finally {
      await browser.close();
      await app.close(500);
      await server.shutdown();
      kv.close();
    }
  },
});

Deno.test({
  name:
    "the dashboard in headless chromium shows bidirectional-control characters of names and payloads as visible escapes",
  ignore: CHROMIUM === null,
  async fn() {
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      log: captureLogger("info").log,
      kv,
      registry: {},
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request, info) => app.fetch(request, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await launchChromium(CHROMIUM!);
    try {
      // "\u202Egnp.exe" displays as "exe.png"; "\u2066" … "\u2069" isolate.
      const id = "b1d1c7a0-ae60-11ef-9e4b-8f0a2b4c6d10";
      const res = await fetch(
        await deliveryRequest({
          url: `${base}/webhook`,
          id,
          event: "issues",
          body: JSON.stringify({
            action: "opened",
            issue: { number: 1, title: "fix \u2067tpircs\u2069 \u200fnow" },
            repository: {
              id: 1,
              name: "x",
              full_name: "octo-org/\u202Egnp.exe",
            },
            sender: { login: "mona\u202D\u061C\u200E", type: "User" },
          }),
        }),
      );
      assert.equal(res.status, 202);
      await res.body?.cancel();

      const page = await browser.newPage({ headers: { authorization: BASIC } });
      await page.goto(`${base}/dashboard`);
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === 1`,
        5000,
        "the row",
      );
      const [row] = await page.evaluate<Row[]>(ROWS);
      assert.equal(row!.repo, "octo-org/\\u202Egnp.exe");
      assert.equal(row!.sender, "mona\\u202D\\u061C\\u200E");
      assert.equal(
        await page.evaluate(
          `document.querySelector("#rows .c-repo").getAttribute("title")`,
        ),
        "octo-org/\\u202Egnp.exe",
      );
      await page.click(rowSelector(id));
      const payload = await page.waitForFunction<string>(
        `(() => { const t = document.getElementById("d-payload").textContent; return t.includes('"number": 1') && t; })()`,
        5000,
        "the payload",
      );
      assert.ok(payload.includes("fix \\u2067tpircs\\u2069 \\u200Fnow"));
      const shown = await page.evaluate<string>(
        `document.body.innerText + [...document.querySelectorAll("[title]")].map((e) => e.title).join("")`,
      );
      assert.doesNotMatch(
        shown,
        /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/,
        "no bidirectional control left anywhere on the page",
      );
      await page.close();
    } finally {
      await browser.close();
      await app.close(500);
      await server.shutdown();
      kv.close();
    }
  },
});

Deno.test({
  name:
    "the dashboard in headless chromium shows a hook script's runs and output as text",
  ignore: CHROMIUM === null,
  async fn() {
    const hooks = await Deno.makeTempDir({ prefix: "hookgate-dash-hooks-" });
    await Deno.writeTextFile(
      `${hooks}/star`,
      `#!/bin/sh\necho '<img src=x onerror="document.title=1">'\necho 'deploy \u202Edone' >&2\nexit 4\n`,
    );
    await Deno.chmod(`${hooks}/star`, 0o755);
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig({
        ADMIN_TOKEN: TOKEN,
        HOOKS_DIR: hooks,
        MAX_ATTEMPTS: "1",
      }),
      log: captureLogger("info").log,
      kv,
      registry: {},
    });
    const stop = new AbortController();
    app.start(stop.signal);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request, info) => app.fetch(request, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await launchChromium(CHROMIUM!);
    try {
      const id = "5c0ffee0-ae60-11ef-9e4b-8f0a2b4c6d10";
      const res = await fetch(
        await deliveryRequest({
          url: `${base}/webhook`,
          id,
          event: "star",
          body: JSON.stringify({
            action: "created",
            repository: { id: 1, name: "app", full_name: "octo/app" },
            sender: { login: "mona", type: "User" },
          }),
        }),
      );
      assert.equal(res.status, 202);
      await res.body?.cancel();
      await waitFor(
        async () => (await app.store.get(id))?.status === "dead",
        10_000,
        "the script's failure recorded",
      );
      const page = await browser.newPage({ headers: { authorization: BASIC } });
      await page.goto(`${base}/dashboard`);
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === 1`,
        5000,
        "the row",
      );
      await page.click(rowSelector(id));
      const runs = await page.waitForFunction<string>(
        `(() => { const b = document.getElementById("d-runs-box"); return !b.hidden && document.getElementById("d-runs").innerText; })()`,
        5000,
        "the runs",
      );
      assert.match(runs, /#1 script star · exit 4/);
      assert.ok(runs.includes('<img src=x onerror="document.title=1">'));
      assert.ok(runs.includes("deploy \\u202Edone"));
      assert.equal(
        await page.evaluate(`document.querySelectorAll("#d-runs img").length`),
        0,
        "output is text, never markup",
      );
      await page.close();
    } finally {
      await browser.close();
      stop.abort();
      await app.close(500);
      await server.shutdown();
      kv.close();
      await Deno.remove(hooks, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the dashboard in headless chromium replays all the dead deliveries shown, after a confirmation, and shows the progress",
  ignore: CHROMIUM === null,
  async fn() {
    let failing = true;
    const kv = await Deno.openKv(":memory:");
    const app = await createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN, MAX_ATTEMPTS: "1" }),
      log: captureLogger("info").log,
      kv,
      registry: {
        push: {
          default() {
            if (failing) throw new Error("not yet");
          },
        },
        ping: { default() {} },
      },
      worker: { pollMs: 20, retryBaseMs: 10 },
    });
    const stop = new AbortController();
    app.start(stop.signal);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request, info) => app.fetch(request, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await launchChromium(CHROMIUM!);
    try {
      const ids = ["b-1", "b-2", "b-3"];
      for (
        const [id, event] of [
          ...ids.map((id): [string, string] => [id, "push"]),
          ["p", "ping"] as [string, string],
        ]
      ) {
        const res = await fetch(
          await deliveryRequest({ url: `${base}/webhook`, id, event }),
        );
        assert.equal(res.status, 202);
        await res.body?.cancel();
      }
      await waitFor(
        async () => {
          const statuses = await Promise.all(
            [...ids, "p"].map(async (id) => (await app.store.get(id))?.status),
          );
          return statuses.join() === "dead,dead,dead,done";
        },
        10_000,
        "three dead, one done",
      );

      const page = await browser.newPage({ headers: { authorization: BASIC } });
      await page.goto(`${base}/dashboard`);
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === 4`,
        5000,
        "the rows",
      );
      assert.equal(
        await page.evaluate(`document.getElementById("replay-all").hidden`),
        true,
        "no bulk replay for all statuses",
      );
      await choose(page, "filter-status", "dead");
      assert.equal(
        await page.evaluate(
          `(() => { const b = document.getElementById("replay-all"); return !b.hidden && b.textContent; })()`,
        ),
        "Replay all 3 shown",
      );
      // Declined: nothing is replayed.
      await page.evaluate(
        `window.__asked = []; window.confirm = (q) => { window.__asked.push(q); return false; }`,
      );
      await page.click("#replay-all");
      assert.equal(
        await page.evaluate(
          `document.getElementById("replay-all-msg").textContent`,
        ),
        "",
      );
      assert.equal((await app.store.get("b-1"))!.replays, 0);

      failing = false;
      await page.evaluate(
        `window.confirm = (q) => { window.__asked.push(q); return true; }`,
      );
      await page.click("#replay-all");
      const message = await page.waitForFunction<string>(
        `(() => { const t = document.getElementById("replay-all-msg").textContent; return /^Replayed/.test(t) && t; })()`,
        10_000,
        "the replay's end",
      );
      assert.equal(message, "Replayed 3");
      assert.deepEqual(await page.evaluate(`window.__asked`), [
        "Replay all 3 dead deliveries shown? Each runs its handlers again.",
        "Replay all 3 dead deliveries shown? Each runs its handlers again.",
      ]);
      for (const id of ids) {
        await waitFor(
          async () => (await app.store.get(id))?.status === "done",
          5000,
          `${id} done`,
        );
      }
      assert.equal(
        (await app.store.get("p"))!.replays,
        0,
        "not shown, not replayed",
      );
      // The list follows: no dead delivery left, so no button.
      await page.waitForFunction(
        `document.querySelectorAll("#rows tr").length === 0 && document.getElementById("replay-all").hidden`,
        10_000,
        "the list refreshed",
      );
      await page.close();
    } finally {
      await browser.close();
      stop.abort();
      await app.close(500);
      await server.shutdown();
      kv.close();
    }
  },
});
