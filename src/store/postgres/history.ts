// The history store in PostgreSQL (issue 12): the same series, points and roll-ups as
// history.db (src/store/history-sqlite.ts), in the tables of migration 2, shared by every replica
// so that each answers GET /meta/history alike. Async over Bun's SQL; loaded only when
// NEOLIGHT_DATABASE_URL is set.
//
// The semantics are HistoryStore's, rule for rule: two series budgets (the SAFETY_KINDS
// and the others), replace-on-same-ms, roll-ups keeping each minute's and hour's last
// sample (its largest for peak series), the query's bucketing, order, cut and `truncated`.
// The bucketing and the cut run in SQL; the answer's JSON is built by answerJson() as for
// SQLite, so both backends send the same bytes for the same points
// (test/store/postgres-history.test.ts compares them).
//
// ? Several replicas write here at once. Each records the points of its own commits; a
// point at a ms already stored replaces it (ON CONFLICT), and series are created under a
// transaction-scoped advisory lock (INSERT ... ON CONFLICT DO NOTHING, then SELECT), so two
// replicas creating one series at the same moment both get its id and neither fails.
import type { SQL } from "bun";
import {
  type AnswerFacts,
  answerHead,
  answerJson,
  type HistoryPoint,
  type HistorySize,
  KIND_RANK,
  type RangeQuery,
  ROLLUPS,
  SAFETY_KINDS,
} from "../history";
import type { Series } from "../history-model";

/** The tables of migration 2, by the name history.db gives them. */
export const PG_TABLES = {
  series: "neolight_history_series",
  points: "neolight_history_points",
  rollup_minute: "neolight_history_rollup_minute",
  rollup_hour: "neolight_history_rollup_hour",
} as const;
const DATA_TABLES = [PG_TABLES.points, PG_TABLES.rollup_minute, PG_TABLES.rollup_hour] as const;

/**
 * Key of the advisory lock series are created under: a budget is counted and spent by one
 * replica at a time, so two replicas never both take the last place. Any constant no
 * other lock of this database uses (the migrations' lock is another).
 */
const SERIES_LOCK_KEY = 0x6e6c6873; // "nlhs"

/** SQL: true for a kind among the SAFETY_KINDS (constants, not client input). */
const IS_SAFETY = `kind IN (${SAFETY_KINDS.map((k) => `'${k}'`).join(", ")})`;

/**
 * Sort memory of a chart query (PostgreSQL's default is 4 MB): a 30-day chart at N=30 sorts
 * ~330,000 roll-up rows, which spilled to disk at the default (external merge, most of its
 * 0.5 s here). Set per query transaction only; one query runs at a time per replica (the
 * service's queue), so this is the most a replica's charts take.
 */
const QUERY_WORK_MEM = "64MB";
/** A series budget of "no limit": the int parameter the budget check takes. */
const NO_LIMIT = 2 ** 31 - 1;

/** HistoryStore, async, over a pool the caller owns. */
export interface PostgresHistory {
  /** What /status names as the history's place: the database URL, its password replaced. */
  readonly target: string;
  /**
   * HistoryStore.record: one transaction, all or none; series created on first use within
   * their class's budget, counted over the database (every replica's series), points of
   * series beyond it skipped and counted; a point at an existing ms of its series replaces
   * it. Safe to run from several replicas at once. Rejects on database errors.
   */
  record(points: readonly HistoryPoint[]): Promise<{ written: number; skipped: number }>;
  /**
   * HistoryStore.query, the same answer for the same points (bucketing, order, cut and
   * `truncated` computed by the database). With `timeoutMs` the database stops the query
   * after that long (rejects with SQLSTATE 57014, query_canceled). The caller owns the result.
   */
  query(q: RangeQuery, timeoutMs?: number): Promise<{ series: Series[]; truncated: boolean; bucketMs: number }>;
  /**
   * GET /meta/history's answer for `q`, as UTF-8 JSON: the bytes answerJson(q, query(q))
   * gives, written by the database (the main thread only joins them), or by answerJson
   * when a value's text differs between PostgreSQL and JavaScript (an exponent, -0).
   */
  answer(q: RangeQuery, facts: AnswerFacts, timeoutMs?: number): Promise<Uint8Array<ArrayBuffer>>;
  /** HistoryStore.prune: up to `limit` points older than `before` and roll-ups whose bucket ended by then; how many points. */
  prune(before: number, limit: number): Promise<number>;
  /**
   * HistoryStore.pruneOldest: the oldest `limit` rows, raw points first, then minute, then
   * hour roll-ups. PostgreSQL does not give the space back to the file system (only an
   * exclusive rewrite would): the table is vacuumed so that later points reuse it, and
   * `freedBytes` estimates what the rows took (the table's size per row, before).
   */
  pruneOldest(limit: number): Promise<{ rows: number; freedBytes: number }>;
  /** pg_total_relation_size of the four tables (heap, indexes, TOAST); walBytes 0: the WAL is the server's. */
  size(): Promise<HistorySize>;
  /** Series in the database, every replica's, as of the last record() or open. */
  seriesCount(): number;
  /** Forgets the cache; the pool is the caller's and stays open. Idempotent. */
  close(): void;
}

