// The one projection of the document and the agent files into figures (issue 10). GET
// /metrics exposes every figure below, history records the ones with a series, and the
// page's charts read those series: all three take them from here, so they cannot drift.
//
// TO ADD A FIGURE: a numeric field added to AgentFigures, StrategyFigures or RegimeDocument
// (./model.ts) is a figure at once, under the name its schema gives it. Any other figure is
// one line in FIGURES below (its name, unit, labels, help, and history series), plus the line
// of its section's reader that gives its value. The README's figures table is checked
// against FIGURES (test/modules/figures.test.ts).
//
// Plain TypeBox and plain values: no Elysia, no files, no clock. Every value is read as
// untrusted (documents come from clients; a coerced value is null): a figure is given only
// when its source holds a finite number, never invented.
import type { TObject, TSchema, TUnion } from "@sinclair/typebox";
import { AgentFigures, BreakerState, Breakers, RegimeDocument, RegimeLabel, StrategyFigures } from "./model";

/** Where a figure is read from: a top-level key of the document, or an agent file. */
export type Section =
  | "per_agent"
  | "per_strategy"
  | "guardian"
  | "breakers"
  | "mode"
  | "market_regime"
  | "atlas"
  | "stress_last"
  /** The capital governor's allocations: its file, else its override copy (as GET /governor/allocations serves them). */
  | "allocations"
  /** The regime detector's file, runtime/market_regime.json. */
  | "regime_file";

/** What a value means, for the page and the README: Prometheus puts the unit in the name. */
export type Unit = "money" | "ratio" | "percent" | "count" | "flag" | "number" | "state";

/** The kinds of history series (GET /meta/history `kinds`). */
export type SeriesKind = "agent" | "strategy" | "guardian" | "breaker" | "regime" | "allocation" | "mode";
/**
 * The fields of the allocation series: `governor` is the allocation the governor applies (its
 * file, else its override copy: governorAllocations), `atlas` the atlas bridge's proposal,
 * `min` and `max` the governor's bounds (subject "").
 */
export type AllocationField = "governor" | "atlas" | "min" | "max";

export interface Figure {
  /** Prometheus family name. */
  name: string;
  unit: Unit;
  /** Label names of its series in /metrics. */
  labels: readonly string[];
  help: string;
  /**
   * gauge: the value. state: one series per possible state (its last label), 1 for the
   * current one. info: one series, 1, its last label the current value (mode).
   */
  type: "gauge" | "state" | "info";
  /** For a state figure: its states, from the schema's literals. */
  states?: readonly string[];
  /** The kind of its history series; absent when history does not record it (the README says why). */
  history?: SeriesKind;
}

/** One value of one figure. */
export interface Reading {
  figure: Figure;
  section: Section;
  /** The /metrics labels (all of figure.labels but a state figure's last). */
  labels: Readonly<Record<string, string>>;
  /** The number; for a state or info figure, its history value (a breaker's code, else null). */
  value: number | null;
  /** The current state of a state or info figure. */
  state?: string;
  /** Its history series, when the figure has one: subject ("" for singletons) and field. */
  series?: { kind: SeriesKind; subject: string; field: string; peak?: boolean };
}

/**
 * The agent files' current values (WatchedFile.value(): validated, or undefined). With a
 * shared store, a file this replica has no local copy of gives the copy the replica holding
 * the agents' files shared (agent-files/shared.ts): every replica's /metrics and charts agree.
 */
export interface FigureFiles {
  regime: unknown;
  governor: unknown;
  override: unknown;
}

/** The files' values as figures() takes them. */
export const figureFiles = (files: Record<keyof FigureFiles, { value(): unknown }>): FigureFiles => ({
  regime: files.regime.value(),
  governor: files.governor.value(),
  override: files.override.value(),
});

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const literals = (u: TUnion) => u.anyOf.map((s: TSchema) => String(s.const));

/** The numeric fields of a schema, with their descriptions: figures without a list typed again. */
function numericFields(schema: TObject): [string, string][] {
  return Object.entries(schema.properties)
    .filter(([, p]) => p.type === "number" || p.type === "integer")
    .map(([field, p]) => [field, p.description ?? field]);
}

