// Route of the history feature: GET /meta/history.
import { Elysia } from "elysia";
import { ErrorResponse, jsonResponse } from "../../http/respond";
import type { HistoryBody } from "../../store/history-thread";
import { HistoryAnswer, HistoryQuery } from "./model";
import type { History } from "./service";

/** Which of an answer's two encodings a response sends. */
type Encoding = keyof HistoryBody;

export function historyRoutes(history: History) {
  // ? `new Response(uint8Array)` copies the bytes on the main thread, per request: 1-2 ms for
  // a 1 MB gzipped 30-day answer at 300 agents, 6 ms for its 7 MB JSON, and five dashboards
  // handed the same cached answer at once stalled the router's GETs by five copies in a row
  // (issue 16: p99 34 ms). A Blob is copied once, when an encoding is first sent; every
  // Response of it shares its bytes. Keyed by the answer object, so a cached answer's
  // Blobs live as long as the cache holds it.
  const sendable = new WeakMap<HistoryBody, Partial<Record<Encoding, Blob>>>();
  const blobOf = (body: HistoryBody, encoding: Encoding): Blob => {
    let blobs = sendable.get(body);
    if (blobs === undefined) {
      blobs = {};
      sendable.set(body, blobs);
    }
    blobs[encoding] ??= new Blob([body[encoding]]);
    return blobs[encoding];
  };
  return new Elysia({ name: "history" }).get(
    "/meta/history",
    async ({ query, headers }) => {
      const body = await history.query(query);
      // ? Gzipped when the client takes it (browsers do): 7 MB of JSON at 300 agents is
      // ~1 MB, and the main thread, which also answers the router, sends it.
      if (!/\bgzip\b/.test(headers["accept-encoding"] ?? "")) return jsonResponse(blobOf(body, "json"));
      return jsonResponse(blobOf(body, "gzip"), { "content-encoding": "gzip", vary: "accept-encoding" });
    },
    {
      query: HistoryQuery,
      response: { 200: HistoryAnswer, 400: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse },
      detail: {
        tags: ["telemetry"],
        summary: "Recorded figures over time, downsampled for charts",
        description:
          "Per-agent and per-strategy figures, guardian (is_paused 0/1, drawdown), breakers, regime, mode and allocations, as recorded after each applied update (at most once a second). The range (`range`, or `from`/`to`) is cut into `points` equal buckets; each gives its last sample (its largest for is_paused and breakers, so short pauses still show). 503 when history is off or its file unusable; the live endpoints never depend on it.",
      },
    },
  );
}
