// Schemas of the live stream GET /events: the data of its two event types. The stream
// itself is text/event-stream; these document what each `data:` line holds.
import { Type as t } from "@sinclair/typebox";

export const SnapshotEvent = t.Object(
  {
    version: t.Integer({ description: "the store's version; the event id is `<boot>.<version>`" }),
    updated_at: t.Union([t.String(), t.Null()], { description: "cache_timestamp of this state" }),
    doc: t.Object({}, { additionalProperties: true, description: "the document as GET /meta/metrics serves it" }),
  },
  { description: "event: snapshot. The whole document: first event of a stream that cannot resume" },
);

export const UpdateEvent = t.Object(
  {
    version: t.Integer(),
    updated_at: t.Union([t.String(), t.Null()]),
    set: t.Object({}, { additionalProperties: true, description: "the top-level keys this commit replaced" }),
  },
  { description: "event: update. Merge `set` into the document: its keys replace the stored ones" },
);
