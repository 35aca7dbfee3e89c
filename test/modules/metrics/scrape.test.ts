// GET /metrics through app.handle: after each fixture is posted the body passes promtool
// and the npm parser, and holds NeoLight's figures as the fixtures carry them.
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_SERIES_PER_FAMILY } from "../../../src/modules/metrics/exposition";
import type { Persistence } from "../../../src/store/store";
import { fixture, fixtureText, get, type Json, logged, post, startApp, waitFor } from "../../helpers";
import { standInEngine } from "../../risk-engine";
import { type Scrape, type Series, scrape } from "./prom";

type Figures = Record<string, Record<string, number>>;

/** The series a per-agent or per-strategy family should hold for `field` of `figures`. */
function expected(figures: Figures, label: "agent" | "strategy", field: string): Series[] {
  return Object.entries(figures).map(([name, f]) => ({ labels: { [label]: name }, value: f[field] as number }));
}

const AGENT_FAMILIES: [string, string][] = [
  ["pnl_1d", "neolight_agent_pnl_1d"],
  ["pnl_7d", "neolight_agent_pnl_7d"],
  ["sharpe_30d", "neolight_agent_sharpe_30d"],
  ["winrate_30d", "neolight_agent_winrate_30d"],
  ["max_dd_30d", "neolight_agent_max_dd_30d"],
  ["total_decisions", "neolight_agent_total_decisions"],
  ["revenue_24h", "neolight_agent_revenue_24h"],
  ["revenue_total", "neolight_agent_revenue_since_start"],
];
const STRATEGY_FAMILIES: [string, string][] = [
  ["pnl_1d", "neolight_strategy_pnl_1d"],
  ["pnl_7d", "neolight_strategy_pnl_7d"],
  ["sharpe_30d", "neolight_strategy_sharpe_30d"],
  ["winrate_30d", "neolight_strategy_winrate_30d"],
  ["max_dd_30d", "neolight_strategy_max_dd_30d"],
  ["trade_count", "neolight_strategy_trades"],
  ["score", "neolight_strategy_score"],
];

const breakers = (quote: string, trade: string): Series[] =>
  (
    [
      ["quote", quote],
      ["trade", trade],
    ] as const
  ).flatMap(([breaker, current]) =>
    ["CLOSED", "OPEN", "HALF_OPEN"].map((state) => ({ labels: { breaker, state }, value: state === current ? 1 : 0 })),
  );

const regimes = (source: string, current: string): Series[] =>
  ["BULL", "BEAR", "SIDEWAYS", "HIGH_VOL", "UNKNOWN"].map((regime) => ({
    labels: { source, regime },
    value: regime === current ? 1 : 0,
  }));

/** The guardian, breakers and mode families, which the execution router's view must match. */
function safety(s: Scrape) {
  return {
    paused: s.value("neolight_guardian_paused"),
    drawdown: s.value("neolight_guardian_drawdown"),
    breakers: s.family("neolight_breaker_state"),
    mode: s.family("neolight_mode_info"),
  };
}

