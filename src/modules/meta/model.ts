// Schemas of the meta-metrics document (CONTRACT section 3) and the atlas update.
// One schema, three uses: validation of POST bodies, the TypeScript types, and the
// OpenAPI document. Plain TypeBox (not Elysia's t) so services can validate with these
// too without importing Elysia. Every object keeps unknown keys (additionalProperties): future
// agents add fields, and the contract says unknown keys are kept and served back.
import { type TOptional, type TProperties, type TSchema, Type as t } from "@sinclair/typebox";

const open = { additionalProperties: true } as const;

/** A finite JSON number. TypeBox rejects NaN and ±Infinity (what 1e400 parses to). */
const Figure = (description: string) => t.Number({ description });
const Count = (description: string) => t.Integer({ minimum: 0, description });
// ? No length limits on strings: a snapshot is accepted or refused whole, so a limit the
// contract does not have would refuse a paused guardian with a long reason and leave the
// router reading "not paused". The 1 MiB body limit bounds every string.
const Stamp = (description: string) => t.String({ description });

/** The figures agents and strategies share. */
const tradingFigures = {
  pnl_1d: t.Optional(Figure("P&L over the last day")),
  pnl_7d: t.Optional(Figure("P&L over the last 7 days")),
  sharpe_30d: t.Optional(Figure("30-day Sharpe ratio")),
  winrate_30d: t.Optional(Figure("30-day win rate, 0..1")),
  max_dd_30d: t.Optional(Figure("30-day maximum drawdown")),
};

export const AgentFigures = t.Object(
  {
    ...tradingFigures,
    total_decisions: t.Optional(Count("decisions taken")),
    revenue_24h: t.Optional(Figure("revenue over the last 24 h")),
    revenue_total: t.Optional(Figure("revenue since start")),
  },
  open,
);
export type AgentFigures = typeof AgentFigures.static;

export const StrategyFigures = t.Object(
  {
    ...tradingFigures,
    trade_count: t.Optional(Count("trades taken")),
    score: t.Optional(Figure("strategy score")),
  },
  open,
);
export type StrategyFigures = typeof StrategyFigures.static;

// ? Every guardian field is required: a guardian object without is_paused would replace
// the stored one and the execution router would read "not paused" (the Go incident).
export const Guardian = t.Object(
  {
    is_paused: t.Boolean({ description: "true: the execution router must not trade" }),
    drawdown: Figure("current drawdown, percent"),
    reason: t.String({ description: "why the guardian is in this state" }),
  },
  open,
);
export type Guardian = typeof Guardian.static;

/**
 * Who paused the served guardian (issue 11): the hive's report, the pause file, an operator,
 * or (issue 12) this replica's fail-safe while the shared store cannot be reached.
 */
export const PausedBy = t.Union(
  [t.Literal("hive"), t.Literal("pause_file"), t.Literal("operator"), t.Literal("store"), t.Null()],
  {
    description:
      "who paused it: hive (its last snapshot), pause_file (state/guardian_pause.json, e.g. agent self-heal's cooldown), operator (POST /guardian/pause), store (this replica has not reached the shared PostgreSQL store for NEOLIGHT_STORE_STALE_S: a pause written elsewhere could be unseen); null when not paused",
  },
);
export type PausedBy = typeof PausedBy.static;

/**
 * The guardian as it is served (GET /meta/metrics, the live stream, GET /guardian): the
 * hive's last report with the pause of every source resolved into it (a pause wins,
 * modules/guardian/resolve.ts). The router reads only is_paused.
 */
export const ServedGuardian = t.Object(
  {
    ...Guardian.properties,
    paused_by: PausedBy,
    paused_since: t.Union([t.String(), t.Null()], {
      description: "when is_paused last became true (ISO 8601 UTC, Z); null when not paused",
    }),
    until: t.Optional(
      t.String({ description: "only while the pause in force has one: when it ends (ISO 8601 UTC, Z)" }),
    ),
  },
  { ...open, description: "the guardian, every source's pause resolved in: a pause wins" },
);
export type ServedGuardian = typeof ServedGuardian.static;

export const BreakerState = t.Union([t.Literal("CLOSED"), t.Literal("OPEN"), t.Literal("HALF_OPEN")]);
export type BreakerState = typeof BreakerState.static;