/**
 * The format reserves the _total and _count suffixes for counters and histograms, and these
 * are gauges of the poster's values: two fields are exposed under another name.
 */
const RENAMED: Record<string, string> = { revenue_total: "revenue_since_start", trade_count: "trades" };

/** The unit of an agent's or strategy's figure: the contract (section 3) says money for P&L, revenue and drawdown. */
const unitOf = (field: string): Unit =>
  field.startsWith("pnl") || field.startsWith("revenue") || field === "max_dd_30d"
    ? "money"
    : field.startsWith("winrate")
      ? "ratio"
      : field === "total_decisions" || field === "trade_count"
        ? "count"
        : "number";

function perSubject(label: "agent" | "strategy", schema: TObject): Map<string, Figure> {
  return new Map(
    numericFields(schema).map(([field, description]) => {
      const suffix = RENAMED[field] ?? field;
      const help = `Per ${label}: ${description}${suffix === field ? "" : ` (${field})`}`;
      const figure: Figure = {
        name: `neolight_${label}_${suffix}`,
        unit: unitOf(field),
        labels: [label],
        help,
        type: "gauge",
        history: label,
      };
      return [field, figure];
    }),
  );
}

const AGENT = perSubject("agent", AgentFigures);
const STRATEGY = perSubject("strategy", StrategyFigures);
const REGIME_FIELDS = new Map(
  numericFields(RegimeDocument).map(([field, description]): [string, Figure] => [
    field,
    {
      name: `neolight_regime_${field}`,
      unit: field === "confidence" ? "ratio" : "number",
      labels: ["source"],
      help: `Regime ${field.replaceAll("_", " ")}: ${description}, by source (document or file)`,
      type: "gauge",
      history: "regime",
    },
  ]),
);
/** Breaker states as history values for the chart: OPEN is the alarming top. */
const BREAKER_CODE: Readonly<Record<string, number>> = { CLOSED: 0, HALF_OPEN: 0.5, OPEN: 1 };

/** Every other figure: one line each. */
const F = {
  guardianPaused: {
    name: "neolight_guardian_paused",
    unit: "flag",
    labels: [],
    help: "1 while the guardian has paused trading",
    type: "gauge",
    history: "guardian",
  },
  guardianDrawdown: {
    name: "neolight_guardian_drawdown",
    unit: "percent",
    labels: [],
    help: "Guardian drawdown, percent",
    type: "gauge",
    history: "guardian",
  },
  breaker: {
    name: "neolight_breaker_state",
    unit: "state",
    labels: ["breaker", "state"],
    help: "Circuit breaker state: 1 for the current state, 0 for the others",
    type: "state",
    states: literals(BreakerState),
    history: "breaker",
  },
  mode: {
    name: "neolight_mode_info",
    unit: "state",
    labels: ["mode"],
    help: "Trading mode: 1 for the current mode",
    type: "info",
    history: "mode",
  },
  regime: {
    name: "neolight_regime",
    unit: "state",
    labels: ["source", "regime"],
    help: "Market regime: 1 for the current regime, by source (document or file)",
    type: "state",
    states: literals(RegimeLabel),
    history: "regime",
  },
  weight: {
    name: "neolight_allocation_weight",
    unit: "ratio",
    labels: ["source", "agent"],
    help: "Capital allocation weight per agent, 0..1, by source",
    type: "gauge",
    history: "allocation",
  },
  minWeight: {
    name: "neolight_allocation_min_weight",
    unit: "ratio",
    labels: ["source"],
    help: "The capital governor's lowest allowed weight (min_allocation), by source",
    type: "gauge",
    history: "allocation",
  },
  maxWeight: {
    name: "neolight_allocation_max_weight",
    unit: "ratio",
    labels: ["source"],
    help: "The capital governor's highest allowed weight (max_allocation), by source",
    type: "gauge",
    history: "allocation",
  },
  atlasConfidence: {
    name: "neolight_atlas_confidence",
    unit: "ratio",
    labels: [],
    help: "Atlas brain confidence",
    type: "gauge",
  },
  atlasRiskScaler: {
    name: "neolight_atlas_risk_scaler",
    unit: "number",
    labels: [],
    help: "Atlas brain risk scaler",
    type: "gauge",
  },
  stressPassed: {
    name: "neolight_stress_passed",
    unit: "flag",
    labels: [],
    help: "1 when the last stress test passed",
    type: "gauge",
  },
  stressWorst: {
    name: "neolight_stress_worst_case_pnl",
    unit: "money",
    labels: [],
    help: "Worst-case P&L of the last stress test",
    type: "gauge",
  },
} as const satisfies Record<string, Figure>;

