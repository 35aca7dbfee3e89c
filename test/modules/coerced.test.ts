// A pause must not be refused because of an unrelated field (issue 15, item 3): the safety
// keys (guardian, breakers, mode) and the body's shape are strict; any other value that
// breaks its schema (null, a wrong type, NaN/Infinity tokens as Python's json writes them,
// a number beyond a double) is stored as null, listed in the 200 answer's `coerced`, and
// warned about once per path. Through app.handle with the real services.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryLogger } from "../../src/log/logger";
import { createMetaService } from "../../src/modules/meta/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { openStore } from "../../src/store/store";
import { createChannel } from "../../src/telemetry/channel";
import type { Envelope } from "../../src/telemetry/processor";
import { fixture, fixtureText, get, type Json, logged, servedGuardian, startApp, tempDir } from "../helpers";

const PAUSED = fixture("meta_metrics_paused_post");
const PAUSED_TEXT = fixtureText("meta_metrics_paused_post");

/** The paused hive snapshot as text with `from` (a literal in the fixture) replaced by `to`. */
function pausedWith(from: string, to: string): string {
  if (!PAUSED_TEXT.includes(from)) throw new Error(`fixture has no ${from}: fix the test`);
  return PAUSED_TEXT.replace(from, to);
}

async function postText(t: { app: { handle(r: Request): Promise<Response> } }, path: string, body: string) {
  const res = await t.app.handle(
    new Request(`http://localhost${path}`, { method: "POST", body, headers: { "content-type": "application/json" } }),
  );
  return { status: res.status, body: (await res.json()) as Json };
}

function valueAt(doc: unknown, path: string): unknown {
  return path.split("/").reduce<unknown>((v, k) => (v as Json | undefined)?.[k], doc);
}

const COERCED: [string, string, string, string[]][] = [
  ["sharpe_30d: null", '"sharpe_30d": 0.402', '"sharpe_30d": null', ["per_agent/smart_trader/sharpe_30d"]],
  ["sharpe_30d: NaN", '"sharpe_30d": 0.402', '"sharpe_30d": NaN', ["per_agent/smart_trader/sharpe_30d"]],
  ["sharpe_30d: Infinity", '"sharpe_30d": 0.402', '"sharpe_30d": Infinity', ["per_agent/smart_trader/sharpe_30d"]],
  ["sharpe_30d: -Infinity", '"sharpe_30d": 0.402', '"sharpe_30d": -Infinity', ["per_agent/smart_trader/sharpe_30d"]],
  ["sharpe_30d: 1e400", '"sharpe_30d": 0.402', '"sharpe_30d": 1e400', ["per_agent/smart_trader/sharpe_30d"]],
  ['sharpe_30d: "0.4"', '"sharpe_30d": 0.402', '"sharpe_30d": "0.4"', ["per_agent/smart_trader/sharpe_30d"]],
  [
    "total_decisions: -3",
    '"total_decisions": 431',
    '"total_decisions": -3',
    ["per_agent/smart_trader/total_decisions"],
  ],
  [
    "two figures, NaN and null",
    '"pnl_1d": -1890.2,\n      "pnl_7d": -325.61',
    '"pnl_1d": NaN,\n      "pnl_7d": null',
    ["per_agent/smart_trader/pnl_1d", "per_agent/smart_trader/pnl_7d"],
  ],
  ["summary.total_agents: NaN", '"total_agents": 1', '"total_agents": NaN', ["summary/total_agents"]],
  ["per_strategy: []", '"per_strategy": {}', '"per_strategy": []', ["per_strategy"]],
  ["market_regime: 5", '"market_regime": {}', '"market_regime": 5', ["market_regime"]],
  [
    "timestamp: {toString}",
    '"timestamp": "2025-11-03T22:00:12.100374+00:00"',
    '"timestamp": {"toString": 1}',
    ["timestamp"],
  ],
  ["NaN under an unknown key", '"per_strategy": {}', '"per_strategy": {}, "future": NaN', ["future"]],
  ["-1e400 in an unknown array", '"per_strategy": {}', '"per_strategy": {}, "pnls": [1, -1e400]', ["pnls/1"]],
];

describe("a paused snapshot with a bad figure: 200, the pause kept, the figure null and listed", () => {
  test.each(COERCED)("%s", async (_name, from, to, paths) => {
    await using t = await startApp();
    const res = await postText(t, "/meta/metrics", pausedWith(from, to));
    expect(res).toEqual({
      status: 200,
      body: { status: "ok", timestamp: expect.any(String), seq: 1, coerced: paths },
    });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.guardian).toEqual(servedGuardian(PAUSED.guardian));
    const onDisk = JSON.parse(readFileSync(join(t.home, "state", "meta_metrics.json"), "utf8")) as Json;
    for (const path of paths) {
      expect({ path, served: valueAt(doc, path), stored: valueAt(onDisk, path) }).toEqual({
        path,
        served: null,
        stored: null,
      });
    }
    expect(logged(t.log, "posted values stored as null")).toEqual([
      expect.objectContaining({ level: "WARN", seq: 1, paths, more: 0 }),
    ]);
  });

  test("the atlas bridge has no safety key: a NaN allocation is stored as null", async () => {
    await using t = await startApp();
    const res = await postText(t, "/atlas/update", '{"allocations": {"smart_trader": NaN, "hive": 0.4}}');
    expect(res.body).toEqual({
      status: "ok",
      timestamp: expect.any(String),
      seq: 1,
      coerced: ["allocations/smart_trader"],
    });
    expect((await get(t.app, "/meta/metrics")).body.atlas).toEqual({ allocations: { smart_trader: null, hive: 0.4 } });
    expect(logged(t.log, "posted values stored as null")).toEqual([
      expect.objectContaining({ paths: ["atlas/allocations/smart_trader"] }),
    ]);
  });

  test("NaN and Infinity inside strings and keys are text, not tokens: nothing is coerced", async () => {
    await using t = await startApp();
    const body = '{"stress_last": {"NaN": "Infinity", "note": "-Infinity \\" NaN"}, "NaN": [0]}';
    const res = await postText(t, "/meta/metrics", body);
    expect(res.body).toEqual({ status: "ok", timestamp: expect.any(String), seq: 1 });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect({ stress_last: doc.stress_last, NaN: doc.NaN }).toEqual(JSON.parse(body));
  });

  test("a valid snapshot's answer has no coerced list", async () => {
    await using t = await startApp();
    const res = await postText(t, "/meta/metrics", PAUSED_TEXT);
    expect(res.body).toEqual({ status: "ok", timestamp: expect.any(String), seq: 1 });
  });
});

