// Routes serving the agent-written files: GET /meta/performance, /meta/regime, /governor/allocations.
// With a shared store, `files` serves the holder's shared copy of a file with no local copy
// here (shared.ts): the routes are the same on every replica.
import { Elysia } from "elysia";
import { jsonResponse } from "../../http/respond";
import { Allocations, PerformanceAttribution, RegimeDocument } from "./model";
import { type AgentFiles, allocationsJson, performanceJson, regimeJson } from "./service";

const SHARED_NOTE =
  "The file's last good content. With several replicas (NEOLIGHT_DATABASE_URL), a replica on a host without the file serves the copy the replica holding the agents' files shared, with the same staleness rules.";

export function agentFileRoutes(files: AgentFiles) {
  return new Elysia({ name: "agent-files" })
    .get("/meta/performance", () => jsonResponse(performanceJson(files)), {
      response: { 200: PerformanceAttribution },
      detail: {
        tags: ["agents"],
        summary: "Performance attribution (state/performance_attribution.json)",
        description: SHARED_NOTE,
      },
    })
    .get("/meta/regime", () => jsonResponse(regimeJson(files)), {
      response: { 200: RegimeDocument },
      detail: {
        tags: ["agents"],
        summary: "Market regime (runtime/market_regime.json), or UNKNOWN",
        description: SHARED_NOTE,
      },
    })
    .get(
      "/governor/allocations",
      () => {
        const { json, source } = allocationsJson(files);
        return jsonResponse(json, { "x-neolight-source": source });
      },
      {
        response: { 200: Allocations },
        detail: {
          tags: ["agents"],
          summary: "Capital allocations: governor file, else override, else empty",
          description: SHARED_NOTE,
        },
      },
    );
}
