// The columns of the per-agent and per-strategy tables, defined once for both: each
// figure's label and, per table, its unit (how it is formatted and coloured). Pure (no DOM):
// test/web/sources.test.ts checks it under bun test.
import type { AgentFigures, StrategyFigures } from "../../modules/meta/model";
import { int, isNum, money, num, ratioPct, signClass } from "./format";

export interface Column {
  key: string;
  label: string;
  /** Formats the cell; `cls` colours it. */
  format(value: unknown): string;
  cls?(value: unknown): string;
  numeric?: boolean;
}

/** How a figure reads: its format and colour. */
const UNITS = {
  /** A gain or loss: signed money, green or red. */
  money: { format: money, cls: signClass },
  /** A loss however it is signed: negative money, red unless zero. */
  loss: {
    format: (v: unknown) => (isNum(v) ? money(-Math.abs(v)) : "—"),
    cls: (v: unknown) => (isNum(v) && v !== 0 ? "neg" : "zero"),
  },
  /** A signed ratio (Sharpe): two decimals, green or red. */
  signed: { format: (v: unknown) => num(v), cls: signClass },
  /** A bare number, two decimals. */
  number: { format: (v: unknown) => num(v) },
  /** A score, three decimals. */
  score: { format: (v: unknown) => num(v, 3) },
  /** A 0..1 ratio as percent. */
  ratio: { format: (v: unknown) => ratioPct(v) },
  count: { format: int },
} satisfies Record<string, Pick<Column, "format" | "cls">>;
type Unit = keyof typeof UNITS;

/**
 * Every figure column of the two tables, in the order shown. `agent` and `strategy` give
 * its unit in that table; a table without one does not show the column.
 */
const FIGURE_COLUMNS: {
  key: keyof AgentFigures | keyof StrategyFigures;
  label: string;
  agent?: Unit;
  strategy?: Unit;
}[] = [
  { key: "pnl_1d", label: "P&L 1d", agent: "money", strategy: "money" },
  { key: "pnl_7d", label: "P&L 7d", agent: "money", strategy: "money" },
  { key: "sharpe_30d", label: "Sharpe 30d", agent: "signed", strategy: "signed" },
  { key: "winrate_30d", label: "Win rate 30d", agent: "ratio", strategy: "ratio" },
  // ? Agents post their drawdown as money, positive (318.4 in the fixture): shown as the
  // loss it is. Strategies post a bare figure (4.35) whose unit the contract does not state.
  { key: "max_dd_30d", label: "Max DD 30d", agent: "loss", strategy: "number" },
  { key: "total_decisions", label: "Decisions", agent: "count" },
  { key: "revenue_24h", label: "Revenue 24h", agent: "money" },
  { key: "revenue_total", label: "Revenue total", agent: "money" },
  { key: "trade_count", label: "Trades", strategy: "count" },
  { key: "score", label: "Score", strategy: "score" },
];

/** The columns of the agent or the strategy table. */
export function figureColumns(table: "agent" | "strategy"): Column[] {
  return FIGURE_COLUMNS.flatMap(({ key, label, [table]: unit }) => (unit ? [{ key, label, ...UNITS[unit] }] : []));
}
