// GET /meta/history through app.handle: what the recorder keeps of each update, the
// query's checks, retention, restart, and, above all, that a broken history file never
// touches the live endpoints.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { createMemoryLogger } from "../../src/log/logger";
import { HistoryAnswer } from "../../src/modules/history/model";
import { createHistory } from "../../src/modules/history/service";
import { openSqliteHistory } from "../../src/store/history-sqlite";
import { call, FIXTURES, fixture, get, logged, post, startApp, tempDir, waitFor } from "../helpers";

type Series = { kind: string; subject: string; field: string; t: number[]; v: (number | null)[]; labels?: string[] };
const history = async (app: Parameters<typeof get>[0], query = "range=1h") => {
  const res = await get(app, `/meta/history?${query}`);
  return { ...res, series: (res.body.series ?? []) as Series[] };
};
const find = (series: Series[], kind: string, subject: string, field: string) =>
  series.find((s) => s.kind === kind && s.subject === subject && s.field === field);

describe("GET /meta/history", () => {
  test("every applied update's figures are recorded (within a second, off the request path)", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "runtime"), { recursive: true });
    writeFileSync(
      join(dir.path, "runtime", "capital_governor_allocations.json"),
      JSON.stringify(fixture("capital_governor_allocations")),
    );
    await using t = await startApp({ home: dir.path });
    const accepted = await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await post(t.app, "/atlas/update", fixture("atlas_update_post"));
    expect(accepted.status).toBe(200);
    const at = Date.parse(accepted.body.timestamp as string);

    // No flush() here: the recorder's own timer must write it. Polled with from/to, which
    // is never cached: an answer of range=1h is shared for CACHE_MS, so polling would see
    // an early one.
    await waitFor(async () => {
      const h = await history(t.app, `from=${at - 60_000}&to=${Date.now() + 1000}&kinds=allocation`);
      return find(h.series, "allocation", "smart_trader", "atlas");
    }, "history to be recorded");
    const { status, body, series } = await history(t.app);
    expect(status).toBe(200);
    const check = TypeCompiler.Compile(HistoryAnswer);
    expect([...check.Errors(body)]).toEqual([]);
    expect(find(series, "agent", "smart_trader", "pnl_1d")).toEqual({
      kind: "agent",
      subject: "smart_trader",
      field: "pnl_1d",
      t: [at],
      v: [412.37],
    });
    expect(find(series, "agent", "mean_reversion_bot", "pnl_7d")?.v).toEqual([130.04]);
    expect(find(series, "strategy", "turtle_trading", "score")?.v).toEqual([0.812]);
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([0]);
    expect(find(series, "guardian", "", "drawdown")?.v).toEqual([1.84]);
    expect(find(series, "breaker", "trade_state", "state")).toMatchObject({ v: [0], labels: ["CLOSED"] });
    expect(find(series, "regime", "", "label")).toMatchObject({ v: [null], labels: ["BULL"] });
    expect(find(series, "regime", "", "confidence")?.v).toEqual([0.71]);
    expect(find(series, "mode", "", "label")?.labels).toEqual(["TEST_MODE"]);
    expect(find(series, "allocation", "mean_reversion_bot", "atlas")?.v).toEqual([0.35]);
    expect(find(series, "allocation", "smart_trader", "governor")?.v).toEqual([0.4]);
    expect(find(series, "allocation", "", "max")?.v).toEqual([0.4]);
  });

  test("allocations follow GET /governor/allocations: the override copy when the governor's file is absent", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "runtime"), { recursive: true });
    const override = fixture("allocations_override") as { allocations: Record<string, number> };
    writeFileSync(join(dir.path, "runtime", "allocations_override.json"), JSON.stringify(override));
    await using t = await startApp({ home: dir.path });
    await t.services.history.flush();
    const { series } = await history(t.app, "range=1h&kinds=allocation");
    expect(series.map((s) => [s.subject, s.field, s.v])).toEqual(
      Object.entries(override.allocations)
        .map(([agent, w]) => [agent, "governor", [w]])
        .sort(),
    );
  });

  test("a stress-runner post records nothing new for the guardian: only the keys it carries", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    await post(t.app, "/meta/metrics", fixture("stress_post"));
    await t.services.history.flush();
    const { series } = await history(t.app, "range=1h&kinds=guardian");
    expect(series.map((s) => s.v.length)).toEqual([1, 1]);
  });

  test("paused, then running again within one bucket: the bucket still shows the pause", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
    await t.services.history.flush();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    const { body, series } = await history(t.app, "range=1h&points=10&kinds=guardian,breaker");
    expect(body.bucket_ms).toBe(360_000);
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([1]);
    expect(find(series, "breaker", "trade_state", "state")).toMatchObject({ v: [1], labels: ["OPEN"] });
    // Other figures keep the bucket's last sample.
    expect(find(series, "guardian", "", "drawdown")?.v).toEqual([1.84]);
  });

  test("from/to in RFC 3339 or Unix ms; outside the range nothing", async () => {
    await using t = await startApp();
    const { body } = await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    const at = Date.parse(body.timestamp as string);
    const inside = await history(t.app, `from=${new Date(at - 1000).toISOString()}&to=${at + 1}&kinds=guardian`);
    expect(inside.series).toHaveLength(2);
    expect(inside.body).toMatchObject({ from: new Date(at - 1000).toISOString(), to: new Date(at + 1).toISOString() });
    const before = await history(t.app, `from=${at - 10_000}&to=${at}`);
    expect(before.series).toEqual([]);
  });

  test.each([
    ["points 0", "points=0", 400, /points must be an integer from 1 to 2000/],
    ["points 5000", "points=5000", 400, /points must be/],
    ["points abc", "points=abc", 422, /points/],
    ["an unknown range", "range=2h", 422, /range/],
    ["from after to", "from=2025-11-03T22:00:00Z&to=2025-11-03T21:00:00Z", 400, /from must be before to/],
    ["a from that is no time", "from=yesterday", 400, /from must be RFC 3339 or Unix ms/],
    ["a negative from (Date.parse read -1 as 2001-01-01)", "from=-1", 400, /from must be RFC 3339 or Unix ms/],
  ])("%s: %p", async (_name, query, status, message) => {
    await using t = await startApp();
    const res = await get(t.app, `/meta/history?${query}`);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(status);
    expect(res.body.error).toMatch(message);
  });

  test("survives a restart of the service", async () => {
    using dir = tempDir();
    {
      await using t = await startApp({ home: dir.path });
      await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
      // close() writes what is pending: no flush() here.
    }
    await using t = await startApp({ home: dir.path });
    const { series } = await history(t.app);
    expect(find(series, "agent", "smart_trader", "pnl_1d")?.v).toEqual([412.37]);
  });

  test("pruning removes what is older than the retention window", async () => {
    await using t = await startApp({ env: { NEOLIGHT_HISTORY_DAYS: "2" } });
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    expect(await t.services.history.prune(Date.now() + 1 * 86_400_000)).toBe(0);
    const removed = await t.services.history.prune(Date.now() + 3 * 86_400_000);
    expect(removed).toBeGreaterThan(30);
    expect((await history(t.app)).series).toEqual([]);
    expect((await history(t.app)).body.retention_days).toBe(2);
    expect(logged(t.log, "history pruned")).toEqual([expect.objectContaining({ points: removed, retention_days: 2 })]);
  });

  test("a history over NEOLIGHT_HISTORY_MAX_MB is pruned to under it, oldest first (the real file size)", async () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    const T0 = Date.now() - 86_400_000;
    // ~3 MB of last day's history: 20 series, a point a second for 8,000 s.
    const old = openSqliteHistory(path);
    for (let s = 0; s < 8000; s += 100) {
      old.record(
        Array.from({ length: 100 * 20 }, (_, i) => ({
          kind: "agent",
          subject: `a${i % 20}`,
          field: "pnl_1d",
          ts: T0 + (s + Math.floor(i / 20)) * 1000,
          value: i,
        })),
      );
    }
    old.close();
    const maxBytes = 1024 * 1024;
    expect(statSync(path).size).toBeGreaterThan(2 * maxBytes);
    const log = createMemoryLogger();
    const h = await createHistory({ path, days: 30, log, maxBytes, flushMs: 3_600_000 });
    const set = { guardian: { is_paused: true, drawdown: 4.2 } };
    h.onCommit({ doc: set, updatedAt: new Date().toISOString(), version: 1, lastSeq: 1 }, [
      { seq: 1, set, source: "hive" },
    ]);
    await h.flush();
    await waitFor(() => h.status().pruned_for_size > 0 && (h.status().bytes as number) < maxBytes, "the size prune");
    expect(logged(log, "history pruned for size")).toEqual([
      expect.objectContaining({ rows: h.status().pruned_for_size, max_bytes: maxBytes }),
    ]);
    // The newest is kept: the update just recorded, and the last of the old points.
    const read = async (q: Parameters<typeof h.query>[0]) =>
      (JSON.parse(new TextDecoder().decode((await h.query(q)).json)) as { series: Series[] }).series;
    expect(find(await read({ range: "1h", kinds: "guardian" }), "guardian", "", "is_paused")?.v).toEqual([1]);
    const agent = find(
      await read({ from: String(T0), to: String(T0 + 8000 * 1000), points: 2000 }),
      "agent",
      "a0",
      "pnl_1d",
    );
    expect(agent?.t.at(-1)).toBe(T0 + 7999 * 1000);
    expect(agent?.t[0]).toBeGreaterThan(T0 + 1000 * 1000);
    await h.close();
    // What the disk holds, the file and its WAL, is under the cap.
    const wal = existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0;
    expect(statSync(path).size + wal).toBeLessThan(maxBytes);
  });

  test("NEOLIGHT_HISTORY_DAYS=0: no file, 503 here, everything else as usual", async () => {
    await using t = await startApp({ env: { NEOLIGHT_HISTORY_DAYS: "0" } });
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    await t.services.history.flush();
    const res = await get(t.app, "/meta/history");
    expect(res).toMatchObject({
      status: 503,
      body: { error: "history unavailable: NEOLIGHT_HISTORY_DAYS is 0", code: 503 },
    });
    // ? After close, which waits for any writer's open: a thread started anyway would have made the file.
    await t.services.close();
    expect(existsSync(join(t.home, "state", "history.db"))).toBe(false);
  });
});

