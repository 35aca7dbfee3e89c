// Routes of the meta-metrics feature: GET/POST /meta/metrics and POST /atlas/update.
import { Elysia } from "elysia";
import { markStart } from "../../http/access-log";
import { coercedPaths, jsonBodyHooks, jsonObjectParser, parsedBodySchema } from "../../http/json-body";
import { ErrorResponse, jsonResponse } from "../../http/respond";
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

/**
 * Write routes read their body with limits and check it, timing the request from here
 * (access log). `beforeBody` runs first and may refuse the request (auth.ts: who may write).
 * `strict`: the keys refused with 422 when they break the schema; any other value that does is
 * stored as null and listed in the answer's `coerced`.
 */
function parseBody(
  schema: Parameters<typeof jsonObjectParser>[0],
  strict: readonly string[],
  beforeBody: (request: Request) => void,
) {
  const parse = jsonObjectParser(schema, strict);
  return jsonBodyHooks(({ request }) => {
    markStart(request);
    beforeBody(request);
    return parse(request);
  });
}

export function metaRoutes(meta: MetaService, beforeBody: (request: Request) => void = () => {}) {
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
      async ({ body }) => {
        const coerced = coercedPaths(body);
        const { seq, state } = await meta.submit(body, "hive", coerced);
        return accepted(seq, state, coerced);
      },
      {
        parse: parseBody(MetaMetricsUpdate, SAFETY_KEYS, beforeBody),
        body: parsedBodySchema(MetaMetricsUpdate),
        response: { 200: Accepted, ...writeErrors },
        detail: {
          tags: ["telemetry"],
          summary: "Replace the top-level keys this body carries",
          description:
            "200 only once the update is applied and on disk. 503 with Retry-After when the queue is full or the disk failed: nothing of the body was kept.",
        },
      },
    )
    .post(
      "/atlas/update",
      async ({ body }) => {
        const coerced = coercedPaths(body);
        const { seq, state } = await meta.submit(
          { atlas: body },
          "atlas",
          coerced.map((p) => `atlas/${p}`),
        );
        return accepted(seq, state, coerced);
      },
      {
        // ? No safety key: the atlas bridge's figures are all coerced, never refused.
        parse: parseBody(AtlasUpdate, [], beforeBody),
        body: parsedBodySchema(AtlasUpdate),
        response: { 200: Accepted, ...writeErrors },
        detail: {
          tags: ["telemetry"],
          summary: "Store the atlas bridge's state under `atlas`",
          description: "Same guarantees as POST /meta/metrics.",
        },
      },
    );
}
