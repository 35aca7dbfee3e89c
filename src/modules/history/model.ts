// Schemas of GET /meta/history: its query and its answer.
import { Type as t } from "@sinclair/typebox";

/** Named ranges the page's picker offers, and their length in ms. */
export const RANGES = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000, "30d": 2_592_000_000 } as const;
export type RangeName = keyof typeof RANGES;

export const HistoryQuery = t.Object({
  range: t.Optional(
    t.Union(
      (Object.keys(RANGES) as RangeName[]).map((r) => t.Literal(r)),
      { description: "the last 1h, 24h, 7d or 30d up to now; used when `from` is absent. Default: 24h" },
    ),
  ),
  from: t.Optional(t.String({ description: "start, RFC 3339 or Unix ms (inclusive)" })),
  to: t.Optional(t.String({ description: "end, RFC 3339 or Unix ms (exclusive). Default: now" })),
  // ? A whole number in the schema (Elysia coerces a query's t.Number; t.Integer it does
  // not): the service gets a number, and "abc" or "1.5" is refused here (422). The range
  // 1..MAX_POINTS is the service's, whose 400 names it.
  points: t.Optional(t.Number({ minimum: 0, multipleOf: 1, description: "points per series, 1..2000. Default: 300" })),
  kinds: t.Optional(
    t.String({
      maxLength: 256,
      description: "comma-separated kinds: agent, strategy, guardian, breaker, regime, allocation, mode",
    }),
  ),
  subject: t.Optional(
    t.String({
      maxLength: 4096,
      description: "comma-separated subjects (agent, strategy or breaker names): only their series",
    }),
  ),
});
export type HistoryQuery = typeof HistoryQuery.static;

// ? The answer's shape is the history store's (store/history-model.ts): the history thread
// builds the whole answer, and store/ knows no feature (issue 10 item 8).
export { HistoryAnswer, Series } from "../../store/history-model";

/** /status `history`: the history database's state. */
export const HistoryStatus = t.Object({
  enabled: t.Boolean({ description: "history is recorded and GET /meta/history answers" }),
  path: t.String({ description: "state/history.db, or with PostgreSQL the database URL, its password replaced" }),
  retention_days: t.Integer(),
  disabled_reason: t.Union([t.String(), t.Null()], { description: "why history is off, when it is" }),
  series: t.Integer({ description: "series recorded" }),
  points_written: t.Integer({ description: "points written since start-up" }),
  flushes: t.Integer(),
  failures: t.Integer(),
  last_error: t.Union([t.String(), t.Null()]),
  last_flush_at: t.Union([t.String(), t.Null()], { description: "RFC 3339 UTC" }),
  corrupt_moved_to: t.Union([t.String(), t.Null()], { description: "where an unreadable history file was moved" }),
  pruned: t.Integer({ description: "points older than the retention removed since start-up" }),
  recording: t.Boolean({
    description: "false while free space on the state disk is under NEOLIGHT_MIN_FREE_MB: nothing is recorded then",
  }),
  min_free_bytes: t.Integer({
    description: "the free-space floor of the state disk; 0: none (always with PostgreSQL: nothing is written locally)",
  }),
  free_bytes: t.Union([t.Integer(), t.Null()], { description: "free space on the state disk at the last check" }),
  skipped_low_space: t.Integer({ description: "points not recorded under the floor since start-up" }),
  max_bytes: t.Integer({ description: "the size cap (NEOLIGHT_HISTORY_MAX_MB)" }),
  bytes: t.Union([t.Integer(), t.Null()], {
    description: "pages in use plus the WAL at the last write; with PostgreSQL pg_total_relation_size of its tables",
  }),
  wal_bytes: t.Union([t.Integer(), t.Null()], { description: "the WAL alone at the last write" }),
  pruned_for_size: t.Integer({ description: "oldest rows removed to keep under the size cap since start-up" }),
});
export type HistoryStatus = typeof HistoryStatus.static;