/** The live endpoints, each checked as a client relies on it. */
async function liveEndpointsWork(t: Awaited<ReturnType<typeof startApp>>) {
  const accepted = await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
  expect(accepted.status).toBe(200);
  await t.services.history.flush();
  const doc = await get(t.app, "/meta/metrics");
  expect(doc.status).toBe(200);
  expect((doc.body.guardian as { is_paused: boolean }).is_paused).toBe(true);
  expect((await get(t.app, "/health")).status).toBe(200);
  expect((await get(t.app, "/status")).status).toBe(200);
  expect((await call(t.app, "GET", "/", undefined, { accept: "application/json" })).status).toBe(200);
  const events = await t.app.handle(new Request("http://localhost/events"));
  expect(events.status).toBe(200);
  const reader = (events.body as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("event: snapshot")) text += new TextDecoder().decode((await reader.read()).value);
  expect(text).toContain('"is_paused":true');
  await reader.cancel();
}

describe("a broken history file never takes the live endpoints down", () => {
  test("a corrupt history.db is moved aside, logged as ERROR, and a fresh one started", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state"), { recursive: true });
    const garbage = "not a database; a disk error or a stray copy left this here\n".repeat(200);
    writeFileSync(join(dir.path, "state", "history.db"), garbage);
    await using t = await startApp({ home: dir.path });
    await liveEndpointsWork(t);
    const [line] = logged(t.log, "history file corrupt, moved aside");
    expect(line).toMatchObject({ level: "ERROR", path: join(dir.path, "state", "history.db") });
    const aside = readdirSync(join(dir.path, "state")).filter((f) => f.startsWith("history.db.corrupt-"));
    expect(aside).toHaveLength(1);
    expect(await Bun.file(join(dir.path, "state", aside[0] as string)).text()).toBe(garbage);
    // The fresh file records again.
    const { status, series } = await history(t.app, "range=1h&kinds=guardian");
    expect(status).toBe(200);
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([1]);
    expect(((await get(t.app, "/status")).body.history as { corrupt_moved_to: string }).corrupt_moved_to).toContain(
      "history.db.corrupt-",
    );
  });

  test("a history.db of the layout before issue 16 is moved aside (WARN) and a fresh one started", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state"), { recursive: true });
    const old = new Database(join(dir.path, "state", "history.db"));
    old.run("CREATE TABLE series (id INTEGER PRIMARY KEY, kind TEXT, subject TEXT, field TEXT, peak INTEGER)");
    old.close();
    await using t = await startApp({ home: dir.path });
    await liveEndpointsWork(t);
    expect(logged(t.log, "history file of an older layout, moved aside")).toEqual([
      expect.objectContaining({ level: "WARN", moved_to: expect.stringContaining("history.db.old-") }),
    ]);
    expect(readdirSync(join(dir.path, "state")).filter((f) => f.startsWith("history.db.old-"))).toHaveLength(1);
    const { series } = await history(t.app, "range=1h&kinds=guardian");
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([1]);
  });

  test("a history.db that cannot be opened at all (a directory in its place): no history, live endpoints fine", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state", "history.db"), { recursive: true });
    await using t = await startApp({ home: dir.path });
    await liveEndpointsWork(t);
    expect(logged(t.log, "history unavailable, running without it")).toEqual([
      expect.objectContaining({ level: "ERROR", path: join(dir.path, "state", "history.db") }),
    ]);
    const res = await get(t.app, "/meta/history");
    expect(res.status).toBe(503);
    expect(res.body.error).toStartWith("history unavailable: ");
    expect((await get(t.app, "/status")).body.history).toMatchObject({ enabled: false });
  });
});

