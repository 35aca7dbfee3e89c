// The write path's one owner (issue 10 item 7): every route that changes state goes through
// writeRoute, an app with one that does not refuses to start, and invalid bodies are counted
// where they are refused, not by re-reading HTTP counters under route names.
import { describe, expect, test } from "bun:test";
import { Type as t } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { UnprocessableError } from "../../src/http/errors";
import { assertWriteRoutes, isWriteRoute, writeRoutes } from "../../src/http/write-route";
import { fixture, get, post, startApp } from "../helpers";

/** neolight_telemetry_updates_rejected_total{reason} from one scrape. */
function rejected(text: string, reason: string): number {
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`neolight_telemetry_updates_rejected_total{reason="${reason}"}`));
  return Number(line?.split(" ")[1]);
}

const noGate = { check: () => {}, onInvalid: () => {} };

describe("writeRoute", () => {
  test("every route of the app that is not GET, HEAD or OPTIONS is a write route", async () => {
    await using t = await startApp();
    const writes = t.app.routes.filter((r) => !["GET", "HEAD", "OPTIONS"].includes(r.method));
    expect(writes.map((r) => `${r.method} ${r.path}`).sort()).toEqual([
      "POST /atlas/update",
      "POST /guardian/pause",
      "POST /guardian/resume",
      "POST /meta/metrics",
    ]);
    expect(writes.filter((r) => !isWriteRoute(r))).toEqual([]);
  });

  test("a POST route declared without it is refused, by name", () => {
    const writeRoute = writeRoutes(noGate);
    const app = new Elysia()
      .post("/ok", ...writeRoute(t.Object({}), async () => ({}), { response: {}, detail: {} }))
      .post("/sneaky", () => "written")
      .delete("/also", () => "gone")
      .get("/read", () => "fine");
    expect(() => assertWriteRoutes(app.routes)).toThrow(
      "write routes must be declared with writeRoute (http/write-route.ts): POST /sneaky, DELETE /also",
    );
    expect(() => assertWriteRoutes(app.routes.filter((r) => r.path !== "/sneaky" && r.path !== "/also"))).not.toThrow();
  });

  test("the gate is asked before the body is read, and the handler gets the checked body and the coerced paths", async () => {
    const seen: string[] = [];
    const writeRoute = writeRoutes({
      check: (request) => {
        seen.push(`check, body used: ${request.bodyUsed}`);
      },
      onInvalid: () => seen.push("invalid"),
    });
    // ? As in app.ts: a normalising app would copy the body and drop its unknown keys.
    const app = new Elysia({ normalize: false }).post(
      "/w",
      ...writeRoute(
        t.Object({ n: t.Number(), s: t.String() }),
        async (body, coerced) => {
          seen.push(`handler ${JSON.stringify(body)} ${JSON.stringify(coerced)}`);
          return { ok: true };
        },
        { response: {}, detail: {} },
      ),
    );
    const res = await post(app, "/w", '{"n": NaN, "s": "x"}');
    expect(res.status).toBe(200);
    expect(seen).toEqual(["check, body used: false", 'handler {"n":null,"s":"x"} ["n"]']);
  });

  test("invalid bodies are counted where they are refused: the parser's and the service's, not auth's", async () => {
    await using t = await startApp({ env: { NEOLIGHT_DASHBOARD_TOKEN: "w".repeat(24) } });
    const auth = { authorization: `Bearer ${"w".repeat(24)}` };
    expect((await post(t.app, "/meta/metrics", "{", auth)).status).toBe(400);
    expect((await post(t.app, "/atlas/update", "x".repeat(1024 * 1024 + 1), auth)).status).toBe(413);
    // Refused by the meta service after the schema let it through.
    expect((await post(t.app, "/meta/metrics", { cache_timestamp: "2026-01-01T00:00:00Z" }, auth)).status).toBe(422);
    // Refused before the body is read: unauthorised, not invalid.
    expect((await post(t.app, "/meta/metrics", "{")).status).toBe(401);
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"), auth)).status).toBe(200);
    const text = t.services.metrics.render();
    expect({ invalid: rejected(text, "invalid"), unauthorised: rejected(text, "unauthorised") }).toEqual({
      invalid: 3,
      unauthorised: 1,
    });
  });

  test("a service's own invalid-body refusal is counted once, and other errors not at all", async () => {
    let invalid = 0;
    const writeRoute = writeRoutes({ check: () => {}, onInvalid: () => invalid++ });
    let fail: Error = new UnprocessableError("no");
    const app = new Elysia()
      .onError(() => new Response("refused", { status: 418 }))
      .post(
        "/w",
        ...writeRoute(
          t.Object({}),
          async () => {
            throw fail;
          },
          { response: {}, detail: {} },
        ),
      );
    await app.handle(
      new Request("http://localhost/w", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      }),
    );
    fail = new Error("disk on fire");
    await app.handle(
      new Request("http://localhost/w", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      }),
    );
    expect(invalid).toBe(1);
  });

  test("timedRead: the reads that may wait are timed, the reads from memory are not", async () => {
    await using t = await startApp();
    for (const path of ["/status", "/risk/status", "/health", "/meta/metrics"]) await get(t.app, path);
    await t.app.handle(new Request("http://localhost/metrics"));
    const timed = t.services.metrics
      .render()
      .split("\n")
      .filter((l) => l.startsWith("neolight_http_request_duration_seconds_count"))
      .map((l) => l.match(/route="([^"]+)"/)?.[1])
      .sort();
    expect(timed).toEqual(["/metrics", "/risk/status", "/status"]);
  });
});
