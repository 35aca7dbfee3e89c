// History in PostgreSQL (issue 12) on the real server at 127.0.0.1:5432, in a database of
// this file's own (created, migrated and dropped here): the HistoryStore semantics rule by
// rule, the same bytes as SQLite for the same points, two replicas recording into one
// database at once, and the service's backend selection.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { createMemoryLogger } from "../../src/log/logger";
import { documentPoints } from "../../src/modules/history/points";
import { createHistory } from "../../src/modules/history/service";
import { type AnswerFacts, answerJson, type HistoryPoint, type RangeQuery } from "../../src/store/history";
import { openSqliteHistory } from "../../src/store/history-sqlite";
import { openPostgresHistory } from "../../src/store/postgres/history";
import { MIGRATIONS } from "../../src/store/postgres/migrations";
import type { JsonObject } from "../../src/store/store";
import { fixture, type Json, tempDir, waitFor } from "../helpers";
import { createTestDatabase } from "../postgres";
import { all, MIN, p, T0 } from "./history-points";

// ? The server is shared with other test runs on 2 cores: a VACUUM or a 30-day fill may take seconds.
setDefaultTimeout(30_000);

// ? With no server, createTestDatabase says so on stderr (once) and the describe skips.
const db = await createTestDatabase();
const up = db !== null;
/** This file's database; every test works in a schema of its own in it. */
const DB_URL = db?.url ?? "";
/** What the service adds to an answer; recorded_through set, so that both writers of it are compared. */
const FACTS: AnswerFacts = { retentionDays: 30, recordedThrough: T0 };
/** A fresh schema per test: its own search_path, so that tests do not see each other's rows. */
let schemas = 0;