describe("history runs on its own threads: no request waits for it", () => {
  const threads = join(import.meta.dir, "history-threads");

  test("a history thread that crashes: posts and reads go on, /meta/history answers 503, ERROR logged", async () => {
    await using t = await startApp({ overrides: { history: { workerEntry: join(threads, "crashing.ts") } } });
    expect((await get(t.app, "/status")).body.history).toMatchObject({ enabled: true });
    await liveEndpointsWork(t);
    const res = await get(t.app, "/meta/history?range=1h");
    expect(res).toEqual({
      status: 503,
      headers: expect.anything(),
      body: { error: "history could not be read; see the log", code: 503 },
    });
    const stopped = logged(t.log, "history thread stopped");
    expect(stopped.map((l) => [l.level, l.role])).toEqual(
      expect.arrayContaining([
        ["ERROR", "writer"],
        ["ERROR", "reader"],
      ]),
    );
    await liveEndpointsWork(t);
  });

  test("a query slower than its timeout: 503 in the error shape; the next query gets a fresh thread", async () => {
    await using t = await startApp({
      overrides: { history: { workerEntry: join(threads, "slow.ts"), queryTimeoutMs: 1000 } },
    });
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    // Both at once: the stuck query must hold up neither the live endpoints nor its answer.
    const [slow] = await Promise.all([get(t.app, "/meta/history?range=1h&points=7"), liveEndpointsWork(t)]);
    expect(slow.status).toBe(503);
    expect(slow.body).toEqual({
      error: "history query took longer than 1000 ms and was stopped; ask for a shorter range or fewer kinds",
      code: 503,
    });
    expect(slow.headers.get("retry-after")).toBe("5");
    const next = await history(t.app, "range=1h&points=8&kinds=guardian");
    expect({ status: next.status, body: next.status === 200 ? null : next.body }).toEqual({ status: 200, body: null });
    // Its bucket holds both posts (this one and liveEndpointsWork's paused one): the last.
    expect(find(next.series, "guardian", "", "drawdown")?.v).toEqual([8.73]);
  });

  test("start-up does not wait for the history thread to open its file; what is posted meanwhile is recorded", async () => {
    using dir = tempDir();
    // Before issue 14's change startApp waited here for the open, that is for the gate's 30 s.
    await using t = await startApp({
      home: dir.path,
      overrides: { history: { workerEntry: join(threads, "held-open.ts") } },
    });
    const file = join(dir.path, "state", "history.db");
    expect(existsSync(file)).toBe(false);
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"))).status).toBe(200);
    expect((await get(t.app, "/status")).body.history).toMatchObject({ enabled: true, points_written: 0 });
    writeFileSync(`${file}.open-gate`, "");
    await t.services.history.flush();
    const { status, series } = await history(t.app, "range=1h&kinds=guardian");
    expect(status).toBe(200);
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([1]);
  });

  test("the writer thread starts with the first commit, not at start-up: until then no file, and the commit is recorded", async () => {
    using dir = tempDir();
    // ? A delay no test outlives: only the commit can start the thread here.
    await using t = await startApp({ home: dir.path, overrides: { history: { writerStartDelayMs: 600_000 } } });
    const file = join(dir.path, "state", "history.db");
    expect((await get(t.app, "/meta/metrics")).status).toBe(200);
    expect(existsSync(file)).toBe(false);
    expect((await get(t.app, "/status")).body.history).toMatchObject({ enabled: true, points_written: 0 });
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"))).status).toBe(200);
    await t.services.history.flush();
    expect(existsSync(file)).toBe(true);
    const { status, series } = await history(t.app, "range=1h&kinds=guardian");
    expect(status).toBe(200);
    expect(find(series, "guardian", "", "is_paused")?.v).toEqual([1]);
  });

  test("with no commit and no query the writer thread starts after its delay and opens history.db without a failure", async () => {
    using dir = tempDir();
    await using t = await startApp({ home: dir.path, overrides: { history: { writerStartDelayMs: 50 } } });
    const file = join(dir.path, "state", "history.db");
    await waitFor(() => existsSync(file), "the writer to open history.db on its own");
    expect((await get(t.app, "/status")).body.history).toMatchObject({ enabled: true, failures: 0 });
  });

  test("stopped before the writer ever started: close ends cleanly and creates no file", async () => {
    using dir = tempDir();
    await using t = await startApp({ home: dir.path, overrides: { history: { writerStartDelayMs: 600_000 } } });
    await t.services.close();
    expect(existsSync(join(dir.path, "state", "history.db"))).toBe(false);
  });

  test("one answer per (range, points, kinds) is shared for a few seconds, and says which update it holds; from/to is always fresh", async () => {
    await using t = await startApp();
    expect((await history(t.app, "range=1h&kinds=mode")).body.recorded_through).toBeNull();
    const { body } = await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    const first = await history(t.app, "range=1h&kinds=guardian");
    expect(find(first.series, "guardian", "", "is_paused")?.v).toEqual([0]);
    expect(first.body.recorded_through).toBe(body.timestamp);
    const paused = await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
    await t.services.history.flush();
    // Within CACHE_MS: the same answer, to the byte; its recorded_through, older than the
    // update, is how the page knows to ask again.
    expect(await history(t.app, "range=1h&kinds=guardian")).toEqual(first);
    const at = Date.parse(body.timestamp as string);
    const fresh = await history(t.app, `from=${at - 1000}&to=${Date.now() + 1000}&kinds=guardian`);
    expect(find(fresh.series, "guardian", "", "is_paused")?.v).toEqual([0, 1]);
    expect(fresh.body.recorded_through).toBe(paused.body.timestamp);
  });

  test("a client that takes gzip gets the same answer gzipped", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    const plain = await t.app.handle(new Request("http://localhost/meta/history?range=1h"));
    const zipped = await t.app.handle(
      new Request("http://localhost/meta/history?range=1h", { headers: { "accept-encoding": "gzip, br" } }),
    );
    expect([plain.headers.get("content-encoding"), zipped.headers.get("content-encoding")]).toEqual([null, "gzip"]);
    expect(zipped.headers.get("vary")).toBe("accept-encoding");
    const text = new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await zipped.arrayBuffer())));
    expect(text).toBe(await plain.text());
    expect((JSON.parse(text) as { series: Series[] }).series.length).toBeGreaterThan(40);
  });

  test("subject and kinds select series in SQL: only the named agents", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    await t.services.history.flush();
    const { series } = await history(t.app, "range=1h&kinds=agent&subject=smart_trader,dropship_agent");
    expect([...new Set(series.map((s) => `${s.kind}/${s.subject}`))]).toEqual([
      "agent/dropship_agent",
      "agent/smart_trader",
    ]);
    expect(series).toHaveLength(16);
  });
});

