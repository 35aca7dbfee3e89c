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
}

/** The figures before anything happened. */
export const initialStatus = (path: string, days: number): HistoryStatus => ({
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
});
