// The charts over time, drawn with uPlot from GET /meta/history: per-agent P&L (1d solid,
// 7d dashed) of the CHARTED_AGENTS largest movers plus every agent's total, guardian drawdown with paused periods shaded, allocation weights with the
// governor's bounds, and the regime timeline (a coloured band per regime, confidence on
// top). Each chart sizes itself to its box, so the page never scrolls sideways.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { HistoryAnswer, Series } from "../../modules/history/model";
import type { AllocationField, SeriesKind } from "../../modules/meta/figures";
import type { AgentFigures, Guardian, RegimeDocument, RegimeLabel } from "../../modules/meta/model";

const PALETTE = [
  "#4dabf7",
  "#ffa94d",
  "#b197fc",
  "#63e6be",
  "#ff8787",
  "#ffd43b",
  "#74c0fc",
  "#e599f7",
  "#a9e34b",
  "#ced4da",
];
/**
 * Agents drawn by name at most: those whose latest 1d P&L is largest either way. Issue 16:
 * 250 lines in 9 colours with a 4,000 px legend said nothing; the total line holds them all.
 */
export const CHARTED_AGENTS = 10;
/** One colour per regime the schema knows: a new RegimeLabel does not compile without one. */
export const REGIME_COLOURS: Readonly<Record<string, string>> = {
  BULL: "#2f9e44",
  BEAR: "#c92a2a",
  SIDEWAYS: "#868e96",
  HIGH_VOL: "#e67700",
  UNKNOWN: "#495057",
} satisfies Record<RegimeLabel, string>;
const AXIS = { stroke: "#9aa4b2", grid: { stroke: "#263041", width: 1 }, ticks: { stroke: "#263041", width: 1 } };
const HEIGHT = 200;

/** One line of a chart: its values by Unix ms. */
interface Line {
  label: string;
  points: Map<number, number | null>;
  style: uPlot.Series;
}

/** Colour per subject, stable across charts and refreshes (by name, not by position). */
const colours = new Map<string, string>();
function colourOf(subject: string): string {
  let c = colours.get(subject);
  if (c === undefined) {
    c = PALETTE[colours.size % PALETTE.length] as string;
    colours.set(subject, c);
  }
  return c;
}

function pointsOf(s: Series, map: (v: number | null, label: string | null) => number | null = (v) => v) {
  const m = new Map<number, number | null>();
  s.t.forEach((t, i) => {
    m.set(t, map(s.v[i] ?? null, s.labels?.[i] ?? null));
  });
  return m;
}

class Chart {
  private plot: uPlot | null = null;
  private signature = "";
  private readonly box: HTMLElement;

  constructor(
    private readonly figure: HTMLElement,
    private readonly yFormat: (v: number) => string,
    private readonly flagScale = false,
  ) {
    this.box = figure.querySelector(".plot") as HTMLElement;
    new ResizeObserver(() => this.resize()).observe(this.box);
  }

  private size() {
    return { width: Math.max(200, Math.floor(this.box.clientWidth)), height: HEIGHT };
  }

  private resize(): void {
    if (this.plot) this.plot.setSize(this.size());
  }

  /** Draws `lines` over [from, to] (Unix ms); rebuilds the plot only when the set of lines changes. */
  set(lines: Line[], from: number, to: number): void {
    const xs = [...new Set(lines.flatMap((l) => [...l.points.keys()]))].sort((a, b) => a - b);
    const data: uPlot.AlignedData = [
      xs.map((t) => t / 1000),
      ...lines.map((l) => xs.map((t) => (l.points.has(t) ? (l.points.get(t) ?? null) : null))),
    ];
    const count = lines
      .filter((l) => l.style.scale !== "flag")
      .reduce((n, l) => n + [...l.points.values()].filter((v) => v !== null).length, 0);
    this.figure.dataset.points = String(count);
    this.figure.classList.toggle("empty", count === 0);
    const signature = lines.map((l) => l.label).join("|");
    const range: uPlot.Scale.Range = () => [from / 1000, to / 1000];
    if (this.plot === null || signature !== this.signature) {
      this.plot?.destroy();
      this.signature = signature;
      const opts: uPlot.Options = {
        ...this.size(),
        scales: {
          x: { time: true, range },
          ...(this.flagScale ? { flag: { range: [0, 1] } } : {}),
        },
        axes: [{ ...AXIS }, { ...AXIS, size: 64, values: (_u, splits) => splits.map((v) => this.yFormat(v)) }],
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
        // Points are left to uPlot: shown while a series is sparse (a single sample has
        // no line to draw), hidden once it is dense.
        series: [
          {},
          ...lines.map((l) => ({ label: l.label, spanGaps: true, width: 2, points: { size: 6 }, ...l.style })),
        ],
      };
      this.plot = new uPlot(opts, data, this.box);
    } else {
      this.plot.setScale("x", { min: from / 1000, max: to / 1000 });
      this.plot.setData(data, false);
      this.plot.setScale("x", { min: from / 1000, max: to / 1000 });
    }
  }
}

const stepped = uPlot.paths.stepped?.({ align: 1 });

