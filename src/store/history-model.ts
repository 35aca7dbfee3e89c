// Schemas of what the history store answers (GET /meta/history serves it as it is): TypeBox
// only, so that the history thread, the route, OpenAPI and the page's type-check share them.
import { Type as t } from "@sinclair/typebox";

export const Series = t.Object({
  kind: t.String({ description: "agent, strategy, guardian, breaker, regime, allocation, mode" }),
  subject: t.String({ description: "agent or strategy name, breaker name, or '' for singletons" }),
  field: t.String({ description: "pnl_1d, drawdown, is_paused (0/1), state (0 CLOSED, 0.5 HALF_OPEN, 1 OPEN), ..." }),
  t: t.Array(t.Number(), { description: "Unix ms of each point, ascending" }),
  v: t.Array(t.Union([t.Number(), t.Null()]), { description: "the value at each point" }),
  labels: t.Optional(t.Array(t.Union([t.String(), t.Null()]), { description: "regime label, breaker state, mode" })),
});
/** One series, columnar (what charting libraries take): the store answers it, the page draws it. */
export type Series = typeof Series.static;

export const HistoryAnswer = t.Object(
  {
    from: t.String({ description: "RFC 3339 UTC" }),
    to: t.String({ description: "RFC 3339 UTC" }),
    points: t.Integer({ description: "the most points any series has here" }),
    bucket_ms: t.Integer({ description: "each point stands for this long: its bucket's last sample" }),
    retention_days: t.Integer(),
    truncated: t.Boolean({ description: "true when more series existed than the answer may hold" }),
    recorded_through: t.Union([t.String(), t.Null()], {
      description:
        "RFC 3339 UTC: the cache_timestamp of the latest update whose figures this answer holds (null: none written since start-up; with replicas, of the updates this replica took: each records its own). An update after it is recorded within a second; a named range's answer is shared for a few seconds, so ask again until this reaches your update's timestamp",
    }),
    series: t.Array(Series),
  },
  { description: "Time series of the recorded figures, downsampled" },
);
export type HistoryAnswer = typeof HistoryAnswer.static;