/** Every figure, in the order /metrics writes them. */
export const FIGURES: readonly Figure[] = [
  ...AGENT.values(),
  ...STRATEGY.values(),
  F.guardianPaused,
  F.guardianDrawdown,
  F.breaker,
  F.mode,
  F.regime,
  ...REGIME_FIELDS.values(),
  F.weight,
  F.minWeight,
  F.maxWeight,
  F.atlasConfidence,
  F.atlasRiskScaler,
  F.stressPassed,
  F.stressWorst,
];

/** The breakers the schema knows, and their /metrics label: quote_state -> quote. */
const BREAKERS = Object.keys(Breakers.properties).map((key) => [key, key.replace(/_state$/, "")] as const);

type Emit = (r: Omit<Reading, "section">) => void;

/** The regime's figures, from the document (recorded) or the detector's file (not: history charts what the hive saw). */
function regimeReadings(r: unknown, source: "document" | "file", emit: Emit): void {
  if (!isObject(r) || typeof r.regime !== "string") return;
  const series = (field: string) =>
    source === "document" ? { kind: "regime" as const, subject: "", field } : undefined;
  emit({ figure: F.regime, labels: { source }, value: null, state: r.regime, series: series("label") });
  for (const [field, figure] of REGIME_FIELDS) {
    const v = r[field];
    if (finite(v)) emit({ figure, labels: { source }, value: v, series: series(field) });
  }
}

function weights(allocations: unknown, source: string, field: AllocationField, emit: Emit): void {
  if (!isObject(allocations)) return;
  for (const [agent, w] of Object.entries(allocations)) {
    if (finite(w))
      emit({
        figure: F.weight,
        labels: { source, agent },
        value: w,
        series: { kind: "allocation", subject: agent, field },
      });
  }
}

