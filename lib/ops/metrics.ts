/**
 * Counters, gauges and one histogram, rendered in the Prometheus text
 * exposition format (version 0.0.4). No dependency, no global registry: the
 * server owns one {@link Metrics} and gauges are read through callbacks at
 * scrape time.
 *
 * Label values come from senders (event names), so each counter and
 * histogram family holds at most {@link MAX_SERIES} label sets: past that,
 * a new label set is counted in one series whose every label is `"other"`.
 *
 * @module
 */

/** Label values of one series. */
export type Labels = Readonly<Record<string, string>>;

/** Buckets (seconds) of `webhook_handler_duration_seconds`: 1 ms … 60 s. */
export const HANDLER_BUCKETS = [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
] as const;

/** Label sets one counter or histogram family keeps before folding new ones into `"other"`. */
export const MAX_SERIES = 1000;

/** The label value new label sets of a full family are folded into. */
export const OTHER = "other";

interface Family {
  help: string;
  type: "counter" | "gauge";
  series: Map<string, { labels: Labels; value: number }>;
}

interface Histogram {
  help: string;
  buckets: readonly number[];
  series: Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >;
}

/** Counter and histogram values of one isolate, as sent between isolates. */
export interface MetricsSnapshot {
  counters: Array<{ name: string; labels: Labels; value: number }>;
  histograms: Array<
    {
      name: string;
      labels: Labels;
      counts: number[];
      sum: number;
      count: number;
    }
  >;
}

/** A gauge read when `/metrics` is scraped. */
export type GaugeReader = () =>
  | number
  | Array<{ labels: Labels; value: number }>;

/**
 * Escapes a label value: backslash, double quote and line feed.
 *
 * @example
 * ```ts
 * import { escapeLabel } from "./metrics.ts";
 * escapeLabel('a"b\n'); // 'a\\"b\\n'
 * ```
 */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
    /\n/g,
    "\\n",
  );
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(",") +
    "}";
}

function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

/**
 * `labels` with every value `"other"`: the series a full family counts new
 * label sets in.
 *
 * @example
 * ```ts
 * import { foldLabels } from "./metrics.ts";
 * foldLabels({ event: "x-1", outcome: "accepted" }); // { event: "other", outcome: "other" }
 * ```
 */
export function foldLabels(labels: Labels): Labels {
  const out: Record<string, string> = {};
  for (const key in labels) out[key] = OTHER;
  return out;
}

/** The metrics of one process. */
export class Metrics {
  #families = new Map<string, Family>();
  #fast = new Map<string, { labels: Labels; value: number }>();
  #histograms = new Map<string, Histogram>();
  #gauges = new Map<string, { help: string; read: GaugeReader }>();
  /** Labels added to every series (e.g. the isolate). */
  readonly constLabels: Labels;
  /** Label sets a counter or histogram family keeps (then `"other"`). */
  readonly maxSeries: number;

  /**
   * @param constLabels labels added to every series
   * @param maxSeries label sets kept per family; @default MAX_SERIES
   */
  constructor(constLabels: Labels = {}, maxSeries: number = MAX_SERIES) {
    this.constLabels = constLabels;
    this.maxSeries = maxSeries;
  }

  /** Declares a counter so it is exported (with no series) before first use. */
  counter(name: string, help: string): void {
    if (!this.#families.has(name)) {
      this.#families.set(name, { help, type: "counter", series: new Map() });
    }
  }

  /** Adds `by` (default 1) to a counter series. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    // Hot path: find the series by its raw label values, escaping nothing.
    let fast = name;
    for (const key in labels) fast += "\u0000" + key + "\u0001" + labels[key];
    const cached = this.#fast.get(fast);
    if (cached) {
      cached.value += by;
      return;
    }
    let family = this.#families.get(name);
    if (!family) {
      family = { help: name, type: "counter", series: new Map() };
      this.#families.set(name, family);
    }
    let key = labelKey(labels);
    let series = family.series.get(key);
    if (!series && family.series.size >= this.maxSeries) {
      // Full: fold into "other", and cache nothing (that cache would grow).
      labels = foldLabels(labels);
      key = labelKey(labels);
      series = family.series.get(key);
      if (!series) family.series.set(key, series = { labels, value: 0 });
      series.value += by;
      return;
    }
    if (series) series.value += by;
    else {
      series = { labels, value: by };
      family.series.set(key, series);
    }
    this.#fast.set(fast, series);
  }

  /** The current value of a counter series (0 when never incremented). */
  value(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(labelKey(labels))?.value ?? 0;
  }

  /** Declares a histogram with the given bucket upper bounds. */
  histogram(name: string, help: string, buckets: readonly number[]): void {
    if (!this.#histograms.has(name)) {
      this.#histograms.set(name, { help, buckets, series: new Map() });
    }
  }

  /** Records one observation in a histogram declared with {@link histogram}. */
  observe(name: string, value: number, labels: Labels = {}): void {
    const h = this.#histograms.get(name);
    if (!h) {
      throw new RangeError(`Cannot observe '${name}': histogram not declared`);
    }
    const series = this.#histogramSeries(h, labels);
    for (let i = 0; i < h.buckets.length; i++) {
      if (value <= h.buckets[i]!) series.counts[i]!++;
    }
    series.sum += value;
    series.count++;
  }

