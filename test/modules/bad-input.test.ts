// Bad input on the write routes: a clear 4xx in the contract's error shape, the document
// untouched, and the service still serving afterwards.
import { describe, expect, test } from "bun:test";
import { MAX_BODY_BYTES, MAX_DEPTH } from "../../src/http/json-body";
import { call, fixture, get, post, startApp } from "../helpers";

const hive = fixture("meta_metrics_post");
const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });

interface Case {
  name: string;
  path?: string;
  body: string | Uint8Array<ArrayBuffer>;
  contentType?: string | null;
  status: number;
  error: RegExp;
}

const cases: Case[] = [
  { name: "not JSON", body: "guardian=paused", status: 400, error: /not valid JSON/ },
  { name: "truncated JSON", body: '{"guardian": {"is_paused": tr', status: 400, error: /not valid JSON/ },
  { name: "empty body", body: "", status: 400, error: /not valid JSON/ },
  { name: "a JSON array", body: "[1, 2]", status: 400, error: /must be a JSON object, got an array/ },
  { name: "JSON null", body: "null", status: 400, error: /must be a JSON object, got null/ },
  { name: "a JSON string", body: '"hi"', status: 400, error: /must be a JSON object, got a string/ },
  { name: "per_agent: null", body: '{"per_agent": null}', status: 422, error: /per_agent: Expected object/ },
  { name: "per_agent: []", body: '{"per_agent": []}', status: 422, error: /per_agent/ },
  {
    name: 'guardian.is_paused: "yes"',
    body: '{"guardian": {"is_paused": "yes", "drawdown": 1, "reason": "x"}}',
    status: 422,
    error: /guardian\/is_paused: Expected boolean/,
  },
  {
    name: "guardian without is_paused",
    body: '{"guardian": {"drawdown": 1, "reason": "x"}}',
    status: 422,
    error: /guardian\/is_paused/,
  },
  {
    name: "a figure that is a string",
    body: '{"per_agent": {"smart_trader": {"pnl_1d": "412"}}}',
    status: 422,
    error: /per_agent\/smart_trader\/pnl_1d: Expected number/,
  },
  {
    name: "a number out of range (1e400)",
    body: '{"guardian": {"is_paused": false, "drawdown": 1e400, "reason": "x"}}',
    status: 422,
    error: /guardian\/drawdown/,
  },
  {
    name: "an unknown breaker state",
    body: '{"breakers": {"quote_state": "BROKEN", "trade_state": "CLOSED"}}',
    status: 422,
    error: /breakers\/quote_state/,
  },
  { name: "mode: 42", body: '{"mode": 42}', status: 422, error: /mode: Expected string/ },
  { name: "no content type", body: JSON.stringify(hive), contentType: null, status: 415, error: /application\/json/ },
  {
    name: "form content type",
    body: "a=1",
    contentType: "application/x-www-form-urlencoded",
    status: 415,
    error: /application\/json/,
  },
  {
    name: "invalid UTF-8",
    body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    status: 400,
    error: /UTF-8/,
  },
  {
    name: `nesting deeper than ${MAX_DEPTH}`,
    body: JSON.stringify({ x: nested(MAX_DEPTH + 2) }),
    status: 400,
    error: /deeper/,
  },
  {
    name: "a body over the limit",
    body: JSON.stringify({ x: "y".repeat(MAX_BODY_BYTES) }),
    status: 413,
    error: /larger than/,
  },
  { name: "atlas: a JSON array", path: "/atlas/update", body: "[]", status: 400, error: /JSON object/ },
  { name: "atlas: brain is a string", path: "/atlas/update", body: '{"brain": "big"}', status: 422, error: /brain/ },
];

describe("bad input on write routes", () => {
  test.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", hive);
    const before = (await get(t.app, "/meta/metrics")).body;

    const headers: Record<string, string> = {};
    if (c.contentType !== null) headers["content-type"] = c.contentType ?? "application/json";
    const res = await t.app.handle(
      new Request(`http://localhost${c.path ?? "/meta/metrics"}`, { method: "POST", body: c.body, headers }),
    );
    const body = (await res.json()) as { error: string; code: number };
    expect(res.status).toBe(c.status);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(body).toEqual({ error: expect.stringMatching(c.error), code: c.status });

    // The document is untouched and the service keeps serving.
    expect((await get(t.app, "/meta/metrics")).body).toEqual(before);
    expect((await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" })).status).toBe(200);
  });
});

describe("unknown routes and methods", () => {
  test.each([
    ["GET /nope", "GET", "/nope"],
    ["DELETE /meta/metrics", "DELETE", "/meta/metrics"],
    ["POST /health", "POST", "/health"],
  ])("%s is a 404 in the error shape", async (_name, method, path) => {
    await using t = await startApp();
    const res = await call(t.app, method, path);
    expect(res).toMatchObject({ status: 404, body: { error: expect.stringContaining(path), code: 404 } });
  });
});
