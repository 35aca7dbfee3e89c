// Staleness of NeoLight's sources: the monitor on a hand-driven clock (exact log lines),
// then the real service with short intervals (stale, recovered, stale again; /status and
// /metrics agree), which keys feed which source, and the agent files' mtimes.
import { describe, expect, test } from "bun:test";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryLogger } from "../../../src/log/logger";
import type { SourceStaleness } from "../../../src/modules/metrics/model";
import { startStalenessMonitor } from "../../../src/modules/metrics/staleness";
import { fixture, fixtureText, get, logged, post, startApp, waitFor } from "../../helpers";
import { standInEngine } from "../../risk-engine";
import { scrape } from "./prom";

/** Every source off but the ones a test names (their lines would only be noise). */
const QUIET = {
  NEOLIGHT_STALE_HIVE_S: "0",
  NEOLIGHT_STALE_STRESS_S: "0",
  NEOLIGHT_STALE_ATLAS_S: "0",
  NEOLIGHT_STALE_FILES_S: "0",
  NEOLIGHT_STALE_RISK_S: "0",
};

const iso = (ms: number) => new Date(ms).toISOString();

describe("the staleness monitor", () => {
  test("stale after twice the interval (from start-up when never heard), logged once each way", () => {
    const log = createMemoryLogger();
    const start = Date.parse("2025-11-03T22:00:00Z");
    let clock = start;
    let hiveAt: number | null = null;
    const monitor = startStalenessMonitor({
      sources: [
        { name: "hive", intervalS: 10, lastUpdate: () => hiveAt },
        { name: "quiet", intervalS: 0, lastUpdate: () => null },
      ],
      log,
      startedAt: start,
      now: () => clock,
    });
    try {
      clock = start + 20_000; // exactly twice: not yet
      expect(monitor.entries()).toEqual([
        { source: "hive", last_update: null, expected_interval_s: 10, age_s: null, stale: false },
        { source: "quiet", last_update: null, expected_interval_s: 0, age_s: null, stale: false },
      ] satisfies SourceStaleness[]);
      clock = start + 20_001;
      monitor.check();
      monitor.check();
      expect(monitor.entries()[0]).toEqual({
        source: "hive",
        last_update: null,
        expected_interval_s: 10,
        age_s: null,
        stale: true,
      });

      hiveAt = start + 21_000;
      clock = start + 21_500;
      expect(monitor.entries()[0]).toEqual({
        source: "hive",
        last_update: iso(hiveAt),
        expected_interval_s: 10,
        age_s: 0.5,
        stale: false,
      });
      clock = hiveAt + 20_001;
      monitor.check();
      clock = start + 1e9; // a source that is not watched is never stale
      expect(monitor.entries()[1]?.stale).toBe(false);

      expect(log.lines.map(({ timestamp: _, ...line }) => line)).toEqual([
        {
          level: "WARN",
          message: "source stale",
          source: "hive",
          expected_interval_s: 10,
          last_update: null,
          silent_s: 20.001,
        },
        {
          level: "INFO",
          message: "source recovered",
          source: "hive",
          expected_interval_s: 10,
          last_update: iso(start + 21_000),
        },
        {
          level: "WARN",
          message: "source stale",
          source: "hive",
          expected_interval_s: 10,
          last_update: iso(start + 21_000),
          silent_s: 20.001,
        },
      ]);
    } finally {
      monitor.close();
    }
  });
});

