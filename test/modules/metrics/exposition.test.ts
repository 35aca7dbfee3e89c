// The hand-written text format (src/modules/metrics/exposition.ts) against its rules,
// read back by promtool and by the npm parser: escaping, values, histograms, the limit.
import { describe, expect, test } from "bun:test";
import {
  ExpositionWriter,
  escapeLabelValue,
  formatValue,
  Histogram,
  MAX_LABEL_VALUE_LENGTH,
} from "../../../src/modules/metrics/exposition";
import { parseScrape, promtoolCheck } from "./prom";

const clean = (text: string) => {
  const check = promtoolCheck(text);
  if (check !== null) expect(check).toEqual({ code: 0, output: "" });
  return parseScrape(text);
};

describe("label values", () => {
  test.each([
    ["plain", "smart_trader", "smart_trader"],
    ["double quote", 'say "hi"', 'say \\"hi\\"'],
    ["backslash", "C:\\agents\\x", "C:\\\\agents\\\\x"],
    ["line feed", "two\nlines", "two\\nlines"],
    ["all three, backslash first", '\\"\n', '\\\\\\"\\n'],
    ["unicode passes as UTF-8", "трейдер 🚀 é", "трейдер 🚀 é"],
    ["a lone surrogate becomes U+FFFD", "bad\ud800x", "bad\ufffdx"],
  ])("%s", (_name, value, escaped) => {
    expect(escapeLabelValue(value)).toBe(escaped);
  });

  test("longer than the limit: cut, marked with an ellipsis, never a broken surrogate pair", () => {
    const long = `${"a".repeat(MAX_LABEL_VALUE_LENGTH - 2)}🚀🚀🚀`;
    const cut = escapeLabelValue(long);
    expect(cut.length).toBeLessThanOrEqual(MAX_LABEL_VALUE_LENGTH);
    expect(cut.endsWith("…")).toBe(true);
    expect(cut.isWellFormed()).toBe(true);
  });

  test("hostile values survive a round trip through both parsers", () => {
    const hostile = ['a"b', "c\\d", "e\nf", 'g\\"h\\n', "}", 'x="1",y="2', "日本語", "emoji 🧨", "", " "];
    const w = new ExpositionWriter().family("t_agents", "gauge", "test");
    hostile.forEach((name, i) => {
      w.sample(i, { agent: name });
    });
    const parsed = clean(w.text());
    expect(parsed.family("t_agents")).toEqual(hostile.map((agent, value) => ({ labels: { agent }, value })));
  });
});

describe("values", () => {
  test.each([
    [0, "0"],
    [-57.12, "-57.12"],
    [1e21, "1e+21"],
    [1.5e-7, "1.5e-7"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "+Inf"],
    [Number.NEGATIVE_INFINITY, "-Inf"],
  ])("%p is written %p and read back", (value, text) => {
    expect(formatValue(value)).toBe(text);
    const parsed = clean(new ExpositionWriter().family("v", "gauge", "value").sample(value).text());
    expect(parsed.value("v")).toEqual(value);
  });
});

describe("the writer", () => {
  test("HELP is escaped; a family without samples is left out; a family cannot be opened twice", () => {
    const w = new ExpositionWriter();
    w.family("empty", "gauge", "never sampled");
    w.family("a_total", "counter", "back\\slash and\nnewline").sample(3);
    expect(w.text()).toBe("# HELP a_total back\\\\slash and\\nnewline\n# TYPE a_total counter\na_total 3\n");
    expect(() => w.family("a_total", "counter", "again")).toThrow("written twice");
    expect(clean(w.text()).family("a_total")).toEqual([{ labels: {}, value: 3 }]);
  });

  test("a histogram: cumulative buckets ending at +Inf, then sum and count", () => {
    const h = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 7]) h.observe(v);
    const text = new ExpositionWriter()
      .family("d_seconds", "histogram", "durations")
      .histogram(h, { route: "/x" })
      .text();
    expect(text).toBe(
      [
        "# HELP d_seconds durations",
        "# TYPE d_seconds histogram",
        'd_seconds_bucket{route="/x",le="0.1"} 2',
        'd_seconds_bucket{route="/x",le="1"} 3',
        'd_seconds_bucket{route="/x",le="+Inf"} 4',
        'd_seconds_sum{route="/x"} 7.65',
        'd_seconds_count{route="/x"} 4',
        "",
      ].join("\n"),
    );
    clean(text);
  });

  test("the series limit cuts a family and counts what it left out; other families are unaffected", () => {
    const w = new ExpositionWriter(3);
    w.family("many", "gauge", "many");
    for (let i = 0; i < 5; i++) w.sample(i, { agent: `a${i}` });
    w.family("few", "gauge", "few").sample(1, { agent: "x" });
    expect([...w.truncated]).toEqual([["many", 2]]);
    const parsed = clean(w.text());
    expect(parsed.family("many").map((s) => s.labels.agent)).toEqual(["a0", "a1", "a2"]);
    expect(parsed.family("few")).toHaveLength(1);
  });

  test("two values that escape alike (lone surrogates) give one series, not a duplicate", () => {
    const w = new ExpositionWriter().family("g", "gauge", "g");
    w.sample(1, { agent: "\ud800" }).sample(2, { agent: "\ud801" });
    expect(clean(w.text()).family("g")).toEqual([{ labels: { agent: "\ufffd" }, value: 1 }]);
  });
});
