// The SQLite backend of the history store, at $NEOLIGHT_HOME/state/history.db: opened only
// by the history thread (history-worker.ts), in bun:sqlite. The interface is history.ts.
//
// A file that SQLite says is not a database or is malformed is moved aside (never deleted:
// an operator may want it) and a fresh one is started, at open and whenever it shows later.
import { Database, SQLiteError } from "bun:sqlite";
import { existsSync, renameSync, statSync } from "node:fs";
import { type HistoryPoint, type HistoryStore, KIND_RANK, ROLLUPS, SAFETY_KINDS } from "./history";
import type { Series } from "./history-model";
import { asidePath } from "./json-file";

/**
 * A connection waits this long for another's lock before SQLite answers "database is
 * locked": the writer's transactions take milliseconds, a checkpoint a little longer.
 */
const BUSY_TIMEOUT_MS = 5000;

/** SQLite's codes for "this file is not a (healthy) database": moved aside, not retried. */
const CORRUPT_CODES = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT"]);

export function isCorruption(err: unknown): boolean {
  if (!(err instanceof SQLiteError)) return false;
  const code = err.code ?? "";
  return [...CORRUPT_CODES].some((c) => code.startsWith(c));
}

/**
 * Moves history.db and its -wal/-shm companions aside; returns where the main file went:
 * `history.db.corrupt-<time>`, or `history.db.old-<time>` for a file of an older layout.
 */
export function moveAside(path: string, reason: "corrupt" | "outdated" = "corrupt", now = new Date()): string {
  const aside = reason === "corrupt" ? asidePath(path, now) : asidePath(path, now).replace(/\.corrupt-/, ".old-");
  for (const suffix of ["", "-wal", "-shm"]) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  return aside;
}

/**
 * The writer checkpoints the WAL into the file once it holds this many pages (4 KB each;
 * SQLite's default is 1,000): a small WAL is a small share of the state disk.
 */
const WAL_AUTOCHECKPOINT_PAGES = 256;
/**
 * After a checkpoint the WAL file is cut back to this (SQLite leaves it at its largest
 * otherwise): a burst of writes (a prune) must not keep its megabytes on the disk.
 */
const WAL_SIZE_LIMIT_BYTES = 1024 * 1024;

/** The layout below; a file of an older one is moved aside (openSqliteHistory throws OutdatedHistoryError). */
const LAYOUT_VERSION = 2;

