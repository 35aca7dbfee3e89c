// createApp(services) -> the Elysia app, not listening: main.ts listens, tests call
// app.handle(new Request(...)). Here the routes of every feature are put together with
// the cross-cutting parts: the access log, the one error shape, and the OpenAPI docs.
import { Elysia, ValidationError } from "elysia";
import { accessLog, elapsedMs } from "./http/access-log";
import { accessControl } from "./http/auth";
import { errorResponse, HttpError } from "./http/errors";
import { DOCS_PATHS, openapiDocs } from "./http/openapi";
import { type RouteTable, routeTable } from "./http/routes";
import { cors } from "./http/security";
import { agentFileRoutes } from "./modules/agent-files";
import { historyRoutes } from "./modules/history";
import { liveRoutes } from "./modules/live";
import { metaRoutes } from "./modules/meta";
import { META_EXAMPLES } from "./modules/meta/examples";
import { metricsRoutes } from "./modules/metrics";
import { riskRoutes } from "./modules/risk";
import { systemRoutes } from "./modules/system";
import type { Services } from "./services";
import { webRoutes } from "./web";

/** How many schema problems one 422 lists; the first few are what a poster needs. */
const MAX_LISTED_PROBLEMS = 3;

/** "guardian/is_paused: Expected boolean; ..." from a TypeBox validation failure. */
export function describeValidation(error: ValidationError): string {
  const problems = error.all
    .filter((e) => "path" in e)
    .slice(0, MAX_LISTED_PROBLEMS)
    .map((e) => `${(e as { path: string }).path.slice(1) || "body"}: ${e.message}`);
  return `invalid ${error.type}: ${problems.length > 0 ? problems.join("; ") : error.message}`;
}

export function createApp(services: Services) {
  const { log } = services;
  const access = accessControl(services.access, services.clientAddress);
  let routes: RouteTable = routeTable([]);
  const app = new Elysia({ name: "neolight-dashboard", normalize: false })
    .use(accessLog(log, services.metrics.requests))
    // ? Before every route and before onError: the access rules cover every route added
    // below, and the CORS headers reach error answers too.
    .use(access.hooks)
    .use(cors(services.config.corsOrigins))
    // ? Destructure only what is used: Elysia reads this parameter list to decide what
    // context every request builds, and taking the whole context costs a third of the
    // throughput of GET /meta/metrics (measured).
    .onError({ as: "global" }, ({ code, error, request, path, route, set }) => {
      // ? Elysia wraps whatever a parse hook throws in its ParseError; ours carry a status.
      const cause = code === "PARSE" ? (error as Error).cause : error;
      let status: number;
      let message: string;
      let headers: Record<string, string> | undefined;
      if (cause instanceof HttpError) [status, message, headers] = [cause.status, cause.message, cause.headers];
      else if (code === "NOT_FOUND") {
        // ? A known path with another method is a 405 naming what it does answer (RFC 9110
        // 15.5.6), so `curl -X DELETE /meta/metrics` is told it is the method, not the path.
        const allowed = routes.allowed(path);
        if (allowed === undefined) [status, message] = [404, `no route for ${request.method} ${path}`];
        else {
          [status, message] = [405, `${request.method} is not allowed on ${path}; it answers ${allowed.join(", ")}`];
          headers = { allow: allowed.join(", ") };
        }
      } else if (code === "PARSE") [status, message] = [400, "request body is not valid JSON"];
      // ? A response that breaks its own schema is our bug, not the client's: 500 below.
      else if (error instanceof ValidationError && error.type !== "response") {
        [status, message] = [422, describeValidation(error)];
      } else {
        log.error("request failed", { method: request.method, path, code: String(code), error });
        [status, message] = [500, "Internal Server Error"];
      }
      set.status = status;
      const ms = elapsedMs(request);
      log.access(request.method, path, status, ms);
      // ? route is undefined for a 404: every unmatched URL counts under one label.
      services.metrics.requests.record(route, request.method, status, ms);
      return errorResponse(status, message, headers);
    })
    .use(openapiDocs(META_EXAMPLES))
    .use(systemRoutes(services.system, () => routes))
    .use(metaRoutes(services.meta, access.beforeBody))
    .use(agentFileRoutes(services.files))
    .use(riskRoutes(services.risk))
    .use(liveRoutes(services.hub))
    .use(historyRoutes(services.history))
    .use(webRoutes())
    .use(metricsRoutes(services.metrics));
  routes = routeTable(app.routes, DOCS_PATHS);
  return app;
}

export type App = ReturnType<typeof createApp>;