export class Charts {
  private readonly pnl: Chart;
  private readonly drawdown: Chart;
  private readonly allocation: Chart;
  private readonly regime: Chart;

  constructor(root: HTMLElement, fmt: { money: (v: number) => string; pct: (v: number) => string }) {
    const fig = (id: string) => root.querySelector(`#${id}`) as HTMLElement;
    this.pnl = new Chart(fig("chart-pnl"), fmt.money);
    this.drawdown = new Chart(fig("chart-drawdown"), fmt.pct, true);
    this.allocation = new Chart(fig("chart-allocation"), (v) => `${Math.round(v * 100)}%`);
    this.regime = new Chart(fig("chart-regime"), (v) => `${Math.round(v * 100)}%`, true);
  }

  show(answer: HistoryAnswer): void {
    const from = Date.parse(answer.from);
    const to = Date.parse(answer.to);
    // Series are named as modules/meta/figures.ts records them: kinds and fields are typed
    // from there and from the schemas, so a renamed figure does not compile here.
    type Field<K extends SeriesKind> = K extends "agent"
      ? keyof AgentFigures & string
      : K extends "guardian"
        ? keyof Guardian & string
        : K extends "regime"
          ? (keyof RegimeDocument & string) | "label"
          : K extends "allocation"
            ? AllocationField
            : string;
    const of = <K extends SeriesKind>(kind: K, ...fields: Field<K>[]) =>
      answer.series.filter((s) => s.kind === kind && (fields.length === 0 || (fields as string[]).includes(s.field)));

    const pnl: Line[] = [];
    const agentSeries = of("agent", "pnl_1d", "pnl_7d");
    const daily = agentSeries.filter((s) => s.field === "pnl_1d");
    const size = (s: Series) => {
      for (let i = s.v.length - 1; i >= 0; i--) if (s.v[i] !== null) return Math.abs(s.v[i] as number);
      return 0;
    };
    const charted = new Set(
      [...daily]
        .sort((a, b) => size(b) - size(a) || a.subject.localeCompare(b.subject))
        .slice(0, CHARTED_AGENTS)
        .map((s) => s.subject),
    );
    for (const s of agentSeries) {
      if (!charted.has(s.subject)) continue;
      const weekly = s.field === "pnl_7d";
      pnl.push({
        label: `${s.subject} ${weekly ? "7d" : "1d"}`,
        points: pointsOf(s),
        style: { stroke: colourOf(s.subject), dash: weekly ? [6, 4] : undefined, width: weekly ? 1.5 : 2 },
      });
    }
    pnl.sort((a, b) => a.label.localeCompare(b.label));
    if (daily.length > 1) {
      // Every agent's 1d P&L summed at each sample time (the hive posts them together).
      const total = new Map<number, number | null>();
      for (const s of daily) {
        s.t.forEach((t, i) => {
          const v = s.v[i];
          if (v !== null && v !== undefined) total.set(t, (total.get(t) ?? 0) + v);
        });
      }
      pnl.push({
        label: `total 1d (${daily.length} agents)`,
        points: total,
        style: { stroke: "#f8f9fa", width: 3 },
      });
    }
    this.pnl.set(pnl, from, to);

    const dd: Line[] = [];
    for (const s of of("guardian", "is_paused")) {
      dd.push({
        label: "paused",
        points: pointsOf(s),
        style: {
          scale: "flag",
          stroke: "transparent",
          fill: "rgba(224, 49, 49, 0.28)",
          paths: stepped,
          width: 0,
          points: { show: false },
        },
      });
    }
    for (const s of of("guardian", "drawdown")) {
      dd.push({ label: "drawdown", points: pointsOf(s), style: { stroke: "#ff6b6b" } });
    }
    this.drawdown.set(dd, from, to);

    // ? The allocation rule of GET /governor/allocations and /metrics: the governor's file,
    // else its override copy (one series, `governor`), else none. Atlas' weights are the
    // governor's input, not an allocation: showing them instead drew what was not applied.
    const alloc: Line[] = of("allocation", "governor").map((s) => ({
      label: s.subject,
      points: pointsOf(s),
      style: { stroke: colourOf(s.subject) },
    }));
    for (const s of of("allocation", "min", "max")) {
      alloc.push({
        label: `${s.field} bound`,
        points: pointsOf(s),
        style: { stroke: "#adb5bd", dash: [3, 3], width: 1 },
      });
    }
    this.allocation.set(alloc, from, to);

    const regime: Line[] = [];
    const labels = of("regime", "label")[0];
    if (labels) {
      const present = [...new Set((labels.labels ?? []).filter((l): l is string => l !== null))].sort();
      for (const name of present) {
        regime.push({
          label: name,
          points: pointsOf(labels, (_v, l) => (l === name ? 1 : 0)),
          style: {
            scale: "flag",
            stroke: "transparent",
            fill: `${REGIME_COLOURS[name] ?? "#495057"}66`,
            paths: stepped,
            width: 0,
            points: { show: false },
          },
        });
      }
    }
    for (const s of of("regime", "confidence")) {
      regime.push({ label: "confidence", points: pointsOf(s), style: { stroke: "#f1f3f5" } });
    }
    this.regime.set(regime, from, to);
  }
}
