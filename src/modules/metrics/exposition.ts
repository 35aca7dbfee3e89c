// The Prometheus text exposition format (version 0.0.4), written by hand.
// Why not prom-client: measured on the compiled binary, importing it alone added 5 to 9 ms
// to start-up (+20 to +40 %) and 2.5 MiB of anonymous memory (README, "Prometheus and
// Grafana"), against issue 3's targets, while the format itself is a few lines. Every rule
// of the format that matters is here, and test/modules/metrics/ holds the output to them
// with promtool's parser:
// - label values escape backslash, double quote and line feed (\\, \", \n);
// - HELP text escapes backslash and line feed;
// - values are Go floats: NaN, +Inf, -Inf; JavaScript's 1e+21 form parses as is;
// - one HELP and TYPE per family, before its samples; a label set at most once per family;
// - a histogram has cumulative _bucket{le} series ending in le="+Inf", then _sum, _count.
// Label values come from clients (agent names): each family holds at most `seriesLimit`
// series, so an agent flood cannot blow up the scrape or Prometheus's memory.

/**
 * Series per family at most: far above the handful of agents a deployment runs (the
 * fixtures hold 3). Default of NEOLIGHT_METRICS_MAX_SERIES (README: what a scrape costs).
 */
export const MAX_SERIES_PER_FAMILY = 1000;
/** Longer label values are cut: Prometheus keeps each in memory per series; no name is this long. */
export const MAX_LABEL_VALUE_LENGTH = 256;
/** What the scrape answers with (the format's registered content type). */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge" | "histogram" | "untyped";
/** Label name -> value, in output order. Names are ours (static); values may be anything. */
export type Labels = Readonly<Record<string, string>>;

/** `a\b"c<LF>` -> `a\\b\"c\n`; lone UTF-16 surrogates (valid in JSON, not in UTF-8) become U+FFFD. */
export function escapeLabelValue(value: string): string {
  let v = value.isWellFormed() ? value : value.toWellFormed();
  if (v.length > MAX_LABEL_VALUE_LENGTH) v = `${v.slice(0, MAX_LABEL_VALUE_LENGTH - 1).toWellFormed()}…`;
  // ? Fast path: most values (route templates, agent names) need no escaping.
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/[\\"\n]/g, (c) => (c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n"));
}

export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\\" ? "\\\\" : "\\n"));
}

/** An RFC 3339 time as epoch ms (for the _timestamp_seconds families); null when absent or no time. */
export function epochMs(iso: string | null | undefined): number | null {
  if (typeof iso !== "string") return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** A sample value as Prometheus's parser reads it. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function labelText(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  let out = "";
  for (const name of Object.keys(labels)) {
    out += `${out === "" ? "" : ","}${name}="${escapeLabelValue(labels[name] as string)}"`;
  }
  return out;
}

/** Upper bounds of histogram buckets, ascending; +Inf is implied. */
export type Buckets = readonly number[];

/**
 * A histogram recorded in place: observe() is a short linear scan and two additions, cheap
 * enough for the request path. Counts are per bucket (not cumulative) until written.
 */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly buckets: Buckets) {
    this.counts = new Float64Array(buckets.length + 1);
  }
  observe(value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    (this.counts as Float64Array)[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** Families whose series were cut at the limit in one scrape: family -> series dropped. */
export type Truncated = Map<string, number>;

/**
 * Builds one scrape's text. Families are written one after the other: family() opens one
 * (its HELP and TYPE are written with its first sample, so a family without samples is
 * left out), sample()/histogram() add series to the open family.
 */
export class ExpositionWriter {
  private parts: string[] = [];
  private name = "";
  private header = "";
  private seen = new Set<string>();
  private readonly names = new Set<string>();
  readonly truncated: Truncated = new Map();

  constructor(readonly seriesLimit: number = MAX_SERIES_PER_FAMILY) {}

  /** Opens family `name`. A name may be opened once per scrape (the format forbids a second block). */
  family(name: string, type: MetricType, help: string): this {
    if (this.names.has(name)) throw new Error(`metric family ${name} written twice`);
    this.names.add(name);
    this.name = name;
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
    this.seen = new Set();
    return this;
  }

  /** Whether one more series fits the open family; counts the ones that do not. */
  private admit(key: string): boolean {
    if (this.seen.has(key)) return false; // two client keys that escape alike: keep the first
    if (this.seen.size >= this.seriesLimit) {
      this.truncated.set(this.name, (this.truncated.get(this.name) ?? 0) + 1);
      return false;
    }
    this.seen.add(key);
    if (this.header !== "") {
      this.parts.push(this.header);
      this.header = "";
    }
    return true;
  }

  /** One series of the open family. Skipped (counted in `truncated`) beyond the series limit. */
  sample(value: number, labels?: Labels): this {
    const text = labelText(labels);
    if (!this.admit(text)) return this;
    this.parts.push(`${this.name}${text === "" ? "" : `{${text}}`} ${formatValue(value)}\n`);
    return this;
  }

  /** One histogram series (buckets, sum, count) of the open family, which must be a histogram. */
  histogram(h: Histogram, labels?: Labels): this {
    const text = labelText(labels);
    if (!this.admit(text)) return this;
    const prefix = text === "" ? "" : `${text},`;
    const suffix = text === "" ? "" : `{${text}}`;
    let cumulative = 0;
    let out = "";
    for (let i = 0; i <= h.buckets.length; i++) {
      cumulative += h.counts[i] as number;
      const le = i < h.buckets.length ? formatValue(h.buckets[i] as number) : "+Inf";
      out += `${this.name}_bucket{${prefix}le="${le}"} ${cumulative}\n`;
    }
    out += `${this.name}_sum${suffix} ${formatValue(h.sum)}\n${this.name}_count${suffix} ${h.count}\n`;
    this.parts.push(out);
    return this;
  }

  text(): string {
    return this.parts.join("");
  }
}