describe("GET /metrics", () => {
  test("before any data: the default document's guardian, breakers and mode; no agent series", async () => {
    await using t = await startApp();
    const s = await scrape(t.app);
    expect(safety(s)).toEqual({
      paused: 0,
      drawdown: 0,
      breakers: breakers("CLOSED", "CLOSED"),
      mode: [{ labels: { mode: "TEST_MODE" }, value: 1 }],
    });
    expect(s.names().filter((n) => n.startsWith("neolight_agent_") || n.startsWith("neolight_strategy_"))).toEqual([]);
    expect(s.family("neolight_build_info")).toEqual([
      { labels: { version: expect.any(String), bun_version: Bun.version }, value: 1 },
    ]);
    expect(s.value("neolight_telemetry_queue_capacity")).toBe(100);
    expect(s.value("neolight_sse_subscribers")).toBe(0);
    expect(s.family("neolight_telemetry_updates_rejected_total")).toEqual(
      ["full", "invalid", "unauthorised", "rate_limited", "unpersisted"].map((reason) => ({
        labels: { reason },
        value: 0,
      })),
    );
    expect(s.value("process_resident_memory_bytes")).toBeGreaterThan(1e6);
    expect(s.value("process_open_fds")).toBeGreaterThan(2);
    expect(s.value("process_start_time_seconds")).toBeLessThanOrEqual(Date.now() / 1000);
    expect(s.value("process_start_time_seconds")).toBeGreaterThan(Date.now() / 1000 - 3600);
  });

  test("after each fixture: promtool-clean, with the fixture's figures", async () => {
    await using t = await startApp();

    // The hive's full snapshot.
    const hive = fixture("meta_metrics_post") as Json & { per_agent: Figures; per_strategy: Figures };
    expect((await post(t.app, "/meta/metrics", hive)).status).toBe(200);
    let s = await scrape(t.app);
    for (const [field, name] of AGENT_FAMILIES) {
      expect({ name, series: s.family(name) }).toEqual({ name, series: expected(hive.per_agent, "agent", field) });
    }
    for (const [field, name] of STRATEGY_FAMILIES) {
      expect({ name, series: s.family(name) }).toEqual({
        name,
        series: expected(hive.per_strategy, "strategy", field),
      });
    }
    expect(safety(s)).toEqual({
      paused: 0,
      drawdown: 1.84,
      breakers: breakers("CLOSED", "CLOSED"),
      mode: [{ labels: { mode: "TEST_MODE" }, value: 1 }],
    });
    expect(s.family("neolight_regime")).toEqual(regimes("document", "BULL"));
    expect(s.family("neolight_regime_confidence")).toEqual([{ labels: { source: "document" }, value: 0.71 }]);
    expect(s.family("neolight_regime_risk_multiplier")).toEqual([{ labels: { source: "document" }, value: 1.2 }]);
    expect(s.value("neolight_telemetry_updates_applied_total")).toBe(1);
    expect(s.value("neolight_persistence_writes_total")).toBe(1);
    expect(s.value("neolight_persistence_write_duration_seconds_count")).toBe(1);
    expect(s.value("neolight_document_last_update_timestamp_seconds")).toBe(
      Date.parse(t.services.store.current().updatedAt as string) / 1000,
    );

    // The stress runner: its keys arrive, the guardian stays (the merge rule).
    expect((await post(t.app, "/meta/metrics", fixture("stress_post"))).status).toBe(200);
    s = await scrape(t.app);
    expect(s.value("neolight_stress_passed")).toBe(1);
    expect(s.value("neolight_stress_worst_case_pnl")).toBe(-9875.1);
    expect(s.value("neolight_guardian_drawdown")).toBe(1.84);
    expect(s.family("neolight_agent_pnl_1d")).toHaveLength(3);

    // The atlas bridge.
    expect((await post(t.app, "/atlas/update", fixture("atlas_update_post"))).status).toBe(200);
    s = await scrape(t.app);
    expect(s.family("neolight_allocation_weight")).toEqual([
      { labels: { source: "atlas", agent: "smart_trader" }, value: 0.4 },
      { labels: { source: "atlas", agent: "mean_reversion_bot" }, value: 0.35 },
      { labels: { source: "atlas", agent: "dropship_agent" }, value: 0.25 },
    ]);
    expect(s.value("neolight_atlas_confidence")).toBe(0.64);
    expect(s.value("neolight_atlas_risk_scaler")).toBe(1.05);

    // The hive again, now paused: every safety figure follows, the old agents are gone.
    const paused = fixture("meta_metrics_paused_post") as Json & { per_agent: Figures };
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200);
    s = await scrape(t.app);
    expect(safety(s)).toEqual({
      paused: 1,
      drawdown: 8.73,
      breakers: breakers("CLOSED", "OPEN"),
      mode: [{ labels: { mode: "PAPER_TRADING_MODE" }, value: 1 }],
    });
    expect(s.family("neolight_agent_pnl_1d")).toEqual(expected(paused.per_agent, "agent", "pnl_1d"));
    expect(s.names().filter((n) => n.startsWith("neolight_strategy_"))).toEqual([]);
    expect(s.family("neolight_regime")).toEqual([]); // market_regime: {} carries no regime
    expect(s.value("neolight_stress_passed")).toBe(1);

    // The agent files.
    mkdirSync(join(t.home, "runtime"), { recursive: true });
    writeFileSync(join(t.home, "runtime", "market_regime.json"), fixtureText("market_regime"));
    writeFileSync(
      join(t.home, "runtime", "capital_governor_allocations.json"),
      fixtureText("capital_governor_allocations"),
    );
    await t.services.files.regime.refresh();
    await t.services.files.governor.refresh();
    s = await scrape(t.app);
    expect(s.family("neolight_regime")).toEqual(regimes("file", "HIGH_VOL"));
    expect(s.family("neolight_regime_risk_multiplier")).toEqual([{ labels: { source: "file" }, value: 0.6 }]);
    expect(s.family("neolight_regime_confidence")).toEqual([]); // the file has none: none invented
    expect(s.family("neolight_allocation_weight").filter((x) => x.labels.source !== "atlas")).toEqual([
      { labels: { source: "capital_governor", agent: "smart_trader" }, value: 0.4 },
      { labels: { source: "capital_governor", agent: "mean_reversion_bot" }, value: 0.35 },
      { labels: { source: "capital_governor", agent: "dropship_agent" }, value: 0.25 },
    ]);
  });

  test("the risk engine's fields with their units: its answer, else its own file; none before either", async () => {
    const state = fixture("risk_state");
    using engine = standInEngine(state);
    const riskFamilies = (s: Scrape) =>
      Object.fromEntries(
        s
          .names()
          .filter((n) => n.startsWith("neolight_risk_"))
          .map((n) => [n, s.family(n).map((x) => x.value)]),
      );
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url, NEOLIGHT_STALE_RISK_S: "0" } });
    // Nothing good yet: the engine's up flag only, no invented figure.
    expect(riskFamilies(await scrape(t.app))).toEqual({ neolight_risk_engine_up: [0] });

    await t.services.risk.refresh();
    const fromEngine = {
      neolight_risk_engine_up: [1],
      neolight_risk_state_from_file: [0],
      neolight_risk_total_exposure_ratio: [0.4213],
      neolight_risk_active_positions: [3],
      neolight_risk_var: [1250.48],
      neolight_risk_cvar: [1580.27],
      neolight_risk_drawdown_percent: [2.14],
      neolight_risk_last_update_timestamp_seconds: [1762207198],
    };
    let s = await scrape(t.app);
    expect(riskFamilies(s)).toEqual(fromEngine);
    expect(s.help("neolight_risk_var")).toContain("money");
    expect(s.help("neolight_risk_drawdown_percent")).toContain("percent");
    expect(s.help("neolight_risk_total_exposure_ratio")).toContain("ratio of the portfolio");

    // Down: the last good answer stays, marked by engine_up 0.
    engine.mode = "error";
    await t.services.risk.refresh();
    expect(riskFamilies(await scrape(t.app))).toEqual({ ...fromEngine, neolight_risk_engine_up: [0] });

    // The engine's own file, newer than its last answer, is what is served and exposed.
    const newer = { ...state, var: 990.5, last_update: "1762207258" };
    writeFileSync(join(t.home, "state", "risk_state.json"), JSON.stringify(newer));
    await t.services.risk.refresh();
    s = await scrape(t.app);
    expect(riskFamilies(s)).toEqual({
      ...fromEngine,
      neolight_risk_engine_up: [0],
      neolight_risk_state_from_file: [1],
      neolight_risk_var: [990.5],
      neolight_risk_last_update_timestamp_seconds: [1762207258],
    });
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ served_from: "file", risk: newer });
  });

  test("refused writes count as unauthorised or rate_limited; live-stream viewers are a gauge", async () => {
    await using t = await startApp({
      env: { NEOLIGHT_WRITE_RATE: "1", NEOLIGHT_WRITE_BURST: "1" },
      overrides: { clientAddress: (request) => request.headers.get("x-test-peer") ?? "127.0.0.1" },
    });
    expect((await post(t.app, "/meta/metrics", { mode: "A" })).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", { mode: "B" })).status).toBe(429);
    expect((await post(t.app, "/atlas/update", {}, { "x-test-peer": "10.1.2.3" })).status).toBe(403);
    const stream = await t.app.handle(new Request("http://localhost/events"));
    try {
      const s = await scrape(t.app);
      expect(s.value("neolight_telemetry_updates_rejected_total", { reason: "rate_limited" })).toBe(1);
      expect(s.value("neolight_telemetry_updates_rejected_total", { reason: "unauthorised" })).toBe(1);
      expect(s.value("neolight_sse_subscribers")).toBe(1);
    } finally {
      await stream.body?.cancel();
    }
    await waitFor(async () => (await scrape(t.app)).value("neolight_sse_subscribers") === 0, "the viewer to leave");
  });

  test("requests by route template: random URLs share one label; invalid writes count as rejected", async () => {
    await using t = await startApp();
    await get(t.app, "/health");
    await get(t.app, "/health");
    for (let i = 0; i < 20; i++) await get(t.app, `/random/${crypto.randomUUID()}`);
    await post(t.app, "/meta/metrics", "[]"); // 400
    await post(t.app, "/meta/metrics", { guardian: { is_paused: "no" } }); // 422
    await post(t.app, "/atlas/update", { mode: "x" }, { "content-type": "text/plain" }); // 415
    await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" }); // 200
    const s = await scrape(t.app);
    const byRoute = s
      .family("neolight_http_requests_total")
      .filter((x) => x.labels.route !== "/metrics")
      .map((x) => [x.labels.route, x.labels.method, x.labels.status, x.value]);
    expect(byRoute.sort()).toEqual(
      [
        ["/atlas/update", "POST", "415", 1],
        ["/health", "GET", "200", 2],
        ["/meta/metrics", "POST", "200", 1],
        ["/meta/metrics", "POST", "400", 1],
        ["/meta/metrics", "POST", "422", 1],
        ["unmatched", "GET", "404", 20],
      ].sort(),
    );
    expect(s.value("neolight_telemetry_updates_rejected_total", { reason: "invalid" })).toBe(3);
    // Write routes are timed (parse to durable answer); reads from memory are not.
    const timed = s.family("neolight_http_request_duration_seconds_count").map((x) => [x.labels.route, x.value]);
    expect(timed.sort()).toEqual(
      [
        ["/atlas/update", 1],
        ["/meta/metrics", 3],
      ].sort(),
    );
  });

  test("rejections: a full queue, a failing disk, and the reasons issue 5's auth reports", async () => {
    let failing = true;
    const persistence: Persistence = {
      path: "/nowhere/meta_metrics.json",
      load: async () => ({ state: null, corrupt: null }),
      keepAside: async () => "/nowhere/aside",
      save: async () => {
        if (failing) throw new Error("EIO: disk on fire");
      },
    };
    await using t = await startApp({ overrides: { persistence } });
    expect((await post(t.app, "/meta/metrics", { mode: "A" })).status).toBe(503);
    t.services.metrics.countRejected("unauthorised");
    t.services.metrics.countRejected("rate_limited");
    t.services.metrics.countRejected("rate_limited");
    let s = await scrape(t.app);
    expect(s.value("neolight_persistence_failing")).toBe(1);
    expect(s.value("neolight_persistence_write_failures_total")).toBe(1);
    expect(s.family("neolight_telemetry_updates_rejected_total")).toEqual([
      { labels: { reason: "full" }, value: 0 },
      { labels: { reason: "invalid" }, value: 0 },
      { labels: { reason: "unauthorised" }, value: 1 },
      { labels: { reason: "rate_limited" }, value: 2 },
      { labels: { reason: "unpersisted" }, value: 1 },
    ]);
    failing = false;
    expect((await post(t.app, "/meta/metrics", { mode: "B" })).status).toBe(200);
    s = await scrape(t.app);
    expect(s.value("neolight_persistence_failing")).toBe(0);
    expect(s.value("neolight_persistence_writes_total")).toBe(1);
  });

  test("the SSE subscriber gauge reads what the live stream registers", async () => {
    await using t = await startApp();
    let n = 3;
    t.services.metrics.sseSubscribers(() => n);
    expect((await scrape(t.app)).value("neolight_sse_subscribers")).toBe(3);
    n = 0;
    expect((await scrape(t.app)).value("neolight_sse_subscribers")).toBe(0);
  });
});

