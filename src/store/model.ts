// Schemas of what the store reports about itself (/status `persistence`). Plain TypeBox,
// no feature: the store's own shapes, which /status and the page read.
import { Type as t } from "@sinclair/typebox";

const Time = (description: string) => t.Union([t.String(), t.Null()], { description });

export const PersistenceStatus = t.Object({
  path: t.String({ description: "the state file" }),
  last_write_at: Time("RFC 3339 time of the last durable write; null before any"),
  last_write_ms: t.Union([t.Number(), t.Null()], {
    description: "duration of the last durable write (write + fsync + rename + dir fsync)",
  }),
  writes: t.Integer(),
  failures: t.Integer(),
  last_error: t.Union([t.String(), t.Null()], {
    description: "the last failure's message while writes are failing; null once a write succeeds again",
  }),
  last_error_at: Time("when that failure happened"),
  restored: t.Boolean({
    description: "the state at start-up came from disk (a file that parsed, even if a safety key broke its schema)",
  }),
  corrupt_found: t.Union([t.String(), t.Null()], {
    description:
      "why the state file found at start-up could not be trusted (never its content); null when it could or there was none",
  }),
  corrupt_moved_to: t.Union([t.String(), t.Null()], {
    description:
      "where that corrupt file was kept, once the first write replaced it; null before (the file is still at `path`, so a restart finds it again and pauses again) and when none was found",
  }),
  unsaved_keys: t.Array(t.String(), {
    description:
      "top-level keys served from memory that are not on disk yet (the fail-safe pause); empty when the disk holds what is served",
  }),
  unsaved_retry_ms: t.Integer({ description: "milliseconds between attempts to write them while any are unsaved" }),
});
export type PersistenceStatus = typeof PersistenceStatus.static;

/** /status `store`: which backend holds the document, and (shared) whether it can be reached. */
export const StoreStatus = t.Object({
  kind: t.Union([t.Literal("file"), t.Literal("postgres")], {
    description: "file: this process's JSON file (the embedded mode); postgres: shared by every replica",
  }),
  target: t.String({ description: "the state file, or the database URL with its password replaced by ***" }),
  reachable: t.Boolean({ description: "the last attempt to reach the store succeeded (always true for a file)" }),
  unreachable_since: Time("RFC 3339 time since which the store cannot be reached; null while it can"),
  ready: t.Boolean({
    description: "the first full load is done and the store is reachable: GET /health/ready answers 200",
  }),
  seq: t.Integer({ description: "sequence of the last update applied here (shared by every replica when postgres)" }),
  caught_up_at: Time("RFC 3339 time this replica last confirmed it holds the store's head (postgres); null for a file"),
  served_from: t.Union([t.Literal("store"), t.Literal("local_copy")], {
    description:
      "store: what the store holds; local_copy: the last local copy, loaded while the database could not be reached at start-up",
  }),
  fail_safe: t.Boolean({
    description:
      "the served guardian is paused because the store was unreachable longer than NEOLIGHT_STORE_STALE_S; clears on catch-up",
  }),
});
export type StoreStatus = typeof StoreStatus.static;
