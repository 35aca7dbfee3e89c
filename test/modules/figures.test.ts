// The one projection of the document and the agent files (src/modules/meta/figures.ts):
// the allocation rule every reader shares, the README's table made from it, and the names
// every reader relies on.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { figuresTable, README, withTable } from "../../scripts/figures-table";
import { documentPoints } from "../../src/modules/history/points";
import { FIGURES, type FigureFiles, figures } from "../../src/modules/meta/figures";
import { fixture } from "../helpers";

const governor = fixture("capital_governor_allocations");
const override = fixture("allocations_override");
const weights = (files: FigureFiles) =>
  figures({}, files, ["allocations"]).map((r) => [r.figure.name, r.labels.source, r.labels.agent ?? "", r.value]);

describe("figures(document, files)", () => {
  test("the README's figures table is the one made from FIGURES (bun scripts/figures-table.ts)", () => {
    const readme = readFileSync(README, "utf8");
    expect(readme).toBe(withTable(readme, figuresTable()));
  });

  test("each figure is defined once, under a valid Prometheus name", () => {
    const names = FIGURES.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^neolight_[a-z0-9_]+$/);
  });

  test.each([
    [
      "the governor's file wins over its override copy",
      { regime: undefined, governor, override },
      "capital_governor",
      governor,
    ],
    [
      "the override copy when the governor's file is absent",
      { regime: undefined, governor: undefined, override },
      "allocations_override",
      override,
    ],
  ])("allocations: %s (the rule of GET /governor/allocations)", (_name, files, source, file) => {
    const { allocations, min_allocation, max_allocation } = file as {
      allocations: Record<string, number>;
      min_allocation?: number;
      max_allocation?: number;
    };
    const bounds = [
      ["neolight_allocation_min_weight", min_allocation],
      ["neolight_allocation_max_weight", max_allocation],
    ] as const;
    expect(weights(files)).toEqual([
      ...Object.entries(allocations).map(([agent, w]) => ["neolight_allocation_weight", source, agent, w]),
      ...bounds.filter(([, v]) => v !== undefined).map(([name, v]) => [name, source, "", v]),
    ]);
  });

  test("allocations: none when neither file exists (atlas' proposal is not an allocation)", () => {
    const doc = fixture("atlas_update_post");
    expect(weights({ regime: undefined, governor: undefined, override: undefined })).toEqual([]);
    expect(
      figures({ atlas: doc }, { regime: undefined, governor: undefined, override: undefined }, ["allocations"]),
    ).toEqual([]);
  });

  test("every numeric field of the regime document is a figure, from the document and from the file", () => {
    const file = fixture("market_regime");
    const readings = figures(
      { market_regime: fixture("meta_metrics_post").market_regime },
      { regime: file, governor: undefined, override: undefined },
      ["market_regime", "regime_file"],
    );
    expect(readings.filter((r) => r.labels.source === "file").map((r) => [r.figure.name, r.value ?? r.state])).toEqual([
      ["neolight_regime", "HIGH_VOL"],
      ["neolight_regime_volatility", 0.0612],
      ["neolight_regime_mean_return", -0.0021],
      ["neolight_regime_trend", -184.3],
      ["neolight_regime_risk_multiplier", 0.6],
    ]);
    // History records the hive's regime only.
    expect(readings.filter((r) => r.series !== undefined).every((r) => r.labels.source === "document")).toBe(true);
  });

  test("history: a poster's own top-level key named like a file section reads no file", () => {
    expect(
      documentPoints({ allocations: { a: 0.5 }, regime_file: { regime: "BULL" } }, ["allocations", "regime_file"], 1),
    ).toEqual([]);
  });

  test("history: only the schema's figures of an agent, not every number a poster sends", () => {
    const points = documentPoints({ per_agent: { a: { pnl_1d: 1, invented_figure: 2 } } }, ["per_agent"], 1);
    expect(points).toEqual([{ kind: "agent", subject: "a", field: "pnl_1d", ts: 1, value: 1, peak: false }]);
  });
});
