// Schemas of the service's own routes: GET /, /health, /status.
import { Type as t } from "@sinclair/typebox";
import { AccessStats } from "../../http/model";
import { LogFile } from "../../log/model";
import { PersistenceStatus, StoreStatus } from "../../store/model";
import { FileSource } from "../agent-files/model";
import { AlertsStatus } from "../alerts/model";
import { HistoryStatus } from "../history/model";
import { LiveStats } from "../live/model";
import { QueueStats } from "../meta/model";
import { MetricsStatus, SourceStaleness } from "../metrics/model";
import { RiskSource } from "../risk/model";

const Uptime = t.String({ pattern: "^\\d+h\\d+m$", description: "<h>h<m>m, e.g. 0h0m, 1h23m, 49h5m" });

export const Health = t.Object({
  status: t.Literal("ok"),
  uptime: Uptime,
  version: t.String(),
  timestamp: t.String({ description: "now, RFC 3339 UTC" }),
});
export type Health = typeof Health.static;

/** GET /health/ready's 200 (issue 12): the replica has loaded the document and reaches its store. */
export const Ready = t.Object({
  status: t.Literal("ready"),
  store: StoreStatus.properties.kind,
  seq: StoreStatus.properties.seq,
});
export type Ready = typeof Ready.static;

export const ServiceInfo = t.Object({
  service: t.String(),
  version: t.String(),
  status: t.Literal("running"),
  uptime: Uptime,
  endpoints: t.Array(t.String(), {
    description:
      "Bare paths, as the Go original listed them: its six first (/health, /status, /meta/metrics, /meta/performance, /meta/regime, /governor/allocations), then the newer ones",
  }),
  methods: t.Record(t.String(), t.Array(t.String()), {
    description: "path -> the methods it answers (a GET path answers HEAD too)",
  }),
});
export type ServiceInfo = typeof ServiceInfo.static;

export const Status = t.Object(
  {
    system: t.Object({
      cpu: t.Number({ description: "process CPU use since the previous /status call, percent of one core" }),
      memory: t.Number({ description: "resident set size, MiB" }),
      disk: t.Number({ description: "use of the filesystem holding the state directory, percent" }),
      uptime: Uptime,
      details: t.Object(
        {
          cpu_cores: t.Integer(),
          rss_bytes: t.Integer(),
          heap_used_bytes: t.Integer(),
          disk_path: t.String(),
          disk_total_bytes: t.Integer(),
          disk_free_bytes: t.Integer(),
          state_dir_bytes: t.Integer({ description: "bytes of the files in the state directory" }),
          uptime_seconds: t.Number(),
          pid: t.Integer(),
          version: t.String(),
          bun: t.String(),
        },
        { additionalProperties: true },
      ),
    }),
    guardian: t.Object({
      logs: t.Object({ service: LogFile }, { description: "the service's log file, its size and rotation" }),
      agents: t.Array(t.String(), { description: "agents in the document's per_agent" }),
      is_paused: t.Boolean(),
      reason: t.Union([t.String(), t.Null()]),
    }),
    queue: QueueStats,
    last_update: t.Union([t.String(), t.Null()], { description: "cache_timestamp of the document" }),
    persistence: PersistenceStatus,
    store: StoreStatus,
    sources: t.Object({
      files: t.Array(FileSource),
      risk_engine: RiskSource,
    }),
    live: LiveStats,
    history: HistoryStatus,
    security: AccessStats,
    staleness: t.Array(SourceStaleness, {
      description:
        "Every source with its last good update, expected interval and age; stale = silent for more than twice the interval",
    }),
    metrics: MetricsStatus,
    alerts: AlertsStatus,
  },
  { additionalProperties: true },
);
export type Status = typeof Status.static;
