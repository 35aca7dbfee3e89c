// Schemas of the risk feature: the Rust engine's state (CONTRACT sections 1 and 2: what
// risk_engine_rust serves at GET /risk/state and persists in state/risk_state.json), our
// GET /risk/status answer around it, and what /status shows of the engine.
import { Type as t } from "@sinclair/typebox";
import { FileSource } from "../agent-files/model";

/**
 * The engine's risk state. An answer or a file that does not match is not a good one: it is
 * never served nor exposed. Units are the engine's (risk_engine_rust computes exposure as
 * Σ|quantity × price| / portfolio value, drawdown × 100, VaR and CVaR in portfolio money).
 */
export const RiskState = t.Object(
  {
    total_exposure: t.Number({
      description: "gross exposure as a ratio of the portfolio's value (0.42 = 42 % of the portfolio)",
    }),
    active_positions: t.Integer({ minimum: 0, description: "open positions" }),
    var: t.Number({ description: "value at risk, money in the portfolio's currency" }),
    cvar: t.Number({
      description: "conditional value at risk (the expected loss beyond the VaR), money in the portfolio's currency",
    }),
    drawdown: t.Number({ description: "drawdown, percent (2.14 = 2.14 %)" }),
    // ? A string in the engine's JSON (Rust's as_secs().to_string()). Bounded to 11 digits so
    // that it always converts to a valid date.
    last_update: t.String({
      pattern: "^[0-9]{1,11}$",
      description: "when the engine last computed this state: Unix seconds, as a string",
    }),
  },
  { additionalProperties: true, description: "The Rust risk engine's state, as it serves and persists it" },
);
export type RiskState = typeof RiskState.static;

/** The unit of each field of RiskState: the same in every answer, for clients that format it. */
export const RiskUnits = t.Object(
  {
    total_exposure: t.Literal("ratio_of_portfolio"),
    active_positions: t.Literal("count"),
    var: t.Literal("money"),
    cvar: t.Literal("money"),
    drawdown: t.Literal("percent"),
    last_update: t.Literal("unix_seconds"),
  },
  { description: "unit of each field of risk" },
);
export type RiskUnits = typeof RiskUnits.static;

/**
 * The one value RiskUnits allows: each property's literal. ? Read off the schema, not
 * `Value.Create`: the same value, without 0.3 ms of start-up (issue 14).
 */
export const RISK_UNITS = Object.fromEntries(
  Object.entries(RiskUnits.properties).map(([field, unit]) => [field, unit.const]),
) as RiskUnits;

const Time = (description: string) => t.Union([t.String(), t.Null()], { description });
const Age = (description: string) => t.Union([t.Number(), t.Null()], { description });

export const RiskStatus = t.Object(
  {
    risk: RiskState,
    units: RiskUnits,
    served_from: t.Union([t.Literal("engine"), t.Literal("file")], {
      description:
        "engine: its answer over HTTP (the latest, or its last good one when stale); file: its own state/risk_state.json, read because the engine is unreachable and the file is not older (by last_update) than its last good answer",
    }),
    fetched_at: Time("when the served engine answer was received (RFC 3339 UTC); null when served from the file"),
    age_seconds: Age("seconds since fetched_at; null when served from the file"),
    file_modified_at: Time(
      "when the engine last wrote the served file (its mtime, RFC 3339 UTC); null when served from the engine",
    ),
    file_age_seconds: Age("seconds since file_modified_at; null when served from the engine"),
    engine_updated_at: t.String({
      description: "the engine's own last_update (when it last computed this state), RFC 3339 UTC",
    }),
    engine_age_seconds: t.Number({ description: "seconds since engine_updated_at" }),
    stale: t.Boolean({ description: "true when the latest request to the engine failed: what is served is older" }),
    last_error: t.Union([t.String(), t.Null()], { description: "why the latest request failed; null when it did not" }),
    source: t.String({ description: "the URL asked (the engine's GET /risk/state)" }),
    state_file: t.String({ description: "the engine's state file read when it is unreachable" }),
  },
  { description: "The risk engine's state from its last good answer or its own file; numbers are never invented" },
);
export type RiskStatus = typeof RiskStatus.static;

/** /status sources.risk_engine. */
export const RiskSource = t.Object({
  url: t.String({ description: "the URL asked (the engine's GET /risk/state)" }),
  reachable: t.Boolean({ description: "the latest request got a good answer" }),
  last_good_at: Time("when the last good answer was received (RFC 3339 UTC)"),
  last_attempt_at: Time("when the engine was last asked (RFC 3339 UTC)"),
  last_error: t.Union([t.String(), t.Null()]),
  failures: t.Integer({ description: "requests that failed since start-up" }),
  serving: t.Union([t.Literal("engine"), t.Literal("file"), t.Literal("none")], {
    description: "what GET /risk/status serves now (none: 503)",
  }),
  state_file: FileSource,
});
export type RiskSource = typeof RiskSource.static;
