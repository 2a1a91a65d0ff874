// The Grafana dashboard, deploy/grafana/hookgate.json: it parses; it has the
// dashboard fields Grafana requires and those it uses; its panels sit on the
// 24-column grid without overlapping; every query goes to the `${datasource}`
// variable and every series is filtered by `$job` (so that Instance=All
// matches hookgate's targets only, not everything Prometheus scrapes) and
// `$instance`; stat panels query what they show (instant without a
// sparkline) and show 0, not "No data", for a counter not yet incremented;
// and every series and label it names is one a real hookgate (main.ts as a
// subprocess) serves on /metrics, plus Prometheus's own `up`. No Grafana runs
// here: what Grafana itself would make of the file is not tested.

import assert from "node:assert/strict";
import { freePort, postDelivery, startServer, waitFor } from "../_helpers.ts";

const FILE = new URL("../../deploy/grafana/hookgate.json", import.meta.url);

/** The dashboard's columns (Grafana's grid is 24 wide). */
const COLUMNS = 24;

/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = new Set(["instance", "job"]);

/** Series Prometheus makes itself for each target. */
const PROMETHEUS_SERIES = new Set(["up"]);

interface GridPos {
  h: number;
  w: number;
  x: number;
  y: number;
}

interface Target {
  refId?: unknown;
  expr?: unknown;
  legendFormat?: unknown;
  datasource?: unknown;
  range?: unknown;
  instant?: unknown;
}

interface Panel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  gridPos?: GridPos;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
  collapsed?: unknown;
  fieldConfig?: { defaults?: { unit?: unknown; noValue?: unknown } };
  options?: { graphMode?: unknown };
}

interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: unknown;
  datasource?: unknown;
  multi?: unknown;
  includeAll?: unknown;
  current?: { text?: unknown; value?: unknown };
}

interface Dashboard {
  title?: unknown;
  uid?: unknown;
  schemaVersion?: unknown;
  tags?: unknown;
  time?: { from?: unknown; to?: unknown };
  refresh?: unknown;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

async function readDashboard(): Promise<Dashboard> {
  return JSON.parse(await Deno.readTextFile(FILE));
}

/** The panels that query (every panel but rows). */
function queryPanels(dashboard: Dashboard): Panel[] {
  return (dashboard.panels ?? []).filter((p) => p.type !== "row");
}

/** Every expression of the dashboard, with where it is. */
function expressions(
  dashboard: Dashboard,
): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const panel of queryPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      out.push({
        where: `panel ${panel.id} "${panel.title}" ${target.refId}`,
        expr: String(target.expr),
      });
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const query = typeof variable.query === "string"
      ? variable.query
      : (variable.query as { query?: string } | undefined)?.query ?? "";
    out.push({ where: `variable ${variable.name}`, expr: labelValues(query) });
  }
  return out;
}

/** A query variable's query text (a string, or the editor's `{query}` object). */
function variableQuery(variable: Variable | undefined): unknown {
  const query = variable?.query;
  return typeof query === "string"
    ? query
    : (query as { query?: unknown } | undefined)?.query;
}

/**
 * Each series selector that does not select `job="$job"` (every expression
 * but the job variable's own) and, in a panel, `instance=~"$instance"`.
 */
function unscopedSelectors(dashboard: Dashboard): string[] {
  const out: string[] = [];
  for (const { where, expr } of expressions(dashboard)) {
    if (where === "variable job") continue;
    const required: Array<[string, string]> = [["job", '="$job"']];
    if (where.startsWith("panel")) required.push(["instance", '=~"$instance"']);
    for (const s of readExpr(expr).selectors) {
      for (const [label, matcher] of required) {
        if (s.matchers.get(label) !== matcher) {
          out.push(`${where}: ${s.metric} without ${label}${matcher}`);
        }
      }
    }
  }
  return out;
}

/**
 * `label_values(metric, label)` (Grafana's variable query) as the PromQL it
 * stands for, `metric{label!=""}`, so that its series and label are checked.
 */
function labelValues(query: string): string {
  const m = /^label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/
    .exec(query);
  if (!m) throw new SyntaxError(`Cannot read variable query: ${query}`);
  const selector = m[1]!;
  const matcher = `${m[2]}!=""`;
  return selector.endsWith("}")
    ? `${selector.slice(0, -1)},${matcher}}`
    : `${selector}{${matcher}}`;
}

