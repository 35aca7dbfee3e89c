// GET /risk/status against a small real HTTP server standing in for NeoLight's Rust risk
// engine (the one part of NeoLight this project does not run), and against the engine's own
// state file in a real temporary NEOLIGHT_HOME. The risk client's clock is the test's: ages
// are exact and the refresh interval passes without sleeping.
import { describe, expect, test } from "bun:test";
import { rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RISK_REFRESH_MS } from "../../src/modules/risk/service";
import { fixture, get, type Json, logged, startApp } from "../helpers";
import { standInEngine } from "../risk-engine";

const STATE = fixture("risk_state");
/** The fixture's last_update ("1762207198") as epoch ms. */
const STATE_MS = Number(STATE.last_update) * 1000;
const UNITS = {
  total_exposure: "ratio_of_portfolio",
  active_positions: "count",
  var: "money",
  cvar: "money",
  drawdown: "percent",
  last_update: "unix_seconds",
};

/** The risk client's clock: moves only when the test says. */
function testClock(start: number) {
  let at = start;
  return {
    now: () => at,
    advance(ms: number) {
      at += ms;
    },
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Writes the engine's state file as the engine does (in place) and dates it `mtime`. */
function writeState(home: string, content: string | Json, mtime?: number): string {
  const path = join(home, "state", "risk_state.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  if (mtime !== undefined) utimesSync(path, new Date(mtime), new Date(mtime));
  return path;
}

describe("GET /risk/status", () => {
  test("before any good answer from the engine or its file: 503 in the error shape, no invented numbers", async () => {
    await using t = await startApp();
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: expect.stringContaining("never reached"), code: 503 });
    expect(res.headers.get("retry-after")).toBe("5");
    expect(logged(t.log, "risk engine unreachable")).toEqual([expect.objectContaining({ serving: "none" })]);
    expect((await get(t.app, "/status")).body.sources).toMatchObject({
      risk_engine: { url: "http://127.0.0.1:9/risk/state", reachable: false, serving: "none" },
    });
  });

  test("the engine's GET /risk/state with its units, our fetch age and the engine's own age", async () => {
    using engine = standInEngine();
    const clock = testClock(STATE_MS + 90_000);
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url }, overrides: { riskClock: clock.now } });
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      risk: STATE,
      units: UNITS,
      served_from: "engine",
      fetched_at: iso(STATE_MS + 90_000),
      age_seconds: 0,
      file_modified_at: null,
      file_age_seconds: null,
      engine_updated_at: "2025-11-03T21:59:58.000Z",
      engine_age_seconds: 90,
      stale: false,
      last_error: null,
      source: `${engine.url}/risk/state`,
      state_file: join(t.home, "state", "risk_state.json"),
    });
    // Within the refresh interval the answer is served again, older, without asking.
    const asked = engine.requests;
    clock.advance(RISK_REFRESH_MS - 1);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ age_seconds: 1, engine_age_seconds: 91 });
    expect(engine.requests).toBe(asked);
  });

  test("concurrent requests share one engine request", async () => {
    using engine = standInEngine();
    const clock = testClock(Date.now());
    await using t = await startApp({
      env: { NEOLIGHT_RISK_URL: engine.url, NEOLIGHT_STALE_RISK_S: "0" },
      overrides: { riskClock: clock.now },
    });
    await Promise.all(Array.from({ length: 20 }, () => get(t.app, "/risk/status")));
    expect(engine.requests).toBe(1);
  });

  test.each([
    ["answers 500", "error", /HTTP 500/],
    ["answers something that is not JSON", "not-json", /not JSON/],
    ["does not answer within the timeout", "hang", /no answer within 100 ms/],
    ["answers a malformed state (last_update as a number)", { ...STATE, last_update: 1762207198 }, /last_update/],
  ] as const)("when the engine %s, its last good answer is served as stale", async (_name, failure, error) => {
    using engine = standInEngine();
    const clock = testClock(STATE_MS + 10_000);
    await using t = await startApp({
      env: { NEOLIGHT_RISK_URL: engine.url, NEOLIGHT_RISK_TIMEOUT_MS: "100" },
      overrides: { riskClock: clock.now },
    });
    expect((await get(t.app, "/risk/status")).status).toBe(200);
    if (typeof failure === "string") engine.mode = failure;
    else engine.body = failure;
    clock.advance(2_500); // past the refresh interval: the next request asks
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      risk: STATE,
      served_from: "engine",
      age_seconds: 2.5,
      engine_age_seconds: 12.5,
      stale: true,
      last_error: expect.stringMatching(error),
    });
    expect(logged(t.log, "risk engine unreachable")).toEqual([
      expect.objectContaining({ error: expect.stringMatching(error), serving: "engine" }),
    ]);

    engine.mode = "ok";
    engine.body = STATE;
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ stale: false, last_error: null, age_seconds: 0 });
    expect(logged(t.log, "risk engine reachable again")).toHaveLength(1);
  });

  test.each([
    ["last_update as a number", { ...STATE, last_update: 1762207198 }],
    ["var missing", { total_exposure: 0.42, active_positions: 3, cvar: 1, drawdown: 2, last_update: "1762207198" }],
    ["var as a string", { ...STATE, var: "1250.48" }],
    ["negative positions", { ...STATE, active_positions: -1 }],
    ["an array", [STATE]],
  ])("a malformed answer (%s) is not a good one: 503, and no sign of life", async (_name, body) => {
    using engine = standInEngine(body);
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url, NEOLIGHT_STALE_RISK_S: "0" } });
    const res = await get(t.app, "/risk/status");
    expect(res).toMatchObject({ status: 503, body: { error: expect.stringContaining("state schema"), code: 503 } });
    expect(t.services.risk.lastGood()).toBeNull();
    expect(t.services.risk.state()).toMatchObject({ reachable: false, last_good_at: null, failures: 1 });
  });

  test("engine unreachable: its own state/risk_state.json, with the file's age, marked as read from the file", async () => {
    const now = Math.floor(Date.now() / 1000) * 1000; // whole seconds: file times are exact
    const clock = testClock(now);
    await using t = await startApp({ overrides: { riskClock: clock.now } });
    const mtime = now - 120_000;
    const path = writeState(t.home, STATE, mtime);
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      risk: STATE,
      units: UNITS,
      served_from: "file",
      fetched_at: null,
      age_seconds: null,
      file_modified_at: iso(mtime),
      file_age_seconds: 120,
      engine_updated_at: "2025-11-03T21:59:58.000Z",
      engine_age_seconds: (now - STATE_MS) / 1000,
      stale: true,
      last_error: expect.any(String),
      source: "http://127.0.0.1:9/risk/state",
      state_file: path,
    });
    expect(t.services.risk.state()).toMatchObject({ serving: "file", state_file: { path, serving: "file" } });

    // The engine rewrites it in place: a half-written version keeps the last good copy.
    writeState(t.home, '{"total_exposure": 0.9, "active_posi');
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ risk: STATE, file_modified_at: iso(mtime) });
    expect(logged(t.log, "agent file unreadable, serving last good copy")).toEqual([
      expect.objectContaining({ source: "risk_state", path }),
    ]);
    // The whole new version is served once it is there.
    const next = { ...STATE, var: 990.5, last_update: String(Number(STATE.last_update) + 60) };
    writeState(t.home, next, mtime + 60_000);
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ risk: next, file_age_seconds: 62 });
    // Gone: nothing is left to serve, and nothing is invented.
    rmSync(path);
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).status).toBe(503);
  });

  test("an engine that went down: the newer of its last answer and its file, by the engine's own last_update", async () => {
    using engine = standInEngine();
    const clock = testClock(STATE_MS + 10_000);
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url }, overrides: { riskClock: clock.now } });
    const older = { ...STATE, var: 1.5, last_update: String(Number(STATE.last_update) - 600) };
    writeState(t.home, older);
    // Reachable: the engine's answer, whatever the file holds.
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ served_from: "engine", risk: STATE });

    engine.mode = "error";
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ served_from: "engine", stale: true, risk: STATE });

    const newer = { ...STATE, var: 2222.22, last_update: String(Number(STATE.last_update) + 60) };
    writeState(t.home, newer);
    clock.advance(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ served_from: "file", stale: true, risk: newer });
  });
});