export interface PostgresHistoryOptions {
  /** Series created at most per class (the safety kinds; the others). Default: no limit. */
  maxSeries?: number;
  /** Default: "postgres". */
  target?: string;
}

type Row = Record<string, unknown>;

/**
 * Opens the history in the database behind `sql`, whose schema is migrated already (migrate.ts
 * runs MIGRATIONS at start-up): reads the series there. Rejects when the tables are missing.
 */
export async function openPostgresHistory(sql: SQL, options: PostgresHistoryOptions = {}): Promise<PostgresHistory> {
  const maxSeries = Math.min(options.maxSeries ?? NO_LIMIT, NO_LIMIT);
  const target = options.target ?? "postgres";
  /** Series ids by kind\0subject\0field: a series, once created, keeps its id in every replica. */
  const ids = new Map<string, number>();
  const key = (kind: string, subject: string, field: string) => `${kind}\u0000${subject}\u0000${field}`;
  let count = 0;
  let closed = false;

  async function loadSeries(): Promise<void> {
    const rows = (await sql.unsafe(`SELECT id, kind, subject, field FROM ${PG_TABLES.series}`)) as Row[];
    for (const r of rows) ids.set(key(r.kind as string, r.subject as string, r.field as string), r.id as number);
    count = rows.length;
  }
  await loadSeries();

  /**
   * Creates the batch's series not known here (within their budgets, in order of first
   * use, as SQLite does) and reads the ids of every one that exists: another replica's
   * included. In `tx`, under the advisory lock until it ends.
   */
  async function createSeries(tx: SQL, fresh: { kind: string; subject: string; field: string; peak: boolean }[]) {
    await tx.unsafe("SELECT pg_advisory_xact_lock($1)", [SERIES_LOCK_KEY]);
    const wanted = fresh.map((s, ord) => ({ ...s, ord }));
    // ? The budgets are counted over the table, so every replica's series count; the lock
    // keeps another replica from spending the same places meanwhile.
    await tx.unsafe(
      `WITH b AS (SELECT * FROM json_to_recordset($1::json) AS x(kind text, subject text, field text, peak boolean, ord int)),
       fresh AS (
         SELECT b.* FROM b WHERE NOT EXISTS (
           SELECT 1 FROM ${PG_TABLES.series} s WHERE s.kind = b.kind AND s.subject = b.subject AND s.field = b.field)
       ),
       used AS (
         SELECT count(*) FILTER (WHERE ${IS_SAFETY}) AS safety, count(*) FILTER (WHERE NOT ${IS_SAFETY}) AS other
         FROM ${PG_TABLES.series}
       ),
       ranked AS (SELECT fresh.*, row_number() OVER (PARTITION BY ${IS_SAFETY} ORDER BY ord) AS n FROM fresh)
       INSERT INTO ${PG_TABLES.series} (kind, subject, field, peak)
       SELECT kind, subject, field, peak FROM ranked, used
       WHERE n + CASE WHEN ${IS_SAFETY} THEN used.safety ELSE used.other END <= $2
       ORDER BY ord
       ON CONFLICT (kind, subject, field) DO NOTHING`,
      [wanted, maxSeries],
    );
    const rows = (await tx.unsafe(
      `SELECT s.id, s.kind, s.subject, s.field, (SELECT count(*) FROM ${PG_TABLES.series})::int AS total
       FROM ${PG_TABLES.series} s
       JOIN json_to_recordset($1::json) AS x(kind text, subject text, field text) USING (kind, subject, field)`,
      [wanted],
    )) as Row[];
    return rows;
  }

  // ? One statement writes the points and both roll-ups (data-modifying CTEs on three
  // tables): one round trip per flush. A batch may hold several samples of one series in
  // one minute, and ON CONFLICT DO UPDATE may not touch a row twice in one statement, so
  // each table's rows are first reduced to what SQLite's point-by-point upserts leave:
  // the last point per ms; per roll-up bucket the latest sample (ties: the later point),
  // or for peak series the first of the largest (a first null stays, as `null > x` never
  // replaces in SQLite either).
  const rollupCte = ROLLUPS.map(
    ({ table, ms }) => `
    g_${table} AS (SELECT s, ts - ts % ${ms} AS bucket, ts, v, l, p, o FROM b),
    first_${table} AS (SELECT DISTINCT ON (s, bucket) s, bucket, ts, v, l FROM g_${table} ORDER BY s, bucket, o),
    best_${table} AS (
      SELECT DISTINCT ON (s, bucket) s, bucket, ts, v, l, p FROM g_${table}
      ORDER BY s, bucket, CASE WHEN p THEN v END DESC NULLS LAST, CASE WHEN p THEN o END, ts DESC, o DESC
    ),
    w_${table} AS (
      INSERT INTO neolight_history_${table} AS t (bucket, series_id, ts, value, label)
      SELECT m.bucket, m.s,
        CASE WHEN m.p AND f.v IS NULL THEN f.ts ELSE m.ts END,
        CASE WHEN m.p AND f.v IS NULL THEN f.v ELSE m.v END,
        CASE WHEN m.p AND f.v IS NULL THEN f.l ELSE m.l END
      FROM best_${table} m JOIN first_${table} f USING (s, bucket)
      ORDER BY m.s, m.bucket
      ON CONFLICT (bucket, series_id) DO UPDATE SET ts = excluded.ts, value = excluded.value, label = excluded.label
      WHERE CASE WHEN (SELECT peak FROM ${PG_TABLES.series} WHERE id = excluded.series_id)
        THEN excluded.value > t.value ELSE excluded.ts >= t.ts END
      RETURNING 1
    )`,
  ).join(",");
  const recordSql = `
    WITH b AS MATERIALIZED (
      SELECT * FROM json_to_recordset($1::json) AS x(s int, ts bigint, v double precision, l text, p boolean, o int)
    ),
    w_points AS (
      INSERT INTO ${PG_TABLES.points} (ts, series_id, value, label)
      SELECT DISTINCT ON (ts, s) ts, s, v, l FROM b ORDER BY ts, s, o DESC
      ON CONFLICT (ts, series_id) DO UPDATE SET value = excluded.value, label = excluded.label
      RETURNING 1
    ),${rollupCte}
    SELECT (SELECT count(*) FROM w_points)::int AS points`;
  // ? The one case the reduction above cannot fold into a single upsert: a peak bucket
  // whose batch begins with a null sample, over a stored non-null one. SQLite leaves the
  // stored row, then lets the batch's first larger sample replace it; so does this.
  const peakAfterNullSql = ROLLUPS.map(
    ({ table, ms }) => `
    WITH b AS (SELECT * FROM json_to_recordset($1::json) AS x(s int, ts bigint, v double precision, l text, p boolean, o int)),
    g AS (SELECT s, ts - ts % ${ms} AS bucket, ts, v, l, p, o FROM b WHERE p),
    f AS (SELECT DISTINCT ON (s, bucket) s, bucket, v FROM g ORDER BY s, bucket, o),
    m AS (SELECT DISTINCT ON (s, bucket) s, bucket, ts, v, l FROM g WHERE v IS NOT NULL ORDER BY s, bucket, v DESC, o)
    UPDATE neolight_history_${table} AS t SET ts = m.ts, value = m.v, label = m.l
    FROM m JOIN f USING (s, bucket)
    WHERE f.v IS NULL AND t.bucket = m.bucket AND t.series_id = m.s AND m.v > t.value`,
  );

  // ? The cut and the bucketing in SQL. Series are ordered as SQLite orders them: the
  // safety kinds first, then by name in byte order (COLLATE "C"), and cut at maxSeries
  // before any point is read (a series without points in the range takes its place and is
  // left out). Each bucket keeps its latest sample, or for peak series its largest (the
  // earliest of equals, nulls lowest), exactly the one-pass rule of openSqliteHistory (history-sqlite.ts).
  const picked = (table: string, keyColumn: string) => `
    WITH selected AS (
      SELECT id, kind, subject, field, peak,
        row_number() OVER (ORDER BY ${KIND_RANK}, kind COLLATE "C", subject COLLATE "C", field COLLATE "C") AS n
      FROM ${PG_TABLES.series}
      WHERE ($1::json IS NULL OR kind IN (SELECT json_array_elements_text($1::json)))
        AND ($2::json IS NULL OR subject IN (SELECT json_array_elements_text($2::json)))
    ),
    wanted AS (SELECT * FROM selected WHERE n <= $3),
    picked AS (
      SELECT DISTINCT ON (r.series_id, bucket) r.series_id, (r.ts - $4::bigint) / $6::bigint AS bucket, r.ts, r.value, r.label
      FROM ${table} r JOIN wanted w ON w.id = r.series_id
      WHERE r.${keyColumn} >= $7::bigint AND r.${keyColumn} < $5::bigint AND r.ts >= $4::bigint AND r.ts < $5::bigint
      ORDER BY r.series_id, bucket, CASE WHEN w.peak THEN r.value END DESC NULLS LAST, CASE WHEN w.peak THEN r.ts END, r.ts DESC
    )`;
  /** The series as JSON values (parsed by Bun into objects), for query(). */
  const asValues = `,
    series AS (
      SELECT series_id,
        json_agg(ts ORDER BY bucket) AS t,
        json_agg(value ORDER BY bucket) AS v,
        CASE WHEN bool_or(label IS NOT NULL) THEN json_agg(label ORDER BY bucket) END AS labels
      FROM picked GROUP BY series_id
    )
    SELECT (SELECT count(*) FROM selected)::int AS selected,
      (SELECT json_agg(json_build_array(w.kind, w.subject, w.field, s.t, s.v, s.labels) ORDER BY w.n)
       FROM wanted w JOIN series s ON s.series_id = w.id) AS series`;
  // ? The series as the text JSON.stringify would give, for answer(): the main thread then
  // neither parses nor serialises them (a 30-day chart at N=30 is 4.6 MB: 40-60 ms of main
  // thread the other way). Strings through to_json (the same escapes as JSON.stringify:
  // \" \\ \b \f \n \r \t, other controls \u00xx), integers as they are, and floats in
  // PostgreSQL's shortest exact form, which is JavaScript's too except where one of them
  // writes an exponent: from 1e15 up (JS: from 1e21), under 1e-4 (JS: under 1e-6), and -0.
  // `odd` says such a value is there; answer() then builds the text from query() instead.
  const asText = `,
    series AS (
      SELECT series_id, count(*) AS len,
        bool_or(abs(value) >= 1e15 OR (value <> 0 AND abs(value) < 1e-4) OR (value = 0 AND value::text = '-0')) AS odd,
        string_agg(ts::text, ',' ORDER BY bucket) AS t,
        string_agg(coalesce(value::text, 'null'), ',' ORDER BY bucket) AS v,
        CASE WHEN bool_or(label IS NOT NULL) THEN string_agg(coalesce(to_json(label)::text, 'null'), ',' ORDER BY bucket) END AS labels
      FROM picked GROUP BY series_id
    )
    SELECT (SELECT count(*) FROM selected)::int AS selected,
      coalesce((SELECT max(len) FROM series), 0)::int AS points,
      coalesce((SELECT bool_or(odd) FROM series), false) AS odd,
      (SELECT string_agg(
         '{"kind":' || to_json(w.kind)::text || ',"subject":' || to_json(w.subject)::text
         || ',"field":' || to_json(w.field)::text || ',"t":[' || s.t || '],"v":[' || s.v || ']'
         || coalesce(',"labels":[' || s.labels || ']', '') || '}', ',' ORDER BY w.n)
       FROM wanted w JOIN series s ON s.series_id = w.id) AS series`;
  /** Where a query of buckets of `bucketMs` reads: the coarsest table whose samples are no wider. */
  const sources = [
    ...ROLLUPS.map(({ table, ms }) => ({ ms, picked: picked(`neolight_history_${table}`, "bucket") })),
    { ms: 1, picked: picked(PG_TABLES.points, "ts") },
  ].map(({ ms, picked }) => ({ ms, values: picked + asValues, text: picked + asText }));

  /** Runs the query of `q` in the form `form` (statement_timeout `timeoutMs`); its one row, and the bucket width. */
  async function run(q: RangeQuery, form: "values" | "text", timeoutMs: number | undefined) {
    const { from, to, points, kinds, subjects, maxSeries: cut } = q;
    const bucketMs = Math.max(1, Math.ceil((to - from) / points));
    const source = sources.find((t) => t.ms <= bucketMs) as (typeof sources)[number];
    const params = [kinds ?? null, subjects ?? null, cut, from, to, bucketMs, from - (from % source.ms)];
    const rows = (await sql.begin(async (tx) => {
      // ? The database stops the query itself: a timeout in JS alone would leave it running.
      if (timeoutMs !== undefined)
        await tx.unsafe(`SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(timeoutMs))}`);
      // ? Shortest exact float output (the default since PostgreSQL 12; a server or role may set it otherwise).
      await tx.unsafe(`SET LOCAL work_mem = '${QUERY_WORK_MEM}'; SET LOCAL extra_float_digits = 1`);
      return tx.unsafe(source[form], params);
    })) as Row[];
    return { row: rows[0] as Row, bucketMs, truncated: ((rows[0] as Row).selected as number) > cut };
  }

  async function query(q: RangeQuery, timeoutMs?: number) {
    const { row, bucketMs, truncated } = await run(q, "values", timeoutMs);
    type Tuple = [string, string, string, number[], (number | null)[], (string | null)[] | null];
    const series: Series[] = ((row.series as Tuple[] | null) ?? []).map(([kind, subject, field, t, v, labels]) => {
      const one: Series = { kind, subject, field, t, v };
      if (labels !== null) one.labels = labels;
      return one;
    });
    return { series, truncated, bucketMs };
  }

  /** The tables' size and estimated rows, as pg_class has them (VACUUM and ANALYZE keep reltuples). */
  async function tableStats(table: string): Promise<{ bytes: number; rows: number }> {
    const [row] = (await sql.unsafe(
      `SELECT pg_total_relation_size(c.oid)::float8 AS bytes, c.reltuples::float8 AS rows FROM pg_class c
       WHERE c.oid = $1::regclass`,
      [table],
    )) as Row[];
    return { bytes: Number(row?.bytes ?? 0), rows: Number(row?.rows ?? -1) };
  }

  return {
    target,
    async record(points) {
      if (points.length === 0) return { written: 0, skipped: 0 };
      const fresh = new Map<string, { kind: string; subject: string; field: string; peak: boolean }>();
      for (const p of points) {
        const k = key(p.kind, p.subject, p.field);
        if (!ids.has(k) && !fresh.has(k))
          fresh.set(k, { kind: p.kind, subject: p.subject, field: p.field, peak: p.peak === true });
      }
      const learned = new Map<string, number>();
      let total = count;
      const skipped = await sql.begin(async (tx) => {
        if (fresh.size > 0) {
          for (const r of await createSeries(tx, [...fresh.values()])) {
            learned.set(key(r.kind as string, r.subject as string, r.field as string), r.id as number);
            total = r.total as number;
          }
        }
        const batch: { s: number; ts: number; v: number | null; l: string | null; p: boolean; o: number }[] = [];
        let skipped = 0;
        let nullPeak = false;
        for (const p of points) {
          const k = key(p.kind, p.subject, p.field);
          const s = ids.get(k) ?? learned.get(k);
          if (s === undefined) {
            skipped++;
            continue;
          }
          const peak = p.peak === true;
          if (peak && p.value === null) nullPeak = true;
          batch.push({ s, ts: Math.round(p.ts), v: p.value, l: p.label ?? null, p: peak, o: batch.length });
        }
        if (batch.length === 0) return skipped;
        await tx.unsafe(recordSql, [batch]);
        if (nullPeak) for (const q of peakAfterNullSql) await tx.unsafe(q, [batch]);
        return skipped;
      });
      // ? Only once committed: a rolled-back series insert must not leave an id behind.
      for (const [k, id] of learned) ids.set(k, id);
      count = Math.max(count, total);
      return { written: points.length - skipped, skipped };
    },
    query,
    async answer(q, facts, timeoutMs) {
      const { row, bucketMs, truncated } = await run(q, "text", timeoutMs);
      if (row.odd === true) return answerJson(q, await query(q, timeoutMs), facts);
      const head = JSON.stringify(answerHead(q, row.points as number, bucketMs, truncated, facts));
      // ? HistoryAnswer's key order, as answerJson() writes it: series last.
      return new TextEncoder().encode(`${head.slice(0, -1)},"series":[${(row.series as string | null) ?? ""}]}`);
    },
    async prune(before, limit) {
      for (const { table, ms } of ROLLUPS) {
        await sql.unsafe(
          `DELETE FROM neolight_history_${table} WHERE (bucket, series_id) IN
           (SELECT bucket, series_id FROM neolight_history_${table} WHERE bucket <= $1::bigint ORDER BY bucket LIMIT $2::int)`,
          [before - ms, limit],
        );
      }
      const deleted = await sql.unsafe(
        `DELETE FROM ${PG_TABLES.points} WHERE (ts, series_id) IN
         (SELECT ts, series_id FROM ${PG_TABLES.points} WHERE ts < $1::bigint ORDER BY ts LIMIT $2::int)`,
        [before, limit],
      );
      return deleted.count;
    },
    async pruneOldest(limit) {
      // ? Oldest first: raw points, then minute roll-ups, then hour ones (as SQLite).
      for (const table of [PG_TABLES.points, PG_TABLES.rollup_minute, PG_TABLES.rollup_hour]) {
        const keyColumn = table === PG_TABLES.points ? "ts" : "bucket";
        let stats = await tableStats(table);
        // ? reltuples is -1 until the table was first vacuumed or analysed.
        if (stats.rows < 0) {
          await sql.unsafe(`ANALYZE ${table}`);
          stats = await tableStats(table);
        }
        const deleted = await sql.unsafe(
          `DELETE FROM ${table} WHERE (${keyColumn}, series_id) IN
           (SELECT ${keyColumn}, series_id FROM ${table} ORDER BY ${keyColumn} LIMIT $1::int)`,
          [limit],
        );
        if (deleted.count === 0) continue;
        // ? Plain VACUUM, not FULL: it takes no lock that stops records or queries, and it
        // makes the rows' space reusable now rather than whenever autovacuum comes by.
        await sql.unsafe(`VACUUM ${table}`);
        const perRow = stats.rows > 0 ? stats.bytes / stats.rows : 0;
        return { rows: deleted.count, freedBytes: Math.round(deleted.count * perRow) };
      }
      return { rows: 0, freedBytes: 0 };
    },
    async size() {
      const [row] = (await sql.unsafe(
        `SELECT (${[PG_TABLES.series, ...DATA_TABLES].map((t) => `pg_total_relation_size('${t}')`).join(" + ")})::float8 AS bytes`,
      )) as Row[];
      return { bytes: Number(row?.bytes ?? 0), walBytes: 0 };
    },
    seriesCount: () => count,
    close() {
      if (closed) return;
      closed = true;
      ids.clear();
    },
  };
}