// ---------------------------------------------------------------------------
// A small PromQL reader: which series and labels an expression names.

/** One series selector: its metric name and its label matchers. */
interface Selector {
  metric: string;
  /** label name → operator and quoted value, e.g. `instance` → `=~"$instance"`. */
  matchers: Map<string, string>;
}

/** What an expression names. */
interface ExprNames {
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
function readExpr(expr: string): ExprNames {
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

/** The `{{label}}` names of a legend format. */
function legendLabels(format: string): string[] {
  return [...format.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map(
    (m) => m[1]!,
  );
}

// ---------------------------------------------------------------------------
// What /metrics serves.

/** The families a /metrics text declares (`# TYPE`) and the labels its samples carry. */
interface Served {
  types: Map<string, string>;
  labels: Set<string>;
}

/** One `name="value"` of a sample's labels. */
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\\n]|\\.)*"/g;

function readMetrics(text: string): Served {
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
function isServed(name: string, served: Served): boolean {
  if (PROMETHEUS_SERIES.has(name)) return true;
  const type = served.types.get(name);
  if (type !== undefined) return type !== "histogram" && type !== "summary";
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!suffix) return false;
  const base = served.types.get(suffix[1]!);
  return base === "histogram" || (base === "summary" && suffix[2] !== "bucket");
}

/** Each series the dashboard names that `served` does not serve, with where. */
function unknownSeries(dashboard: Dashboard, served: Served): string[] {
  const out: string[] = [];
  for (const { where, expr } of expressions(dashboard)) {
    for (const { metric } of readExpr(expr).selectors) {
      if (!isServed(metric, served)) out.push(`${where}: ${metric || expr}`);
    }
  }
  return out;
}

/** Each label the dashboard filters, groups or names a legend by that no served series carries. */
function unknownLabels(dashboard: Dashboard, served: Served): string[] {
  const known = (label: string) =>
    served.labels.has(label) || TARGET_LABELS.has(label);
  const out: string[] = [];
  const check = (where: string, labels: Iterable<string>) => {
    for (const label of labels) {
      if (!known(label)) out.push(`${where}: ${label}`);
    }
  };
  for (const { where, expr } of expressions(dashboard)) {
    const names = readExpr(expr);
    check(where, names.grouping);
    for (const s of names.selectors) check(where, s.matchers.keys());
  }
  for (const panel of queryPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      check(
        `panel ${panel.id} legend`,
        legendLabels(String(target.legendFormat ?? "")),
      );
    }
  }
  return out;
}

