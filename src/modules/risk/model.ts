// Schema of GET /risk/status: the Rust engine's own answer, untouched, with its age.
import { Type as t } from "@sinclair/typebox";

export const RiskStatus = t.Object(
  {
    risk: t.Object({}, { additionalProperties: true, description: "the engine's /risk/status answer, as it sent it" }),
    fetched_at: t.String({ description: "when that answer was received (RFC 3339 UTC)" }),
    age_seconds: t.Number({ description: "seconds since fetched_at" }),
    stale: t.Boolean({ description: "true when the latest attempt failed and this is an older answer" }),
    last_error: t.Union([t.String(), t.Null()], { description: "why the latest attempt failed; null when it did not" }),
    source: t.String({ description: "the URL asked" }),
  },
  { description: "The last good answer of the risk engine; numbers are never invented" },
);
export type RiskStatus = typeof RiskStatus.static;
