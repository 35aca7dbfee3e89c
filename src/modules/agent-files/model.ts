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

/** What /status shows of one watched file (WatchedFile.state()). */
export const FileSource = t.Object({
  name: t.String({ description: "short name for logs and /status, e.g. market_regime" }),
  path: t.String(),
  present: t.Boolean({ description: "the file exists now" }),
  serving: t.Union([t.Literal("file"), t.Literal("last_good"), t.Literal("shared"), t.Literal("none")], {
    description:
      "what clients get: the file's content, the last good copy of it, the copy the replica holding the agents' files shared (no local copy here; issue 12), or nothing (default)",
  }),
  last_good_read: t.Union([t.String(), t.Null()], {
    description: "RFC 3339 time of the last read that gave a valid document (serving shared: the holder's read)",
  }),
  last_change: t.Union([t.String(), t.Null()], {
    description: "RFC 3339 time the file last changed (its mtime), as last seen",
  }),
  last_good_change: t.Union([t.String(), t.Null()], {
    description: "mtime of the last valid version: when its writer last wrote a good document",
  }),
  parse_errors: t.Integer({ description: "distinct versions of the file that could not be used" }),
  last_error: t.Union([t.String(), t.Null()]),
});
export type FileSource = typeof FileSource.static;

/**
 * Where a replica holding the agents' files shares their last good content with the replicas
 * that have no local copy (issue 12): a top-level key of the document, never served in GET
 * /meta/metrics, never streamed, refused in a POST (like the guardian's sources).
 */
export const AGENT_FILES_KEY = "_agent_files";

/** One agent file as its holder last read it whole. */
export const SharedAgentFile = t.Object({
  content: t.Unknown({ description: "the file's last good content, as its schema accepted it" }),
  read_at: t.Union([t.String(), t.Null()], { description: "RFC 3339 time the holder read it (last_good_read)" }),
  changed_at: t.Union([t.String(), t.Null()], {
    description: "the file's mtime when the holder read it (last_good_change): what staleness is judged on",
  }),
});
export type SharedAgentFile = typeof SharedAgentFile.static;

/** The value under AGENT_FILES_KEY: each file the holder has a good copy of, by its short name. */
export const SharedAgentFiles = t.Record(t.String(), SharedAgentFile);
export type SharedAgentFiles = typeof SharedAgentFiles.static;