/** Each pair of panels whose rectangles overlap. */
function overlaps(panels: readonly Panel[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < panels.length; i++) {
    for (let j = i + 1; j < panels.length; j++) {
      const a = panels[i]!.gridPos!;
      const b = panels[j]!.gridPos!;
      if (
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
      ) {
        out.push(`${panels[i]!.id} and ${panels[j]!.id}`);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------

Deno.test("the dashboard JSON parses and has the fields Grafana requires and uses", async () => {
  const d = await readDashboard();
  assert.equal(typeof d.title, "string");
  assert.ok((d.title as string).length > 0);
  assert.equal(typeof d.uid, "string");
  assert.match(d.uid as string, /^[a-zA-Z0-9_-]{1,40}$/, "uid: ≤ 40 chars");
  assert.equal(typeof d.schemaVersion, "number");
  assert.ok((d.schemaVersion as number) >= 36, "datasource refs are objects");
  assert.ok(
    Array.isArray(d.tags) && d.tags.every((t) => typeof t === "string"),
  );
  assert.equal(typeof d.time?.from, "string");
  assert.equal(typeof d.time?.to, "string");
  assert.match(String(d.refresh), /^\d+[smhd]$/);
  assert.ok(Array.isArray(d.panels) && d.panels.length > 0);
  assert.ok(Array.isArray(d.templating?.list));
});

Deno.test("the dashboard's panels have unique numeric ids and sit on the 24-column grid without overlapping", async (t) => {
  const d = await readDashboard();
  const panels = d.panels!;
  await t.step("unique numeric ids", () => {
    const ids = panels.map((p) => p.id);
    assert.ok(ids.every((id) => Number.isInteger(id)), String(ids));
    assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids}`);
  });
  await t.step("gridPos {h, w, x, y} within 24 columns", () => {
    for (const p of panels) {
      const g = p.gridPos;
      assert.ok(g, `panel ${p.id} has a gridPos`);
      for (const k of ["h", "w", "x", "y"] as const) {
        assert.ok(Number.isInteger(g[k]) && g[k] >= 0, `panel ${p.id} ${k}`);
      }
      assert.ok(g.w >= 1 && g.h >= 1, `panel ${p.id} is not empty`);
      assert.ok(g.x + g.w <= COLUMNS, `panel ${p.id} ends past column 24`);
    }
  });
  await t.step("no two panels overlap", () => {
    assert.deepEqual(overlaps(panels), []);
  });
  await t.step("the overlap check finds an overlap", () => {
    const [a, b] = queryPanels(d);
    assert.deepEqual(
      overlaps([a!, {
        ...b!,
        gridPos: { ...a!.gridPos!, x: a!.gridPos!.x + 1, w: 1 },
      }]),
      [`${a!.id} and ${b!.id}`],
    );
  });
  await t.step(
    "rows are open, full width, and hold their panels at top level",
    () => {
      const rows = panels.filter((p) => p.type === "row");
      assert.ok(rows.length >= 2);
      for (const row of rows) {
        assert.equal(row.collapsed, false, `row ${row.id}`);
        assert.deepEqual(row.panels, [], `row ${row.id}`);
        assert.deepEqual(row.gridPos, { h: 1, w: 24, x: 0, y: row.gridPos!.y });
        assert.equal(row.targets, undefined, `row ${row.id} queries nothing`);
      }
    },
  );
});

Deno.test("each panel's targets have an expr and a refId unique within the panel; each has a unit", async () => {
  const d = await readDashboard();
  const panels = queryPanels(d);
  assert.ok(panels.length > 0);
  for (const panel of panels) {
    assert.ok(
      ["timeseries", "stat"].includes(String(panel.type)),
      `panel ${panel.id} type`,
    );
    assert.equal(typeof panel.title, "string");
    assert.equal(
      typeof panel.fieldConfig?.defaults?.unit,
      "string",
      `panel ${panel.id} unit`,
    );
    const targets = panel.targets ?? [];
    assert.ok(targets.length > 0, `panel ${panel.id} has targets`);
    const refIds = targets.map((t) => t.refId);
    assert.ok(
      refIds.every((r) => typeof r === "string" && r !== ""),
      `panel ${panel.id}`,
    );
    assert.equal(
      new Set(refIds).size,
      refIds.length,
      `panel ${panel.id} refIds ${refIds}`,
    );
    for (const target of targets) {
      assert.equal(
        typeof target.expr,
        "string",
        `panel ${panel.id} ${target.refId}`,
      );
      assert.ok((target.expr as string).trim() !== "");
      assert.equal(typeof target.legendFormat, "string");
    }
  }
});

Deno.test("every panel queries the ${datasource} variable, and every series is filtered by $job and $instance", async (t) => {
  const d = await readDashboard();
  const ref = { type: "prometheus", uid: "${datasource}" };
  const variables = d.templating!.list!;
  await t.step("a datasource variable of type prometheus", () => {
    const ds = variables.find((v) => v.name === "datasource");
    assert.equal(ds?.type, "datasource");
    assert.equal(ds?.query, "prometheus");
  });
  await t.step(
    "a single-value job variable, hookgate by default (the alert rules' job), before instance",
    () => {
      const index = variables.findIndex((v) => v.name === "job");
      const job = variables[index];
      assert.equal(job?.type, "query");
      assert.equal(
        variableQuery(job),
        "label_values(webhook_queue_depth, job)",
      );
      assert.equal(job?.definition, variableQuery(job));
      assert.equal(job?.multi, false);
      assert.equal(job?.includeAll, false);
      assert.equal(job?.current?.value, "hookgate");
      assert.equal(job?.current?.text, "hookgate");
      assert.deepEqual(job?.datasource, ref);
      assert.ok(
        index < variables.findIndex((v) => v.name === "instance"),
        "job comes before the instance variable that depends on it",
      );
    },
  );
  await t.step(
    "a multi-value instance variable with All, of the selected job, on the same data source",
    () => {
      const instance = variables.find((v) => v.name === "instance");
      assert.equal(instance?.type, "query");
      assert.equal(
        variableQuery(instance),
        'label_values(webhook_queue_depth{job="$job"}, instance)',
      );
      assert.equal(instance?.definition, variableQuery(instance));
      assert.equal(instance?.multi, true);
      assert.equal(instance?.includeAll, true);
      assert.deepEqual(instance?.datasource, ref);
    },
  );
  await t.step("panels and targets", () => {
    for (const panel of queryPanels(d)) {
      assert.deepEqual(panel.datasource, ref, `panel ${panel.id}`);
      for (const target of panel.targets ?? []) {
        if (target.datasource !== undefined) {
          assert.deepEqual(
            target.datasource,
            ref,
            `panel ${panel.id} ${target.refId}`,
          );
        }
      }
    }
  });
  await t.step(
    'each series selector has job="$job" and, in a panel, instance=~"$instance"',
    () => {
      assert.deepEqual(unscopedSelectors(d), []);
    },
  );
  await t.step("a selector without the job matcher is reported", () => {
    const broken: Dashboard = structuredClone(d);
    const panel = queryPanels(broken).find((p) =>
      String(p.targets?.[0]?.expr).startsWith("sum(up{")
    )!;
    const target = panel.targets![0]!;
    target.expr = String(target.expr).replace('job="$job",', "");
    const instance = broken.templating!.list!.find((v) =>
      v.name === "instance"
    )!;
    instance.query = "label_values(webhook_queue_depth, instance)";
    assert.deepEqual(unscopedSelectors(broken), [
      `panel ${panel.id} "${panel.title}" ${target.refId}: up without job="$job"`,
      'variable instance: webhook_queue_depth without job="$job"',
    ]);
  });
});

Deno.test("stat panels query instantly without a sparkline, and show 0 for a counter not yet incremented", async (t) => {
  const d = await readDashboard();
  const panels = queryPanels(d);
  await t.step("each target is either a range or an instant query", () => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        const where = `panel ${panel.id} ${target.refId}`;
        assert.ok(
          target.instant === undefined || typeof target.instant === "boolean",
          where,
        );
        assert.equal(target.range, target.instant !== true, where);
      }
    }
  });
  await t.step(
    "instant exactly in the stat panels that draw no sparkline",
    () => {
      for (const panel of panels) {
        const instant = panel.type === "stat" &&
          panel.options?.graphMode === "none";
        for (const target of panel.targets ?? []) {
          assert.equal(
            target.instant === true,
            instant,
            `panel ${panel.id} "${panel.title}" ${target.refId}`,
          );
        }
      }
    },
  );
  await t.step("a stat of rate() or increase() shows 0 for no data", () => {
    const counting = panels.filter((p) =>
      p.type === "stat" &&
      (p.targets ?? []).some((t) => /\b(rate|increase)\(/.test(String(t.expr)))
    );
    assert.ok(counting.length >= 2, "accepted and dead deliveries");
    for (const panel of counting) {
      assert.equal(
        panel.fieldConfig?.defaults?.noValue,
        "0",
        `panel ${panel.id}`,
      );
    }
  });
  await t.step(
    "the dead deliveries stat counts over the time range, at its end",
    () => {
      const dead = panels.find((p) =>
        p.type === "stat" &&
        (p.targets ?? []).some((t) => String(t.expr).includes('status="dead"'))
      );
      assert.ok(dead, "a dead deliveries stat");
      assert.equal(dead.options?.graphMode, "none");
      assert.deepEqual(
        dead.targets!.map((t) => [t.expr, t.instant, t.range]),
        [[
          'sum(increase(webhook_delivery_outcomes_total{status="dead",job="$job",instance=~"$instance"}[$__range]))',
          true,
          false,
        ]],
      );
      assert.equal(dead.fieldConfig?.defaults?.noValue, "0");
    },
  );
});

Deno.test("readExpr() finds the series and labels of PromQL, leaving out functions, keywords, strings and variables", async (t) => {
  const table: Array<[string, string[], string[]]> = [
    [
      'sum by (status) (rate(webhook_requests_total{instance=~"$instance"}[$__rate_interval]))',
      ["webhook_requests_total"],
      ["status"],
    ],
    [
      "histogram_quantile(0.95, sum by (le, event) (rate(h_seconds_bucket[5m])))",
      ["h_seconds_bucket"],
      ["le", "event"],
    ],
    ["time() - (meta_ts > 0)", ["meta_ts"], []],
    [
      "a_total / on(instance) group_left(version) b_info offset 5m",
      ["a_total", "b_info"],
      ["instance", "version"],
    ],
    ['{__name__="up", job="x"}', ["up"], []],
    ["count(up) > bool 1e3 and sum without() (x:rule:rate5m)", [
      "up",
      "x:rule:rate5m",
    ], []],
    [
      'label_replace(up, "dst", "$1 sum(fake_total)", "src", "(.*)")',
      ["up"],
      [],
    ],
    ["max_over_time(q_depth[1h:5m]) * 2 + inf", ["q_depth"], []],
    [
      "sum by(event)(rate(c_total{a='x',b!~`y|z`}[${__interval}]))",
      ["c_total"],
      ["event"],
    ],
  ];
  for (const [expr, metrics, grouping] of table) {
    await t.step(expr, () => {
      const names = readExpr(expr);
      assert.deepEqual(names.selectors.map((s) => s.metric), metrics);
      assert.deepEqual(names.grouping, grouping);
    });
  }
  await t.step("matchers are read with their operator and value", () => {
    const [s] =
      readExpr('x{instance=~"$instance", status!="2\\"00"}').selectors;
    assert.deepEqual([...s!.matchers], [["instance", '=~"$instance"'], [
      "status",
      '!="2\\"00"',
    ]]);
  });
  await t.step("a malformed matcher is an error, not a pass", () => {
    assert.throws(() => readExpr("x{status}"), SyntaxError);
    assert.throws(() => readExpr('x{a="b"'), SyntaxError);
  });
});

Deno.test("every series and label the dashboard names is served by a running hookgate's /metrics", async (t) => {
  const cwd = await Deno.makeTempDir({ prefix: "hookgate-grafana-" });
  const server = await startServer({
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    IP_ALLOWLIST: "off",
    KV_PATH: ":memory:",
    // Reconciliation on, so that its gauge is declared; nothing listens at
    // this API URL and the first pass (15 s away) would find no hook anyway.
    RECONCILE_INTERVAL_MINUTES: "60",
    GITHUB_TOKEN: "ghp_grafanaDashboardTest000000000000",
    GITHUB_API_URL: `http://127.0.0.1:${freePort()}`,
  }, { cwd });
  try {
    // One delivery run and one refusal, so labelled series have samples.
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
    const served = readMetrics(text);
    const d = await readDashboard();

    await t.step(
      "the served families include the new and the conditional ones",
      () => {
        for (
          const name of [
            "webhook_delivery_outcomes_total",
            "webhook_queue_oldest_due_seconds",
            "webhook_reconcile_last_success_timestamp_seconds",
          ]
        ) assert.ok(served.types.has(name), name);
        assert.equal(
          served.types.get("webhook_handler_duration_seconds"),
          "histogram",
        );
      },
    );
    await t.step("every series", () => {
      assert.deepEqual(unknownSeries(d, served), []);
    });
    await t.step("every label filtered, grouped or shown in a legend", () => {
      assert.deepEqual(unknownLabels(d, served), []);
    });
    await t.step("a series or label /metrics lacks is reported", () => {
      const broken: Dashboard = structuredClone(d);
      const panel = queryPanels(broken)[0]!;
      panel.targets!.push(
        {
          refId: "Y",
          expr:
            'sum by (nope) (webhook_bogus_total{job="$job",instance=~"$instance"})',
          legendFormat: "{{nope}}",
        },
        {
          refId: "Z",
          expr: "webhook_queue_depth_count + webhook_handler_duration_seconds",
          legendFormat: "",
        },
      );
      const where = `panel ${panel.id} "${panel.title}"`;
      assert.deepEqual(unknownSeries(broken, served), [
        `${where} Y: webhook_bogus_total`,
        `${where} Z: webhook_queue_depth_count`,
        `${where} Z: webhook_handler_duration_seconds`,
      ]);
      assert.deepEqual(unknownLabels(broken, served), [
        `${where} Y: nope`,
        `panel ${panel.id} legend: nope`,
      ]);
    });
  } finally {
    const status = await server.stop();
    assert.equal(status.code, 0, server.lines.join("\n"));
    await Deno.remove(cwd, { recursive: true });
  }
});
