// Schemas of what the logger reports about itself (/status `guardian.logs`). Plain TypeBox:
// the page and OpenAPI read these without importing the logger (which needs node:fs).
import { Type as t } from "@sinclair/typebox";

/** What the logger did to keep its file bounded. */
export const LogStats = t.Object({
  max_bytes: t.Union([t.Integer(), t.Null()], { description: "rotation size; null: never rotated by the service" }),
  rotated_files: t.Integer({ description: "rotated files kept (service.log.1 ...)" }),
  rotations: t.Integer({ description: "rotations since start-up" }),
  min_free_bytes: t.Integer({ description: "free-space floor of the log's filesystem; 0: none" }),
  low_space: t.Boolean({
    description: "INFO lines are kept out of the file now because free space is under the floor",
  }),
  dropped_low_space: t.Integer({
    description: "INFO and DEBUG lines kept out of the file under the floor, since start-up (stdout got them)",
  }),
});
export type LogStats = typeof LogStats.static;

/** One log file in /status `guardian.logs`: where it is, its size, and LogStats. */
// ? Spread, not t.Composite: the same object, without Composite's 0.3-0.5 ms at import (issue 14).
export const LogFile = t.Object({
  path: t.String(),
  bytes: t.Integer({ description: "the file's size now" }),
  ...LogStats.properties,
});
export type LogFile = typeof LogFile.static;
