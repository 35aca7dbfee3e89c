// Route of the risk feature: GET /risk/status.
import { Elysia } from "elysia";
import { markStart } from "../../http/access-log";
import { ErrorResponse } from "../../http/respond";
import { RiskStatus } from "./model";
import type { RiskClient } from "./service";

export function riskRoutes(risk: RiskClient) {
  return new Elysia({ name: "risk" }).get(
    "/risk/status",
    ({ request }) => {
      // ? Timed (access log, /metrics): it may wait for the engine, up to its timeout.
      markStart(request);
      return risk.status();
    },
    {
      response: { 200: RiskStatus, 503: ErrorResponse },
      detail: {
        tags: ["risk"],
        summary: "The Rust risk engine's state, with the age of the last good answer",
        description:
          "503 until the engine has answered once. After that, an unreachable engine gives its last answer with stale: true.",
      },
    },
  );
}