describe("label values from clients", () => {
  const HOSTILE = [
    'quote"agent',
    "back\\slash",
    "new\nline",
    '\\"\n all three',
    "}{ braces ,= and commas",
    'x", evil="1',
    "日本語のエージェント",
    "emoji 🧨🚀",
    "",
  ];

  test("hostile agent names are escaped: promtool accepts them and the parser gives them back", async () => {
    await using t = await startApp();
    const perAgent = Object.fromEntries(HOSTILE.map((name, i) => [name, { pnl_1d: i }]));
    expect((await post(t.app, "/meta/metrics", { per_agent: perAgent })).status).toBe(200);
    expect(
      (await post(t.app, "/atlas/update", { allocations: Object.fromEntries(HOSTILE.map((n) => [n, 0.1])) })).status,
    ).toBe(200);
    const s = await scrape(t.app);
    expect(s.family("neolight_agent_pnl_1d")).toEqual(HOSTILE.map((agent, value) => ({ labels: { agent }, value })));
    expect(s.family("neolight_allocation_weight").map((x) => x.labels.agent)).toEqual(HOSTILE);
    expect(s.text).toContain('neolight_agent_pnl_1d{agent="\\\\\\"\\n all three"} 3\n');
  });

  test("a mode string with quotes and newlines stays one info series", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", { mode: 'LIVE"\nMODE\\' })).status).toBe(200);
    expect((await scrape(t.app)).family("neolight_mode_info")).toEqual([
      { labels: { mode: 'LIVE"\nMODE\\' }, value: 1 },
    ]);
  });
});

