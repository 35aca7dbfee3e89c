// GET /risk/status against a small real HTTP server standing in for the Rust risk engine
// (the one part of NeoLight this project does not run).
import { describe, expect, test } from "bun:test";
import { RISK_REFRESH_MS } from "../../src/modules/risk/service";
import { fixture, get, logged, startApp } from "../helpers";

/** A stand-in engine on port 0 whose behaviour the test switches. */
function fakeEngine() {
  const engine = {
    mode: "ok" as "ok" | "error" | "hang" | "not-json",
    requests: 0,
    server: Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        engine.requests++;
        if (new URL(req.url).pathname !== "/risk/status") return new Response("no", { status: 404 });
        if (engine.mode === "error") return new Response("boom", { status: 500 });
        if (engine.mode === "not-json") return new Response("<html>", { status: 200 });
        if (engine.mode === "hang") await Bun.sleep(5_000);
        return Response.json(fixture("risk_status"));
      },
    }),
    get url() {
      return `http://127.0.0.1:${engine.server.port}`;
    },
    [Symbol.dispose]() {
      engine.server.stop(true);
    },
  };
  return engine;
}

describe("GET /risk/status", () => {
  test("before the engine ever answered: 503 in the error shape, no invented numbers", async () => {
    await using t = await startApp();
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: expect.stringContaining("never reached"), code: 503 });
    expect(logged(t.log, "risk engine unreachable")).toHaveLength(1);
  });

  test("the engine's answer, untouched, with its age", async () => {
    using engine = fakeEngine();
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url } });
    const res = await get(t.app, "/risk/status");
    expect(res).toMatchObject({ status: 200 });
    expect(res.body).toEqual({
      risk: fixture("risk_status"),
      fetched_at: expect.stringMatching(/Z$/),
      age_seconds: expect.any(Number),
      stale: false,
      last_error: null,
      source: `${engine.url}/risk/status`,
    });
    expect(res.body.age_seconds as number).toBeLessThan(1);
  });

  test("concurrent requests share one engine request", async () => {
    using engine = fakeEngine();
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url } });
    await Promise.all(Array.from({ length: 20 }, () => get(t.app, "/risk/status")));
    expect(engine.requests).toBe(1);
  });

  test.each([
    ["answers 500", "error", /HTTP 500/],
    ["answers something that is not JSON", "not-json", /JSON/],
    ["does not answer within the timeout", "hang", /no answer within 100 ms/],
  ] as const)("when the engine %s, the last good answer is served as stale", async (_name, mode, error) => {
    using engine = fakeEngine();
    await using t = await startApp({ env: { NEOLIGHT_RISK_URL: engine.url, NEOLIGHT_RISK_TIMEOUT_MS: "100" } });
    expect((await get(t.app, "/risk/status")).status).toBe(200);
    engine.mode = mode;
    await Bun.sleep(RISK_REFRESH_MS); // the refresh interval is the behaviour under test
    const res = await get(t.app, "/risk/status");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      risk: fixture("risk_status"),
      stale: true,
      last_error: expect.stringMatching(error),
    });
    expect(res.body.age_seconds as number).toBeGreaterThanOrEqual(RISK_REFRESH_MS / 1000 - 0.05);
    expect(logged(t.log, "risk engine unreachable")).toHaveLength(1);

    engine.mode = "ok";
    await Bun.sleep(RISK_REFRESH_MS);
    expect((await get(t.app, "/risk/status")).body).toMatchObject({ stale: false, last_error: null });
    expect(logged(t.log, "risk engine reachable again")).toHaveLength(1);
  });
});