describe("the sampling rule: the last state of each key in every SAMPLE_MS window", () => {
  const T0 = Date.parse("2025-11-03T22:00:00Z");
  /** Commits of guardian drawdowns 1, 2, 3, ... at T0 + each offset, then one flush. */
  async function recorded(offsets: number[]): Promise<{ t: number[]; v: number[] }> {
    using dir = tempDir();
    // ? The recorder straight from its module, fed commits stamped as if they arrived at
    // these times: the rule is about the commits' times, and no test waits for time.
    const history = await createHistory({
      path: join(dir.path, "history.db"),
      days: 3650,
      log: createMemoryLogger(),
      flushMs: 3_600_000,
    });
    let doc = {};
    offsets.forEach((offset, i) => {
      const set = { guardian: { is_paused: false, drawdown: i + 1 } };
      doc = { ...doc, ...set };
      const at = new Date(T0 + offset).toISOString();
      history.onCommit({ doc, updatedAt: at, version: i + 1, lastSeq: i + 1 }, [{ seq: i + 1, set, source: "hive" }]);
    });
    await history.flush();
    const bytes = await history.query({ from: String(T0), to: String(T0 + 60_000), points: 2000, kinds: "guardian" });
    await history.close();
    const drawdown = (JSON.parse(new TextDecoder().decode(bytes.json)) as { series: Series[] }).series.find(
      (s) => s.field === "drawdown",
    );
    return { t: drawdown?.t ?? [], v: (drawdown?.v ?? []) as number[] };
  }

  test("a hive posting once a second: every snapshot is kept, within one flush", async () => {
    expect(await recorded([0, 1000, 2000, 3000, 4000])).toEqual({
      t: [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000],
      v: [1, 2, 3, 4, 5],
    });
  });

  test("faster than twice a second: the last of each window", async () => {
    // Windows start at 0 (0-400 in it), 500 (500, 700) and 1200 (1200).
    expect(await recorded([0, 100, 200, 400, 500, 700, 1200])).toEqual({
      t: [T0 + 400, T0 + 700, T0 + 1200],
      v: [4, 6, 7],
    });
  });
});

test("fixtures used here exist", () => {
  expect(existsSync(join(FIXTURES, "capital_governor_allocations.json"))).toBe(true);
});