/** One reader per section: the line that gives each figure its value. */
const READERS: Record<Section, (doc: Readonly<Json>, files: FigureFiles, emit: Emit) => void> = {
  per_agent: (doc, _f, emit) => subjects(doc.per_agent, "agent", AGENT, emit),
  per_strategy: (doc, _f, emit) => subjects(doc.per_strategy, "strategy", STRATEGY, emit),
  guardian: (doc, _f, emit) => {
    const g = doc.guardian;
    if (!isObject(g)) return;
    if (typeof g.is_paused === "boolean") {
      const value = g.is_paused ? 1 : 0;
      emit({
        figure: F.guardianPaused,
        labels: {},
        value,
        series: { kind: "guardian", subject: "", field: "is_paused", peak: true },
      });
    }
    if (finite(g.drawdown)) {
      emit({
        figure: F.guardianDrawdown,
        labels: {},
        value: g.drawdown,
        series: { kind: "guardian", subject: "", field: "drawdown" },
      });
    }
  },
  breakers: (doc, _f, emit) => {
    const b = doc.breakers;
    if (!isObject(b)) return;
    for (const [key, breaker] of BREAKERS) {
      const state = b[key];
      if (typeof state !== "string" || !(state in BREAKER_CODE)) continue;
      const series = { kind: "breaker" as const, subject: key, field: "state", peak: true };
      emit({ figure: F.breaker, labels: { breaker }, value: BREAKER_CODE[state] ?? null, state, series });
    }
  },
  mode: (doc, _f, emit) => {
    if (typeof doc.mode !== "string") return;
    emit({
      figure: F.mode,
      labels: {},
      value: null,
      state: doc.mode,
      series: { kind: "mode", subject: "", field: "label" },
    });
  },
  market_regime: (doc, _f, emit) => regimeReadings(doc.market_regime, "document", emit),
  regime_file: (_d, files, emit) => regimeReadings(files.regime, "file", emit),
  atlas: (doc, _f, emit) => {
    const atlas = doc.atlas;
    if (!isObject(atlas)) return;
    weights(atlas.allocations, "atlas", "atlas", emit);
    const brain = isObject(atlas.brain) ? atlas.brain : {};
    if (finite(brain.confidence)) emit({ figure: F.atlasConfidence, labels: {}, value: brain.confidence });
    if (finite(brain.risk_scaler)) emit({ figure: F.atlasRiskScaler, labels: {}, value: brain.risk_scaler });
  },
  allocations: (_d, files, emit) => {
    const { source, value } = governorAllocations(files);
    if (!isObject(value)) return;
    // ? One history series whichever file it came from: it is the allocation the governor applies.
    weights(value.allocations, source, "governor", emit);
    const bound = (figure: Figure, field: AllocationField, v: unknown) => {
      if (finite(v)) emit({ figure, labels: { source }, value: v, series: { kind: "allocation", subject: "", field } });
    };
    bound(F.minWeight, "min", value.min_allocation);
    bound(F.maxWeight, "max", value.max_allocation);
  },
  stress_last: (doc, _f, emit) => {
    const s = isObject(doc.stress_last) ? doc.stress_last : {};
    if (typeof s.passed === "boolean") emit({ figure: F.stressPassed, labels: {}, value: s.passed ? 1 : 0 });
    if (finite(s.worst_case_pnl)) emit({ figure: F.stressWorst, labels: {}, value: s.worst_case_pnl });
  },
};

function subjects(section: unknown, label: "agent" | "strategy", table: Map<string, Figure>, emit: Emit): void {
  if (!isObject(section)) return;
  for (const [subject, values] of Object.entries(section)) {
    if (!isObject(values)) continue;
    for (const [field, figure] of table) {
      const v = values[field];
      if (finite(v)) emit({ figure, labels: { [label]: subject }, value: v, series: { kind: label, subject, field } });
    }
  }
}

/**
 * The allocation rule of GET /governor/allocations (allocationsJson in agent-files/service.ts,
 * which serves the files' JSON text as read), here for /metrics, history and so the page's
 * chart: the governor's file, else its override copy, else none.
 */
export function governorAllocations(files: Pick<FigureFiles, "governor" | "override">): {
  source: "capital_governor" | "allocations_override";
  value: unknown;
} {
  return files.governor !== undefined
    ? { source: "capital_governor", value: files.governor }
    : { source: "allocations_override", value: files.override };
}

/** Every section, in the order figures() reads them (within a family: atlas before the governor). */
export const SECTIONS: readonly Section[] = Object.keys(READERS) as Section[];
/** The sections that are agent files; every other one is a top-level key of the document. */
const FILE_SECTIONS: ReadonlySet<Section> = new Set(["allocations", "regime_file"]);
/** The document's top-level keys that hold figures (history re-reads only the keys an update changed). */
export const DOCUMENT_SECTIONS: ReadonlySet<string> = new Set(SECTIONS.filter((s) => !FILE_SECTIONS.has(s)));

/**
 * The figures of `document` (as served, or as stored) and `files`, of the sections given
 * (default: all), in section order and, within one, in the document's key order. Pure: the
 * same input gives the same readings.
 */
export function figures(
  document: Readonly<Json>,
  files: FigureFiles,
  sections: Iterable<string> = SECTIONS,
): Reading[] {
  const out: Reading[] = [];
  for (const name of sections) {
    if (!Object.hasOwn(READERS, name)) continue;
    const section = name as Section;
    READERS[section](document, files, (r) => out.push({ ...r, section }));
  }
  return out;
}