export const Breakers = t.Object({ quote_state: BreakerState, trade_state: BreakerState }, open);
export type Breakers = typeof Breakers.static;

export const RegimeLabel = t.Union([
  t.Literal("BULL"),
  t.Literal("BEAR"),
  t.Literal("SIDEWAYS"),
  t.Literal("HIGH_VOL"),
  t.Literal("UNKNOWN"),
]);
export type RegimeLabel = typeof RegimeLabel.static;

/** runtime/market_regime.json, as the regime detector writes it. */
export const RegimeDocument = t.Object(
  {
    regime: RegimeLabel,
    timestamp: Stamp("when the regime was detected"),
    confidence: t.Optional(Figure("0..1")),
    risk_scaler: t.Optional(Figure("position-size scaler")),
    volatility: t.Optional(Figure("realised volatility")),
    mean_return: t.Optional(Figure("mean return")),
    trend: t.Optional(Figure("trend strength")),
    risk_multiplier: t.Optional(Figure("risk multiplier")),
    strategy: t.Optional(
      t.Object(
        {
          position_sizing: t.Optional(t.String()),
          risk_tolerance: t.Optional(t.String()),
          hold_period: t.Optional(t.String()),
        },
        open,
      ),
    ),
    description: t.Optional(t.String()),
  },
  open,
);
export type RegimeDocument = typeof RegimeDocument.static;

export const Summary = t.Object(
  {
    total_agents: Count("agents reporting"),
    total_strategies: Count("strategies reporting"),
    top_agent: t.Optional(t.Union([t.String(), t.Null()])),
    top_strategy: t.Optional(t.Union([t.String(), t.Null()])),
  },
  open,
);

/** stress_last, as the stress runner posts it (the fixture stress_post.json). */
export const StressResult = t.Object(
  {
    passed: t.Optional(t.Boolean({ description: "the book survived every scenario" })),
    worst_case_pnl: t.Optional(Figure("P&L of the worst scenario")),
    scenarios: t.Optional(
      t.Record(
        t.String(),
        t.Object(
          {
            pnl: t.Optional(Figure("P&L under the scenario")),
            max_dd_pct: t.Optional(Figure("maximum drawdown under the scenario, percent")),
            survived: t.Optional(t.Boolean()),
          },
          open,
        ),
        { description: "result per scenario" },
      ),
    ),
  },
  { ...open, description: "latest stress-test result (stress runner)" },
);
export type StressResult = typeof StressResult.static;

/** A POST /atlas/update body: stored whole under the document's `atlas` key. */
export const AtlasUpdate = t.Object(
  {
    brain: t.Optional(t.Object({}, { ...open, description: "the atlas brain's state" })),
    allocations: t.Optional(t.Record(t.String(), t.Number(), { description: "weights per agent" })),
    timestamp: t.Optional(Stamp("when the bridge sent it")),
  },
  { ...open, description: "Stored whole under the document's `atlas` key" },
);
export type AtlasUpdate = typeof AtlasUpdate.static;

/**
 * `t.Partial` of an object of `properties`, built directly. ? At import, `t.Partial` and
 * `t.Pick` took 0.5-1.2 ms each of start-up (issue 14, timing marks in the compiled
 * binary); wrapping each property in `t.Optional` is the same schema.
 */
export function allOptional<P extends TProperties>(properties: P): { [K in keyof P]: TOptional<P[K]> } {
  const optional: Record<string, TSchema> = {};
  for (const [key, schema] of Object.entries(properties)) optional[key] = t.Optional(schema);
  return optional as { [K in keyof P]: TOptional<P[K]> };
}

/** The contract's top-level sections; the same fields in an update and in the document. */
const sections = {
  timestamp: Stamp("when the poster took the snapshot (ISO 8601, as sent)"),
  per_agent: t.Record(t.String(), AgentFigures, { description: "figures per agent" }),
  per_strategy: t.Record(t.String(), StrategyFigures, { description: "figures per strategy" }),
  guardian: Guardian,
  breakers: Breakers,
  mode: t.String({ description: "TEST_MODE, PAPER_TRADING_MODE, LIVE_MODE, ..." }),
  market_regime: t.Union([RegimeDocument, t.Object({}, { additionalProperties: false })], {
    description: "the regime document, or {}",
  }),
  summary: Summary,
  stress_last: StressResult,
  stress_timestamp: Stamp("when the stress test ran"),
};

