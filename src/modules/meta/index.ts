// Routes of the meta-metrics feature: GET/POST /meta/metrics and POST /atlas/update.
import { Elysia } from "elysia";
import { ErrorResponse, jsonResponse } from "../../http/respond";
import type { WriteRoute } from "../../http/write-route";
import { Accepted, AtlasUpdate, MetaMetricsDocument, MetaMetricsUpdate, SAFETY_KEYS } from "./model";
import type { MetaService } from "./service";

// ? Only the answer of this feature: the processor's queue answers 503 (Retry-After) when
// full or when the disk failed. The body's and the access rules' answers (400, 401, 403,
// 408, 413, 415, 422, 429) are added to the document where those rules live (openapi.ts).
const writeErrors = { 503: ErrorResponse };

/** The 200 answer: `coerced` only when some value was stored as null. */
function accepted(seq: number, state: { updatedAt: string | null }, coerced: readonly string[]) {
  return {
    status: "ok" as const,
    timestamp: state.updatedAt as string,
    seq,
    ...(coerced.length > 0 ? { coerced: [...coerced] } : {}),
  };
}

/** `writeRoute`: the app's write path (who may write, the body's limits and schema, timing). */
export function metaRoutes(meta: MetaService, writeRoute: WriteRoute) {
  return new Elysia({ name: "meta" })
    .get("/meta/metrics", () => jsonResponse(meta.documentJson()), {
      response: { 200: MetaMetricsDocument },
      detail: {
        tags: ["telemetry"],
        summary: "The merged meta-metrics document",
        description:
          "The union of every accepted update over the defaults, plus cache_timestamp. The execution router reads guardian.is_paused here before every trade.",
      },
    })
    .post(
      "/meta/metrics",
      ...writeRoute(
        MetaMetricsUpdate,
        async (body, coerced, overLimit) => {
          const { seq, state } = await meta.submit(body, "hive", coerced, overLimit);
          return accepted(seq, state, coerced);
        },
        {
          strict: SAFETY_KEYS,
          response: { 200: Accepted, ...writeErrors },
          detail: {
            tags: ["telemetry"],
            summary: "Replace the top-level keys this body carries",
            description:
              "200 only once the update is applied and on disk. 503 with Retry-After when the queue is full or the disk failed: nothing of the body was kept.",
          },
        },
      ),
    )
    .post(
      "/atlas/update",
      ...writeRoute(
        AtlasUpdate,
        async (body, coerced) => {
          const { seq, state } = await meta.submit(
            { atlas: body },
            "atlas",
            coerced.map((p) => `atlas/${p}`),
          );
          return accepted(seq, state, coerced);
        },
        {
          // ? No strict key: the atlas bridge's figures are all coerced, never refused.
          response: { 200: Accepted, ...writeErrors },
          detail: {
            tags: ["telemetry"],
            summary: "Store the atlas bridge's state under `atlas`",
            description: "Same guarantees as POST /meta/metrics.",
          },
        },
      ),
    );
}
