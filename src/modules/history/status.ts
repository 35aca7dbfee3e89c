// What /status shows of history: kept by the threads, the recorder and the pruner, read by status().

export interface HistoryStatus {
  enabled: boolean;
  path: string;
  retention_days: number;
  /** Why history is off, when it is. */
  disabled_reason: string | null;
  series: number;
  points_written: number;
  flushes: number;
  failures: number;
  last_error: string | null;
  last_flush_at: string | null;
  /** Where an unreadable history file was moved; null when none was. */
  corrupt_moved_to: string | null;
  pruned: number;
  /** False while free space on the state disk is under the floor: nothing is recorded then. */
  recording: boolean;
  /** The floor (NEOLIGHT_MIN_FREE_MB); 0: none. */
  min_free_bytes: number;
  /** Free bytes on the state disk at the last check; null before it or when unknown. */
  free_bytes: number | null;
  /** Points not recorded because free space was under the floor, since start-up. */
  skipped_low_space: number;
  /** The size cap (NEOLIGHT_HISTORY_MAX_MB). */
  max_bytes: number;
  /** What the history took at the last write: pages in use plus the WAL; null before one. */
  bytes: number | null;
  wal_bytes: number | null;
  /** Rows (oldest points, then roll-ups) removed to keep under the size cap, since start-up. */
  pruned_for_size: number;
}

/** The figures before anything happened. */
export const initialStatus = (path: string, days: number, maxBytes: number, minFreeBytes: number): HistoryStatus => ({
  enabled: false,
  path,
  retention_days: days,
  disabled_reason: null,
  series: 0,
  points_written: 0,
  flushes: 0,
  failures: 0,
  last_error: null,
  last_flush_at: null,
  corrupt_moved_to: null,
  pruned: 0,
  recording: true,
  min_free_bytes: minFreeBytes,
  free_bytes: null,
  skipped_low_space: 0,
  max_bytes: maxBytes,
  bytes: null,
  wal_bytes: null,
  pruned_for_size: 0,
});

/** Why history cannot answer, in the words every 503 and thread error for it uses. */
export const unavailableReason = (status: HistoryStatus): string =>
  `history unavailable: ${status.disabled_reason ?? "not open"}`;
