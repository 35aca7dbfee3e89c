// The history store: time series of the figures the dashboard charts, in bun:sqlite at
// $NEOLIGHT_HOME/state/history.db. Interface first; the SQLite backend below it.
//
// History is a convenience, never a dependency of the live service: every method here
// may throw, and its one caller (the recorder) catches, logs, and carries on. A file that
// SQLite says is not a database or is malformed is moved aside (never deleted: an
// operator may want it) and a fresh one is started, at open and whenever it shows later.
import { Database, SQLiteError } from "bun:sqlite";
import { existsSync, renameSync } from "node:fs";
import type { Series } from "../modules/history/model";
import { asidePath } from "./json-file";

/** One sample of one series. */
export interface HistoryPoint {
  /** What the series belongs to: "agent", "strategy", "guardian", "breaker", "regime", "allocation", ... */
  kind: string;
  /** Which one of its kind (agent name, strategy name, breaker name); "" for singletons. */
  subject: string;
  /** The figure: "pnl_1d", "drawdown", "is_paused", "label", ... */
  field: string;
  /** Unix time, ms. */
  ts: number;
  /** The number, or null for a series that only carries a label (regime label, mode). */
  value: number | null;
  label?: string | null;
  /**
   * Downsampling keeps each bucket's largest value instead of its last: set for flags
   * (is_paused, breaker OPEN) so that a pause shorter than a bucket still shows.
   */
  peak?: boolean;
}

export interface RangeQuery {
  /** Unix ms, inclusive. */
  from: number;
  /** Unix ms, exclusive. */
  to: number;
  /** At most this many points per series: the range is cut into this many equal buckets. */
  points: number;
  /** Only series of these kinds; all when absent. */
  kinds?: readonly string[];
  /** At most this many series; the answer says when more existed. */
  maxSeries: number;
}

export interface HistoryStore {
  readonly path: string;
  /**
   * Appends `points` in one transaction: all or none. Series are created on first use,
   * up to `maxSeries` (open option); points of series beyond it are skipped and counted
   * in the result. A point of a series at an existing ms replaces it. Throws on storage
   * errors.
   */
  record(points: readonly HistoryPoint[]): { written: number; skipped: number };
  /**
   * Series with points in [from, to). Each bucket of width ceil((to-from)/points) ms
   * gives one point: its last sample (its largest for peak series), at that sample's
   * time. Series are ordered by kind, subject, field. Throws on storage errors.
   */
  query(q: RangeQuery): { series: Series[]; truncated: boolean; bucketMs: number };
  /** Deletes up to `limit` points older than `before` (Unix ms); returns how many. */
  prune(before: number, limit: number): number;
  /** Number of distinct series stored. */
  seriesCount(): number;
  /** Closes the file (a WAL checkpoint happens on close). Idempotent. */
  close(): void;
}

/** SQLite's codes for "this file is not a (healthy) database": moved aside, not retried. */
const CORRUPT_CODES = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT"]);

export function isCorruption(err: unknown): boolean {
  if (!(err instanceof SQLiteError)) return false;
  const code = err.code ?? "";
  return [...CORRUPT_CODES].some((c) => code.startsWith(c));
}