describe("the series limit", () => {
  test("an agent flood is cut at the limit per family, logged once, and shown in /status", async () => {
    await using t = await startApp();
    const flood = MAX_SERIES_PER_FAMILY + 25;
    const perAgent = Object.fromEntries(
      Array.from({ length: flood }, (_, i) => [`agent_${i}`, { pnl_1d: i, sharpe_30d: 1 }]),
    );
    expect((await post(t.app, "/meta/metrics", { per_agent: perAgent })).status).toBe(200);

    const s = await scrape(t.app);
    expect(s.family("neolight_agent_pnl_1d")).toHaveLength(MAX_SERIES_PER_FAMILY);
    expect(s.family("neolight_agent_pnl_1d").at(-1)).toEqual({
      labels: { agent: `agent_${MAX_SERIES_PER_FAMILY - 1}` },
      value: MAX_SERIES_PER_FAMILY - 1,
    });
    expect(s.family("neolight_agent_sharpe_30d")).toHaveLength(MAX_SERIES_PER_FAMILY);
    expect(s.family("neolight_metrics_series_dropped")).toEqual([
      { labels: { family: "neolight_agent_pnl_1d" }, value: 25 },
      { labels: { family: "neolight_agent_sharpe_30d" }, value: 25 },
    ]);
    await scrape(t.app); // a second scrape over the limit does not log again
    expect(logged(t.log, "metric series limit reached")).toEqual([
      expect.objectContaining({ level: "WARN", family: "neolight_agent_pnl_1d", limit: MAX_SERIES_PER_FAMILY }),
      expect.objectContaining({ level: "WARN", family: "neolight_agent_sharpe_30d", limit: MAX_SERIES_PER_FAMILY }),
    ]);
    expect((await get(t.app, "/status")).body.metrics).toEqual({
      series_limit: MAX_SERIES_PER_FAMILY,
      scrapes: 2,
      truncated: [
        { family: "neolight_agent_pnl_1d", limit: MAX_SERIES_PER_FAMILY, dropped: 25 },
        { family: "neolight_agent_sharpe_30d", limit: MAX_SERIES_PER_FAMILY, dropped: 25 },
      ],
    });

    // Back under the limit: /status clears, and a later flood is logged again.
    expect((await post(t.app, "/meta/metrics", { per_agent: { solo: { pnl_1d: 1 } } })).status).toBe(200);
    const after = await scrape(t.app);
    expect(after.family("neolight_metrics_series_dropped")).toEqual([]);
    expect(((await get(t.app, "/status")).body.metrics as { truncated: unknown[] }).truncated).toEqual([]);
    expect((await post(t.app, "/meta/metrics", { per_agent: perAgent })).status).toBe(200);
    await scrape(t.app);
    expect(logged(t.log, "metric series limit reached")).toHaveLength(4);
  });
});
