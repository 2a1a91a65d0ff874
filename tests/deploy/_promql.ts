// What the deploy/ files' tests share: a small PromQL reader (which series
// and labels an expression names) and what a running hookgate's /metrics
// serves, so that the alert rules and the Grafana dashboard are checked
// against the real server the same way.

import assert from "node:assert/strict";
import { freePort, postDelivery, startServer, waitFor } from "../_helpers.ts";

/** Series Prometheus makes itself for each target. */
const PROMETHEUS_SERIES = new Set(["up"]);

/** One series selector: its metric name and its label matchers. */
export interface Selector {
  metric: string;
  /** label name → operator and quoted value, e.g. `instance` → `=~"$instance"`. */
  matchers: Map<string, string>;
}

/** What an expression names. */
export interface ExprNames {
  selectors: Selector[];
  /** Labels of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`. */
  grouping: string[];
}

const AGGREGATORS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
]);
const GROUPING = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
]);
const KEYWORDS = new Set([
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  "atan2",
  "inf",
  "nan",
]);
const IDENT = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const NUMBER = /^(0x[0-9a-f]+|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)[a-z0-9]*/i;
const MATCHER =
  /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(,|$)/y;

/** The index just past the string literal opening at `i`. */
function skipString(expr: string, i: number): number {
  const quote = expr[i]!;
  let j = i + 1;
  while (j < expr.length && expr[j] !== quote) j += expr[j] === "\\" ? 2 : 1;
  if (j >= expr.length) throw new SyntaxError(`Unclosed string in ${expr}`);
  return j + 1;
}

/** The label matchers inside `{…}`. */
function parseMatchers(body: string, expr: string): Map<string, string> {
  const out = new Map<string, string>();
  MATCHER.lastIndex = 0;
  while (
    MATCHER.lastIndex < body.length && body.slice(MATCHER.lastIndex).trim()
  ) {
    const m = MATCHER.exec(body);
    if (!m) throw new SyntaxError(`Cannot read matchers {${body}} in ${expr}`);
    out.set(m[1]!, m[2]! + m[3]!);
  }
  return out;
}

/** The index of the `}` closing the `{` at `i`. */
function closingBrace(expr: string, i: number): number {
  let j = i + 1;
  while (j < expr.length && expr[j] !== "}") {
    j = /["'`]/.test(expr[j]!) ? skipString(expr, j) : j + 1;
  }
  if (j >= expr.length) throw new SyntaxError(`Unclosed { in ${expr}`);
  return j;
}

/** The first character at or after `i` that is not white space. */
function nextChar(expr: string, i: number): string {
  return expr.slice(i).trimStart()[0] ?? "";
}

/**
 * The series selectors and grouping labels of a PromQL expression, with
 * functions, aggregations, keywords, numbers, durations, strings and Grafana
 * variables (`$__rate_interval`, `${datasource}`) left out.
 */
export function readExpr(expr: string): ExprNames {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  let pending: Selector | null = null; // a metric name whose {…} may follow
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    const rest = expr.slice(i);
    if (/\s/.test(c)) {
      i++;
    } else if (/["'`]/.test(c)) {
      i = skipString(expr, i);
      pending = null;
    } else if (c === "$") {
      i += /^\$(\{[^}]*\}|\w+)/.exec(rest)?.[0].length ?? 1;
    } else if (c === "[") {
      const end = expr.indexOf("]", i);
      if (end < 0) throw new SyntaxError(`Unclosed [ in ${expr}`);
      i = end + 1;
      pending = null;
    } else if (c === "{") {
      const end = closingBrace(expr, i);
      const matchers = parseMatchers(expr.slice(i + 1, end), expr);
      if (pending) {
        for (const [k, v] of matchers) pending.matchers.set(k, v);
      } else {
        const name = matchers.get("__name__");
        matchers.delete("__name__");
        const metric = name && /^=["'`]/.test(name) ? name.slice(2, -1) : "";
        selectors.push({ metric, matchers });
      }
      i = end + 1;
      pending = null;
    } else if (/[0-9.]/.test(c) && NUMBER.test(rest)) {
      i += NUMBER.exec(rest)![0].length;
      pending = null;
    } else if (IDENT.test(rest)) {
      const name = IDENT.exec(rest)![0];
      i += name.length;
      pending = null;
      const next = nextChar(expr, i);
      if (GROUPING.has(name) && next === "(") {
        const open = expr.indexOf("(", i);
        const close = expr.indexOf(")", open);
        if (close < 0) throw new SyntaxError(`Unclosed ( in ${expr}`);
        const labels = expr.slice(open + 1, close).split(",");
        grouping.push(...labels.map((l) => l.trim()).filter((l) => l !== ""));
        i = close + 1;
      } else if (
        !(KEYWORDS.has(name.toLowerCase()) || AGGREGATORS.has(name) ||
          GROUPING.has(name) || next === "(")
      ) {
        pending = { metric: name, matchers: new Map() };
        selectors.push(pending);
      }
    } else {
      i++;
      pending = null;
    }
  }
  return { selectors, grouping };
}

/** The families a /metrics text declares (`# TYPE`) and the labels its samples carry. */
export interface Served {
  types: Map<string, string>;
  labels: Set<string>;
}

/** One `name="value"` of a sample's labels. */
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\\n]|\\.)*"/g;

