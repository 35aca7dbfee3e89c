// createApp(services) -> the Elysia app, not listening: main.ts listens, tests call
// app.handle(new Request(...)). Here the routes of every feature are put together with
// the cross-cutting parts: the access log, the one error shape, and the OpenAPI docs.
import { Elysia, ValidationError } from "elysia";
import { accessLog, elapsedMs } from "./http/access-log";
import { accessControl } from "./http/auth";
import {
  describeProblems,
  errorResponse,
  HttpError,
  MethodNotAllowedError,
  NotFoundError,
  type Problem,
} from "./http/errors";
import { DOCS_PATHS, openapiDocs } from "./http/openapi";
import { type RouteTable, routeTable } from "./http/routes";
import { cors } from "./http/security";
import { STALE_HEADER, storeStaleness } from "./http/store-staleness";
import { assertWriteRoutes, writeRoutes } from "./http/write-route";
import { clip } from "./log/logger";
import { agentFileRoutes } from "./modules/agent-files";
import { guardianRoutes } from "./modules/guardian";
import { GUARDIAN_EXAMPLES } from "./modules/guardian/examples";
import { historyRoutes } from "./modules/history";
import { liveRoutes } from "./modules/live";
import { metaRoutes } from "./modules/meta";
import { META_EXAMPLES } from "./modules/meta/examples";
import { metricsRoutes } from "./modules/metrics";
import { riskRoutes } from "./modules/risk";
import { systemRoutes } from "./modules/system";
import type { Services } from "./services";
import { webRoutes } from "./web";

/** "invalid query: from: Expected string" from Elysia's check of a route's schema. */
function describeValidation(error: ValidationError): string {
  const problems = describeProblems(error.all.filter((e) => "path" in e) as Problem[]);
  return `invalid ${error.type}: ${problems || error.message}`;
}

export function createApp(services: Services) {
  const { log } = services;
  const access = accessControl(services.access, services.clientAddress);
  const accessLines = accessLog(log, services.metrics.requests, services.clientAddress);
  const writeRoute = writeRoutes(
    {
      check: access.checkWrite,
      onInvalid: () => services.metrics.countRejected("invalid"),
    },
    { maxBytes: services.config.maxBodyMb * 1024 * 1024, maxNodes: services.config.maxBodyKeys },
  );
  // ? Only with a shared store: the embedded mode answers without one more hook.
  const staleness = services.config.databaseUrl === null ? null : storeStaleness(services.storeStatus);
  let routes: RouteTable = routeTable([]);
  const app = new Elysia({ name: "neolight-dashboard", normalize: false })
    .use(accessLines.plugin)
    // ? Before every route and before onError: the access rules cover every route added
    // below, and the CORS headers reach error answers too.
    .use(access.hooks)
    .use(cors(services.config.corsOrigins))
    .use(staleness?.plugin ?? new Elysia({ name: "store-staleness" }))
    // ? Destructure only what is used: Elysia reads this parameter list to decide what
    // context every request builds, and taking the whole context costs a third of the
    // throughput of GET /meta/metrics (measured).
    .onError({ as: "global" }, ({ code, error, request, path, route, set }) => {
      // ? Elysia wraps whatever a parse hook throws in its ParseError; ours carry a status.
      let cause = code === "PARSE" ? (error as Error).cause : error;
      if (code === "NOT_FOUND") {
        const allowed = routes.allowed(path);
        cause =
          allowed === undefined
            ? new NotFoundError(request.method, path)
            : new MethodNotAllowedError(request.method, path, allowed);
      }
      let status: number;
      let message: string;
      let headers: Record<string, string> | undefined;
      if (cause instanceof HttpError) [status, message, headers] = [cause.status, cause.message, cause.headers];
      else if (code === "PARSE") [status, message] = [400, "request body is not valid JSON"];
      // ? A response that breaks its own schema is our bug, not the client's: 500 below.
      else if (error instanceof ValidationError && error.type !== "response") {
        [status, message] = [422, describeValidation(error)];
      } else {
        log.error("request failed", { method: clip(request.method), path: clip(path), code: String(code), error });
        [status, message] = [500, "Internal Server Error"];
      }
      set.status = status;
      const stale = staleness?.headerFor() ?? null;
      if (stale !== null) headers = { ...headers, [STALE_HEADER]: stale };
      // ? route is undefined for a 404: every unmatched URL counts under one label.
      accessLines.write(request, path, route, status, elapsedMs(request));
      return errorResponse(status, message, headers);
    })
    .use(openapiDocs({ ...META_EXAMPLES, ...GUARDIAN_EXAMPLES }))
    .use(systemRoutes(services.system, () => routes, access.checkPage))
    .use(metaRoutes(services.meta, writeRoute))
    .use(guardianRoutes(services.guardian, writeRoute, access.clientOf))
    .use(agentFileRoutes(services.files))
    .use(riskRoutes(services.risk))
    .use(liveRoutes(services.hub, services.clientAddress))
    .use(historyRoutes(services.history))
    .use(webRoutes())
    .use(metricsRoutes(services.metrics));
  assertWriteRoutes(app.routes);
  routes = routeTable(app.routes, DOCS_PATHS);
  return app;
}

export type App = ReturnType<typeof createApp>;
