// The SQLite history store on a real temporary directory: record, range query,
// downsampling, pruning, restart, and a corrupt file.

import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HistoryPoint } from "../../src/store/history";
import { isCorruption, OutdatedHistoryError, openSqliteHistory } from "../../src/store/history-sqlite";
import { tempDir } from "../helpers";
import { all, MIN, p, T0 } from "./history-points";

describe("history store", () => {
  test("record then query: columnar series, ordered, only the range asked", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    store.record([p("pnl_1d", 0, 10), p("pnl_1d", 1, 20), p("pnl_7d", 0, 100), p("pnl_1d", 2, 30)]);
    store.record([
      { kind: "regime", subject: "", field: "label", ts: T0, value: null, label: "BULL" },
      { kind: "guardian", subject: "", field: "is_paused", ts: T0, value: 1, peak: true },
    ]);
    expect(store.query({ ...all, from: T0, to: T0 + 2 * MIN })).toEqual({
      bucketMs: 120,
      truncated: false,
      series: [
        // The safety kinds first (guardian, then regime), then the others by name.
        { kind: "guardian", subject: "", field: "is_paused", t: [T0], v: [1] },
        { kind: "regime", subject: "", field: "label", t: [T0], v: [null], labels: ["BULL"] },
        { kind: "agent", subject: "smart_trader", field: "pnl_1d", t: [T0, T0 + MIN], v: [10, 20] },
        { kind: "agent", subject: "smart_trader", field: "pnl_7d", t: [T0], v: [100] },
      ],
    });
    expect(store.query({ ...all, kinds: ["regime"] }).series.map((s) => s.kind)).toEqual(["regime"]);
    store.close();
  });

  test("downsampling: at most `points` per series, each the last of its bucket; flags keep their peak", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    const points: HistoryPoint[] = [];
    for (let m = 0; m < 600; m++) {
      points.push(p("pnl_1d", m, m));
      // A one-minute pause at minute 250, shorter than a bucket of 60 minutes.
      points.push({
        kind: "guardian",
        subject: "",
        field: "is_paused",
        ts: T0 + m * MIN,
        value: m === 250 ? 1 : 0,
        peak: true,
      });
    }
    store.record(points);
    const { series, bucketMs } = store.query({ from: T0, to: T0 + 600 * MIN, points: 10, maxSeries: 100 });
    expect(bucketMs).toBe(60 * MIN);
    const pnl = series.find((s) => s.field === "pnl_1d");
    expect(pnl?.v).toEqual([59, 119, 179, 239, 299, 359, 419, 479, 539, 599]);
    expect(pnl?.t).toEqual(pnl?.v.map((m) => T0 + (m as number) * MIN));
    const paused = series.find((s) => s.field === "is_paused");
    expect(paused?.v).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(paused?.t[4]).toBe(T0 + 250 * MIN);
  });

  test("a point of the same series at the same ms replaces the earlier one", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    store.record([p("pnl_1d", 0, 1)]);
    store.record([p("pnl_1d", 0, 2)]);
    expect(store.query(all).series[0]?.v).toEqual([2]);
  });

  test("prune deletes only points older than the cut, in bounded steps", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    store.record(Array.from({ length: 100 }, (_, m) => p("pnl_1d", m, m)));
    expect(store.prune(T0 + 50 * MIN, 30)).toBe(30);
    expect(store.prune(T0 + 50 * MIN, 30)).toBe(20);
    expect(store.prune(T0 + 50 * MIN, 30)).toBe(0);
    const left = store.query(all).series[0];
    expect(left?.t.length).toBe(50);
    expect(left?.v[0]).toBe(50);
  });

  test("pruneOldest (the size cap): raw points oldest first, then minute, then hour roll-ups; the file shrinks", () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    const store = openSqliteHistory(path);
    // 20 series, one point a minute for 2,000 minutes: 40,000 points, 40,000 minute and 680 hour roll-ups.
    for (let m = 0; m < 2000; m += 100) {
      store.record(Array.from({ length: 100 * 20 }, (_, i) => p(`f${i % 20}`, m + Math.floor(i / 20), i)));
    }
    const before = statSync(path).size + store.size().walBytes;
    expect(store.pruneOldest(20_000)).toBe(20_000);
    // The oldest half of the raw points went (minutes 0-999); the roll-ups are untouched.
    const raw = store.query({ ...all, to: T0 + 2000 * MIN, points: 2000 * 60, maxSeries: 100 });
    expect(raw.series[0]?.t[0]).toBe(T0 + 1000 * MIN);
    const minutes = store.query({ ...all, to: T0 + 2000 * MIN, points: 2000, maxSeries: 100 });
    expect(minutes.series[0]?.t[0]).toBe(T0);
    // Freed pages go back to the file system: the file itself is smaller, not only emptier.
    expect(statSync(path).size).toBeLessThan(before * 0.8);
    expect(store.size().walBytes).toBe(0);
    expect(store.pruneOldest(20_000)).toBe(20_000);
    // No raw point left: the minute roll-ups go next, oldest first, then the hour ones.
    expect(store.pruneOldest(30_000)).toBe(30_000);
    expect(store.query({ ...all, to: T0 + 2000 * MIN, points: 2000, maxSeries: 100 }).series[0]?.t[0]).toBe(
      T0 + 1500 * MIN,
    );
    expect(store.pruneOldest(100_000)).toBe(10_000);
    expect(store.pruneOldest(100_000)).toBe(680);
    expect(store.pruneOldest(100_000)).toBe(0);
    store.close();
  });

  test("the WAL stays bounded: many writes leave at most about a megabyte of it", () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    const store = openSqliteHistory(path);
    let largest = 0;
    for (let m = 0; m < 20_000; m += 50) {
      store.record(Array.from({ length: 50 * 20 }, (_, i) => p(`f${i % 20}`, m + Math.floor(i / 20), i)));
      largest = Math.max(largest, store.size().walBytes);
    }
    // ~20 MB written in all; SQLite's defaults let the WAL grow to 4 MB and stay there.
    expect(statSync(path).size).toBeGreaterThan(10 * 1024 * 1024);
    expect(largest).toBeLessThan(1.5 * 1024 * 1024);
    store.close();
  });

  test("restart: what was recorded is there after close and reopen; the file is in WAL mode", () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    const first = openSqliteHistory(path);
    first.record([p("pnl_1d", 0, 10), p("pnl_1d", 1, 20)]);
    expect(existsSync(`${path}-wal`)).toBe(true);
    first.close();
    const second = openSqliteHistory(path);
    second.record([p("pnl_1d", 2, 30)]);
    expect(second.query(all).series[0]?.v).toEqual([10, 20, 30]);
    expect(second.seriesCount()).toBe(1);
    second.close();
  });

  test("the series cap refuses new series only; known ones keep being recorded", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"), 2);
    expect(store.record([p("a", 0, 1), p("b", 0, 1)])).toEqual({ written: 2, skipped: 0 });
    expect(store.record([p("c", 1, 1), p("a", 1, 2)])).toEqual({ written: 1, skipped: 1 });
    expect(store.query(all).series.map((s) => s.field)).toEqual(["a", "b"]);
  });

  test("at most maxSeries series per answer, and the answer says it cut", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    store.record([p("a", 0, 1), p("b", 0, 1), p("c", 0, 1)]);
    const answer = store.query({ ...all, maxSeries: 2 });
    expect(answer.series.map((s) => s.field)).toEqual(["a", "b"]);
    expect(answer.truncated).toBe(true);
  });

  test("agents never crowd out the safety series: each class has its own series budget", () => {
    using dir = tempDir();
    // Issue 16: with one budget, 1,334 agents filled it and a fresh file never recorded the guardian.
    const store = openSqliteHistory(join(dir.path, "history.db"), 2);
    expect(store.record([p("a", 0, 1), p("b", 0, 1), p("c", 0, 1)])).toEqual({ written: 2, skipped: 1 });
    const safety: HistoryPoint[] = [
      { kind: "guardian", subject: "", field: "is_paused", ts: T0, value: 1, peak: true },
      { kind: "breaker", subject: "trade_state", field: "state", ts: T0, value: 1, peak: true },
      { kind: "regime", subject: "", field: "label", ts: T0, value: null, label: "BEAR" },
    ];
    expect(store.record(safety)).toEqual({ written: 2, skipped: 1 });
    expect(store.query(all).series.map((s) => `${s.kind}/${s.field}`)).toEqual([
      "guardian/is_paused",
      "breaker/state",
      "agent/a",
      "agent/b",
    ]);
    expect(store.seriesCount()).toBe(4);
    store.close();
    // The budgets are counted again from the file after a restart.
    const again = openSqliteHistory(join(dir.path, "history.db"), 2);
    expect(again.record([p("d", 1, 1), { ...(safety[2] as HistoryPoint), ts: T0 + MIN }])).toEqual({
      written: 0,
      skipped: 2,
    });
    again.close();
  });

  test("the answer's cut keeps guardian, breakers, regime, mode and allocations before any agent", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    const agents = Array.from({ length: 50 }, (_, i) => p("pnl_1d", 0, i, { subject: `a${i}` }));
    const safety: HistoryPoint[] = [
      { kind: "allocation", subject: "a0", field: "governor", ts: T0, value: 0.2 },
      { kind: "mode", subject: "", field: "label", ts: T0, value: null, label: "LIVE" },
      { kind: "regime", subject: "", field: "confidence", ts: T0, value: 0.7 },
      { kind: "breaker", subject: "quote_state", field: "state", ts: T0, value: 0, peak: true },
      { kind: "guardian", subject: "", field: "drawdown", ts: T0, value: 3 },
      { kind: "guardian", subject: "", field: "is_paused", ts: T0, value: 1, peak: true },
    ];
    store.record([...agents, ...safety]);
    const answer = store.query({ ...all, maxSeries: 7 });
    expect(answer.series.map((s) => `${s.kind}/${s.subject}/${s.field}`)).toEqual([
      "guardian//drawdown",
      "guardian//is_paused",
      "breaker/quote_state/state",
      "regime//confidence",
      "mode//label",
      "allocation/a0/governor",
      "agent/a0/pnl_1d",
    ]);
    expect(answer.truncated).toBe(true);
    store.close();
  });

  test("long ranges read the roll-ups and answer what the raw points would: each bucket's last, or its peak", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    // Three days, a sample every 5 minutes (the hive's interval), pauses now and then.
    const step = 5 * MIN;
    const raw: HistoryPoint[] = [];
    for (let i = 0; i < 864; i++) {
      const ts = T0 + i * step;
      raw.push(p("pnl_1d", 0, Math.round(Math.sin(i) * 1000) || 0, { ts }));
      raw.push({ kind: "guardian", subject: "", field: "is_paused", ts, value: i % 37 === 5 ? 1 : 0, peak: true });
    }
    store.record(raw);
    // Buckets of 2 h (hourly roll-up) and of 10 min (minute roll-up), from an hour boundary.
    for (const points of [36, 432]) {
      const range = { from: T0, to: T0 + 72 * 60 * MIN, points, maxSeries: 10 };
      const bucket = (72 * 60 * MIN) / points;
      const expected = (field: string, peak: boolean) => {
        const best = new Map<number, HistoryPoint>();
        for (const x of raw.filter((r) => r.field === field)) {
          const b = Math.floor((x.ts - T0) / bucket);
          const had = best.get(b);
          if (had === undefined || (peak ? (x.value as number) > (had.value as number) : x.ts > had.ts)) best.set(b, x);
        }
        const xs = [...best.values()].sort((a, b) => a.ts - b.ts);
        return { t: xs.map((x) => x.ts), v: xs.map((x) => x.value) };
      };
      const { series, bucketMs } = store.query(range);
      expect(bucketMs).toBe(bucket);
      expect(series.find((s) => s.field === "pnl_1d")).toMatchObject(expected("pnl_1d", false));
      expect(series.find((s) => s.field === "is_paused")).toMatchObject(expected("is_paused", true));
    }
    store.close();
  });

  test("kinds and subjects filter the series", () => {
    using dir = tempDir();
    const store = openSqliteHistory(join(dir.path, "history.db"));
    store.record([
      p("pnl_1d", 0, 1),
      p("pnl_1d", 0, 2, { subject: "mean_reversion_bot" }),
      p("score", 0, 3, { kind: "strategy", subject: "smart_trader" }),
    ]);
    const names = (q: { kinds?: string[]; subjects?: string[] }) =>
      store.query({ ...all, ...q }).series.map((s) => `${s.kind}/${s.subject}/${s.field}`);
    expect(names({ subjects: ["smart_trader"] })).toEqual(["agent/smart_trader/pnl_1d", "strategy/smart_trader/score"]);
    expect(names({ kinds: ["agent"], subjects: ["smart_trader"] })).toEqual(["agent/smart_trader/pnl_1d"]);
    expect(names({ kinds: ["breaker"] })).toEqual([]);
  });

  test("a file of the old layout (series, ts) fails to open with OutdatedHistoryError, untouched", () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    const old = new Database(path);
    old.run(
      "CREATE TABLE points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, label TEXT, PRIMARY KEY (series_id, ts))",
    );
    old.close();
    expect(() => openSqliteHistory(path)).toThrow(OutdatedHistoryError);
    const again = new Database(path);
    expect(again.query("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: "points" }]);
    again.close();
  });

  test("a file that is not a database fails to open with an error isCorruption() recognises", () => {
    using dir = tempDir();
    const path = join(dir.path, "history.db");
    writeFileSync(path, "this is not a database, it is a text file that got here somehow ".repeat(100));
    let error: unknown;
    try {
      openSqliteHistory(path);
    } catch (err) {
      error = err;
    }
    expect(isCorruption(error)).toBe(true);
    expect(readdirSync(dir.path)).toEqual(["history.db"]);
  });
});
