// Routes of the service itself: GET /, /health, /status.
import { Elysia } from "elysia";
import { ErrorResponse } from "../../http/respond";
import type { RouteTable } from "../../http/routes";
import { timedRead } from "../../http/write-route";
import { pageResponse, wantsPage } from "../../web";
import { Health, Ready, ServiceInfo, Status } from "./model";
import type { SystemService } from "./service";

// GET / negotiates (browsers get the page) in its own handler, not in a global hook, so
// no other route pays for it.
/** `checkPage` throws the refusal when the page may not be answered (http/auth.ts AccessControl.checkPage). */
export function systemRoutes(system: SystemService, routes: () => RouteTable, checkPage: (request: Request) => void) {
  return new Elysia({ name: "system" })
    .get("/", ({ request }) => (wantsPage(request) ? pageResponse(request, checkPage) : system.info(routes())), {
      response: { 200: ServiceInfo },
      detail: {
        tags: ["service"],
        summary: "Service info (JSON clients); the dashboard page (browsers)",
        description:
          "JSON unless the Accept header prefers text/html over application/json, as browsers send: then the dashboard page. curl's */* gets JSON.",
      },
    })
    .get("/health", () => system.health(), {
      response: { 200: Health },
      detail: { tags: ["service"], summary: "Liveness: always 200 while the process serves" },
    })
    .get("/health/ready", () => system.ready(), {
      response: { 200: Ready, 503: ErrorResponse },
      detail: {
        tags: ["service"],
        summary: "Readiness: 200 once the document is loaded and while its store can be reached",
        description:
          "For load balancers in front of several replicas (README: Running more than one replica). 503 with Retry-After while a replica with NEOLIGHT_DATABASE_URL cannot reach PostgreSQL or has not loaded the document from it yet; it still serves the last document meanwhile. With the embedded file: always 200 once started. /health stays the liveness probe.",
      },
    })
    .get(
      "/status",
      // ? Timed (access log, /metrics): it measures the disk, which can be slow.
      timedRead(() => system.status()),
      {
        response: { 200: Status },
        detail: {
          tags: ["service"],
          summary: "Measured resource use, queue, persistence and sources",
        },
      },
    );
}
