// Generated history for the benchmarks and the e2e test of issue 16: hive snapshots of
// N agents and N strategies (the fixture's figures, varied), recorded into a history.db
// by the recorder's own code (documentPoints, then the SQLite store's record), as if the
// service had run for `days` with one snapshot every `everyMs`.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { documentPoints } from "../src/modules/history/points";
import type { HistoryPoint } from "../src/store/history";
import { openSqliteHistory } from "../src/store/history-sqlite";
import type { JsonObject } from "../src/store/store";

/**
 * The hive's snapshot number `i` with `agents` agents and as many strategies: a POST
 * /meta/metrics body whose market_regime lacks the regime file's `timestamp`, so it is
 * stored as null (listed in `coerced`) and every post goes through coerce().
 */
export function hiveSnapshot(agents: number, i: number): JsonObject {
  const per_agent: JsonObject = {};
  const per_strategy: JsonObject = {};
  for (let a = 0; a < agents; a++) {
    const wave = Math.sin(i / 12 + a);
    per_agent[`agent_${a}`] = {
      pnl_1d: Math.round(wave * 40_000) / 100,
      pnl_7d: Math.round(wave * 150_000) / 100,
      sharpe_30d: 1 + wave / 2,
      winrate_30d: 0.5 + wave / 10,
      max_dd_30d: 300 + a,
      total_decisions: i + a,
      revenue_24h: 0,
      revenue_total: a,
    };
    per_strategy[`strategy_${a}`] = {
      pnl_1d: 0,
      pnl_7d: 0,
      sharpe_30d: 1.21,
      winrate_30d: 0,
      max_dd_30d: 4.35,
      trade_count: i,
      score: 0.5 + wave / 3,
    };
  }
  return {
    // As the hive does: its own time, first (the served document is then cached whole).
    timestamp: new Date(Date.UTC(2025, 10, 3) + i * 300_000).toISOString(),
    per_agent,
    per_strategy,
    guardian: {
      is_paused: i % 97 === 0,
      drawdown: 1 + Math.abs(Math.sin(i / 50)),
      reason: i % 97 === 0 ? "drawdown limit" : "Normal operation",
    },
    breakers: { quote_state: "CLOSED", trade_state: i % 97 === 0 ? "OPEN" : "CLOSED" },
    mode: "TEST_MODE",
    market_regime: { regime: i % 200 < 100 ? "BULL" : "BEAR", confidence: 0.7 },
  };
}

export interface FillOptions {
  agents: number;
  days: number;
  /** One snapshot per this many ms. Default: 300 000 (the hive's interval). */
  everyMs?: number;
  /** The last snapshot's time. Default: now. */
  end?: number;
}

/** Snapshots recorded per transaction: a day's worth at the hive's interval at 30 agents. */
const SNAPSHOTS_PER_WRITE = 100;

/** Records the snapshots into the history at `path` (created); resolves with the points written. */
export function fillHistory(path: string, options: FillOptions): number {
  const every = options.everyMs ?? 300_000;
  const end = options.end ?? Date.now();
  const count = Math.floor((options.days * 86_400_000) / every);
  const keys = ["per_agent", "per_strategy", "guardian", "breakers", "mode", "market_regime"];
  mkdirSync(dirname(path), { recursive: true });
  const store = openSqliteHistory(path);
  let written = 0;
  try {
    let batch: HistoryPoint[] = [];
    for (let i = 0; i < count; i++) {
      batch.push(...documentPoints(hiveSnapshot(options.agents, i), keys, end - (count - 1 - i) * every));
      if ((i + 1) % SNAPSHOTS_PER_WRITE === 0 || i === count - 1) {
        written += store.record(batch).written;
        batch = [];
      }
    }
  } finally {
    store.close();
  }
  return written;
}

if (import.meta.main) {
  const [path, agents = "30", days = "30"] = process.argv.slice(2);
  if (path === undefined) throw new Error("usage: bun bench/history-fill.ts <history.db> [agents] [days]");
  const t0 = performance.now();
  const n = fillHistory(path, { agents: Number(agents), days: Number(days) });
  console.log(`${n} points in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
