// Schemas of the alerts feature (issue 13): the events an operator can mute, the JSON a
// webhook receives, and the /status `alerts` section.
import { Type as t } from "@sinclair/typebox";

/**
 * Every event, in NEOLIGHT_ALERTS's spelling. `shared_store_*`: issue 12's shared store
 * (PostgreSQL) cannot be reached, and is again (never sent in the embedded mode).
 */
export const ALERT_EVENTS = [
  "guardian_paused",
  "guardian_resumed",
  "source_stale",
  "source_recovered",
  "persistence_failing",
  "persistence_recovered",
  "channel_saturated",
  "channel_recovered",
  "service_started",
  "service_restarted_unclean",
  "shared_store_unreachable",
  "shared_store_recovered",
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

export const AlertSeverity = t.Union([t.Literal("critical"), t.Literal("warning"), t.Literal("info")]);
export type AlertSeverity = typeof AlertSeverity.static;

/** What NEOLIGHT_ALERT_WEBHOOK_URL receives: one JSON POST per alert. */
export const WebhookPayload = t.Object({
  event: t.Union(ALERT_EVENTS.map((e) => t.Literal(e))),
  severity: AlertSeverity,
  summary: t.String({ description: "one line, without the mode's mark" }),
  details: t.Record(t.String(), t.Unknown(), { description: "the event's fields, as the log line has them" }),
  timestamp: t.String({ description: "when it happened, RFC 3339 UTC" }),
  service: t.Literal("neolight-dashboard"),
  host: t.String({ description: "the machine's host name" }),
  text: t.String({
    description: "the mode's mark, the summary and the details in words: what Slack and Mattermost show",
  }),
});
export type WebhookPayload = typeof WebhookPayload.static;

export const NotifierStatus = t.Object({
  name: t.Union([t.Literal("telegram"), t.Literal("webhook")]),
  target: t.String({ description: "where it sends, without any secret (the origin; the chat for Telegram)" }),
  queued: t.Integer({ description: "alerts waiting to be sent" }),
  capacity: t.Integer({ description: "most alerts waiting; past it the oldest is dropped" }),
  sent: t.Integer(),
  failed: t.Integer({ description: "attempts that failed (each retry counts)" }),
  dropped: t.Integer({ description: "alerts given up: queue full, retries exhausted, refused, or left at shutdown" }),
  failing: t.Boolean({ description: "the last attempt failed (logged once per outage)" }),
  last_error: t.Union([t.String(), t.Null()], {
    description: "the last failure, secrets removed; null once one is sent",
  }),
  last_error_at: t.Union([t.String(), t.Null()]),
  last_sent_at: t.Union([t.String(), t.Null()]),
  capped_until: t.Union([t.String(), t.Null()], {
    description: "while the per-minute cap holds alerts back: when the next may go; null otherwise",
  }),
});
export type NotifierStatus = typeof NotifierStatus.static;

export const AlertsStatus = t.Object({
  events: t.Array(t.String(), { description: "the events sent (NEOLIGHT_ALERTS)" }),
  notifiers: t.Array(NotifierStatus, { description: "one per configured notifier; empty: alerts are off" }),
});
export type AlertsStatus = typeof AlertsStatus.static;
