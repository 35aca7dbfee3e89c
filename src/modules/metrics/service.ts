// The observability feature: GET /metrics in the Prometheus text format, and the
// staleness of every NeoLight source. Everything is computed at scrape time from what the
// service already holds (the document, the agent files, the risk engine's last answer,
// counters): nothing here runs per update, and only RequestStats.record runs per request.
// A figure is exposed only when its source holds a finite number: never invented.
import { readdirSync, readFileSync } from "node:fs";
import type { TObject } from "@sinclair/typebox";
import type { Config } from "../../config";
import { VERSION } from "../../config";
import type { Logger } from "../../log/logger";
import type { DocumentStore, JsonObject } from "../../store/store";
import type { Processor } from "../../telemetry/processor";
import type { AgentFiles, WatchedFile } from "../agent-files/service";
import { AgentFigures, StrategyFigures } from "../meta/model";
import { defaultDocument, type MetaService } from "../meta/service";
import { RiskState } from "../risk/model";
import type { RiskClient } from "../risk/service";
import { ExpositionWriter, type Histogram, MAX_SERIES_PER_FAMILY } from "./exposition";
import type { MetricsStatus, SourceStaleness } from "./model";
import { createRequestStats, type RequestStats } from "./requests";
import { type SourceWatch, type StalenessMonitor, startStalenessMonitor } from "./staleness";

