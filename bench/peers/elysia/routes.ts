// "The Elysia peer with this service's routes" (issue 14): the framework's cost for this
// service's API surface, apart from what the service does. The same 21 method + path pairs
// as the service's own routes (its docs and asset routes aside), each declared with the
// service's own TypeBox response schemas (imported from src/modules/*/model.ts) and, for the
// four writes, a parse hook that reads the body and a body schema Elysia does not validate,
// as the service's writeRoute declares them; five global hooks that do nothing, where the
// service has its access log, access rules, CORS and error shape; @elysiajs/openapi as the
// hello peer. Every handler answers a precomputed Response, as the service's GETs do.
// PEER_WORKER=1 adds the idle SQLite thread (thread.ts); PEER_CONTRACT=1 the least start-up
// work the wire contract asks for, before listening (contract.ts). A benchmark peer, not a service:
// it keeps nothing and checks nothing.
//
// Build (`make bench` does it):
//   bun run scripts/build.ts bench/peers/elysia/elysia-routes-peer bench/peers/elysia/routes.ts
import { openapi } from "@elysiajs/openapi";
import { type TSchema, Type as t } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { ErrorResponse } from "../../../src/http/errors";
import { Allocations, PerformanceAttribution } from "../../../src/modules/agent-files/model";
import { GuardianView } from "../../../src/modules/guardian/model";
import {
  Accepted,
  MetaMetricsDocument,
  MetaMetricsUpdate,
  RegimeDocument,
  ServedGuardian,
} from "../../../src/modules/meta/model";
import { MetricsText } from "../../../src/modules/metrics/model";
import { RiskStatus } from "../../../src/modules/risk/model";
import { Health, Ready, ServiceInfo, Status } from "../../../src/modules/system/model";
import { HistoryAnswer } from "../../../src/store/history-model";
// Embedded at build time, so the compiled binary runs from any directory.
import fixture from "../../../test/fixtures/neolight/meta_metrics_post.json";
import { maybeDoContractWork } from "./contract";
import { maybeStartThread } from "./thread";

const port = Number(process.env.NEOLIGHT_DASHBOARD_PORT || 8100);
const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const METRICS = JSON.stringify({ ...fixture, cache_timestamp: now });
const HEALTH = JSON.stringify({ status: "ok", version: "1.0.0-elysia", timestamp: now });
const json = { "content-type": "application/json" };
/** A handler of the service's kind: precomputed bytes, a new Response per request. */
const answer = (text: string) => () => new Response(text, { headers: json });

maybeStartThread();

const writeErrors = { 503: ErrorResponse };
/** The service's GET routes and the schemas each declares for its answers. */
const READS: [string, Record<number, TSchema>][] = [
  ["/", { 200: ServiceInfo }],
  ["/health", { 200: Health }],
  ["/health/ready", { 200: Ready, 503: ErrorResponse }],
  ["/status", { 200: Status }],
  ["/meta/metrics", { 200: MetaMetricsDocument }],
  ["/guardian", { 200: GuardianView }],
  ["/meta/performance", { 200: PerformanceAttribution }],
  ["/meta/regime", { 200: RegimeDocument }],
  ["/governor/allocations", { 200: Allocations }],
  ["/risk/status", { 200: RiskStatus, 503: ErrorResponse }],
  ["/events", {}],
  ["/meta/history", { 200: HistoryAnswer, 400: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse }],
  ["/assets/app.js", {}],
  ["/assets/app.css", {}],
  ["/favicon.ico", {}],
  ["/metrics", { 200: MetricsText }],
];
/** The service's write routes, their body schemas and their answers' schemas. */
const WRITES: [string, TSchema, Record<number, TSchema>][] = [
  ["/meta/metrics", MetaMetricsUpdate, { 200: Accepted, ...writeErrors }],
  ["/atlas/update", t.Record(t.String(), t.Unknown()), { 200: Accepted, ...writeErrors }],
  ["/guardian/pause", t.Object({ reason: t.String() }), { 200: ServedGuardian, ...writeErrors }],
  ["/guardian/resume", t.Object({ reason: t.Optional(t.String()) }), { 200: ServedGuardian, ...writeErrors }],
];

const noop = () => {};
/** A write route's parse hook: the body read and dropped. */
async function readBody({ request }: { request: Request }): Promise<Record<string, never>> {
  await request.arrayBuffer();
  return {};
}
let app = new Elysia({ normalize: false })
  .onRequest(noop)
  .onBeforeHandle({ as: "global" }, noop)
  .onAfterHandle({ as: "global" }, noop)
  .onAfterResponse({ as: "global" }, noop)
  .onError({ as: "global" }, () => new Response('{"error":"peer","code":500}', { status: 500, headers: json }))
  .use(openapi());
for (const [path, response] of READS) {
  app = app.get(path, answer(path === "/meta/metrics" ? METRICS : HEALTH), { response, detail: { summary: path } });
}
for (const [path, body, response] of WRITES) {
  app = app.post(path, answer(HEALTH), {
    parse: [readBody, "application/json"],
    body: { ...body, noValidate: true },
    response,
    detail: { summary: path },
  });
}
// ? Not a top-level await: the binary is compiled with --bytecode, which does not take one.
void maybeDoContractWork().then(() =>
  app.listen({ port, hostname: "127.0.0.1", reusePort: false, development: false }),
);

const stop = () => {
  app.server?.stop(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