/**
 * The top-level keys that gate trading: the execution router reads `guardian`, and
 * `breakers` and `mode` say whether and how it may trade. A value under them that breaks
 * its schema refuses the whole POST (422), and makes a state file corrupt at start-up.
 * Every other value that breaks its schema is stored as null and listed in the answer's
 * `coerced` (issue 15: a refused snapshot took its paused guardian with it).
 */
export const SAFETY_KEYS = ["guardian", "breakers", "mode"] as const;

/**
 * A POST /meta/metrics body: any subset of the sections plus any other keys. Each key it
 * carries replaces the stored one; keys it does not carry are left untouched.
 */
export const MetaMetricsUpdate = t.Object(allOptional(sections), {
  ...open,
  description: "Top-level keys to replace; every key not sent is left as it was",
});
export type MetaMetricsUpdate = typeof MetaMetricsUpdate.static;

/** What GET /meta/metrics serves: the merged document over the defaults. */
export const MetaMetricsDocument = t.Object(
  {
    ...sections,
    guardian: ServedGuardian,
    market_regime: t.Optional(sections.market_regime),
    stress_last: t.Optional(sections.stress_last),
    stress_timestamp: t.Optional(sections.stress_timestamp),
    atlas: t.Optional(AtlasUpdate),
    cache_timestamp: t.Union([t.String(), t.Null()], {
      description: "when the last update was applied (RFC 3339 UTC); null before any",
    }),
  },
  {
    ...open,
    description:
      "guardian, breakers and mode always hold these shapes; any other value is null where a poster's value broke its schema (the POST's answer listed it in coerced)",
  },
);
export type MetaMetricsDocument = typeof MetaMetricsDocument.static;

/**
 * The served document's safety keys (SAFETY_KEYS) as the execution router reads them: what
 * must always validate, while any other value may be a coerced null (issue 15).
 */
// ? The document's own property schemas, not t.Pick (see allOptional): the same check.
export const SafetyFields = t.Object(
  {
    guardian: MetaMetricsDocument.properties.guardian,
    breakers: MetaMetricsDocument.properties.breakers,
    mode: MetaMetricsDocument.properties.mode,
  } satisfies Record<(typeof SAFETY_KEYS)[number], TSchema>,
  open,
);

export const Accepted = t.Object({
  status: t.Literal("ok"),
  timestamp: t.String({ description: "when the update was made durable (RFC 3339 UTC)" }),
  seq: t.Integer({ description: "acceptance order of this update in this process" }),
  coerced: t.Optional(
    t.Array(t.String(), {
      description:
        "only when some were: paths in the body (per_agent/alpha/sharpe_30d) stored as null because their value broke the schema (null, a wrong type, NaN, Infinity, a number beyond a double). Never a safety key: those are refused with 422",
    }),
  ),
});
export type Accepted = typeof Accepted.static;

/** /status `queue`: the telemetry channel between the POST routes and the processor. */
export const QueueStats = t.Object({
  depth: t.Integer({ description: "updates waiting in the channel now" }),
  capacity: t.Integer({ description: "updates the channel holds at most; a POST beyond it gets 503" }),
  accepted: t.Integer({ description: "updates queued since start-up" }),
  applied: t.Integer({ description: "updates applied and made durable since start-up" }),
  rejected_full: t.Integer({ description: "POSTs answered 503 because the channel was full" }),
  rejected_unpersisted: t.Integer({ description: "updates answered 503 because they could not be made durable" }),
  rejected_too_large: t.Integer({
    description: "updates answered 413 because they would grow the document past a cap (safety keys still applied)",
  }),
  document_keys: t.Integer({ description: "top-level keys of the document, counting accepted updates still queued" }),
  document_bytes: t.Integer({ description: "JSON bytes of the stored keys, counting accepted updates still queued" }),
  max_document_keys: t.Integer({ description: "top-level keys beyond which a new key is refused (413)" }),
  max_document_bytes: t.Integer({
    description: "bytes beyond which an update that grows the document is refused (413)",
  }),
});
export type QueueStats = typeof QueueStats.static;
