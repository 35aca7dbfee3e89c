// What the alerts watch besides the guardian (issue 13): staleness, persistence and the
// channel are computed on read, so a periodic check compares each with the last state sent
// and notifies only on a change: one message per transition, none while nothing changes.
// And the run marker, which tells a restart after a crash from a clean one.
import { closeSync, existsSync, fsync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../config";
import type { Logger } from "../../log/logger";
import type { PersistenceStatus } from "../../store/model";
import type { StoreStatus } from "../../store/shared";
import type { QueueStats } from "../meta/model";
import type { SourceStaleness } from "../metrics/model";
import type { AlertInput, AlertsService } from "./service";

/**
 * How often the conditions are compared: the staleness monitor re-evaluates every second at
 * most, so a faster check would see nothing new; slower would only delay a 3 a.m. message.
 */
export const ALERT_CHECK_MS = 1000;
/** The run marker, next to the state file: present at start-up = the last run did not stop cleanly. */
export const RUN_MARKER = "dashboard.running";
/** The source whose silence stops the guardian's news: its staleness is critical. */
const CRITICAL_SOURCE = "hive";

export interface ConditionSources {
  /** Every source's staleness now (the metrics service's monitor). */
  staleness(): SourceStaleness[];
  /** The store's own report (failures, last_error). */
  persistence(): PersistenceStatus;
  /** The channel's depth and refusals (the meta service). */
  queue(): QueueStats;
  /** The shared store's reachability (issue 12); absent or a file: never alerts. */
  store?(): StoreStatus;
}

export interface ConditionWatch {
  /** Compares every condition with the last one sent, and notifies each change. */
  check(): void;
  /** Stops the timer. Idempotent. */
  close(): void;
}

export function watchConditions(
  sources: ConditionSources,
  alerts: Pick<AlertsService, "notify">,
  log: Logger,
  checkMs = ALERT_CHECK_MS,
): ConditionWatch {
  const stale = new Map<string, boolean>();
  let persistence = sources.persistence();
  let persistenceFailing = false;
  let queue = sources.queue();
  let saturated = false;
  /** Refusals for a full channel counted before the stretch began. */
  let stretchStart = queue.rejected_full;

  function checkStaleness(): void {
    for (const s of sources.staleness()) {
      if (s.expected_interval_s <= 0 || s.stale === (stale.get(s.source) ?? false)) continue;
      stale.set(s.source, s.stale);
      const details = {
        source: s.source,
        expected_interval_s: s.expected_interval_s,
        last_update: s.last_update,
        age_s: s.age_s,
      };
      if (s.stale) {
        alerts.notify({
          event: "source_stale",
          severity: s.source === CRITICAL_SOURCE ? "critical" : "warning",
          summary: `${s.source} is silent: nothing for more than twice its ${s.expected_interval_s} s interval`,
          details,
        });
      } else {
        alerts.notify({ event: "source_recovered", severity: "info", summary: `${s.source} reports again`, details });
      }
    }
  }

  function checkPersistence(): void {
    const now = sources.persistence();
    // ? A failure between two checks counts even when the next write succeeded: a disk that
    // fails now and then is failing.
    const failing = now.last_error !== null || now.failures > persistence.failures;
    const failures = now.failures;
    const error = now.last_error ?? persistence.last_error;
    persistence = now;
    if (failing === persistenceFailing) return;
    persistenceFailing = failing;
    alerts.notify(
      failing
        ? {
            event: "persistence_failing",
            severity: "critical",
            summary: "the state file cannot be written: updates are answered 503",
            details: { path: now.path, error, failures },
          }
        : {
            event: "persistence_recovered",
            severity: "info",
            summary: "the state file is written again",
            details: { path: now.path, failures, last_write_at: now.last_write_at },
          },
    );
  }

  function checkQueue(): void {
    const now = sources.queue();
    const before = queue.rejected_full;
    const refusing = now.rejected_full > before;
    queue = now;
    if (refusing && !saturated) {
      saturated = true;
      stretchStart = before;
      alerts.notify({
        event: "channel_saturated",
        severity: "critical",
        summary: "the telemetry channel is full: posts are refused with 503",
        details: { depth: now.depth, capacity: now.capacity },
      });
    } else if (!refusing && saturated && now.depth < now.capacity) {
      saturated = false;
      alerts.notify({
        event: "channel_recovered",
        severity: "info",
        summary: "the telemetry channel accepts posts again",
        details: { refused: now.rejected_full - stretchStart, depth: now.depth, capacity: now.capacity },
      });
    }
  }

  let storeDown = false;
  function checkStore(): void {
    const now = sources.store?.();
    if (now === undefined || now.kind === "file" || !now.reachable === storeDown) return;
    storeDown = !now.reachable;
    const details = { target: now.target, unreachable_since: now.unreachable_since, seq: now.seq };
    alerts.notify(
      storeDown
        ? {
            event: "shared_store_unreachable",
            severity: "critical",
            summary:
              "the shared store (PostgreSQL) cannot be reached: writes are answered 503, reads serve the last document",
            details,
          }
        : {
            event: "shared_store_recovered",
            severity: "info",
            summary: "the shared store (PostgreSQL) is reachable again and caught up",
            details: { ...details, caught_up_at: now.caught_up_at },
          },
    );
  }

  function check(): void {
    checkStaleness();
    checkPersistence();
    checkQueue();
    checkStore();
  }

  let timer: ReturnType<typeof setInterval> | undefined = setInterval(() => {
    // ? A bug here must cost an alert, not the process (an uncaught error in a timer).
    try {
      check();
    } catch (err) {
      log.error("alert check failed", { error: err });
    }
  }, checkMs);
  // ? The check alone must not keep a stopping process alive.
  timer.unref?.();
  return {
    check,
    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

export interface RunMarker {
  /** The last run did not stop cleanly: what its marker said (pid, started_at), else null. */
  readonly previous: { pid: unknown; started_at: unknown } | null;
  /** Removes the marker: called last in a clean shutdown. */
  clear(): void;
}

/**
 * Writes `<dir>/dashboard.running` (after the state lock is held, so only this instance
 * does). A marker found there is the last run's, which never reached its clean shutdown. A
 * marker that cannot be written is logged and only costs the next start's diagnosis.
 */
export function markRunning(dir: string, log: Logger, startedAt: number): RunMarker {
  const path = join(dir, RUN_MARKER);
  let previous: RunMarker["previous"] = null;
  if (existsSync(path)) {
    try {
      const found = JSON.parse(readFileSync(path, "utf8")) as { pid?: unknown; started_at?: unknown };
      previous = { pid: found.pid ?? null, started_at: found.started_at ?? null };
    } catch {
      // ? Torn by the crash it records: still a crash.
      previous = { pid: null, started_at: null };
    }
  }
  let written = false;
  try {
    const fd = openSync(path, "w", 0o644);
    try {
      writeSync(fd, `${JSON.stringify({ pid: process.pid, started_at: new Date(startedAt).toISOString() })}\n`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    written = true;
    // ? Issue 14: fsynced off the path to the first 200 (16 ms of start-up under the
    // profiler, on a fresh home). Written, the marker already outlives a crash of this
    // process; only the machine's crash in the next milliseconds could lose it, which costs
    // the next start's diagnosis, never the document.
    fsync(fd, (err) => {
      // ? Written all the same: only a crash of the machine could still lose it.
      if (err) log.warn("run marker not synced", { path, error: err.message });
      closeSync(fd);
    });
  } catch (err) {
    log.warn("run marker not written", { path, error: (err as Error).message });
  }
  return {
    previous,
    clear() {
      if (!written) return;
      written = false;
      try {
        unlinkSync(path);
      } catch (err) {
        log.warn("run marker not removed", { path, error: (err as Error).message });
      }
    },
  };
}

/** The start-up alert: a start, or a restart after a stop that never reached its end. */
export function startAlert({ previous }: RunMarker): AlertInput {
  const details = { version: VERSION, pid: process.pid };
  return previous === null
    ? { event: "service_started", severity: "info", summary: "the dashboard service started", details }
    : {
        event: "service_restarted_unclean",
        severity: "warning",
        summary: "the dashboard service restarted after an unclean stop (a crash, kill -9 or power loss)",
        details: { ...details, previous_pid: previous.pid, previous_started_at: previous.started_at },
      };
}