export function readMetrics(text: string): Served {
  const types = new Map<string, string>();
  const labels = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === "" || line.startsWith("#")) continue;
    const inner = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(.*)\} /.exec(line)?.[1] ?? "";
    for (const m of inner.matchAll(LABEL_PAIR)) labels.add(m[1]!);
  }
  return { types, labels };
}

/**
 * Whether `name` is a series Prometheus gets from `served`: a counter or
 * gauge by its name, a histogram by `_bucket`, `_sum` or `_count` (the bare
 * name of a histogram is no series).
 */
export function isServed(name: string, served: Served): boolean {
  if (PROMETHEUS_SERIES.has(name)) return true;
  const type = served.types.get(name);
  if (type !== undefined) return type !== "histogram" && type !== "summary";
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!suffix) return false;
  const base = served.types.get(suffix[1]!);
  return base === "histogram" || (base === "summary" && suffix[2] !== "bucket");
}

/**
 * What a real hookgate (`main.ts`) serves on /metrics after one delivery
 * ran and one was refused, so that labelled series have samples; with
 * reconciliation on, so that its gauge is declared.
 */
export async function servedMetrics(): Promise<Served> {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-metrics-" });
  const server = await startServer({
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    IP_ALLOWLIST: "off",
    KV_PATH: ":memory:",
    // Nothing listens at this API URL; the first pass (15 s away) never runs.
    RECONCILE_INTERVAL_MINUTES: "60",
    GITHUB_TOKEN: "ghp_deployMetricsTest00000000000000000",
    GITHUB_API_URL: `http://127.0.0.1:${freePort()}`,
  }, { cwd });
  try {
    const accepted = await postDelivery(server.url, {
      event: "push",
      body: JSON.stringify({
        ref: "refs/heads/main",
        commits: [],
        repository: { full_name: "octo-org/hello" },
      }),
    });
    assert.equal(accepted.status, 202);
    const refused = await postDelivery(server.url, { secret: "wrong" });
    assert.equal(refused.status, 401);
    const text = await waitFor(
      async () => {
        const body = await (await fetch(`${server.url}/metrics`)).text();
        return body.includes("webhook_delivery_outcomes_total{") ? body : null;
      },
      5000,
      "the delivery's outcome on /metrics",
    );
    return readMetrics(text);
  } finally {
    const status = await server.stop();
    assert.equal(status.code, 0, server.lines.join("\n"));
    await Deno.remove(cwd, { recursive: true });
  }
}