/** A pool on this file's database whose tables live in a schema of their own, migrated. */
async function freshPool(max = 4): Promise<{ sql: SQL; url: string }> {
  const schema = `t${++schemas}`;
  const setup = new SQL(DB_URL, { max: 1 });
  // ? MIGRATIONS in one transaction, inside this test's schema (migrate.ts takes a whole database).
  await setup.begin(async (tx) => {
    await tx.unsafe(`CREATE SCHEMA ${schema}`);
    await tx.unsafe(`SET LOCAL search_path = ${schema}`);
    for (const m of MIGRATIONS) await tx.unsafe(m.sql);
  });
  await setup.close();
  const url = `${DB_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return { sql: new SQL(url, { max }), url };
}

afterAll(async () => {
  await db?.drop();
});

/** A PostgreSQL history on a fresh schema, and a SQLite one in a temp dir: fed alike, compared. */
async function both(maxSeries?: number) {
  const { sql } = await freshPool();
  const pg = await openPostgresHistory(sql, { maxSeries });
  const dir = tempDir();
  const lite = openSqliteHistory(join(dir.path, "history.db"), maxSeries);
  return {
    pg,
    lite,
    sql,
    async record(points: HistoryPoint[]) {
      const a = await pg.record(points);
      expect(a).toEqual(lite.record(points));
      return a;
    },
    /** Both answers as the bytes GET /meta/history sends; they must be equal. */
    async answer(q: RangeQuery) {
      const fromPg = new TextDecoder().decode(answerJson(q, await pg.query(q), FACTS));
      const fromLite = new TextDecoder().decode(answerJson(q, lite.query(q), FACTS));
      expect(fromPg).toBe(fromLite);
      // The answer the service sends, written by the database.
      expect(new TextDecoder().decode(await pg.answer(q, FACTS))).toBe(fromLite);
      return JSON.parse(fromPg) as {
        series: { field: string; t: number[]; v: (number | null)[] }[];
        truncated: boolean;
      };
    },
    async [Symbol.asyncDispose]() {
      pg.close();
      lite.close();
      await sql.close();
      dir[Symbol.dispose]();
    },
  };
}

/**
 * Hive snapshots as the recorder turns them into points (documentPoints on the fixture),
 * `agents` agents, every `stepMs` from `start`, `count` of them: values that change with
 * the time, pauses now and then, breakers cycling, the regime changing label.
 */
function snapshots(start: number, count: number, stepMs: number, agents: number): HistoryPoint[][] {
  const base = fixture("meta_metrics_post") as Json & { per_agent: Record<string, Json> };
  const template = Object.values(base.per_agent)[0] as Record<string, number>;
  const states = ["CLOSED", "HALF_OPEN", "OPEN"];
  const regimes = ["BULL", "BEAR", "SIDEWAYS", "HIGH_VOL"];
  const out: HistoryPoint[][] = [];
  for (let i = 0; i < count; i++) {
    const perAgent: Record<string, Json> = {};
    for (let a = 0; a < agents; a++) {
      const fig: Json = {};
      for (const [k, v] of Object.entries(template))
        fig[k] = Math.round((v * Math.sin(i * 0.37 + a) + a) * 1000) / 1000;
      // Values whose text differs between JS and PostgreSQL's float output (1e-7 vs 1e-07).
      fig.revenue_24h = i % 11 === 0 ? 1.5e-7 * (a + 1) : (i * 1e15) / 7;
      perAgent[`agent_${String(a).padStart(3, "0")}`] = fig;
    }
    const doc: Json = {
      ...base,
      per_agent: perAgent,
      guardian: { is_paused: i % 29 === 3, drawdown: (i % 13) / 3, reason: "r" },
      breakers: { quote_state: states[i % 3], trade_state: states[(i >> 2) % 3] },
      market_regime: { ...(base.market_regime as Json), regime: regimes[(i >> 5) % 4], confidence: (i % 100) / 100 },
    };
    out.push(documentPoints(doc, Object.keys(doc), start + i * stepMs));
  }
  return out;
}

describe.skipIf(!up)("history in PostgreSQL", () => {
  test("record then query: columnar series, safety kinds first, only the range asked", async () => {
    await using h = await both();
    await h.record([p("pnl_1d", 0, 10), p("pnl_1d", 1, 20), p("pnl_7d", 0, 100), p("pnl_1d", 2, 30)]);
    await h.record([
      { kind: "regime", subject: "", field: "label", ts: T0, value: null, label: "BULL" },
      { kind: "guardian", subject: "", field: "is_paused", ts: T0, value: 1, peak: true },
    ]);
    expect(await h.pg.query({ ...all, from: T0, to: T0 + 2 * MIN })).toEqual({
      bucketMs: 120,
      truncated: false,
      series: [
        { kind: "guardian", subject: "", field: "is_paused", t: [T0], v: [1] },
        { kind: "regime", subject: "", field: "label", t: [T0], v: [null], labels: ["BULL"] },
        { kind: "agent", subject: "smart_trader", field: "pnl_1d", t: [T0, T0 + MIN], v: [10, 20] },
        { kind: "agent", subject: "smart_trader", field: "pnl_7d", t: [T0], v: [100] },
      ],
    });
    await h.answer({ ...all, kinds: ["regime"] });
  });

  test("downsampling: the last of each bucket; flags keep their peak", async () => {
    await using h = await both();
    const points: HistoryPoint[] = [];
    for (let m = 0; m < 600; m++) {
      points.push(p("pnl_1d", m, m));
      points.push({
        kind: "guardian",
        subject: "",
        field: "is_paused",
        ts: T0 + m * MIN,
        value: m === 250 ? 1 : 0,
        peak: true,
      });
    }
    await h.record(points);
    const { series } = await h.answer({ from: T0, to: T0 + 600 * MIN, points: 10, maxSeries: 100 });
    expect(series.find((s) => s.field === "pnl_1d")?.v).toEqual([59, 119, 179, 239, 299, 359, 419, 479, 539, 599]);
    expect(series.find((s) => s.field === "is_paused")?.v).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  });

  test("same ms replaces, within a batch and across batches; roll-ups follow SQLite's upserts, nulls in peak series too", async () => {
    await using h = await both();
    const g = (ms: number, value: number | null): HistoryPoint => ({
      kind: "guardian",
      subject: "",
      field: "is_paused",
      ts: T0 + ms,
      value,
      peak: true,
    });
    await h.record([p("pnl_1d", 0, 1), p("pnl_1d", 0, 2)]);
    await h.record([p("pnl_1d", 0, 3), { ...p("pnl_1d", 0, 4), ts: T0 + 10 }, p("pnl_1d", 0.5, 5)]);
    // A peak series: a null first in a minute sticks; over a stored value, the batch's first larger wins.
    await h.record([g(0, null), g(1000, 1), g(MIN, 0.5), g(MIN + 1000, 0.5), g(2 * MIN, 0)]);
    await h.record([g(MIN + 2000, null), g(MIN + 3000, 1), g(MIN + 4000, 1), g(2 * MIN + 1000, 1)]);
    for (const points of [1000, 100, 10, 3, 1]) await h.answer({ ...all, from: T0, to: T0 + 3 * MIN, points });
    await h.answer({ ...all, from: T0, to: T0 + 3 * 60 * MIN, points: 3 });
    expect((await h.answer({ ...all, from: T0, to: T0 + MIN, points: 60_000 })).series[1]?.v).toEqual([3, 4, 5]);
  });

  test("prune deletes only points older than the cut, in bounded steps", async () => {
    await using h = await both();
    await h.record(Array.from({ length: 100 }, (_, m) => p("pnl_1d", m, m)));
    for (const expected of [30, 20, 0]) {
      expect(await h.pg.prune(T0 + 50 * MIN, 30)).toBe(expected);
      expect(h.lite.prune(T0 + 50 * MIN, 30)).toBe(expected);
    }
    const { series } = await h.answer(all);
    expect(series[0]?.t.length).toBe(50);
    for (const points of [1, 3, 10]) await h.answer({ ...all, points });
  });

  test("pruneOldest: raw points first, then minute, then hour roll-ups, oldest first; freed space estimated", async () => {
    await using h = await both();
    for (let m = 0; m < 2000; m += 100) {
      await h.record(Array.from({ length: 100 * 20 }, (_, i) => p(`f${i % 20}`, m + Math.floor(i / 20), i)));
    }
    const sizeBefore = (await h.pg.size()).bytes;
    const first = await h.pg.pruneOldest(20_000);
    expect(first.rows).toBe(h.lite.pruneOldest(20_000));
    expect(first.rows).toBe(20_000);
    // A quarter of all rows (40,000 points + 40,000 minute + 680 hour roll-ups): a share of the size.
    expect(first.freedBytes).toBeGreaterThan(sizeBefore * 0.1);
    expect(first.freedBytes).toBeLessThan(sizeBefore * 0.5);
    const raw = { ...all, to: T0 + 2000 * MIN, points: 2000 * 60 };
    expect((await h.answer(raw)).series[0]?.t[0]).toBe(T0 + 1000 * MIN);
    for (const limit of [20_000, 30_000, 100_000, 100_000, 100_000]) {
      expect((await h.pg.pruneOldest(limit)).rows).toBe(h.lite.pruneOldest(limit));
      await h.answer({ ...all, to: T0 + 2000 * MIN, points: 2000 });
      await h.answer({ ...all, to: T0 + 2000 * MIN, points: 20 });
    }
    expect((await h.pg.pruneOldest(100_000)).rows).toBe(0);
  }, 30_000);

  test("series budgets: the safety kinds have their own; counted over the database after a reopen", async () => {
    await using h = await both(2);
    await h.record([p("a", 0, 1), p("b", 0, 1), p("c", 0, 1)]);
    const safety: HistoryPoint[] = [
      { kind: "guardian", subject: "", field: "is_paused", ts: T0, value: 1, peak: true },
      { kind: "breaker", subject: "trade_state", field: "state", ts: T0, value: 1, peak: true },
      { kind: "regime", subject: "", field: "label", ts: T0, value: null, label: "BEAR" },
    ];
    expect(await h.record(safety)).toEqual({ written: 2, skipped: 1 });
    expect(h.pg.seriesCount()).toBe(4);
    const again = await openPostgresHistory(h.sql, { maxSeries: 2 });
    expect(await again.record([p("d", 1, 1), { ...(safety[2] as HistoryPoint), ts: T0 + MIN }])).toEqual({
      written: 0,
      skipped: 2,
    });
    await h.answer(all);
  });

  test("the cut: safety kinds before any agent, byte order of names, truncated when cut", async () => {
    await using h = await both();
    // Names JSON must escape (quote, backslash, controls, DEL, non-ASCII) and byte order cares about.
    const names = ["a10", "a9", "A1", "b", "é", "z", "a_1", "a-1", 'q"u\\o\n\u0001\u007f☃\t'];
    await h.record([
      ...names.map((n, i) => p("pnl_1d", 0, i, { subject: n })),
      { kind: "allocation", subject: "a0", field: "governor", ts: T0, value: 0.2 },
      { kind: "mode", subject: "", field: "label", ts: T0, value: null, label: 'LIVE "\\\b\f\u001f' },
      { kind: "strategy", subject: "s", field: "score", ts: T0, value: 1 },
      { kind: "breaker", subject: "quote_state", field: "state", ts: T0, value: 0, peak: true },
      { kind: "guardian", subject: "", field: "drawdown", ts: T0, value: 3 },
    ]);
    for (const maxSeries of [1, 5, 7, 100]) {
      const answer = await h.answer({ ...all, maxSeries });
      expect(answer.truncated).toBe(maxSeries < 14);
    }
    // A series without points in the range takes its place in the cut, as in SQLite.
    await h.record([
      { kind: "breaker", subject: "trade_state", field: "state", ts: T0 + 500 * MIN, value: 1, peak: true },
    ]);
    await h.answer({ ...all, to: T0 + 10 * MIN, maxSeries: 3 });
    await h.answer({ ...all, kinds: ["agent", "mode"], subjects: ["b", "", "z"] });
    await h.answer({ ...all, kinds: [] });
  });

  test("the same bytes as SQLite for the recorder's points: 1h, 24h, 7d and 30d, every kind", async () => {
    await using h = await both();
    // 30 days of hive snapshots every 5 minutes at 5 agents, plus a second of 1 Hz posts.
    const end = T0 + 30 * 86_400_000;
    const days = snapshots(T0, 8640, 300_000, 5);
    for (let i = 0; i < days.length; i += 288) await h.record(days.slice(i, i + 288).flat());
    await h.record(snapshots(end - 60_000, 40, 1000, 5).flat());
    const ranges = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000, "30d": 2_592_000_000 };
    for (const [name, ms] of Object.entries(ranges)) {
      for (const points of [300, 37, 2000]) {
        const to = end + 1000;
        const answer = await h.answer({ from: to - ms, to, points, maxSeries: 1000 });
        expect(answer.series.length, `${name} at ${points} points`).toBeGreaterThan(40);
      }
    }
    await h.answer({
      from: end - 3_600_000 + 7,
      to: end + 1,
      points: 300,
      maxSeries: 20,
      kinds: ["guardian", "agent"],
    });
    await h.answer({ from: end - 86_400_000 - 12_345, to: end, points: 300, maxSeries: 1000, subjects: ["agent_001"] });
  }, 120_000);

  test("two replicas recording overlapping points into one database at once: no failure, no duplicate", async () => {
    const { sql: a, url } = await freshPool();
    const b = new SQL(url, { max: 4 });
    const dir = tempDir();
    try {
      const [ra, rb] = await Promise.all([openPostgresHistory(a), openPostgresHistory(b)]);
      const lite = openSqliteHistory(join(dir.path, "history.db"));
      // Both record every snapshot (the worst overlap: the same points), new series included, at once.
      const snaps = snapshots(T0, 50, 1000, 20);
      const results = await Promise.all([...snaps.map((s) => ra.record(s)), ...snaps.map((s) => rb.record(s))]);
      for (const s of snaps) lite.record(s);
      expect(results.every((r) => r.skipped === 0)).toBe(true);
      const rows = (await a`SELECT count(*)::int AS n FROM neolight_history_series`) as { n: number }[];
      expect(rows).toEqual([{ n: lite.seriesCount() }]);
      const q = { from: T0, to: T0 + 60_000, points: 300, maxSeries: 1000 };
      const expected = new TextDecoder().decode(answerJson(q, lite.query(q), FACTS));
      for (const r of [ra, rb]) expect(new TextDecoder().decode(answerJson(q, await r.query(q), FACTS))).toBe(expected);
      lite.close();
    } finally {
      await b.close();
      await a.close();
      dir[Symbol.dispose]();
    }
  }, 60_000);

  test("a query over its timeout is stopped by the database", async () => {
    const { sql } = await freshPool();
    try {
      const h = await openPostgresHistory(sql);
      await h.record(snapshots(T0, 600, 1000, 30).flat());
      const error = await h.query({ from: T0, to: T0 + 600_000, points: 2000, maxSeries: 1000 }, 1).catch((e) => e);
      expect((error as { errno?: string }).errno).toBe("57014");
    } finally {
      await sql.close();
    }
  }, 30_000);

  test("createHistory with `database`: no history.db, no thread; records, answers and prunes through PostgreSQL", async () => {
    const { sql } = await freshPool();
    using dir = tempDir();
    const log = createMemoryLogger();
    const path = join(dir.path, "history.db");
    const history = await createHistory({
      path,
      days: 30,
      log,
      database: { sql, target: "postgres://root:***@127.0.0.1:5432/test" },
      minFreeBytes: Number.MAX_SAFE_INTEGER,
    });
    try {
      const doc = fixture("meta_metrics_post");
      const at = Date.now();
      history.onCommit({ doc: doc as JsonObject, updatedAt: new Date(at).toISOString(), version: 1, lastSeq: 1 }, [
        { seq: 1, set: doc as JsonObject, source: "hive" },
      ]);
      await history.flush();
      const body = await history.query({ range: "1h" });
      type Answer = { series: { subject: string; field: string; t: number[]; v: number[] }[] };
      const answer = JSON.parse(new TextDecoder().decode(body.json)) as Answer;
      const pnl = answer.series.find((s) => s.subject === "smart_trader" && s.field === "pnl_1d");
      expect(pnl).toMatchObject({ t: [at], v: [412.37] });
      expect(Buffer.from(Bun.gunzipSync(new Uint8Array(body.gzip))).equals(Buffer.from(body.json))).toBe(true);
      const status = history.status();
      // The local disk's floor does not apply: a floor no disk could meet still records.
      expect(status).toMatchObject({ enabled: true, recording: true, min_free_bytes: 0, failures: 0 });
      expect(status.path).toBe("postgres://root:***@127.0.0.1:5432/test");
      expect(status.points_written).toBeGreaterThan(10);
      expect(status.bytes).toBeGreaterThan(0);
      expect(await history.prune(at + 31 * 86_400_000)).toBeGreaterThan(10);
      expect(existsSync(path)).toBe(false);
    } finally {
      await history.close();
      await sql.close();
    }
  });

  test("the size cap with PostgreSQL: the oldest rows go until the estimate is under the cap, then not again until the tables grow", async () => {
    const { sql } = await freshPool();
    using dir = tempDir();
    try {
      const now = Date.now();
      const seed = await openPostgresHistory(sql);
      for (let m = 0; m < 2000; m += 100) {
        await seed.record(
          Array.from({ length: 100 * 20 }, (_, i) =>
            p(`f${i % 20}`, m + Math.floor(i / 20), i, { ts: now - (2000 - m) * MIN + Math.floor(i / 20) * MIN }),
          ),
        );
      }
      const footprint = (await seed.size()).bytes;
      const maxBytes = Math.round(footprint * 0.7);
      const log = createMemoryLogger();
      const history = await createHistory({
        path: join(dir.path, "history.db"),
        days: 30,
        log,
        maxBytes,
        database: { sql, target: "postgres://root@127.0.0.1:5432/test" },
      });
      try {
        const commit = (seq: number) => {
          const doc = fixture("meta_metrics_post") as JsonObject;
          history.onCommit({ doc, updatedAt: new Date().toISOString(), version: seq, lastSeq: seq }, [
            { seq, set: doc, source: "hive" },
          ]);
          return history.flush();
        };
        await commit(1);
        await waitFor(() => history.status().pruned_for_size > 0, "the size cap to prune", 30_000);
        await waitFor(() => log.lines.some((l) => l.message === "history pruned for size"), "the prune's INFO line");
        const pruned = history.status().pruned_for_size;
        // About what the cap asks for (the oldest ~40% of the raw points, in chunks of 5,000), not everything.
        expect(pruned).toBeGreaterThanOrEqual(10_000);
        expect(pruned).toBeLessThan(40_000);
        const left = await seed.query({ from: now - 3000 * MIN, to: now + MIN, points: 100_000, maxSeries: 100 });
        expect(left.series.find((x) => x.field === "f0")?.t.length).toBe(2000 - pruned / 20);
        // The tables keep their size (the space is reused): further writes do not prune again.
        for (let seq = 2; seq < 6; seq++) await commit(seq);
        // close() waits for a shrink the writes may have started.
        await history.close();
        expect(history.status().bytes).toBeGreaterThan(maxBytes);
        expect(history.status().pruned_for_size).toBe(pruned);
        expect(history.status().failures).toBe(0);
      } finally {
        await history.close();
      }
    } finally {
      await sql.close();
    }
  }, 60_000);

  test("a database without the history tables at start-up: history off (503), opened once they are there", async () => {
    const schema = `t${++schemas}`;
    const setup = new SQL(DB_URL, { max: 1 });
    await setup.unsafe(`CREATE SCHEMA ${schema}`);
    const sql = new SQL(`${DB_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, { max: 2 });
    using dir = tempDir();
    const log = createMemoryLogger();
    const history = await createHistory({
      path: join(dir.path, "history.db"),
      days: 30,
      log,
      database: { sql, target: "postgres://root@127.0.0.1:5432/test" },
    });
    try {
      expect(history.status()).toMatchObject({ enabled: false });
      expect(history.status().disabled_reason).toStartWith("database: ");
      expect(await history.query({ range: "1h" }).catch((e) => (e as { status: number }).status)).toBe(503);
      expect(log.lines.filter((l) => l.message === "history unavailable, trying again")).toHaveLength(1);
      await setup.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL search_path = ${schema}`);
        for (const m of MIGRATIONS) await tx.unsafe(m.sql);
      });
      await waitFor(() => history.status().enabled, "history to open once the tables exist", 15_000);
      const body = await history.query({ range: "1h" });
      expect(JSON.parse(new TextDecoder().decode(body.json))).toMatchObject({ series: [], truncated: false });
    } finally {
      await history.close();
      await sql.close();
      await setup.close();
    }
  }, 30_000);

  test("a database that never answers (a black hole on a real socket) does not hold up start-up", async () => {
    // Accepts connections and never says a word, as a black-holed network would.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const sql = new SQL(`postgres://root@127.0.0.1:${silent.port}/x`, { max: 1, connectionTimeout: 60 });
    using dir = tempDir();
    const t0 = performance.now();
    const history = await createHistory({
      path: join(dir.path, "history.db"),
      days: 30,
      log: createMemoryLogger(),
      database: { sql, target: "postgres://root@127.0.0.1/x" },
    });
    try {
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(history.status().enabled).toBe(false);
      expect(await history.query({ range: "1h" }).catch((e) => (e as { status: number }).status)).toBe(503);
    } finally {
      await history.close();
      silent.stop(true);
      await sql.close({ timeout: 0 });
    }
  });
});
