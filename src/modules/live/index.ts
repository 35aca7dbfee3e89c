// Route of the live stream: GET /events (Server-Sent Events). The hub (telemetry/hub.ts)
// does the work; this turns a subscription into a streamed response and ends the
// subscription when the client goes away.

import type { Server } from "bun";
import { Elysia } from "elysia";
import { type ClientAddress, clientKey } from "../../http/auth";
import { ClientLimitError, UnavailableError } from "../../http/errors";
import { ErrorResponse } from "../../http/respond";
import {
  ClientSubscriberLimitError,
  type Hub,
  HubUnavailableError,
  MAX_SUBSCRIBERS_PER_CLIENT,
  type Subscription,
} from "../../telemetry/hub";
import { LiveEvents, SnapshotEvent, UpdateEvent } from "./model";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  // ? no-transform and X-Accel-Buffering: proxies (nginx) must neither compress nor
  // buffer the stream, or events arrive in lumps minutes late.
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
} as const;

/** A response streaming `sub`'s frames; the subscription ends when the client disconnects. */
export function eventStream(sub: Subscription, signal: AbortSignal): Response {
  const stream = new ReadableStream<Uint8Array>(
    {
      // ? pull, not push: a frame is taken from the subscription only when the socket
      // wants one, so a client that stops reading leaves its frames in its own bounded
      // queue, where the hub sees it fall behind and drops it.
      async pull(controller) {
        const next = await sub.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      cancel() {
        sub.close();
      },
    },
    { highWaterMark: 0 },
  );
  signal.addEventListener("abort", () => sub.close(), { once: true });
  return new Response(stream, { headers: SSE_HEADERS });
}

/** `{version, updated_at, doc}`: an event schema's fields, for the OpenAPI description. */
function describe(schema: { properties: Record<string, unknown> }): string {
  return `{${Object.keys(schema.properties).join(", ")}}`;
}

/** Seconds a viewer waits when the stream is full or stopping: a viewer leaves, a restart ends, in seconds. */
const LIVE_UNAVAILABLE_RETRY_AFTER_S = 5;

/** `clientAddress` tells whose slots a stream takes (MAX_SUBSCRIBERS_PER_CLIENT). */
export function liveRoutes(hub: Hub, clientAddress: ClientAddress) {
  return new Elysia({ name: "live" }).get(
    "/events",
    // ? `server` is named here, not in a global hook: only this route's context pays for it.
    ({ request, server }) => {
      let sub: Subscription;
      try {
        const client = clientKey(clientAddress(request, (server as Server<unknown> | null) ?? null));
        sub = hub.subscribe(request.headers.get("last-event-id"), client);
      } catch (err) {
        if (err instanceof HubUnavailableError) throw new UnavailableError(err.message, LIVE_UNAVAILABLE_RETRY_AFTER_S);
        if (err instanceof ClientSubscriberLimitError) {
          throw new ClientLimitError(err.message, LIVE_UNAVAILABLE_RETRY_AFTER_S);
        }
        throw err;
      }
      return eventStream(sub, request.signal);
    },
    {
      // ? No `response` map here: @elysiajs/openapi would build the responses from it and
      // drop the text/event-stream entry below.
      detail: {
        tags: ["telemetry"],
        summary: "Live stream of applied updates (Server-Sent Events)",
        description:
          "text/event-stream. Starts with `event: snapshot` (the whole document), or, when the request carries a `Last-Event-ID` of this process still held in the ring of recent events, with exactly the events after it. Then one `event: update` per applied batch, whose data holds the replaced top-level keys. Ids are `<boot>.<version>`. A comment line every 15 s keeps idle connections open; a client that falls 64 events behind is disconnected and resumes on reconnect. 503 when 100 viewers are connected; 429 when this client (an address, all of loopback as one) already holds " +
          MAX_SUBSCRIBERS_PER_CLIENT +
          ".",
        responses: {
          200: {
            description: "the event stream",
            content: {
              "text/event-stream": {
                schema: {
                  type: "string",
                  description: `SSE frames: id, event, data (one JSON line). snapshot data: ${describe(SnapshotEvent)}. update data: ${describe(UpdateEvent)}. x-events holds the schema of each event's data.`,
                },
                // ? An extension, as OpenAPI 3.1 has no field for the items of a stream
                // (3.2's itemSchema): event name -> the schema of its data line. `as object`:
                // the plugin's typings do not list x- fields, which OpenAPI allows anywhere.
                ...({ "x-events": LiveEvents } as object),
                examples: {
                  update: {
                    value:
                      'id: m1x2y3.7\nevent: update\ndata: {"version":7,"updated_at":"2025-11-03T22:00:00.123Z","set":{"stress_timestamp":"2025-11-03T21:58:40"}}\n\n',
                  },
                },
              },
            },
          },
          429: {
            description: `this client already holds ${MAX_SUBSCRIBERS_PER_CLIENT} streams; retry after Retry-After`,
            content: { "application/json": { schema: ErrorResponse as object } },
          },
          503: {
            description: "100 viewers connected, or shutting down",
            // TypeBox schemas are JSON Schema; only the OpenAPI typings disagree on details.
            content: { "application/json": { schema: ErrorResponse as object } },
          },
        },
      },
    },
  );
}
