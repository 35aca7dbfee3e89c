// Schemas of the live stream GET /events: the data of its two event types, and what
// /status shows of the stream. The stream itself is text/event-stream; the hub
// (telemetry/hub.ts) builds each `data:` line from a value of these types, and OpenAPI
// documents them (under `x-events` of the /events answer).
import { Type as t } from "@sinclair/typebox";
import { allOptional, MetaMetricsDocument } from "../meta/model";

export const SnapshotEvent = t.Object(
  {
    version: t.Integer({ description: "the store's version; the event id is `<boot>.<version>`" }),
    updated_at: t.Union([t.String(), t.Null()], { description: "cache_timestamp of this state" }),
    doc: MetaMetricsDocument,
  },
  { description: "event: snapshot. The whole document: first event of a stream that cannot resume" },
);
export type SnapshotEvent = typeof SnapshotEvent.static;

export const UpdateEvent = t.Object(
  {
    version: t.Integer({ description: "the store's version after this commit" }),
    updated_at: t.Union([t.String(), t.Null()], { description: "cache_timestamp after this commit" }),
    // ? The committed values of the keys the batch changed: the guardian is the served one.
    set: t.Object(allOptional(MetaMetricsDocument.properties), {
      additionalProperties: true,
      description: MetaMetricsDocument.description,
    }),
  },
  { description: "event: update. Merge `set` into the document: its keys replace the stored ones" },
);
export type UpdateEvent = typeof UpdateEvent.static;

/** The stream's events by name: what the `event:` line says, and the type of its data. */
export const LiveEvents = { snapshot: SnapshotEvent, update: UpdateEvent } as const;
export type LiveEvents = { [E in keyof typeof LiveEvents]: (typeof LiveEvents)[E]["static"] };

/** /status `live`: the stream's viewers and drops. */
export const LiveStats = t.Object({
  subscribers: t.Integer({ description: "viewers connected now" }),
  max_subscribers: t.Integer({ description: "viewers at most; one more gets 503" }),
  max_subscribers_per_client: t.Integer({
    description: "viewers one client (an address; all of loopback is one) may hold; one more gets 429",
  }),
  clients: t.Integer({ description: "clients (addresses, loopback as one) holding viewers now" }),
  refused_client_limit: t.Integer({ description: "streams refused with 429 for their client's limit, since start-up" }),
  queue_capacity: t.Integer({ description: "events one viewer may fall behind before it is dropped" }),
  dropped: t.Integer({ description: "viewers dropped because their queue was full, since start-up" }),
  events: t.Integer({ description: "update events published since start-up" }),
  last_event_id: t.String({ description: "id of the latest event: what an up-to-date client sends as Last-Event-ID" }),
  snapshots_sent: t.Integer({ description: "streams that started with a snapshot" }),
  resumed: t.Integer({ description: "streams resumed from Last-Event-ID without a snapshot" }),
});
export type LiveStats = typeof LiveStats.static;