  /** The series of `labels` in `h`, created (or folded into "other" when `h` is full). */
  #histogramSeries(h: Histogram, labels: Labels) {
    let key = labelKey(labels);
    let series = h.series.get(key);
    if (!series && h.series.size >= this.maxSeries) {
      labels = foldLabels(labels);
      key = labelKey(labels);
      series = h.series.get(key);
    }
    if (!series) {
      series = { labels, counts: h.buckets.map(() => 0), sum: 0, count: 0 };
      h.series.set(key, series);
    }
    return series;
  }

  /** Registers a gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: GaugeReader): void {
    this.#gauges.set(name, { help, read });
  }

  /** This isolate's counters and histograms, for {@link render} elsewhere. */
  snapshot(): MetricsSnapshot {
    const counters: MetricsSnapshot["counters"] = [];
    for (const [name, family] of this.#families) {
      for (const s of family.series.values()) {
        counters.push({ name, labels: s.labels, value: s.value });
      }
    }
    const histograms: MetricsSnapshot["histograms"] = [];
    for (const [name, h] of this.#histograms) {
      for (const s of h.series.values()) {
        histograms.push({
          name,
          labels: s.labels,
          counts: [...s.counts],
          sum: s.sum,
          count: s.count,
        });
      }
    }
    return { counters, histograms };
  }

  /**
   * Renders every family in Prometheus text format; counters and histograms
   * of `others` (other isolates of this process) are added to ours.
   */
  render(others: readonly MetricsSnapshot[] = []): string {
    if (others.length > 0) {
      const merged = new Metrics(this.constLabels, this.maxSeries);
      merged.#merge(this.snapshot(), this);
      for (const other of others) merged.#merge(other, this);
      merged.#gauges = this.#gauges;
      return merged.render();
    }
    return this.#renderOwn();
  }

  #merge(snapshot: MetricsSnapshot, template: Metrics): void {
    for (const [name, family] of template.#families) {
      if (!this.#families.has(name)) this.counter(name, family.help);
    }
    for (const [name, h] of template.#histograms) {
      if (!this.#histograms.has(name)) this.histogram(name, h.help, h.buckets);
    }
    for (const c of snapshot.counters) this.inc(c.name, c.labels, c.value);
    for (const hs of snapshot.histograms) {
      const h = this.#histograms.get(hs.name);
      if (!h || hs.counts.length !== h.buckets.length) continue;
      const series = this.#histogramSeries(h, hs.labels);
      hs.counts.forEach((n, i) => series.counts[i]! += n);
      series.sum += hs.sum;
      series.count += hs.count;
    }
  }

  #renderOwn(): string {
    const lines: string[] = [];
    const withConst = (labels: Labels) => ({ ...labels, ...this.constLabels });
    for (const [name, family] of this.#families) {
      lines.push(
        `# HELP ${name} ${family.help}`,
        `# TYPE ${name} ${family.type}`,
      );
      for (const s of family.series.values()) {
        lines.push(
          `${name}${labelKey(withConst(s.labels))} ${formatNumber(s.value)}`,
        );
      }
    }
    for (const [name, h] of this.#histograms) {
      lines.push(`# HELP ${name} ${h.help}`, `# TYPE ${name} histogram`);
      for (const s of h.series.values()) {
        h.buckets.forEach((le, i) => {
          const labels = withConst({ ...s.labels, le: String(le) });
          lines.push(`${name}_bucket${labelKey(labels)} ${s.counts[i]}`);
        });
        lines.push(
          `${name}_bucket${
            labelKey(withConst({ ...s.labels, le: "+Inf" }))
          } ${s.count}`,
          `${name}_sum${labelKey(withConst(s.labels))} ${formatNumber(s.sum)}`,
          `${name}_count${labelKey(withConst(s.labels))} ${s.count}`,
        );
      }
    }
    for (const [name, g] of this.#gauges) {
      lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      let read: ReturnType<GaugeReader>;
      try {
        read = g.read();
      } catch {
        continue;
      }
      const series = typeof read === "number"
        ? [{ labels: {}, value: read }]
        : read;
      for (const s of series) {
        lines.push(
          `${name}${labelKey(withConst(s.labels))} ${formatNumber(s.value)}`,
        );
      }
    }
    return lines.join("\n") + "\n";
  }
}

/**
 * Creates the metrics of the contract, with every counter and the handler
 * duration histogram declared.
 *
 * @example
 * ```ts
 * import { createMetrics } from "./metrics.ts";
 * const metrics = createMetrics();
 * metrics.inc("webhook_requests_total", { status: "202" });
 * metrics.render().includes('webhook_requests_total{status="202"} 1'); // true
 * ```
 */
export function createMetrics(
  constLabels: Labels = {},
  maxSeries: number = MAX_SERIES,
): Metrics {
  const m = new Metrics(constLabels, maxSeries);
  m.counter(
    "webhook_requests_total",
    "Webhook requests answered, by HTTP status.",
  );
  m.counter(
    "webhook_deliveries_total",
    "Deliveries that passed every check, by event and outcome (accepted/duplicate).",
  );
  m.counter("webhook_rejections_total", "Webhook requests refused, by reason.");
  m.counter(
    "webhook_handler_runs_total",
    "Runs of each handler and hook script, by event, handler and result (ok/error/timeout).",
  );
  m.counter(
    "webhook_delivery_outcomes_total",
    "Attempts recorded, by event and the status they left the delivery in (done/failed/dead/skipped).",
  );
  m.counter(
    "webhook_reconcile_redeliveries_total",
    "Redeliveries reconciliation asked GitHub for, by result (accepted/refused).",
  );
  m.histogram(
    "webhook_handler_duration_seconds",
    "Time one handler or hook script ran, by event and handler.",
    HANDLER_BUCKETS,
  );
  return m;
}
