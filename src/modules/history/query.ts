// GET /meta/history's query, read: the range it asks for, the points per series, the series
// it selects, and whether its answer may be shared (a named range) or not (from/to).
import { BadRequestError } from "../../http/errors";
import { type HistoryQuery, RANGES, type RangeName } from "./model";

/** Default points per series in an answer: one per ~3 px of a 1000 px chart. */
export const DEFAULT_POINTS = 300;
/** Most points per series in an answer: bounds the work and the size of one answer. */
export const MAX_POINTS = 2000;

/** A query as the reader thread runs it. */
export interface QueryPlan {
  /** Unix ms, inclusive. */
  from: number;
  /** Unix ms, exclusive. */
  to: number;
  points: number;
  kinds: string[] | undefined;
  subjects: string[] | undefined;
  /**
   * The key its answer is shared under, or null when it must be fresh. Only "the last
   * <range>" is shared: it is what the page asks, every viewer the same, and a few seconds
   * of age do not show on a chart of an hour or a month.
   */
  shareKey: string | null;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/** `2025-11-03T22:00:00Z` or `1762207200000` -> Unix ms; BadRequestError otherwise. */
function parseTime(name: string, text: string): number {
  // ? Only RFC 3339 goes to Date.parse: it is lenient and read "-1" as 2001-01-01 (issue 15).
  const ms = /^\d{1,15}$/.test(text) ? Number(text) : RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms))
    throw new BadRequestError(`${name} must be RFC 3339 or Unix ms, got ${JSON.stringify(text)}`);
  return ms;
}

/** The comma-separated list of a query parameter, or undefined when absent. */
function listParam(text: string | undefined): string[] | undefined {
  return text
    ?.split(",")
    .map((k) => k.trim())
    .filter(Boolean);
}

/** Reads a query that passed the HistoryQuery schema; BadRequestError (400) for what it cannot check. */
export function planQuery(q: HistoryQuery, now: number): QueryPlan {
  const to = q.to === undefined ? now : parseTime("to", q.to);
  const range = (q.range ?? "24h") as RangeName;
  const from = q.from === undefined ? to - RANGES[range] : parseTime("from", q.from);
  if (from >= to) throw new BadRequestError("from must be before to");
  const points = q.points ?? DEFAULT_POINTS;
  if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) {
    throw new BadRequestError(`points must be an integer from 1 to ${MAX_POINTS}, got ${JSON.stringify(q.points)}`);
  }
  const named = q.from === undefined && q.to === undefined;
  return {
    from,
    to,
    points,
    kinds: listParam(q.kinds),
    subjects: listParam(q.subject),
    shareKey: named ? JSON.stringify([range, points, q.kinds ?? null, q.subject ?? null]) : null,
  };
}
