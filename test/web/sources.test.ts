// The page's Service card and figure tables, from real answers (issue 10 item 3). Before,
// the card called an agent file "stale" whenever it was served from its last good copy,
// which is not what /status `staleness` means, and it guessed at source shapes /status
// never had; the agent and strategy columns were defined twice.
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Status } from "../../src/modules/system/model";
import { figureColumns } from "../../src/web/page/columns";
import { sourceRows } from "../../src/web/page/sources";
import { fixture, fixtureText, get, post, startApp, type TestApp, waitFor } from "../helpers";

const REGIME = "runtime/market_regime.json";

function write(t: TestApp, relative: string, content: string): void {
  mkdirSync(join(t.home, relative, ".."), { recursive: true });
  writeFileSync(join(t.home, relative), content);
}

const status = async (t: TestApp) => (await get(t.app, "/status")).body as unknown as Status;
const stateOf = (s: Status) => Object.fromEntries(sourceRows(s).map((r) => [r.source, r.state]));

describe("the Service card's sources", () => {
  test("one row per /status staleness source, in its order, with its expected interval", async () => {
    await using t = await startApp({ env: { NEOLIGHT_STALE_HIVE_S: "300", NEOLIGHT_STALE_ATLAS_S: "0" } });
    const s = await status(t);
    expect(sourceRows(s).map((r) => r.source)).toEqual(s.staleness.map((x) => x.source));
    expect(sourceRows(s).map((r) => r.source)).toEqual(expect.arrayContaining(["hive", "stress", "atlas"]));
    const interval = Object.fromEntries(sourceRows(s).map((r) => [r.source, r.intervalS]));
    expect(interval).toMatchObject({ hive: 300, atlas: 0 });
  });

  test("never heard from: no data yet; a missing file: absent; after a POST: ok", async () => {
    await using t = await startApp();
    expect(stateOf(await status(t))).toMatchObject({ hive: "waiting", allocations_override: "absent" });
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    expect(stateOf(await status(t))).toMatchObject({ hive: "ok" });
  });

  test("a broken file served from its last good copy says so, and is not called stale", async () => {
    await using t = await startApp();
    write(t, REGIME, fixtureText("market_regime"));
    await waitFor(async () => (await status(t)).sources.files.find((f) => f.serving === "file"), "regime read");
    write(t, REGIME, '{"regime": "BU');
    const s = await waitFor(async () => {
      const x = await status(t);
      return x.sources.files.some((f) => f.name === "market_regime" && f.serving === "last_good") ? x : null;
    }, "regime served from its last good copy");
    expect(s.staleness.find((x) => x.source === "market_regime")?.stale).toBe(false);
    const row = sourceRows(s).find((r) => r.source === "market_regime");
    expect(row).toMatchObject({ state: "last-good", lastUpdate: expect.stringMatching(/Z$/) });
    expect(row?.problem).toBeString();
    // Stale is staleness's word: when it says so, the row says so.
    const stale = { ...s, staleness: s.staleness.map((x) => ({ ...x, stale: x.source === "market_regime" })) };
    expect(stateOf(stale).market_regime).toBe("stale");
  });
});

describe("the figure tables' columns", () => {
  test("the agent and strategy tables show what they showed, max_dd_30d as each reads", () => {
    const agent = figureColumns("agent");
    const strategy = figureColumns("strategy");
    expect(agent.map((c) => c.key)).toEqual([
      "pnl_1d",
      "pnl_7d",
      "sharpe_30d",
      "winrate_30d",
      "max_dd_30d",
      "total_decisions",
      "revenue_24h",
      "revenue_total",
    ]);
    expect(strategy.map((c) => c.key)).toEqual([
      "pnl_1d",
      "pnl_7d",
      "sharpe_30d",
      "winrate_30d",
      "max_dd_30d",
      "trade_count",
      "score",
    ]);
    const cell = (columns: typeof agent, key: string, v: unknown) => {
      const c = columns.find((x) => x.key === key);
      return [c?.format(v), c?.cls?.(v)];
    };
    // The fixture's smart_trader (318.4) and turtle_trading (4.35).
    expect(cell(agent, "max_dd_30d", 318.4)).toEqual(["-$318.40", "neg"]);
    expect(cell(agent, "max_dd_30d", 0)).toEqual(["$0.00", "zero"]);
    expect(cell(strategy, "max_dd_30d", 4.35)).toEqual(["4.35", undefined]);
    expect(cell(agent, "pnl_1d", -57.12)).toEqual(["-$57.12", "neg"]);
    expect(cell(strategy, "score", 0.8123)).toEqual(["0.812", undefined]);
    expect(cell(agent, "winrate_30d", 0.574)).toEqual(["57.4%", undefined]);
    expect(cell(agent, "total_decisions", 412)).toEqual(["412", undefined]);
  });
});
