// Reading /metrics in tests with two real parsers of the text format: promtool (Prometheus's
// own Go parser and linter, Debian package `prometheus`; .ci/run installs it) must accept
// the body without a word, and parse-prometheus-text-format (npm, a port of the same Go
// parser) gives the samples back for toEqual.
import { expect } from "bun:test";
import parse from "parse-prometheus-text-format";
import type { Handler } from "../../helpers";

export const PROMTOOL = Bun.which("promtool");
if (PROMTOOL === null) {
  console.warn("promtool not found (Debian package prometheus): /metrics is checked by the npm parser only");
}

export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape: family name -> its series (a histogram h reads as h_bucket, h_sum, h_count). */
export interface Scrape {
  text: string;
  types: Record<string, string>;
  family(name: string): Series[];
  /** The one value of an unlabelled family, or of the series with these labels. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  names(): string[];
  /** The HELP text of a family (where units are said). */
  help(name: string): string | undefined;
}

const num = (s: string) => (s === "+Inf" ? Infinity : s === "-Inf" ? -Infinity : Number(s));

/** Runs `promtool check metrics` on `text`; resolves with its output (empty when clean). */
export function promtoolCheck(text: string): { code: number; output: string } | null {
  if (PROMTOOL === null) return null;
  const r = Bun.spawnSync([PROMTOOL, "check", "metrics"], { stdin: new TextEncoder().encode(text) });
  return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}` };
}

export function parseScrape(text: string): Scrape {
  // ? The npm parser folds a histogram's label sets into one sample; with its TYPE line
  // removed, each of name_bucket, name_sum and name_count reads as a family of its own.
  // (promtool checks the text as written.)
  const histograms = [...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1] as string);
  const families = parse(text.replace(/^# TYPE \S+ histogram\n/gm, ""));
  // A histogram's _bucket, _sum and _count lines alternate per label set: join the pieces.
  const byName = new Map<string, { metrics: (typeof families)[number]["metrics"] }>();
  for (const f of families) byName.set(f.name, { metrics: [...(byName.get(f.name)?.metrics ?? []), ...f.metrics] });
  const types = Object.fromEntries([
    ...families.map((f) => [f.name, f.type]),
    ...histograms.map((h) => [h, "HISTOGRAM"]),
  ]);
  const family = (name: string): Series[] =>
    (byName.get(name)?.metrics ?? []).map((m) => ({
      labels: m.labels ?? {},
      value: num(m.value ?? "NaN"),
    }));
  return {
    text,
    types,
    family,
    value(name, labels = {}) {
      return family(name).find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    },
    names: () => [...byName.keys()],
    help: (name) => families.find((f) => f.name === name)?.help,
  };
}

/** GET /metrics: checks status, content type, and both parsers, then returns the parse. */
export async function scrape(app: Handler): Promise<Scrape> {
  const res = await app.handle(new Request("http://localhost/metrics"));
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const check = promtoolCheck(text);
  if (check !== null) expect(check).toEqual({ code: 0, output: "" });
  return parseScrape(text);
}
