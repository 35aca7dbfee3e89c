// The observability feature: GET /metrics in the Prometheus text format, and the
// staleness of every NeoLight source. Everything is computed at scrape time from what the
// service already holds (the document, the agent files, the risk engine's last answer,
// counters): nothing here runs per update, and only RequestStats.record runs per request.
// A figure is exposed only when its source holds a finite number: never invented.
// The families are written by process.ts (the service), document.ts (NeoLight's figures),
// risk.ts (the risk engine) and sources.ts (staleness); this file puts one scrape together
// and counts the updates refused.
import type { Config } from "../../config";
import type { Logger } from "../../log/logger";
import type { StoreStatus } from "../../store/shared";
import type { DocumentStore } from "../../store/store";
import type { Processor } from "../../telemetry/processor";
import type { AgentFiles } from "../agent-files/service";
import type { AlertsService } from "../alerts/service";
import { type GuardianService, OPERATOR_OUTCOMES } from "../guardian/service";
import type { History } from "../history/service";
import type { MetaService } from "../meta/service";
import type { RiskClient } from "../risk/service";
import { documentFiguresWriter } from "./document";
import { ExpositionWriter, type Histogram } from "./exposition";
import type { MetricsStatus, SourceStaleness } from "./model";
import { writeDurability, writeHistory, writeProcess, writeStore, writeTraffic } from "./process";
import { createRequestStats, type RequestStats } from "./requests";
import { writeRisk } from "./risk";
import { watchSources, writeSources } from "./sources";

/** Reasons an update was refused, always exposed (0 until one happens) so alerts can rate() them. */
export const REJECT_REASONS = ["full", "invalid", "unauthorised", "rate_limited", "unpersisted"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface MetricsDeps {
  config: Config;
  log: Logger;
  store: DocumentStore;
  /** Which store holds the document and whether it can be reached (issue 12): neolight_store_*. */
  storeStatus: () => StoreStatus;
  processor: Processor;
  meta: MetaService;
  files: AgentFiles;
  /** The pause file (a source) and the operator's actions (a counter family), issue 11. */
  guardian: Pick<GuardianService, "file" | "actions">;
  risk: RiskClient;
  /** Epoch ms of start-up (staleness of sources never heard from counts from here). */
  startedAt: number;
  /** Durations of durable writes (persistence.ts). */
  writeLatency: Histogram;
  /** Clients connected to the live stream now (the hub's count): neolight_sse_subscribers. */
  sseSubscribers: () => number;
  /** History's figures: neolight_history_*. */
  history: Pick<History, "status">;
  /** The notifiers' counts (issue 13). */
  alerts: Pick<AlertsService, "status">;
  now?: () => number;
}

export interface MetricsService {
  /** Per-request figures; record() is called by the access log and the error handler. */
  readonly requests: RequestStats;
  /**
   * One scrape: the whole exposition as text. Reads memory and /proc only (never the risk
   * engine or the disk). Families over the series limit are cut, logged once, and shown in
   * status().
   */
  render(): string;
  /** Every source's staleness as of now (/status `staleness`). */
  staleness(): SourceStaleness[];
  /** The series limit and what the last scrape had to cut (/status `metrics`). */
  status(): MetricsStatus;
  /**
   * Counts an update refused before it reached the channel: by auth and rate limits (issue 5),
   * or as an invalid body where the write path refused it (http/write-route.ts).
   */
  countRejected(reason: "invalid" | "unauthorised" | "rate_limited"): void;
  /** Stops the staleness check. Idempotent. */
  close(): void;
}

export function startMetrics(deps: MetricsDeps): MetricsService {
  const { config, log, store, processor, meta, files, risk, writeLatency } = deps;
  const now = deps.now ?? Date.now;
  const requests = createRequestStats();
  const rejected = { invalid: 0, unauthorised: 0, rate_limited: 0 };
  let scrapes = 0;
  let truncated: MetricsStatus["truncated"] = [];

  const monitor = watchSources({
    config,
    log,
    processor,
    files,
    pauseFile: deps.guardian.file,
    risk,
    startedAt: deps.startedAt,
    now,
  });
  const writeDocument = documentFiguresWriter({ store, files, now });

  function writeRejected(w: ExpositionWriter): void {
    const q = meta.stats();
    const reasons: Record<RejectReason, number> = {
      full: q.rejected_full,
      invalid: rejected.invalid,
      unauthorised: rejected.unauthorised,
      rate_limited: rejected.rate_limited,
      unpersisted: q.rejected_unpersisted,
    };
    w.family(
      "neolight_telemetry_updates_rejected_total",
      "counter",
      "Updates refused, by reason; nothing of them was kept",
    );
    for (const reason of REJECT_REASONS) w.sample(reasons[reason], { reason });
  }

  /** Every action and outcome always exposed (0 until one happens), so alerts can rate() them. */
  function writeOperatorActions(w: ExpositionWriter): void {
    const actions = deps.guardian.actions();
    w.family(
      "neolight_guardian_operator_actions_total",
      "counter",
      "POST /guardian/pause and /guardian/resume that reached the guardian, by outcome (failed: the pause file or the state could not be written)",
    );
    for (const action of ["pause", "resume"] as const) {
      for (const outcome of OPERATOR_OUTCOMES) w.sample(actions[action][outcome], { action, outcome });
    }
  }

  /** Per configured notifier: none when alerts are off. */
  function writeAlerts(w: ExpositionWriter): void {
    const notifiers = deps.alerts.status().notifiers;
    const families = [
      ["neolight_alerts_sent_total", "counter", "Alerts delivered, by notifier", "sent"],
      [
        "neolight_alerts_failed_total",
        "counter",
        "Alert delivery attempts that failed (each retry counts), by notifier",
        "failed",
      ],
      [
        "neolight_alerts_dropped_total",
        "counter",
        "Alerts given up (queue full, retries exhausted, refused, or left at shutdown), by notifier",
        "dropped",
      ],
      ["neolight_alerts_queued", "gauge", "Alerts waiting to be sent, by notifier", "queued"],
    ] as const;
    for (const [name, type, help, field] of families) {
      w.family(name, type, help);
      for (const n of notifiers) w.sample(n[field], { notifier: n.name });
    }
  }

  return {
    requests,
    render() {
      scrapes++;
      const w = new ExpositionWriter(config.metricsMaxSeries);
      writeProcess(w);
      writeTraffic(w, { requests, meta });
      writeRejected(w);
      writeOperatorActions(w);
      writeDurability(w, { log, store, writeLatency, sseSubscribers: deps.sseSubscribers });
      writeStore(w, deps.storeStatus(), now());
      writeHistory(w, deps.history.status());
      writeDocument(w);
      writeRisk(w, risk);
      writeSources(w, monitor);
      writeAlerts(w);
      const before = new Set(truncated.map((t) => t.family));
      truncated = [...w.truncated].map(([family, dropped]) => ({ family, limit: w.seriesLimit, dropped }));
      for (const t of truncated) {
        // ? Once per family while it stays over the limit: every scrape would flood the log.
        if (!before.has(t.family)) log.warn("metric series limit reached", t);
      }
      w.family("neolight_metrics_series_dropped", "gauge", "Series left out of this scrape at the per-family limit");
      for (const t of truncated) w.sample(t.dropped, { family: t.family });
      return w.text();
    },
    staleness: () => monitor.entries(),
    status: () => ({ series_limit: config.metricsMaxSeries, scrapes, truncated: truncated.map((t) => ({ ...t })) }),
    countRejected(reason) {
      rejected[reason]++;
    },
    close() {
      monitor.close();
    },
  };
}
