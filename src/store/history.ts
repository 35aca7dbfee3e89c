// The history store: time series of the figures the dashboard charts. The interface, and
// what every backend shares (the answer's bytes, the kinds' order, the roll-ups); the
// SQLite backend ($NEOLIGHT_HOME/state/history.db, the history thread's) is in
// history-sqlite.ts, the PostgreSQL one in postgres/history.ts.
//
// History is a convenience, never a dependency of the live service: every method here
// may throw, and its one caller (the recorder) catches, logs, and carries on.
//
// ? No bun:sqlite here: the main thread loads this file (through the PostgreSQL backend's
// bundle), and bun:sqlite is ~0.4 ms of every start-up to load (issue 14).
import type { HistoryAnswer, Series } from "./history-model";

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
  /** Only series of these subjects (agent, strategy or breaker names; "" for singletons); all when absent. */
  subjects?: readonly string[];
  /** At most this many series; the answer says when more existed. */
  maxSeries: number;
}

/**
 * The kinds that gate or explain trading, in the order an answer gives them: they come
 * before any per-agent or per-strategy series whatever the cut, and have a series budget
 * of their own (in both backends), so that many agents can never crowd them out. (Issue
 * 16: from ~125 agents the 1,000-series cut was all agents and the guardian's chart went
 * blank; from 1,334 a fresh history.db never recorded the guardian at all.)
 */
export const SAFETY_KINDS: readonly string[] = ["guardian", "breaker", "regime", "mode", "allocation"];

/** SQL (SQLite and PostgreSQL alike) ranking a series' kind: the safety kinds first, in SAFETY_KINDS' order. */
export const KIND_RANK = `CASE kind ${SAFETY_KINDS.map((k, i) => `WHEN '${k}' THEN ${i}`).join(" ")} ELSE ${SAFETY_KINDS.length} END`;

export interface HistoryStore {
  readonly path: string;
  /**
   * Appends `points` in one transaction: all or none. Series are created on first use,
   * up to `maxSeries` (open option) of the SAFETY_KINDS and `maxSeries` of the others (two
   * budgets: agents never use up the guardian's); points of series beyond it are skipped
   * and counted in the result. A point of a series at an existing ms replaces it. Throws on storage
   * errors.
   */
  record(points: readonly HistoryPoint[]): { written: number; skipped: number };
  /**
   * Series with points in [from, to). Each bucket of width ceil((to-from)/points) ms
   * gives one point: its last sample (its largest for peak series), at that sample's
   * time; buckets of a minute or more are made from the roll-ups, so a bucket edge that
   * cuts a roll-up's minute or hour gives that minute's or hour's sample to the bucket
   * its time falls in. Series are filtered by kind and subject, ordered by kind (the
   * SAFETY_KINDS first, in their order, then the others by name), subject, field (byte
   * order) and cut at maxSeries before reading (a series without points in
   * the range takes a place in the cut; `truncated` says more were selected). The
   * caller owns the result. Throws on storage errors.
   */
  query(q: RangeQuery): { series: Series[]; truncated: boolean; bucketMs: number };
  /**
   * Deletes up to `limit` points older than `before` (Unix ms), and up to `limit` rows of
   * each roll-up whose bucket ended by then; returns how many points.
   */
  prune(before: number, limit: number): number;
  /**
   * Deletes the oldest `limit` rows for the size cap: raw points first (a chart of a long
   * range still reads the roll-ups), then, once no raw point is left, minute roll-ups, then
   * hour roll-ups, each oldest first; gives the freed pages back to the file system and
   * checkpoints the WAL. Returns how many rows.
   */
  pruneOldest(limit: number): number;
  /** What the history takes on disk now. */
  size(): HistorySize;
  /** Number of distinct series stored (both budgets). */
  seriesCount(): number;
  /** Closes the file (a WAL checkpoint happens on close). Idempotent. */
  close(): void;
}

export interface HistorySize {
  /** Pages in use (the file, less its free pages) plus the WAL: what the size cap counts. */
  bytes: number;
  /** The WAL file alone. */
  walBytes: number;
}

/** What an answer says beside the points, known to the main thread and not to the database. */
export interface AnswerFacts {
  retentionDays: number;
  /** Unix ms of the latest commit whose figures were written before the query ran; null: none. */
  recordedThrough: number | null;
}

/** An answer without its series, in HistoryAnswer's key order (series comes last). */
export function answerHead(
  q: Pick<RangeQuery, "from" | "to">,
  points: number,
  bucketMs: number,
  truncated: boolean,
  { retentionDays, recordedThrough }: AnswerFacts,
): Omit<HistoryAnswer, "series"> {
  return {
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    points,
    bucket_ms: bucketMs,
    retention_days: retentionDays,
    truncated,
    recorded_through: recordedThrough === null ? null : new Date(recordedThrough).toISOString(),
  };
}

/**
 * The answer of GET /meta/history for `q` and what a store's query() gave, as UTF-8 JSON:
 * one function for every backend, so that SQLite and PostgreSQL answer the same bytes for
 * the same points.
 */
export function answerJson(
  q: Pick<RangeQuery, "from" | "to">,
  { series, truncated, bucketMs }: ReturnType<HistoryStore["query"]>,
  facts: AnswerFacts,
): Uint8Array<ArrayBuffer> {
  const points = series.reduce((m, s) => Math.max(m, s.t.length), 0);
  const answer: HistoryAnswer = { ...answerHead(q, points, bucketMs, truncated, facts), series };
  return new TextEncoder().encode(JSON.stringify(answer));
}

/**
 * Roll-up tables: each keeps one sample per series per `ms`, its last one (its largest
 * for peak series), so that a long chart reads one row per series per minute or hour
 * instead of every sample: a 30-day chart of 300 points (buckets of 2.4 h) reads 720 rows
 * per series from the hourly table, not 8,640 (a sample every 5 minutes).
 */
export const ROLLUPS = [
  { table: "rollup_hour", ms: 3_600_000 },
  { table: "rollup_minute", ms: 60_000 },
] as const;