describe("staleness in the service", () => {
  const entry = async (app: Parameters<typeof get>[0], source: string) =>
    ((await get(app, "/status")).body.staleness as SourceStaleness[]).find((e) => e.source === source);

  test("the atlas bridge goes stale, recovers on a post, and goes stale again: log, /status, /metrics", async () => {
    await using t = await startApp({ env: { ...QUIET, NEOLIGHT_STALE_ATLAS_S: "0.2" } });
    const atlasLines = () => t.log.lines.filter((l) => l.source === "atlas").map((l) => l.message);

    // Never heard from: stale 2 x 0.2 s after start-up.
    await waitFor(() => atlasLines().includes("source stale"), "atlas to go stale");
    expect(await entry(t.app, "atlas")).toEqual({
      source: "atlas",
      last_update: null,
      expected_interval_s: 0.2,
      age_s: null,
      stale: true,
    });
    let s = await scrape(t.app);
    expect(s.value("neolight_source_stale", { source: "atlas" })).toBe(1);
    expect(s.value("neolight_source_expected_interval_seconds", { source: "atlas" })).toBe(0.2);
    expect(s.value("neolight_source_last_update_timestamp_seconds", { source: "atlas" })).toBeUndefined();

    // A post: fresh at once (reading /status runs the check, so the log says it too).
    const before = Date.now();
    expect((await post(t.app, "/atlas/update", fixture("atlas_update_post"))).status).toBe(200);
    const fresh = await entry(t.app, "atlas");
    expect(fresh).toEqual({
      source: "atlas",
      last_update: expect.stringMatching(/Z$/),
      expected_interval_s: 0.2,
      age_s: expect.any(Number),
      stale: false,
    });
    expect(Date.parse(fresh?.last_update as string)).toBeGreaterThanOrEqual(before);
    expect(atlasLines()).toEqual(["source stale", "source recovered"]);
    s = await scrape(t.app);
    expect(s.value("neolight_source_last_update_timestamp_seconds", { source: "atlas" })).toBe(
      Date.parse(fresh?.last_update as string) / 1000,
    );

    // Silent again.
    await waitFor(() => atlasLines().length === 3, "atlas to go stale again");
    expect(atlasLines()).toEqual(["source stale", "source recovered", "source stale"]);
    expect(logged(t.log, "source stale")[1]).toEqual({
      timestamp: expect.any(String),
      level: "WARN",
      message: "source stale",
      source: "atlas",
      expected_interval_s: 0.2,
      last_update: fresh?.last_update,
      silent_s: expect.any(Number),
    });
    expect((await entry(t.app, "atlas"))?.stale).toBe(true);
    expect((await scrape(t.app)).value("neolight_source_stale", { source: "atlas" })).toBe(1);
  });

  test("which posts feed which source: hive (per_agent or guardian), stress (stress_last), atlas", async () => {
    await using t = await startApp({ env: QUIET });
    const updated = async () =>
      Object.fromEntries(
        ((await get(t.app, "/status")).body.staleness as SourceStaleness[])
          .filter((e) => ["hive", "stress", "atlas"].includes(e.source))
          .map((e) => [e.source, e.last_update !== null]),
      );
    expect(await updated()).toEqual({ hive: false, stress: false, atlas: false });
    await post(t.app, "/meta/metrics", fixture("stress_post"));
    expect(await updated()).toEqual({ hive: false, stress: true, atlas: false });
    await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" }); // neither per_agent nor guardian
    expect(await updated()).toEqual({ hive: false, stress: true, atlas: false });
    await post(t.app, "/meta/metrics", { guardian: { is_paused: true, drawdown: 1, reason: "test" } });
    expect(await updated()).toEqual({ hive: true, stress: true, atlas: false });
    await post(t.app, "/atlas/update", fixture("atlas_update_post"));
    expect(await updated()).toEqual({ hive: true, stress: true, atlas: true });
    expect(logged(t.log, "source stale")).toEqual([]);
  });

  test("an agent file counts from its last good version's mtime: an old file is stale, a rewrite recovers", async () => {
    await using t = await startApp({ env: { ...QUIET, NEOLIGHT_STALE_FILES_S: "60" } });
    const path = join(t.home, "runtime", "market_regime.json");
    mkdirSync(join(t.home, "runtime"), { recursive: true });
    writeFileSync(path, fixtureText("market_regime"));
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(path, hourAgo, hourAgo);
    await t.services.files.regime.refresh();
    expect(await entry(t.app, "market_regime")).toEqual({
      source: "market_regime",
      last_update: hourAgo.toISOString(),
      expected_interval_s: 60,
      age_s: expect.any(Number),
      stale: true,
    });
    expect(logged(t.log, "source stale")).toEqual([
      expect.objectContaining({ source: "market_regime", last_update: hourAgo.toISOString() }),
    ]);

    // A half-written rewrite is no sign of health; the whole file is.
    writeFileSync(path, '{"regime": "BU');
    await t.services.files.regime.refresh();
    expect((await entry(t.app, "market_regime"))?.stale).toBe(true);
    writeFileSync(path, fixtureText("market_regime"));
    await t.services.files.regime.refresh();
    expect((await entry(t.app, "market_regime"))?.stale).toBe(false);
    expect(logged(t.log, "source recovered")).toEqual([expect.objectContaining({ source: "market_regime" })]);
    // The governor's fallback copy is listed but never watched.
    expect(await entry(t.app, "allocations_override")).toMatchObject({ expected_interval_s: 0, stale: false });
  });

  test("the risk engine is probed in the background: its last good answer at /risk/state is its last update", async () => {
    using engine = standInEngine();
    await using t = await startApp({
      env: { ...QUIET, NEOLIGHT_STALE_RISK_S: "30", NEOLIGHT_RISK_URL: engine.url },
    });
    // Nobody asked /risk/status: the probe did.
    const good = await waitFor(() => t.services.risk.state().last_good_at, "the probe's answer");
    expect(await entry(t.app, "risk_engine")).toMatchObject({ last_update: good, stale: false });
    // A malformed answer is no sign of life, nor is the engine's file, even a newer one.
    engine.body = { ...fixture("risk_state"), var: "not a number" };
    writeFileSync(
      join(t.home, "state", "risk_state.json"),
      JSON.stringify({ ...fixture("risk_state"), last_update: "1762207300" }),
    );
    await t.services.risk.refresh();
    expect(t.services.risk.state()).toMatchObject({ reachable: false, serving: "file", last_good_at: good });
    expect(await entry(t.app, "risk_engine")).toMatchObject({ last_update: good });
  });
});
