// The Prometheus rules of deploy/prometheus/: `promtool check rules` and
// `promtool test rules` when promtool is installed (Debian's `prometheus`
// package; .ci/run installs it), and, without promtool, a line-based reading
// of the rule file: every alert has `for`, a severity, a summary, a
// description and a runbook in the README, and a firing and a quiet promtool
// case; every series an expression reads is one a running hookgate serves.

import assert from "node:assert/strict";
import { isServed, readExpr, servedMetrics } from "./_promql.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const RULES = "deploy/prometheus/hookgate.rules.yml";
const RULE_TESTS = "deploy/prometheus/hookgate.rules.test.yml";
const RUNBOOK = "https://github.com/hookgate/hookgate#";

/** The promtool executable (`PROMTOOL_PATH`, else on `PATH`), or null. */
function findPromtool(): string | null {
  const explicit = Deno.env.get("PROMTOOL_PATH");
  const candidates = explicit ? [explicit] : (Deno.env.get("PATH") ?? "")
    .split(":").filter((dir) => dir !== "").map((dir) => `${dir}/promtool`);
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not there */ }
  }
  return null;
}

const PROMTOOL = findPromtool();
const SKIPPED = PROMTOOL === null
  ? " (skipped: promtool not installed; .ci/run installs Debian's prometheus package)"
  : "";
if (PROMTOOL === null) {
  console.log(
    "prometheus rule tests skipped: promtool not found (apt-get install --no-install-recommends prometheus)",
  );
}

/** Runs promtool in the repository root; exit code and both outputs together. */
async function promtool(
  ...args: string[]
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(PROMTOOL!, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    output: decoder.decode(stdout) + decoder.decode(stderr),
  };
}

Deno.test({
  name: `promtool check rules accepts ${RULES}${SKIPPED}`,
  ignore: PROMTOOL === null,
  async fn() {
    const { code, output } = await promtool("check", "rules", RULES);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS: \d+ rules found/);
  },
});

Deno.test({
  name: `promtool test rules passes every case of ${RULE_TESTS}${SKIPPED}`,
  ignore: PROMTOOL === null,
  async fn() {
    const { code, output } = await promtool("test", "rules", RULE_TESTS);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS/);
    assert.doesNotMatch(output, /FAILED/);
  },
});

// ---- reading the rule file without promtool ------------------------------

