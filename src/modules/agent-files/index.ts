// Routes serving the agent-written files: GET /meta/performance, /meta/regime, /governor/allocations.
import { Elysia } from "elysia";
import { jsonResponse } from "../../http/respond";
import { Allocations, PerformanceAttribution, RegimeDocument } from "./model";
import { type AgentFiles, allocationsJson, performanceJson, regimeJson } from "./service";

export function agentFileRoutes(files: AgentFiles) {
  return new Elysia({ name: "agent-files" })
    .get("/meta/performance", () => jsonResponse(performanceJson(files)), {
      response: { 200: PerformanceAttribution },
      detail: { tags: ["agents"], summary: "Performance attribution (state/performance_attribution.json)" },
    })
    .get("/meta/regime", () => jsonResponse(regimeJson(files)), {
      response: { 200: RegimeDocument },
      detail: { tags: ["agents"], summary: "Market regime (runtime/market_regime.json), or UNKNOWN" },
    })
    .get(
      "/governor/allocations",
      () => {
        const { json, source } = allocationsJson(files);
        return jsonResponse(json, { "x-neolight-source": source });
      },
      {
        response: { 200: Allocations },
        detail: { tags: ["agents"], summary: "Capital allocations: governor file, else override, else empty" },
      },
    );
}
