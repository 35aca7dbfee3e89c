// Route of the risk feature: GET /risk/status.
import { Elysia } from "elysia";
import { ErrorResponse } from "../../http/respond";
import { timedRead } from "../../http/write-route";
import { RiskStatus } from "./model";
import type { RiskClient } from "./service";

export function riskRoutes(risk: RiskClient) {
  return new Elysia({ name: "risk" }).get(
    "/risk/status",
    // ? Timed (access log, /metrics): it may wait for the engine, up to its timeout.
    timedRead(() => risk.status()),
    {
      response: { 200: RiskStatus, 503: ErrorResponse },
      detail: {
        tags: ["risk"],
        summary: "The Rust risk engine's state (its GET /risk/state), with its units and ages",
        description:
          "The engine's latest answer. When it is unreachable: its last good answer or, when not older, its own state/risk_state.json (served_from: file), with stale: true. 503 until one of them was good.",
      },
    },
  );
}
