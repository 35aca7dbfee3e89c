// GET/POST /meta/metrics and POST /atlas/update through app.handle, against the contract
// (CONTRACT sections 3 and 4) and the fixtures.
import { describe, expect, test } from "bun:test";
import { call, fixture, get, logged, post, served, servedGuardian, startApp } from "../helpers";

const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

describe("GET /meta/metrics", () => {
  test("before any data it serves the contract's default with timestamp now", async () => {
    await using t = await startApp();
    const before = Date.now();
    const res = await get(t.app, "/meta/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(res.body).toEqual({
      timestamp: ISO,
      per_agent: {},
      per_strategy: {},
      guardian: { is_paused: false, drawdown: 0, reason: "Normal operation", paused_by: null, paused_since: null },
      breakers: { quote_state: "CLOSED", trade_state: "CLOSED" },
      mode: "TEST_MODE",
      summary: { total_agents: 0, total_strategies: 0 },
      cache_timestamp: null,
    });
    expect(Date.parse(res.body.timestamp as string)).toBeGreaterThanOrEqual(before - 1000);
  });

  test("after the hive snapshot it serves the snapshot and cache_timestamp", async () => {
    await using t = await startApp();
    const hive = fixture("meta_metrics_post");
    const ack = await post(t.app, "/meta/metrics", hive);
    expect(ack).toMatchObject({ status: 200, body: { status: "ok", timestamp: ISO, seq: 1 } });
    const res = await get(t.app, "/meta/metrics");
    expect(res.body).toEqual(served({ ...hive, cache_timestamp: ack.body.timestamp }));
  });
});

describe("POST /meta/metrics merge rule", () => {
  test("a stress post and an atlas update after a paused snapshot leave the guardian paused", async () => {
    await using t = await startApp();
    const paused = fixture("meta_metrics_paused_post");
    const stress = fixture("stress_post");
    const atlas = fixture("atlas_update_post");
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", stress)).status).toBe(200);
    const last = await post(t.app, "/atlas/update", atlas);
    expect(last.status).toBe(200);

    const doc = (await get(t.app, "/meta/metrics")).body;
    expect((doc.guardian as { is_paused: boolean }).is_paused).toBe(true);
    expect(doc).toEqual(served({ ...paused, ...stress, atlas, cache_timestamp: last.body.timestamp }));
  });

  test("a partial post before any snapshot keeps the defaults around it", async () => {
    await using t = await startApp();
    const stress = fixture("stress_post");
    await post(t.app, "/meta/metrics", stress);
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.guardian).toEqual(servedGuardian({ is_paused: false, drawdown: 0, reason: "Normal operation" }));
    expect(doc.stress_last).toEqual(stress.stress_last);
  });

  test("a paused snapshot is never refused for string lengths the contract does not limit", async () => {
    await using t = await startApp();
    const paused = fixture("meta_metrics_paused_post");
    const body = {
      ...paused,
      guardian: { ...(paused.guardian as object), reason: `Daily drawdown limit exceeded: ${"x".repeat(5000)}` },
      mode: "",
      timestamp: `2025-11-03T22:00:12.100374+00:00 ${"y".repeat(100)}`,
    };
    expect((await post(t.app, "/meta/metrics", body)).status).toBe(200);
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(servedGuardian(body.guardian));
  });

  test("unknown top-level keys and unknown nested keys are kept and served back", async () => {
    await using t = await startApp();
    const body = {
      future_agent: { nested: [1, 2, { deep: true }] },
      guardian: { is_paused: true, drawdown: 2, reason: "manual", operator: "kim" },
    };
    await post(t.app, "/meta/metrics", body);
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.future_agent).toEqual(body.future_agent);
    expect(doc.guardian).toEqual(servedGuardian(body.guardian));
  });

  test("each post replaces the whole key it carries, not a deep merge", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await post(t.app, "/meta/metrics", { per_agent: { solo: { pnl_1d: 1 } } });
    expect((await get(t.app, "/meta/metrics")).body.per_agent).toEqual({ solo: { pnl_1d: 1 } });
  });

  test("cache_timestamp belongs to the service: posting it is a 422 and changes nothing", async () => {
    await using t = await startApp();
    const res = await post(t.app, "/meta/metrics", { cache_timestamp: "2020-01-01T00:00:00Z", mode: "LIVE_MODE" });
    expect(res).toMatchObject({ status: 422, body: { code: 422, error: expect.stringContaining("cache_timestamp") } });
    expect((await get(t.app, "/meta/metrics")).body).toMatchObject({ mode: "TEST_MODE", cache_timestamp: null });
  });

  test("applying an update logs 'Telemetry processed' with the number of agents", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await post(t.app, "/meta/metrics", fixture("stress_post"));
    expect(logged(t.log, "Telemetry processed")).toEqual([
      expect.objectContaining({ level: "INFO", agents: 3, seq: 1 }),
      expect.objectContaining({ level: "INFO", agents: 3, seq: 2, keys: ["stress_last", "stress_timestamp"] }),
    ]);
  });
});

describe("POST /atlas/update", () => {
  test("stores the body under `atlas` and answers {status, timestamp}", async () => {
    await using t = await startApp();
    const atlas = fixture("atlas_update_post");
    const res = await call(t.app, "POST", "/atlas/update", atlas);
    expect(res).toMatchObject({ status: 200, body: { status: "ok", timestamp: ISO } });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.atlas).toEqual(atlas);
    expect(doc.allocations).toBeUndefined();
  });
});