// ? WITHOUT ROWID, keyed (time, series): a flush appends one run of rows at the end of
// each table instead of touching a page per series (8-10 KB written per 64-byte point
// with the old (series, time) key, issue 16), and a chart scans one range of time.
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
  ts INTEGER NOT NULL,
  series_id INTEGER NOT NULL,
  value REAL,
  label TEXT,
  PRIMARY KEY (ts, series_id)
) WITHOUT ROWID;
${ROLLUPS.map(
  ({ table }) => `CREATE TABLE IF NOT EXISTS ${table} (
  bucket INTEGER NOT NULL,
  series_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  value REAL,
  label TEXT,
  PRIMARY KEY (bucket, series_id)
) WITHOUT ROWID;`,
).join("\n")}
PRAGMA user_version = ${LAYOUT_VERSION};
`;

/** The file holds history in an older layout: it is moved aside, like a corrupt one, and a fresh one started. */
export class OutdatedHistoryError extends Error {
  readonly code = "OUTDATED_LAYOUT";
  constructor(version: number) {
    super(`history.db has layout ${version}, this version writes layout ${LAYOUT_VERSION}`);
    this.name = "OutdatedHistoryError";
  }
}

/**
 * Opens (or creates) the SQLite history at `path`. Throws whatever SQLite throws: a
 * corrupt file surfaces here as an error for which isCorruption() is true, and a file of
 * an older layout as OutdatedHistoryError (both are moved aside by the caller).
 */
export function openSqliteHistory(path: string, maxSeries = Number.POSITIVE_INFINITY): HistoryStore {
  const db = new Database(path, { create: true, strict: true });
  try {
    // ? WAL: readers (GET /meta/history) never wait for the recorder's writes.
    // synchronous=NORMAL: in WAL mode a crash loses at most the last second of samples,
    // never the file's integrity. History is not the safety-critical state; the
    // meta-metrics document keeps its fsync per batch.
    // ? auto_vacuum = INCREMENTAL first: it takes only on a file without tables, and before
    // journal_mode (which writes the header). Pages freed by a prune are then given back
    // to the file system, so the size cap shrinks the file, not only its contents. A file
    // made before issue 14 keeps its size and reuses its free pages; here it is a no-op.
    // ? busy_timeout before anything that reads the file: a reader opened while the writer
    // is mid-transaction got "database is locked" at once from journal_mode (a test's
    // fresh reader, after a stopped one, failed 1 run in 2 on a loaded machine).
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.run("PRAGMA auto_vacuum = INCREMENTAL");
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = NORMAL");
    db.run(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.run(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    // ? Touch the data, not only the header: a file with a valid header and garbage
    // pages fails here rather than at the first chart request.
    const tables = (db.query("SELECT COUNT(*) AS n FROM sqlite_master").get() as { n: number }).n;
    const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    // ? Layout 1 (before issue 16) had no version; converting a month of it would hold up
    // start-up for a minute, so it is kept aside for an operator instead.
    if (tables > 0 && version !== LAYOUT_VERSION) throw new OutdatedHistoryError(version);
    // ? Only a new file is written to here: the reader thread opens the file while the
    // writer may be mid-transaction, and must not need the write lock to start.
    if (tables === 0) db.run(SCHEMA);
    db.query("SELECT COUNT(*) AS n FROM series").get();
  } catch (err) {
    db.close();
    throw err;
  }

  const ids = new Map<string, number>();
  /** Series of the SAFETY_KINDS among `ids`: their budget is counted apart. */
  let safetySeries = 0;
  const isSafety = new Set(SAFETY_KINDS);
  for (const row of db.query("SELECT id, kind, subject, field FROM series").all() as {
    id: number;
    kind: string;
    subject: string;
    field: string;
  }[]) {
    ids.set(`${row.kind}\u0000${row.subject}\u0000${row.field}`, row.id);
    if (isSafety.has(row.kind)) safetySeries++;
  }
  const insertSeries = db.query("INSERT INTO series (kind, subject, field, peak) VALUES (?1, ?2, ?3, ?4) RETURNING id");
  const insertPoint = db.query("INSERT OR REPLACE INTO points (ts, series_id, value, label) VALUES (?1, ?2, ?3, ?4)");
  // ? The bucket's sample is replaced by a later one, or by a larger one for peak series
  // (?6 = 1), so that a pause shorter than a bucket still shows.
  const upsertRollups = ROLLUPS.map(({ table, ms }) => {
    const q = db.query(
      `INSERT INTO ${table} (bucket, series_id, ts, value, label) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (bucket, series_id) DO UPDATE SET ts = excluded.ts, value = excluded.value, label = excluded.label
       WHERE CASE WHEN ?6 = 1 THEN excluded.value > ${table}.value ELSE excluded.ts >= ${table}.ts END`,
    );
    return (id: number, p: HistoryPoint, ts: number) =>
      q.run(ts - (ts % ms), id, ts, p.value, p.label ?? null, p.peak ? 1 : 0);
  });
  // ? Kinds and subjects are filtered here, in SQL (json_each() takes a list as one
  // parameter), and only the series the answer holds are read: the old query read every
  // point of the range and filtered in JS, 14.8 s for one hour at 300 agents (issue 16).
  const seriesRows = db.query(
    `SELECT id, kind, subject, field, peak FROM series
     WHERE (?1 IS NULL OR kind IN (SELECT value FROM json_each(?1)))
       AND (?2 IS NULL OR subject IN (SELECT value FROM json_each(?2)))
     ORDER BY ${KIND_RANK}, kind, subject, field`,
  );
  // ? The rows come in key order, (time, series), and are bucketed below in one pass: a
  // GROUP BY here sorted millions of rows (9 s for 30 days at 300 agents).
  const rangeQuery = (table: string, key: string) =>
    db.query(
      `SELECT series_id, ts, value, label FROM ${table}
       WHERE ${key} >= ?1 AND ${key} < ?2 AND ts >= ?3 AND ts < ?2
         AND series_id IN (SELECT value FROM json_each(?4))`,
    );
  /** Where a query of buckets of `bucketMs` reads: the coarsest table whose samples are no wider. */
  const sources = [
    ...ROLLUPS.map(({ table, ms }) => ({ ms, rows: rangeQuery(table, "bucket") })),
    { ms: 1, rows: rangeQuery("points", "ts") },
  ];
  const prunePoints = db.query(
    `DELETE FROM points WHERE (ts, series_id) IN
     (SELECT ts, series_id FROM points WHERE ts < ?1 ORDER BY ts LIMIT ?2)`,
  );
  // ? A roll-up row goes once its whole bucket is older than the cut.
  const pruneRollups = ROLLUPS.map(({ table, ms }) => {
    const q = db.query(
      `DELETE FROM ${table} WHERE (bucket, series_id) IN
       (SELECT bucket, series_id FROM ${table} WHERE bucket <= ?1 ORDER BY bucket LIMIT ?2)`,
    );
    return (before: number, limit: number) => q.run(before - ms, limit);
  });

  // ? For the size cap, oldest first: raw points, then the minute roll-ups, then the hour ones.
  const pruneOldestRows = ["points", ...[...ROLLUPS].reverse().map((r) => r.table)].map((table) => {
    const key = table === "points" ? "ts" : "bucket";
    return db.query(
      `DELETE FROM ${table} WHERE (${key}, series_id) IN
       (SELECT ${key}, series_id FROM ${table} ORDER BY ${key} LIMIT ?1)`,
    );
  });
  const pageBytes = db.query(
    "SELECT (page_count - freelist_count) * page_size AS n FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
  );

  /** Gives freed pages back to the file system and cuts the WAL back: after a prune. */
  function compact(): void {
    db.run("PRAGMA incremental_vacuum");
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  function walBytes(): number {
    try {
      return statSync(`${path}-wal`).size;
    } catch {
      return 0;
    }
  }

  /** The series' id, created when new; undefined when it is new and its budget is used up. */
  function seriesId(p: HistoryPoint): number | undefined {
    const key = `${p.kind}\u0000${p.subject}\u0000${p.field}`;
    let id = ids.get(key);
    if (id !== undefined) return id;
    const safety = isSafety.has(p.kind);
    if ((safety ? safetySeries : ids.size - safetySeries) >= maxSeries) return undefined;
    id = (insertSeries.get(p.kind, p.subject, p.field, p.peak ? 1 : 0) as { id: number }).id;
    ids.set(key, id);
    if (safety) safetySeries++;
    return id;
  }

  const recordAll = db.transaction((points: readonly HistoryPoint[]) => {
    let skipped = 0;
    for (const p of points) {
      const id = seriesId(p);
      if (id === undefined) {
        skipped++;
        continue;
      }
      const ts = Math.round(p.ts);
      insertPoint.run(ts, id, p.value, p.label ?? null);
      for (const upsert of upsertRollups) upsert(id, p, ts);
    }
    return { written: points.length - skipped, skipped };
  });

  let closed = false;
  return {
    path,
    record(points) {
      return points.length > 0 ? recordAll(points) : { written: 0, skipped: 0 };
    },
    query({ from, to, points, kinds, subjects, maxSeries }) {
      const bucketMs = Math.max(1, Math.ceil((to - from) / points));
      const source = sources.find((t) => t.ms <= bucketMs) as (typeof sources)[number];
      const list = (xs: readonly string[] | undefined) => (xs === undefined ? null : JSON.stringify(xs));
      type Meta = { id: number; kind: string; subject: string; field: string; peak: number };
      // ? The cut is made on the selected series before reading: a series without
      // points in the range takes a place in it and is left out of the answer.
      const selected = seriesRows.all(list(kinds), list(subjects)) as Meta[];
      const wanted = selected.slice(0, maxSeries);
      type Out = Series & { peak: boolean; b: number; labels: (string | null)[] };
      const out = new Map<number, Out>();
      for (const m of wanted) {
        out.set(m.id, {
          kind: m.kind,
          subject: m.subject,
          field: m.field,
          t: [],
          v: [],
          labels: [],
          peak: m.peak === 1,
          b: -1,
        });
      }
      const rows = source.rows.values(from - (from % source.ms), to, from, JSON.stringify(wanted.map((m) => m.id)));
      for (const [sid, ts, value, label] of rows as [number, number, number | null, string | null][]) {
        const s = out.get(sid) as Out;
        const b = Math.floor((ts - from) / bucketMs);
        const last = s.t.length - 1;
        // Each bucket keeps its last sample, or its largest for peak series.
        if (b !== s.b) {
          s.b = b;
          s.t.push(ts);
          s.v.push(value);
          s.labels.push(label);
        } else if (
          s.peak
            ? (value ?? Number.NEGATIVE_INFINITY) > (s.v[last] ?? Number.NEGATIVE_INFINITY)
            : ts >= (s.t[last] as number)
        ) {
          s.t[last] = ts;
          s.v[last] = value;
          s.labels[last] = label;
        }
      }
      const series: Series[] = [];
      for (const { kind, subject, field, t, v, labels } of out.values()) {
        if (t.length === 0) continue;
        const one: Series = { kind, subject, field, t, v };
        if (labels.some((l) => l !== null)) one.labels = labels;
        series.push(one);
      }
      return { series, truncated: selected.length > maxSeries, bucketMs };
    },
    prune(before, limit) {
      let rows = 0;
      for (const pruneRollup of pruneRollups) rows += pruneRollup(before, limit).changes;
      const points = prunePoints.run(before, limit).changes;
      if (rows + points > 0) compact();
      return points;
    },
    pruneOldest(limit) {
      let rows = 0;
      for (const q of pruneOldestRows) {
        rows = q.run(limit).changes;
        if (rows > 0) break;
      }
      if (rows > 0) compact();
      return rows;
    },
    size() {
      const wal = walBytes();
      return { bytes: (pageBytes.get() as { n: number }).n + wal, walBytes: wal };
    },
    seriesCount: () => ids.size,
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
