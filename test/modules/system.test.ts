// GET /, /health, /status, the 500 path, and the OpenAPI document, through app.handle.
import { describe, expect, test } from "bun:test";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { VERSION } from "../../src/config";
import { ErrorResponse } from "../../src/http/respond";
import { LOG_ROTATED_FILES } from "../../src/log/logger";
import { AtlasUpdate, MetaMetricsUpdate, type QueueStats } from "../../src/modules/meta/model";
import { MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEYS } from "../../src/modules/meta/service";
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
  test("JSON clients get the service info: the original's six paths first, then the newer ones", async () => {
    await using t = await startApp();
    const res = await call(t.app, "GET", "/", undefined, { accept: "application/json" });
    expect(res.body).toEqual({
      service: "neolight-dashboard",
      version: VERSION,
      status: "running",
      uptime: "0h0m",
      endpoints: [
        "/health",
        "/status",
        "/meta/metrics",
        "/meta/performance",
        "/meta/regime",
        "/governor/allocations",
        "/",
        "/health/ready",
        "/atlas/update",
        "/guardian",
        "/guardian/pause",
        "/guardian/resume",
        "/risk/status",
        "/events",
        "/meta/history",
        "/metrics",
        "/swagger",
        "/swagger/json",
      ],
      methods: {
        "/health": ["GET"],
        "/status": ["GET"],
        "/meta/metrics": ["GET", "POST"],
        "/meta/performance": ["GET"],
        "/meta/regime": ["GET"],
        "/governor/allocations": ["GET"],
        "/": ["GET"],
        "/health/ready": ["GET"],
        "/atlas/update": ["POST"],
        "/guardian": ["GET"],
        "/guardian/pause": ["POST"],
        "/guardian/resume": ["POST"],
        "/risk/status": ["GET"],
        "/events": ["GET"],
        "/meta/history": ["GET"],
        "/metrics": ["GET"],
        "/swagger": ["GET"],
        "/swagger/json": ["GET"],
      },
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
      queue: QueueStats;
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
      rejected_too_large: 0,
      document_keys: body.queue.document_keys,
      document_bytes: body.queue.document_bytes,
      max_document_keys: MAX_DOCUMENT_KEYS,
      max_document_bytes: MAX_DOCUMENT_BYTES,
    });
    expect(body.queue.document_keys).toBe(Object.keys(fixture("meta_metrics_post")).length);
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

interface Operation {
  requestBody?: { content: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { content?: unknown; headers?: Record<string, unknown> }>;
  security?: unknown;
}

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
        "/guardian",
        "/guardian/pause",
        "/guardian/resume",
        "/health",
        "/health/ready",
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

  // Issue 9: the request bodies had no schema (`content: {}`), so "Try it out" could not
  // POST; answers of the access rules and body limits were missing; the error schema was
  // copied inline into every answer; there was no security scheme and no example.
  test("/swagger/json: every body, every answer, one Error schema, the bearer scheme, fixture examples", async () => {
    await using t = await startApp();
    const res = await t.app.handle(new Request("http://localhost/swagger/json"));
    const raw = await res.text();
    const doc = JSON.parse(raw) as {
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
      paths: Record<string, Record<string, Operation>>;
    };
    expect(doc.components).toEqual({
      schemas: { Error: JSON.parse(JSON.stringify(ErrorResponse)) },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: expect.any(String) } },
    });
    // One schema, referenced: its words appear once in the whole document.
    expect(raw.split(ErrorResponse.properties.code.description as string).length - 1).toBe(1);

    const ops = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })),
    );
    for (const { route, op } of ops) {
      for (const [status, answer] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        expect({
          route,
          status,
          content: answer.content,
          retryAfter: answer.headers?.["Retry-After"] !== undefined,
        }).toEqual({
          route,
          status,
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
          retryAfter: status === "429" || status === "503",
        });
      }
    }
    const summary = Object.fromEntries(
      ops.map(({ route, op }) => [route, { statuses: Object.keys(op.responses), security: op.security }]),
    );
    const anyone = [{ bearer: [] }, {}];
    const read = { statuses: ["200", "401", "403"], security: anyone };
    const write = {
      statuses: ["200", "400", "401", "403", "408", "413", "415", "421", "422", "429", "503"],
      security: anyone,
    };
    expect(summary).toEqual({
      "GET /": { ...read, statuses: ["200", "401", "403", "421"] },
      "GET /health": { statuses: ["200"], security: [] },
      "GET /health/ready": { statuses: ["200", "503"], security: [] },
      "GET /status": read,
      "GET /meta/metrics": read,
      "POST /meta/metrics": write,
      "POST /atlas/update": write,
      "GET /guardian": read,
      "POST /guardian/pause": write,
      "POST /guardian/resume": write,
      "GET /meta/performance": read,
      "GET /meta/regime": read,
      "GET /governor/allocations": read,
      "GET /risk/status": { ...read, statuses: ["200", "401", "403", "503"] },
      "GET /events": { ...read, statuses: ["200", "401", "403", "429", "503"] },
      "GET /meta/history": { ...read, statuses: ["200", "400", "401", "403", "422", "503"] },
      "GET /metrics": read,
    });

    // The bodies: their schema, and the fixtures as examples, each of which is accepted.
    for (const [path, schema, examples] of [
      [
        "/meta/metrics",
        MetaMetricsUpdate,
        { hive: "meta_metrics_post", stress: "stress_post", paused: "meta_metrics_paused_post" },
      ],
      ["/atlas/update", AtlasUpdate, { atlas: "atlas_update_post" }],
    ] as const) {
      const body = doc.paths[path]?.post?.requestBody;
      expect(Object.keys(body?.content ?? {})).toEqual(["application/json"]);
      const media = body?.content["application/json"];
      // The route's own schema (normalised for OpenAPI 3.1 by the plugin: its properties, all of them).
      const documented = media?.schema as { type: string; properties: Record<string, unknown> };
      expect({ type: documented.type, properties: Object.keys(documented.properties) }).toEqual({
        type: "object",
        properties: Object.keys(schema.properties),
      });
      const values = Object.fromEntries(Object.entries(media?.examples ?? {}).map(([name, e]) => [name, e.value]));
      expect(values).toEqual(Object.fromEntries(Object.entries(examples).map(([name, file]) => [name, fixture(file)])));
      for (const [name, value] of Object.entries(values)) {
        expect({ path, name, status: (await post(t.app, path, value)).status }).toEqual({ path, name, status: 200 });
      }
    }
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
