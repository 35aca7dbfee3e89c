// Route of the observability feature: GET /metrics (Prometheus text exposition format).
import { Elysia } from "elysia";
import { timedRead } from "../../http/write-route";
import { CONTENT_TYPE } from "./exposition";
import { MetricsText } from "./model";
import type { MetricsService } from "./service";

export function metricsRoutes(metrics: MetricsService) {
  return new Elysia({ name: "metrics" }).get(
    "/metrics",
    // ? Timed: the scrape's own duration is worth a histogram (it reads /proc and walks the document).
    timedRead(() => new Response(metrics.render(), { headers: { "content-type": CONTENT_TYPE } })),
    {
      response: { 200: MetricsText },
      detail: {
        tags: ["service"],
        summary: "Prometheus metrics",
        description:
          "The service's own figures, NeoLight's figures as labelled gauges, and every source's last update and staleness, in the Prometheus text format 0.0.4. Label values are escaped; each family holds at most 1,000 series.",
      },
    },
  );
}
