// /metrics: the service's own figures: build, the process (from /proc), HTTP requests, the
// telemetry channel, persistence, the live stream and history's disk use. The refused updates are written by
// service.ts, where they are counted.

import { readdirSync, readFileSync } from "node:fs";
import { VERSION } from "../../config";
import { staleSeconds } from "../../http/store-staleness";
import type { Logger } from "../../log/logger";
import type { StoreStatus } from "../../store/shared";
import type { DocumentStore } from "../../store/store";
import type { HistoryStatus } from "../history/status";
import type { MetaService } from "../meta/service";
import { type ExpositionWriter, epochMs, type Histogram } from "./exposition";
import type { RequestStats } from "./requests";

export interface ProcessFiguresDeps {
  log: Logger;
  store: DocumentStore;
  meta: MetaService;
  requests: RequestStats;
  /** Durations of durable writes (persistence.ts). */
  writeLatency: Histogram;
  /** Clients connected to the live stream now (the hub's count). */
  sseSubscribers: () => number;
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

/** Build and process figures. */
export function writeProcess(w: ExpositionWriter): void {
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
}

/** HTTP requests and the telemetry channel. */
export function writeTraffic(
  w: ExpositionWriter,
  { requests, meta }: Pick<ProcessFiguresDeps, "requests" | "meta">,
): void {
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
}

/** Persistence and the live stream. */
export function writeDurability(
  w: ExpositionWriter,
  {
    log,
    store,
    writeLatency,
    sseSubscribers,
  }: Pick<ProcessFiguresDeps, "log" | "store" | "writeLatency" | "sseSubscribers">,
): void {
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
    subscribers = sseSubscribers();
  } catch (err) {
    log.error("sse subscriber count failed", { error: err });
  }
  w.family("neolight_sse_subscribers", "gauge", "Clients connected to the live stream").sample(subscribers);
}

/** Which store holds the document, and (shared, issue 12) whether this replica reaches it. */
export function writeStore(w: ExpositionWriter, s: StoreStatus, now = Date.now()): void {
  const kind = { kind: s.kind };
  w.family(
    "neolight_store_reachable",
    "gauge",
    "1 while the document's store can be reached (always 1 for a file)",
  ).sample(s.reachable ? 1 : 0, kind);
  w.family(
    "neolight_store_unreachable_seconds",
    "gauge",
    "Seconds since the shared store was last reached; 0 while it can be",
  ).sample(s.unreachable_since === null ? 0 : staleSeconds(s.unreachable_since, now), kind);
  w.family("neolight_store_ready", "gauge", "1 while GET /health/ready answers 200").sample(s.ready ? 1 : 0, kind);
  w.family("neolight_store_seq", "gauge", "Sequence of the last update applied here (shared by every replica)").sample(
    s.seq,
    kind,
  );
  w.family(
    "neolight_store_fail_safe",
    "gauge",
    "1 while the served guardian is paused because the shared store was unreachable longer than NEOLIGHT_STORE_STALE_S",
  ).sample(s.fail_safe ? 1 : 0, kind);
}

/** History's share of the state disk (issue 14): whether it records, what it skipped, its size against the cap. */
export function writeHistory(w: ExpositionWriter, h: HistoryStatus): void {
  w.family(
    "neolight_history_recording",
    "gauge",
    "1 while history is recorded; 0 while it is off or the state disk is under NEOLIGHT_MIN_FREE_MB",
  ).sample(h.enabled && h.recording ? 1 : 0);
  w.family(
    "neolight_history_skipped_low_space_total",
    "counter",
    "History points not recorded because free space on the state disk was under the floor",
  ).sample(h.skipped_low_space);
  w.family(
    "neolight_history_pruned_for_size_total",
    "counter",
    "History rows removed, oldest first, to keep under NEOLIGHT_HISTORY_MAX_MB",
  ).sample(h.pruned_for_size);
  if (h.bytes !== null) {
    w.family("neolight_history_bytes", "gauge", "history.db pages in use plus its WAL, at the last write").sample(
      h.bytes,
    );
  }
}
