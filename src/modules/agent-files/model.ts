// Schemas of the files NeoLight's agents write (CONTRACT section 1). A file that does not
// match is treated like a half-written one: the last good copy keeps being served.
import { Type as t } from "@sinclair/typebox";
import { RegimeDocument } from "../meta/model";

const open = { additionalProperties: true } as const;

export const Decision = t.Object(
  {
    agent: t.String(),
    decision: t.String(),
    reasoning: t.String(),
    timestamp: t.String(),
    pnl: t.Union([t.Number(), t.Null()]),
    pnl_attributed: t.Boolean(),
  },
  open,
);

/** state/performance_attribution.json (at most 1000 decisions, newest last). */
export const PerformanceAttribution = t.Object(
  {
    decisions: t.Array(Decision),
    last_update: t.Union([t.String(), t.Null()]),
  },
  { ...open, description: "The performance-attribution agent's file, or {decisions: [], last_update: null}" },
);
export type PerformanceAttribution = typeof PerformanceAttribution.static;

export { RegimeDocument };

/** runtime/capital_governor_allocations.json and runtime/allocations_override.json. */
export const Allocations = t.Object(
  {
    allocations: t.Record(t.String(), t.Number({ minimum: 0, maximum: 1 }), { description: "weight per agent, 0..1" }),
    source: t.Optional(t.String()),
    timestamp: t.String(),
    min_allocation: t.Optional(t.Number({ minimum: 0, maximum: 1 })),
    max_allocation: t.Optional(t.Number({ minimum: 0, maximum: 1 })),
  },
  {
    ...open,
    description:
      "The governor's allocations, else its override copy, else {allocations: {}, timestamp}. The x-neolight-source header says which.",
  },
);
export type Allocations = typeof Allocations.static;
