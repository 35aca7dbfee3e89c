// The service's view of itself: uptime, real resource figures, and the state of every
// part an operator checks at 3 a.m. (queue, persistence, sources). No placeholders: each
// number is measured when asked.
import { readdir, stat, statfs } from "node:fs/promises";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { VERSION } from "../../config";
import type { AccessPolicy } from "../../http/auth";
import { UnavailableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import type { StoreStatus } from "../../store/shared";
import type { DocumentStore } from "../../store/store";
import type { Hub } from "../../telemetry/hub";
import type { AgentFiles, WatchedFile } from "../agent-files/service";
import type { AlertsService } from "../alerts/service";
import type { History } from "../history/service";
import type { Guardian } from "../meta/model";
import type { MetaService } from "../meta/service";
import type { MetricsService } from "../metrics/service";
import type { RiskClient } from "../risk/service";
import type { Health, Ready, ServiceInfo, Status } from "./model";

/**
 * Retry-After of a 503 from GET /health/ready: a load balancer checks every second or two
 * anyway; a client told to wait tries another replica meanwhile.
 */
const NOT_READY_RETRY_AFTER_S = 2;

/** CONTRACT: `0h0m`, `1h23m`, `49h5m`. */
export function formatUptime(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

export interface SystemDeps {
  startedAt: number;
  metricsPath: string;
  logPath: string;
  store: DocumentStore;
  /** Which store holds the document and whether it can be reached (issue 12). */
  storeStatus: () => StoreStatus;
  meta: MetaService;
  files: AgentFiles;
  /** The guardian's pause file (issue 11), listed with the agent files. */
  pauseFile: Pick<WatchedFile, "state">;
  risk: RiskClient;
  /** The live stream's viewers and drops. */
  hub: Pick<Hub, "stats">;
  /** The history database's state. */
  history: Pick<History, "status">;
  /** The log file's size cap and free-space floor. */
  log: Pick<Logger, "stats">;
  /** Auth mode and refusal counts. */
  access: Pick<AccessPolicy, "stats">;
  /** Source staleness and the series limit. */
  metrics: Pick<MetricsService, "staleness" | "status">;
  /** The notifiers' counts, without secrets (issue 13). */
  alerts: Pick<AlertsService, "status">;
}

export interface SystemService {
  health(): Health;
  /**
   * Readiness (issue 12): the first full load is done and the store is reachable. Throws
   * UnavailableError (503 with Retry-After) saying why otherwise. Always ready with the
   * embedded file: it was loaded before the port opened.
   */
  ready(): Ready;
  info(routes: Pick<ServiceInfo, "endpoints" | "methods">): ServiceInfo;
  /** Measures now; CPU is the average since the previous call (or since start-up). */
  status(): Promise<Status>;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(dir, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export function createSystemService(deps: SystemDeps): SystemService {
  const uptimeSeconds = () => (Date.now() - deps.startedAt) / 1000;
  let cpuMark = { usage: process.cpuUsage(), at: performance.now() };

  return {
    ready() {
      const store = deps.storeStatus();
      if (!store.ready) {
        const why = !store.reachable
          ? `the shared store cannot be reached (since ${store.unreachable_since}); serving ${store.served_from === "local_copy" ? "the last local copy" : "the last document"}`
          : "the document is not loaded from the shared store yet";
        throw new UnavailableError(`not ready: ${why}`, NOT_READY_RETRY_AFTER_S);
      }
      return { status: "ready", store: store.kind, seq: store.seq };
    },
    health: () => ({
      status: "ok",
      uptime: formatUptime(uptimeSeconds()),
      version: VERSION,
      timestamp: new Date().toISOString(),
    }),
    info: ({ endpoints, methods }) => ({
      service: "neolight-dashboard",
      version: VERSION,
      status: "running",
      uptime: formatUptime(uptimeSeconds()),
      endpoints,
      methods,
    }),
    async status() {
      const now = performance.now();
      const usage = process.cpuUsage(cpuMark.usage);
      const wallMicros = Math.max(1, (now - cpuMark.at) * 1000);
      cpuMark = { usage: process.cpuUsage(), at: now };
      const cpu = ((usage.user + usage.system) / wallMicros) * 100;
      const mem = process.memoryUsage();
      const stateDir = dirname(deps.metricsPath);
      const fs = await statfs(stateDir).catch(() => null);
      const total = fs ? fs.blocks * fs.bsize : 0;
      const free = fs ? fs.bavail * fs.bsize : 0;
      const used = fs ? (fs.blocks - fs.bfree) * fs.bsize : 0;
      const logBytes = (await stat(deps.logPath).catch(() => ({ size: 0 }))).size;
      const state = deps.store.current();
      // ? Partial: before the first POST the store may hold no guardian at all.
      const guardian = state.doc.guardian as Partial<Guardian> | undefined;
      const perAgent = state.doc.per_agent;
      return {
        system: {
          cpu: Math.round(cpu * 100) / 100,
          memory: Math.round((mem.rss / 1048576) * 10) / 10,
          // ? Used over what a non-root user can use, as df reports it.
          disk: total > 0 ? Math.round((used / (used + free)) * 10000) / 100 : 0,
          uptime: formatUptime(uptimeSeconds()),
          details: {
            cpu_cores: cpus().length,
            rss_bytes: mem.rss,
            heap_used_bytes: mem.heapUsed,
            disk_path: stateDir,
            disk_total_bytes: total,
            disk_free_bytes: free,
            state_dir_bytes: await dirBytes(stateDir),
            uptime_seconds: Math.round(uptimeSeconds()),
            pid: process.pid,
            version: VERSION,
            bun: Bun.version,
          },
        },
        guardian: {
          logs: { service: { path: deps.logPath, bytes: logBytes, ...deps.log.stats() } },
          agents: typeof perAgent === "object" && perAgent !== null ? Object.keys(perAgent) : [],
          is_paused: guardian?.is_paused === true,
          reason: typeof guardian?.reason === "string" ? guardian.reason : null,
        },
        queue: deps.meta.stats(),
        last_update: state.updatedAt,
        persistence: { ...deps.store.status() },
        store: deps.storeStatus(),
        sources: {
          files: [...deps.files.all(), deps.pauseFile].map((f) => f.state()),
          risk_engine: { ...deps.risk.state() },
        },
        live: deps.hub.stats(),
        history: deps.history.status(),
        security: deps.access.stats(),
        staleness: deps.metrics.staleness(),
        metrics: deps.metrics.status(),
        alerts: deps.alerts.status(),
      };
    },
  };
}
