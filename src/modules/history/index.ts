// Route of the history feature: GET /meta/history.
import { Elysia } from "elysia";
import { ErrorResponse, jsonResponse } from "../../http/respond";
import { HistoryAnswer, HistoryQuery } from "./model";
import type { History } from "./service";

export function historyRoutes(history: History) {
  return new Elysia({ name: "history" }).get(
    "/meta/history",
    async ({ query, headers }) => {
      const body = await history.query(query);
      // ? Gzipped when the client takes it (browsers do): 7 MB of JSON at 300 agents is
      // ~1 MB, and the main thread, which also answers the router, sends it.
      if (!/\bgzip\b/.test(headers["accept-encoding"] ?? "")) return jsonResponse(body.json);
      return jsonResponse(body.gzip, { "content-encoding": "gzip", vary: "accept-encoding" });
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
