// Browser-facing headers: the Content-Security-Policy on every HTML answer (including a page
// another feature adds), nosniff, and CORS for listed origins only.
import { describe, expect, test } from "bun:test";
import { CONTENT_SECURITY_POLICY, HTML_SECURITY_HEADERS } from "../../src/http/security";
import { call, discardBody, startApp } from "../helpers";

const OPS = "https://ops.example:8443";

describe("security headers", () => {
  test("the CSP forbids inline script, framing, and loading from anywhere else", () => {
    const directives = Object.fromEntries(
      CONTENT_SECURITY_POLICY.split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values.join(" ")];
      }),
    );
    expect(directives).toEqual({
      "default-src": "'self'",
      "script-src": "'self'",
      "style-src": "'self'",
      "img-src": "'self' data:",
      "connect-src": "'self'",
      "frame-ancestors": "'none'",
      "base-uri": "'none'",
      "form-action": "'none'",
    });
  });

  test("every GET route that answers a browser with HTML carries them (a page added later included)", async () => {
    await using t = await startApp();
    const paths = t.app.routes.filter((r) => r.method === "GET" && !r.path.includes("*")).map((r) => r.path);
    let pages = 0;
    for (const path of paths) {
      // As a browser asks for a page: the same route may answer JSON clients differently.
      const res = await t.app.handle(
        new Request(`http://localhost${path}`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } }),
      );
      await discardBody(res);
      if (!res.headers.get("content-type")?.startsWith("text/html")) continue;
      pages++;
      const got = Object.fromEntries(Object.keys(HTML_SECURITY_HEADERS).map((name) => [name, res.headers.get(name)]));
      expect({ path, headers: got }).toEqual({ path, headers: { ...HTML_SECURITY_HEADERS } });
    }
    expect(pages).toBeGreaterThanOrEqual(1); // at least /swagger
  });

  test("/swagger carries them", async () => {
    await using t = await startApp();
    const res = await t.app.handle(new Request("http://localhost/swagger"));
    expect(res.headers.get("content-type")).toStartWith("text/html");
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
  });

  test.each([
    ["GET", "/meta/metrics"],
    ["GET", "/meta/regime"],
    ["GET", "/nope"],
    ["POST", "/meta/metrics"],
  ])("%s %s: JSON with nosniff", async (method, path) => {
    await using t = await startApp();
    const res = await call(t.app, method, path, method === "POST" ? "[]" : undefined);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("CORS", () => {
  test("off by default: no Allow-Origin, and a preflight finds no OPTIONS route (405)", async () => {
    await using t = await startApp();
    const res = await call(t.app, "GET", "/meta/metrics", undefined, { origin: OPS });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await call(t.app, "OPTIONS", "/meta/metrics", undefined, {
      origin: OPS,
      "access-control-request-method": "POST",
    });
    expect(pre.status).toBe(405);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
  });

  describe("with NEOLIGHT_CORS_ORIGINS", () => {
    const env = { NEOLIGHT_CORS_ORIGINS: `${OPS}, http://localhost:3000` };

    test("a listed origin's preflight is answered with exactly that origin", async () => {
      await using t = await startApp({ env });
      const res = await t.app.handle(
        new Request("http://localhost/meta/metrics", {
          method: "OPTIONS",
          headers: { origin: OPS, "access-control-request-method": "POST" },
        }),
      );
      expect(res.status).toBe(204);
      expect(Object.fromEntries(res.headers)).toMatchObject({
        "access-control-allow-origin": OPS,
        "access-control-allow-methods": "GET, HEAD, POST",
        "access-control-allow-headers": "authorization, content-type",
        vary: "Origin",
      });
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    });

    test.each([
      ["another origin", "https://evil.example"],
      ["a listed origin with another port", "https://ops.example:9443"],
      ["a listed origin as a prefix", "https://ops.example:8443.evil.example"],
      ["null", "null"],
    ])("%s: preflight 403, no Allow-Origin on answers", async (_name, origin) => {
      await using t = await startApp({ env });
      const pre = await call(t.app, "OPTIONS", "/meta/metrics", undefined, {
        origin,
        "access-control-request-method": "POST",
      });
      expect(pre).toMatchObject({ status: 403, body: { error: "origin not allowed", code: 403 } });
      expect(pre.headers.get("access-control-allow-origin")).toBeNull();
      const res = await call(t.app, "GET", "/meta/metrics", undefined, { origin });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    });

    test("answers to a listed origin carry it, errors included, so a page can read {error, code}", async () => {
      await using t = await startApp({ env });
      for (const [method, path, body, status] of [
        ["GET", "/meta/metrics", undefined, 200],
        ["GET", "/health", undefined, 200],
        ["GET", "/nope", undefined, 404],
        ["POST", "/meta/metrics", "[]", 400],
        ["POST", "/meta/metrics", { mode: "X" }, 200],
      ] as const) {
        const res = await call(t.app, method, path, body, { origin: OPS });
        expect({ path, status: res.status, origin: res.headers.get("access-control-allow-origin") }).toEqual({
          path,
          status,
          origin: OPS,
        });
      }
    });

    test("a preflight needs no token; the write it announces still does", async () => {
      await using t = await startApp({ env: { ...env, NEOLIGHT_DASHBOARD_TOKEN: "t".repeat(32) } });
      const pre = await t.app.handle(
        new Request("http://localhost/meta/metrics", {
          method: "OPTIONS",
          headers: { origin: OPS, "access-control-request-method": "POST" },
        }),
      );
      expect(pre.status).toBe(204);
      const res = await call(t.app, "POST", "/meta/metrics", { mode: "X" }, { origin: OPS });
      expect(res.status).toBe(401);
      expect(res.headers.get("access-control-allow-origin")).toBe(OPS);
    });
  });
});
