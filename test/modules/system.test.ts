// GET /, /health, /status, the 500 path, and the OpenAPI document, through app.handle.
import { describe, expect, test } from "bun:test";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { VERSION } from "../../src/config";
import { LOG_ROTATED_FILES } from "../../src/log/logger";
import { Health, ServiceInfo, Status } from "../../src/modules/system/model";
import { formatUptime } from "../../src/modules/system/service";
import { call, fixture, get, logged, post, startApp } from "../helpers";

const valid = (schema: Parameters<typeof TypeCompiler.Compile>[0], value: unknown) => {
  const check = TypeCompiler.Compile(schema);
  return check.Check(value) ? [] : [...check.Errors(value)].map((e) => `${e.path}: ${e.message}`);
};

describe("GET /health", () => {
  test("200 {status, uptime, version, timestamp}", async () => {
    await using t = await startApp();
    const res = await get(t.app, "/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: "ok",
      uptime: "0h0m",
      version: VERSION,
      timestamp: expect.stringMatching(/Z$/),
    });
    expect(valid(Health, res.body)).toEqual([]);
  });

  test.each([
    [0, "0h0m"],
    [59, "0h0m"],
    [83 * 60 + 5, "1h23m"],
    [49 * 3600 + 5 * 60 + 59, "49h5m"],
  ])("uptime %p s is %p", (seconds, text) => {
    expect(formatUptime(seconds)).toBe(text);
  });
});

describe("GET /", () => {
  test("JSON clients get the service info with every route", async () => {
    await using t = await startApp();
    const res = await call(t.app, "GET", "/", undefined, { accept: "application/json" });
    expect(res.body).toEqual({
      service: "neolight-dashboard",
      version: VERSION,
      status: "running",
      uptime: "0h0m",
      endpoints: [
        "GET /",
        "GET /health",
        "GET /status",
        "GET /meta/metrics",
        "POST /meta/metrics",
        "POST /atlas/update",
        "GET /meta/performance",
        "GET /meta/regime",
        "GET /governor/allocations",
        "GET /risk/status",
        "GET /events",
        "GET /meta/history",
        "GET /metrics",
      ],
    });
    expect(valid(ServiceInfo, res.body)).toEqual([]);
  });
});

describe("GET /status", () => {
  test("real figures, queue, persistence and sources", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    const res = await get(t.app, "/status");
    expect(res.status).toBe(200);
    expect(valid(Status, res.body)).toEqual([]);
    const body = res.body as {
      system: { cpu: number; memory: number; disk: number; details: Record<string, number> };
      guardian: unknown;
      queue: unknown;
      persistence: Record<string, unknown>;
      last_update: string;
    };
    const rss = process.memoryUsage().rss / 1048576;
    expect(body.system.memory).toBeGreaterThan(rss / 4);
    expect(body.system.memory).toBeLessThan(rss * 4);
    expect(body.system.cpu).toBeGreaterThan(0);
    expect(body.system.disk).toBeGreaterThan(0);
    expect(body.system.disk).toBeLessThanOrEqual(100);
    expect(body.system.details.state_dir_bytes).toBeGreaterThan(1000);
    expect(body.guardian).toEqual({
      // The memory logger has no file: no cap, no floor, nothing rotated or dropped.
      logs: {
        service: {
          path: t.config.logPath,
          bytes: 0,
          max_bytes: null,
          rotated_files: LOG_ROTATED_FILES,
          rotations: 0,
          min_free_bytes: 0,
          low_space: false,
          dropped_low_space: 0,
        },
      },
      agents: ["smart_trader", "dropship_agent", "mean_reversion_bot"],
      is_paused: false,
      reason: "Normal operation",
    });
    expect(body.queue).toEqual({
      depth: 0,
      capacity: 100,
      accepted: 1,
      applied: 1,
      rejected_full: 0,
      rejected_unpersisted: 0,
    });
    expect(body.persistence).toMatchObject({ writes: 1, failures: 0, last_write_at: body.last_update });
    expect(body.last_update).toBe((await get(t.app, "/meta/metrics")).body.cache_timestamp as string);
  });
});

describe("a handler that throws", () => {
  test("500 {error: 'Internal Server Error'}, the stack in the log, and the service keeps serving", async () => {
    await using t = await startApp();
    const app = t.app.get("/boom", () => {
      throw new Error("kaboom");
    });
    const res = await get(app, "/boom");
    expect(res).toMatchObject({ status: 500, body: { error: "Internal Server Error", code: 500 } });
    expect(logged(t.log, "request failed")).toEqual([
      expect.objectContaining({
        level: "ERROR",
        path: "/boom",
        error: expect.objectContaining({ error: "kaboom", stack: expect.stringContaining("system.test.ts") }),
      }),
    ]);
    expect((await get(app, "/health")).status).toBe(200);
  });
});

describe("access log", () => {
  test("one JSON line per request; write routes carry their duration", async () => {
    await using t = await startApp();
    await get(t.app, "/health");
    await get(t.app, "/nope");
    await post(t.app, "/meta/metrics", "[]");
    await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" });
    expect(logged(t.log, "request")).toEqual([
      { timestamp: expect.any(String), level: "INFO", message: "request", method: "GET", path: "/health", status: 200 },
      expect.objectContaining({ method: "GET", path: "/nope", status: 404 }),
      expect.objectContaining({ method: "POST", path: "/meta/metrics", status: 400, ms: expect.any(Number) }),
      expect.objectContaining({ method: "POST", path: "/meta/metrics", status: 200, ms: expect.any(Number) }),
    ]);
  });
});

describe("OpenAPI", () => {
  test("/swagger/json documents every route with its schemas", async () => {
    await using t = await startApp();
    const doc = (await get(t.app, "/swagger/json")).body as {
      info: { version: string };
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
    };
    expect(doc.info.version).toBe(VERSION);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/",
        "/atlas/update",
        "/governor/allocations",
        "/health",
        "/meta/metrics",
        "/meta/performance",
        "/meta/regime",
        "/metrics",
        "/risk/status",
        "/status",
        "/events",
        "/meta/history",
      ].sort(),
    );
    expect(doc.paths["/meta/metrics"]?.post?.requestBody).toBeDefined();
    expect(Object.keys(doc.paths["/meta/metrics"]?.post?.responses ?? {})).toContain("503");
  });

  test("/swagger is a page whose script and stylesheet are served locally, without inline script", async () => {
    await using t = await startApp();
    const page = await t.app.handle(new Request("http://localhost/swagger"));
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    // The CSP forbids inline script: every <script> must load a file.
    expect([...html.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)].map((m) => [m[1]?.includes("src="), m[2]])).toEqual([
      [true, ""],
      [true, ""],
    ]);
    expect(html).not.toMatch(/\son\w+=/); // no inline event handlers either
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBe(3);
    const sizes: Record<string, number> = {};
    for (const asset of assets) {
      expect(asset).toStartWith("/swagger/assets/");
      const res = await t.app.handle(new Request(`http://localhost${asset}`));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      sizes[asset] = (await res.arrayBuffer()).byteLength;
    }
    expect(sizes["/swagger/assets/swagger-ui-bundle.js"]).toBeGreaterThan(100_000);
    expect(sizes["/swagger/assets/swagger-ui.css"]).toBeGreaterThan(10_000);
    // The start-up script points the UI at our document and never at an online validator.
    const init = await (await t.app.handle(new Request("http://localhost/swagger/assets/swagger-init.js"))).text();
    expect(init).toContain('"/swagger/json"');
    expect(init).toContain("validatorUrl: null");
  });
});
