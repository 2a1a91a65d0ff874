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
import { isServed, readExpr, type Served, servedMetrics } from "./_promql.ts";

const FILE = new URL("../../deploy/grafana/hookgate.json", import.meta.url);

/** The dashboard's columns (Grafana's grid is 24 wide). */
const COLUMNS = 24;

/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = new Set(["instance", "job"]);

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

/** The `{{label}}` names of a legend format. */
function legendLabels(format: string): string[] {
  return [...format.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map(
    (m) => m[1]!,
  );
}

// ---------------------------------------------------------------------------
// What /metrics serves.

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

Deno.test("every series and label the dashboard names is served by a running hookgate's /metrics", async (t) => {
  const served = await servedMetrics();
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
});
