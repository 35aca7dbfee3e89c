// Schemas of the observability feature: the /metrics answer, and what /status shows of
// source staleness and of the series limit (the web page reads these from /status).
import { Type as t } from "@sinclair/typebox";

export const MetricsText = t.String({
  description: "Prometheus text exposition format 0.0.4 (content type text/plain; version=0.0.4)",
});

/** One source in /status `staleness`. Field names are kept plain for the web page. */
export const SourceStaleness = t.Object({
  source: t.String({
    description:
      "hive, stress, atlas, performance_attribution, market_regime, capital_governor_allocations, allocations_override or risk_engine",
  }),
  last_update: t.Union([t.String(), t.Null()], {
    description: "RFC 3339 UTC time of the source's last good update; null when none since start-up",
  }),
  expected_interval_s: t.Number({ description: "how often the source should report, seconds; 0: not watched" }),
  age_s: t.Union([t.Number(), t.Null()], { description: "seconds since last_update; null when none since start-up" }),
  stale: t.Boolean({
    description:
      "silent for more than twice expected_interval_s (counted from start-up when never heard from); never true when not watched",
  }),
});
export type SourceStaleness = typeof SourceStaleness.static;

/** /status `metrics`: whether the last scrape had to cut families at the series limit. */
export const MetricsStatus = t.Object({
  series_limit: t.Integer({ description: "series per metric family at most" }),
  scrapes: t.Integer({ description: "GET /metrics answered since start-up" }),
  truncated: t.Array(
    t.Object({
      family: t.String(),
      limit: t.Integer(),
      dropped: t.Integer({ description: "series left out of the last scrape" }),
    }),
    { description: "families cut at the limit in the last scrape; empty when none" },
  ),
});
export type MetricsStatus = typeof MetricsStatus.static;
