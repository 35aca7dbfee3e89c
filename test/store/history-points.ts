// Points and the range that covers them, for the history stores' tests: SQLite's
// (history.test.ts) and PostgreSQL's (postgres-history.test.ts) are held to the same rules
// with the same points.
import type { HistoryPoint } from "../../src/store/history";

export const T0 = Date.parse("2025-11-03T22:00:00Z");
export const MIN = 60_000;

/** A point of smart_trader's `field`, `minute` minutes after T0. */
export const p = (
  field: string,
  minute: number,
  value: number | null,
  extra: Partial<HistoryPoint> = {},
): HistoryPoint => ({
  kind: "agent",
  subject: "smart_trader",
  field,
  ts: T0 + minute * MIN,
  value,
  ...extra,
});

/** A range holding every point of the tests, a point per minute. */
export const all = { from: T0 - MIN, to: T0 + 1000 * MIN, points: 1000, maxSeries: 100 };