/** Moves history.db and its -wal/-shm companions aside; returns where the main file went. */
export function moveAside(path: string, now = new Date()): string {
  const aside = asidePath(path, now);
  for (const suffix of ["", "-wal", "-shm"]) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  return aside;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS series (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  field TEXT NOT NULL,
  peak INTEGER NOT NULL DEFAULT 0,
  UNIQUE (kind, subject, field)
);
CREATE TABLE IF NOT EXISTS points (
  series_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  value REAL,
  label TEXT,
  PRIMARY KEY (series_id, ts)
);
CREATE INDEX IF NOT EXISTS points_ts ON points (ts);
`;

/**
 * Opens (or creates) the SQLite history at `path`. Throws whatever SQLite throws: a
 * corrupt file surfaces here as an error for which isCorruption() is true.
 */
export function openSqliteHistory(path: string, maxSeries = Number.POSITIVE_INFINITY): HistoryStore {
  const db = new Database(path, { create: true, strict: true });
  try {
    // ? WAL: readers (GET /meta/history) never wait for the recorder's writes.
    // synchronous=NORMAL: in WAL mode a crash loses at most the last second of samples,
    // never the file's integrity. History is not the safety-critical state; the
    // meta-metrics document keeps its fsync per batch.
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = NORMAL");
    db.run(SCHEMA);
    // ? Touch the data, not only the header: a file with a valid header and garbage
    // pages fails here rather than at the first chart request.
    db.query("SELECT COUNT(*) AS n FROM series").get();
  } catch (err) {
    db.close();
    throw err;
  }

  const ids = new Map<string, number>();
  for (const row of db.query("SELECT id, kind, subject, field FROM series").all() as {
    id: number;
    kind: string;
    subject: string;
    field: string;
  }[]) {
    ids.set(`${row.kind}\u0000${row.subject}\u0000${row.field}`, row.id);
  }
  const insertSeries = db.query("INSERT INTO series (kind, subject, field, peak) VALUES (?1, ?2, ?3, ?4) RETURNING id");
  const insertPoint = db.query("INSERT OR REPLACE INTO points (series_id, ts, value, label) VALUES (?1, ?2, ?3, ?4)");
  const seriesRows = db.query("SELECT id, kind, subject, field FROM series");
  // ? Two queries because SQLite's "bare column" rule (the other columns come from the
  // row holding the MAX) is only defined for a single MAX per query.
  const lastPerBucket = db.query(
    `SELECT p.series_id AS sid, (p.ts - ?1) / ?2 AS b, MAX(p.ts) AS ts, p.value AS value, p.label AS label
     FROM points p JOIN series s ON s.id = p.series_id
     WHERE p.ts >= ?1 AND p.ts < ?3 AND s.peak = 0 GROUP BY p.series_id, b`,
  );
  const peakPerBucket = db.query(
    `SELECT p.series_id AS sid, (p.ts - ?1) / ?2 AS b, p.ts AS ts, MAX(p.value) AS value, p.label AS label
     FROM points p JOIN series s ON s.id = p.series_id
     WHERE p.ts >= ?1 AND p.ts < ?3 AND s.peak = 1 GROUP BY p.series_id, b`,
  );
  const pruneQuery = db.query(
    "DELETE FROM points WHERE rowid IN (SELECT rowid FROM points WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
  );

  /** The series' id, created when new; undefined when it is new and the cap is reached. */
  function seriesId(p: HistoryPoint): number | undefined {
    const key = `${p.kind}\u0000${p.subject}\u0000${p.field}`;
    let id = ids.get(key);
    if (id === undefined && ids.size < maxSeries) {
      id = (insertSeries.get(p.kind, p.subject, p.field, p.peak ? 1 : 0) as { id: number }).id;
      ids.set(key, id);
    }
    return id;
  }

  const recordAll = db.transaction((points: readonly HistoryPoint[]) => {
    let skipped = 0;
    for (const p of points) {
      const id = seriesId(p);
      if (id === undefined) skipped++;
      else insertPoint.run(id, Math.round(p.ts), p.value, p.label ?? null);
    }
    return { written: points.length - skipped, skipped };
  });

  let closed = false;
  return {
    path,
    record(points) {
      return points.length > 0 ? recordAll(points) : { written: 0, skipped: 0 };
    },
    query({ from, to, points, kinds, maxSeries }) {
      const bucketMs = Math.max(1, Math.ceil((to - from) / points));
      type Row = { sid: number; b: number; ts: number; value: number | null; label: string | null };
      const rows = [
        ...(lastPerBucket.all(from, bucketMs, to) as Row[]),
        ...(peakPerBucket.all(from, bucketMs, to) as Row[]),
      ];
      const meta = new Map<number, { kind: string; subject: string; field: string }>();
      for (const r of seriesRows.all() as { id: number; kind: string; subject: string; field: string }[]) {
        meta.set(r.id, r);
      }
      const bySeries = new Map<number, Row[]>();
      for (const row of rows) {
        const m = meta.get(row.sid);
        if (m === undefined || (kinds && !kinds.includes(m.kind))) continue;
        const list = bySeries.get(row.sid);
        if (list === undefined) bySeries.set(row.sid, [row]);
        else list.push(row);
      }
      const ordered = [...bySeries.entries()]
        .map(([sid, list]) => ({ m: meta.get(sid) as { kind: string; subject: string; field: string }, list }))
        .sort(
          (a, b) =>
            a.m.kind.localeCompare(b.m.kind) ||
            a.m.subject.localeCompare(b.m.subject) ||
            a.m.field.localeCompare(b.m.field),
        );
      const series = ordered.slice(0, maxSeries).map(({ m, list }) => {
        list.sort((a, b) => a.ts - b.ts);
        const out: Series = {
          kind: m.kind,
          subject: m.subject,
          field: m.field,
          t: list.map((r) => r.ts),
          v: list.map((r) => r.value),
        };
        if (list.some((r) => r.label !== null)) out.labels = list.map((r) => r.label);
        return out;
      });
      return { series, truncated: ordered.length > maxSeries, bucketMs };
    },
    prune(before, limit) {
      return pruneQuery.run(before, limit).changes;
    },
    seriesCount: () => ids.size,
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