const STRICT: [string, string, string, RegExp][] = [
  [
    "guardian.drawdown: NaN",
    '"drawdown": 8.73',
    '"drawdown": NaN',
    /^invalid body: guardian\/drawdown: Expected a finite number/,
  ],
  [
    "guardian.drawdown: 1e400",
    '"drawdown": 8.73',
    '"drawdown": 1e400',
    /^invalid body: guardian\/drawdown: Expected a finite/,
  ],
  [
    "guardian.is_paused: null",
    '"is_paused": true',
    '"is_paused": null',
    /^invalid body: guardian\/is_paused: Expected boolean/,
  ],
  ["breakers.trade_state: NaN", '"trade_state": "OPEN"', '"trade_state": NaN', /^invalid body: breakers\/trade_state/],
  ["mode: Infinity", '"mode": "PAPER_TRADING_MODE"', '"mode": Infinity', /^invalid body: mode: Expected a finite/],
  // Found by the fuzz test: Elysia's own 422 turned this into a 500 by stringifying the value.
  [
    "mode: {toString}",
    '"mode": "PAPER_TRADING_MODE"',
    '"mode": {"toString": 1}',
    /^invalid body: mode: Expected string$/,
  ],
];

describe("the safety keys stay strict: 422, nothing changed", () => {
  test.each(STRICT)("%s", async (_name, from, to, error) => {
    await using t = await startApp();
    const before = (await get(t.app, "/meta/metrics")).body;
    const res = await postText(t, "/meta/metrics", pausedWith(from, to));
    expect(res).toEqual({ status: 422, body: { error: expect.stringMatching(error), code: 422 } });
    expect((await get(t.app, "/meta/metrics")).body).toEqual({ ...before, timestamp: expect.any(String) });
  });

  test.each([
    ["NaN", "NaN", /not valid JSON/],
    ["[NaN]", "[NaN]", /must be a JSON object, got an array/],
    ["NaN outside any value", '{"a": 1} NaN', /not valid JSON/],
    ["a bare NaN key", "{NaN: 1}", /not valid JSON/],
    ["nan in lower case", '{"a": nan}', /not valid JSON/],
    // Broken text after a NaN: the token scan must give up, not loop (found by the fuzz test).
    ["NaN, then a string whose closing quote is escaped", '{"a": NaN, "b": "x\\"', /not valid JSON/],
    ["NaN, then an unterminated string", '{"a": [NaN, "', /not valid JSON/],
    ["NaN, then a key whose closing quote is escaped", '{"a": NaN, "b\\": 1', /not valid JSON/],
  ])("the body's shape: %s is a 400", async (_name, body, error) => {
    await using t = await startApp();
    expect(await postText(t, "/meta/metrics", body)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(error), code: 400 },
    });
  });
});

describe("the WARN for coerced values", () => {
  test("once per path, and at most one line a second", async () => {
    using dir = tempDir();
    const log = createMemoryLogger();
    const store = await openStore({ persistence: createJsonFilePersistence(join(dir.path, "m.json")) });
    let clock = 0;
    const meta = createMetaService({ channel: createChannel<Envelope>(100), store, log, now: () => new Date(clock) });
    const lines = () => logged(log, "posted values stored as null").map((l) => l.paths);
    // Nothing drains this channel: submit only queues, which is where the WARN is decided.
    void meta.submit({ a: null }, "hive", ["a"]);
    void meta.submit({ a: null }, "hive", ["a"]);
    clock += 5_000;
    void meta.submit({ a: null }, "hive", ["a"]);
    expect(lines()).toEqual([["a"]]);
    void meta.submit({ a: null, b: null }, "hive", ["a", "b"]);
    expect(lines()).toEqual([["a"], ["b"]]);
    // Within the second: not logged, and so not remembered: the next line has it.
    void meta.submit({ c: null }, "hive", ["c"]);
    expect(lines()).toHaveLength(2);
    clock += 1_000;
    void meta.submit({ c: null }, "hive", ["c"]);
    expect(lines()).toEqual([["a"], ["b"], ["c"]]);
    // A post with thousands of new paths lists the first 20 and counts the rest.
    clock += 1_000;
    const many = Array.from({ length: 1000 }, (_, i) => `per_agent/a${i}/pnl_1d`);
    void meta.submit({ per_agent: {} }, "hive", many);
    expect(logged(log, "posted values stored as null").at(-1)).toMatchObject({ paths: many.slice(0, 20), more: 980 });
    await store.close();
  });
});