/** Reasons an update was refused, always exposed (0 until one happens) so alerts can rate() them. */
export const REJECT_REASONS = ["full", "invalid", "unauthorised", "rate_limited", "unpersisted"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/**
 * CONTRACT section 3 figures, from the schemas that validate them: field -> [metric name
 * suffix, help]. Exposed as neolight_<agent|strategy>_<suffix>{agent|strategy}. Two are
 * renamed: the format reserves the _total and _count suffixes for counters and histograms,
 * and these are gauges of the poster's values.
 */
const RENAMED: Record<string, string> = { revenue_total: "revenue_since_start", trade_count: "trades" };

function figureTable(schema: TObject): Record<string, [string, string]> {
  return Object.fromEntries(
    Object.entries(schema.properties).map(([field, property]) => {
      const suffix = RENAMED[field] ?? field;
      const help = `${property.description ?? field}${suffix === field ? "" : ` (${field})`}`;
      return [field, [suffix, help]];
    }),
  );
}

const AGENT_FIGURES = figureTable(AgentFigures);
const STRATEGY_FIGURES = figureTable(StrategyFigures);
/** The risk engine's numeric fields (CONTRACT section 2) and their families: the unit in the name. */
const RISK_FAMILIES = [
  ["total_exposure", "neolight_risk_total_exposure_ratio"],
  ["active_positions", "neolight_risk_active_positions"],
  ["var", "neolight_risk_var"],
  ["cvar", "neolight_risk_cvar"],
  ["drawdown", "neolight_risk_drawdown_percent"],
] as const;
const BREAKER_STATES = ["CLOSED", "OPEN", "HALF_OPEN"] as const;
const REGIMES = ["BULL", "BEAR", "SIDEWAYS", "HIGH_VOL", "UNKNOWN"] as const;

export interface MetricsDeps {
  config: Config;
  log: Logger;
  store: DocumentStore;
  processor: Processor;
  meta: MetaService;
  files: AgentFiles;
  risk: RiskClient;
  /** Epoch ms of start-up (staleness of sources never heard from counts from here). */
  startedAt: number;
  /** Durations of durable writes (persistence.ts). */
  writeLatency: Histogram;
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
  /** Feeds neolight_sse_subscribers (issue 4's live stream); 0 until registered. Last call wins. */
  sseSubscribers(read: () => number): void;
  /** Stops the staleness check and the risk-engine probe. Idempotent. */
  close(): void;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A finite number, else undefined: documents come from clients and files. */
function finite(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function epochMs(iso: string | null | undefined): number | null {
  if (typeof iso !== "string") return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** Open file descriptors and their soft limit, from /proc (Linux); null elsewhere. */
function fileDescriptors(): { open: number; max: number | null } | null {
  try {
    const open = readdirSync("/proc/self/fd").length;
    const limits = readFileSync("/proc/self/limits", "utf8").match(/^Max open files\s+(\d+|unlimited)/m);
    const max = limits?.[1] === undefined || limits[1] === "unlimited" ? null : Number(limits[1]);
    return { open, max };
  } catch {
    return null;
  }
}

export function startMetrics(deps: MetricsDeps): MetricsService {
  const { config, log, store, processor, meta, files, risk, writeLatency } = deps;
  const now = deps.now ?? Date.now;
  const requests = createRequestStats();
  const rejected = { invalid: 0, unauthorised: 0, rate_limited: 0 };
  let readSubscribers: () => number = () => 0;
  let scrapes = 0;
  let truncated: MetricsStatus["truncated"] = [];

  // Pushed sources: the processor says which keys each committed update carried.
  const pushed = { hive: null as number | null, stress: null as number | null, atlas: null as number | null };
  processor.onCommit((_state, batch) => {
    const at = now();
    for (const { set } of batch) {
      if (Object.hasOwn(set, "per_agent") || Object.hasOwn(set, "guardian")) pushed.hive = at;
      if (Object.hasOwn(set, "stress_last")) pushed.stress = at;
      if (Object.hasOwn(set, "atlas")) pushed.atlas = at;
    }
  });

  const fileWatch = (file: WatchedFile, intervalS: number): SourceWatch => ({
    name: file.state().name,
    intervalS,
    lastUpdate: () => epochMs(file.state().last_good_change),
  });
  const sources: SourceWatch[] = [
    { name: "hive", intervalS: config.staleHiveS, lastUpdate: () => pushed.hive },
    { name: "stress", intervalS: config.staleStressS, lastUpdate: () => pushed.stress },
    { name: "atlas", intervalS: config.staleAtlasS, lastUpdate: () => pushed.atlas },
    fileWatch(files.performance, config.staleFilesS),
    fileWatch(files.regime, config.staleFilesS),
    fileWatch(files.governor, config.staleFilesS),
    // ? The override is the governor's fallback copy (CONTRACT section 1): its silence is normal.
    fileWatch(files.override, 0),
    { name: "risk_engine", intervalS: config.staleRiskS, lastUpdate: () => risk.lastGood()?.at ?? null },
  ];
  const monitor: StalenessMonitor = startStalenessMonitor({ sources, log, startedAt: deps.startedAt, now });

  // ? The risk engine only answers when asked; without a background probe its staleness
  // would measure how often someone opened /risk/status, not whether the engine is up.
  let probe: ReturnType<typeof setInterval> | undefined;
  if (config.staleRiskS > 0) {
    const ask = () => void risk.refresh();
    ask();
    probe = setInterval(ask, config.staleRiskS * 1000);
    probe.unref?.();
  }

  function writeService(w: ExpositionWriter): void {
    w.family("neolight_build_info", "gauge", "Build of the service: always 1").sample(1, {
      version: VERSION,
      bun_version: Bun.version,
    });
    const cpu = process.cpuUsage();
    w.family("process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds").sample(
      (cpu.user + cpu.system) / 1e6,
    );
    w.family("process_resident_memory_bytes", "gauge", "Resident set size, bytes").sample(process.memoryUsage.rss());
    const fds = fileDescriptors();
    if (fds !== null) {
      w.family("process_open_fds", "gauge", "Open file descriptors").sample(fds.open);
      if (fds.max !== null) w.family("process_max_fds", "gauge", "Limit of open file descriptors").sample(fds.max);
    }
    w.family("process_start_time_seconds", "gauge", "Start time of the process, seconds since the epoch").sample(
      Math.round(performance.timeOrigin) / 1000,
    );

    w.family("neolight_http_requests_total", "counter", "HTTP requests answered, by route template, method and status");
    for (const c of requests.counts()) {
      w.sample(c.count, { route: c.route, method: c.method, status: String(c.status) });
    }
    w.family(
      "neolight_http_request_duration_seconds",
      "histogram",
      "Duration of timed requests by route: write routes from body parse to durable answer; /status, /risk/status and /metrics from handler start. Reads served from memory are not timed",
    );
    for (const [route, h] of requests.latencies()) w.histogram(h, { route });

    const q = meta.stats();
    w.family("neolight_telemetry_queue_depth", "gauge", "Updates waiting in the telemetry channel").sample(q.depth);
    w.family("neolight_telemetry_queue_capacity", "gauge", "Bound of the telemetry channel").sample(q.capacity);
    w.family("neolight_telemetry_updates_accepted_total", "counter", "Updates accepted into the channel").sample(
      q.accepted,
    );
    w.family(
      "neolight_telemetry_updates_applied_total",
      "counter",
      "Updates applied and persisted (answered 200)",
    ).sample(q.applied);
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

    const p = store.status();
    w.family("neolight_persistence_writes_total", "counter", "Durable writes of the document (one per batch)").sample(
      p.writes,
    );
    w.family("neolight_persistence_write_failures_total", "counter", "Durable writes that failed").sample(p.failures);
    w.family("neolight_persistence_failing", "gauge", "1 while the last durable write failed").sample(
      p.last_error === null ? 0 : 1,
    );
    w.family(
      "neolight_persistence_write_duration_seconds",
      "histogram",
      "Duration of successful durable writes (write, fsync, rename, directory fsync)",
    ).histogram(writeLatency);
    const lastWrite = epochMs(p.last_write_at);
    if (lastWrite !== null) {
      w.family(
        "neolight_persistence_last_write_timestamp_seconds",
        "gauge",
        "Time of the last durable write, seconds since the epoch",
      ).sample(lastWrite / 1000);
    }
    let subscribers = 0;
    try {
      subscribers = readSubscribers();
    } catch (err) {
      log.error("sse subscriber count failed", { error: err });
    }
    w.family("neolight_sse_subscribers", "gauge", "Clients connected to the live stream").sample(subscribers);
  }

  function writeNeoLight(w: ExpositionWriter): void {
    const state = store.current();
    // The document as GET /meta/metrics serves it: what the execution router sees.
    const doc: JsonObject = { ...defaultDocument(new Date(now())), ...state.doc };
    const updated = epochMs(state.updatedAt);
    if (updated !== null) {
      w.family(
        "neolight_document_last_update_timestamp_seconds",
        "gauge",
        "When the last update was applied (cache_timestamp), seconds since the epoch",
      ).sample(updated / 1000);
    }

    // One family per figure, one series per agent (strategy) holding a finite number.
    const figureFamilies = (label: "agent" | "strategy", table: typeof AGENT_FIGURES, section: unknown) => {
      const bySubject = isObject(section) ? section : {};
      for (const [field, [suffix, help]] of Object.entries(table)) {
        w.family(`neolight_${label}_${suffix}`, "gauge", `Per ${label}: ${help}`);
        for (const subject of Object.keys(bySubject)) {
          const figures = bySubject[subject];
          const value = isObject(figures) ? finite(figures[field]) : undefined;
          if (value !== undefined) w.sample(value, { [label]: subject });
        }
      }
    };
    figureFamilies("agent", AGENT_FIGURES, doc.per_agent);
    figureFamilies("strategy", STRATEGY_FIGURES, doc.per_strategy);

    const guardian = isObject(doc.guardian) ? doc.guardian : {};
    if (typeof guardian.is_paused === "boolean") {
      w.family("neolight_guardian_paused", "gauge", "1 while the guardian has paused trading").sample(
        guardian.is_paused ? 1 : 0,
      );
    }
    const drawdown = finite(guardian.drawdown);
    if (drawdown !== undefined)
      w.family("neolight_guardian_drawdown", "gauge", "Guardian drawdown, percent").sample(drawdown);

    const breakers = isObject(doc.breakers) ? doc.breakers : {};
    w.family("neolight_breaker_state", "gauge", "Circuit breaker state: 1 for the current state, 0 for the others");
    for (const [breaker, key] of [
      ["quote", "quote_state"],
      ["trade", "trade_state"],
    ] as const) {
      const current = breakers[key];
      if (typeof current !== "string") continue;
      for (const s of BREAKER_STATES) w.sample(current === s ? 1 : 0, { breaker, state: s });
    }
    if (typeof doc.mode === "string") {
      w.family("neolight_mode_info", "gauge", "Trading mode: 1 for the current mode").sample(1, { mode: doc.mode });
    }

    // The regime as posted by the hive (document) and as written by the detector (file).
    const regimes: [string, JsonObject][] = [];
    if (isObject(doc.market_regime) && typeof doc.market_regime.regime === "string") {
      regimes.push(["document", doc.market_regime]);
    }
    const regimeFile = files.regime.value();
    if (isObject(regimeFile)) regimes.push(["file", regimeFile]);
    w.family("neolight_regime", "gauge", "Market regime: 1 for the current regime, by source (document or file)");
    for (const [source, r] of regimes) for (const g of REGIMES) w.sample(r.regime === g ? 1 : 0, { source, regime: g });
    for (const [field, name, help] of [
      ["confidence", "neolight_regime_confidence", "Regime confidence, 0..1"],
      ["risk_multiplier", "neolight_regime_risk_multiplier", "Regime risk multiplier"],
      ["risk_scaler", "neolight_regime_risk_scaler", "Regime position-size scaler"],
    ] as const) {
      w.family(name, "gauge", `${help}, by source (document or file)`);
      for (const [source, r] of regimes) {
        const value = finite(r[field]);
        if (value !== undefined) w.sample(value, { source });
      }
    }

    // Allocation weights: the atlas bridge's, and the capital governor's (its file, else the override copy).
    w.family("neolight_allocation_weight", "gauge", "Capital allocation weight per agent, 0..1, by source");
    const atlas = isObject(doc.atlas) ? doc.atlas : {};
    if (isObject(atlas.allocations)) {
      for (const [agent, weight] of Object.entries(atlas.allocations)) {
        const value = finite(weight);
        if (value !== undefined) w.sample(value, { source: "atlas", agent });
      }
    }
    const governor = files.governor.value() ?? files.override.value();
    const governorSource = files.governor.value() !== undefined ? "capital_governor" : "allocations_override";
    if (isObject(governor) && isObject(governor.allocations)) {
      for (const [agent, weight] of Object.entries(governor.allocations)) {
        const value = finite(weight);
        if (value !== undefined) w.sample(value, { source: governorSource, agent });
      }
    }
    const brain = isObject(atlas.brain) ? atlas.brain : {};
    for (const [field, name, help] of [
      ["confidence", "neolight_atlas_confidence", "Atlas brain confidence"],
      ["risk_scaler", "neolight_atlas_risk_scaler", "Atlas brain risk scaler"],
    ] as const) {
      const value = finite(brain[field]);
      if (value !== undefined) w.family(name, "gauge", help).sample(value);
    }

    const stress = isObject(doc.stress_last) ? doc.stress_last : {};
    if (typeof stress.passed === "boolean") {
      w.family("neolight_stress_passed", "gauge", "1 when the last stress test passed").sample(stress.passed ? 1 : 0);
    }
    const worst = finite(stress.worst_case_pnl);
    if (worst !== undefined) {
      w.family("neolight_stress_worst_case_pnl", "gauge", "Worst-case P&L of the last stress test").sample(worst);
    }

    // The risk engine: what GET /risk/status serves (its answer, else its file), never an
    // invented number. One family per field, its unit in its name and help.
    w.family("neolight_risk_engine_up", "gauge", "1 when the latest request to the risk engine succeeded").sample(
      risk.state().reachable ? 1 : 0,
    );
    const served = risk.served();
    if (served !== null) {
      w.family(
        "neolight_risk_state_from_file",
        "gauge",
        "1 while the risk figures come from the engine's state/risk_state.json (the engine is unreachable)",
      ).sample(served.from === "file" ? 1 : 0);
      for (const [field, name] of RISK_FAMILIES) {
        const value = finite(served.state[field]);
        if (value !== undefined)
          w.family(name, "gauge", `Risk engine: ${RiskState.properties[field].description}`).sample(value);
      }
      w.family(
        "neolight_risk_last_update_timestamp_seconds",
        "gauge",
        "When the risk engine last computed its state (its last_update), seconds since the epoch",
      ).sample(Number(served.state.last_update));
    }
  }

  function writeSources(w: ExpositionWriter): void {
    const entries = monitor.entries();
    w.family(
      "neolight_source_last_update_timestamp_seconds",
      "gauge",
      "Time of the source's last good update, seconds since the epoch (absent until one since start-up)",
    );
    for (const e of entries) {
      const at = epochMs(e.last_update);
      if (at !== null) w.sample(at / 1000, { source: e.source });
    }
    w.family(
      "neolight_source_expected_interval_seconds",
      "gauge",
      "How often the source should report; 0: not watched",
    );
    for (const e of entries) w.sample(e.expected_interval_s, { source: e.source });
    w.family("neolight_source_stale", "gauge", "1 while the source has been silent for more than twice its interval");
    for (const e of entries) w.sample(e.stale ? 1 : 0, { source: e.source });
  }

  return {
    requests,
    render() {
      scrapes++;
      const w = new ExpositionWriter(MAX_SERIES_PER_FAMILY);
      writeService(w);
      writeNeoLight(w);
      writeSources(w);
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
    status: () => ({ series_limit: MAX_SERIES_PER_FAMILY, scrapes, truncated: truncated.map((t) => ({ ...t })) }),
    countRejected(reason) {
      rejected[reason]++;
    },
    sseSubscribers(read) {
      readSubscribers = read;
    },
    close() {
      monitor.close();
      clearInterval(probe);
      probe = undefined;
    },
  };
}