/** One rule: its name, its keys (nested ones as `labels.severity`) and its expression. */
interface Rule {
  kind: "alert" | "record";
  name: string;
  fields: Map<string, string>;
  expr: string;
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function unquote(value: string): string {
  const v = value.trim();
  return /^(["']).*\1$/.test(v) ? v.slice(1, -1) : v;
}

/**
 * The rules of a rule file, read line by line: enough for the layout of
 * hookgate.rules.yml (`- alert:`/`- record:` items, `expr:` on one line or
 * as a `|` block, one level of nested maps), not YAML in general.
 */
function parseRules(text: string): Rule[] {
  const lines = text.split("\n");
  const rules: Rule[] = [];
  let rule: Rule | null = null;
  let keyIndent = 0;
  let parent: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const item = /^(\s*)- (alert|record): (.+)$/.exec(line);
    if (item) {
      rule = {
        kind: item[2] as Rule["kind"],
        name: unquote(item[3]!),
        fields: new Map(),
        expr: "",
      };
      rules.push(rule);
      keyIndent = item[1]!.length + 2;
      parent = null;
      continue;
    }
    const field = /^(\s*)([A-Za-z_]+):\s*(.*)$/.exec(line);
    if (rule === null || field === null) continue;
    const indent = field[1]!.length;
    const [key, value] = [field[2]!, field[3]!];
    if (indent < keyIndent) {
      rule = null;
    } else if (indent === keyIndent && key === "expr" && value === "|") {
      const block: string[] = [];
      while (i + 1 < lines.length) {
        const next = lines[i + 1]!;
        if (next.trim() !== "" && indentOf(next) <= indent) break;
        block.push(next.trim());
        i++;
      }
      rule.expr = block.join(" ").trim();
    } else if (indent === keyIndent && key === "expr") {
      rule.expr = unquote(value);
    } else if (indent === keyIndent) {
      parent = value === "" ? key : null;
      rule.fields.set(key, unquote(value));
    } else if (parent !== null) {
      rule.fields.set(`${parent}.${key}`, unquote(value));
    }
  }
  return rules;
}

/** For each alert name of a promtool test file: whether it has a firing case and a quiet one. */
function promtoolCases(
  text: string,
): Map<string, { fires: boolean; quiet: boolean }> {
  const cases = new Map<string, { fires: boolean; quiet: boolean }>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*alertname: (\S+)\s*$/.exec(lines[i]!);
    const next = lines[i + 1]?.trim() ?? "";
    if (!m) continue;
    const entry = cases.get(m[1]!) ?? { fires: false, quiet: false };
    if (next === "exp_alerts: []") entry.quiet = true;
    else if (
      next === "exp_alerts:" &&
      /^\s*- exp_labels:/.test(lines[i + 2] ?? "")
    ) entry.fires = true;
    cases.set(m[1]!, entry);
  }
  return cases;
}

const rules = parseRules(await Deno.readTextFile(`${ROOT}${RULES}`));
const alerts = rules.filter((r) => r.kind === "alert");
const records = rules.filter((r) => r.kind === "record");

Deno.test("parseRules() reads one-line and block expressions and nested keys", () => {
  const parsed = parseRules(
    [
      "groups:",
      "  - name: g",
      "    rules:",
      "      - record: a:b:rate5m",
      "        expr: sum(rate(b_total[5m]))",
      "      - alert: A",
      "        expr: |",
      "          a:b:rate5m",
      "            > 1",
      "        for: 5m",
      "        labels:",
      "          severity: warning",
      "        annotations:",
      '          summary: "It {{ $value }}"',
    ].join("\n"),
  );
  assert.equal(parsed.length, 2);
  assert.equal(parsed[0]!.expr, "sum(rate(b_total[5m]))");
  assert.equal(parsed[1]!.expr, "a:b:rate5m > 1");
  assert.equal(parsed[1]!.fields.get("for"), "5m");
  assert.equal(parsed[1]!.fields.get("labels.severity"), "warning");
  assert.equal(parsed[1]!.fields.get("annotations.summary"), "It {{ $value }}");
});

Deno.test("every alert has for, a severity, a summary, a description and a runbook link", () => {
  assert.ok(alerts.length >= 11, `only ${alerts.length} alerts read`);
  for (const alert of alerts) {
    const f = alert.fields;
    assert.match(f.get("for") ?? "", /^\d+[smh]$/, `${alert.name}: for`);
    assert.match(
      f.get("labels.severity") ?? "",
      /^(warning|critical)$/,
      `${alert.name}: severity`,
    );
    assert.ok(f.get("annotations.summary"), `${alert.name}: summary`);
    assert.ok(f.get("annotations.description"), `${alert.name}: description`);
    assert.equal(
      f.get("annotations.runbook_url"),
      RUNBOOK + alert.name.toLowerCase(),
      `${alert.name}: runbook_url`,
    );
    assert.ok(alert.expr, `${alert.name}: expr`);
  }
});

Deno.test("every alert has its runbook entry in the README", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.split("\n### Alerts and runbook\n")[1]
    ?.split("\n### ")[0];
  assert.ok(section, "README has no '### Alerts and runbook' section");
  const headings = new Set(
    [...section.matchAll(/^#### (\S+)$/gm)].map((m) => m[1]),
  );
  for (const alert of alerts) {
    assert.ok(headings.has(alert.name), `README: no '#### ${alert.name}'`);
  }
  assert.equal(headings.size, alerts.length, "README runbooks without alert");
});

Deno.test("every alert has a firing and a quiet promtool case", async () => {
  const cases = promtoolCases(
    await Deno.readTextFile(`${ROOT}${RULE_TESTS}`),
  );
  for (const alert of alerts) {
    assert.deepEqual(
      cases.get(alert.name),
      { fires: true, quiet: true },
      alert.name,
    );
  }
});

Deno.test("recording rules are named level:metric:operations and defined once", () => {
  assert.ok(records.length > 0);
  const names = records.map((r) => r.name);
  assert.equal(new Set(names).size, names.length);
  for (const name of names) {
    assert.match(name, /^hookgate:[a-z_]+:[a-z0-9_]+$/, name);
  }
});

Deno.test("every series a rule reads is one a running hookgate serves, up, or a recording rule", async () => {
  const served = await servedMetrics();
  const recorded = new Set(records.map((r) => r.name));
  for (const rule of rules) {
    const read = readExpr(rule.expr).selectors.map((s) => s.metric);
    assert.ok(read.length > 0, `${rule.name}: no series read`);
    for (const name of read) {
      assert.ok(
        recorded.has(name) || isServed(name, served),
        `${rule.name} reads unknown series ${name}`,
      );
    }
  }
});
