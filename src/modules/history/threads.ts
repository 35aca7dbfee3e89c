// History's two threads and what happens when their file breaks: the writer (record, prune)
// and the reader (queries), each started when needed and again after a crash, and the
// recovery of an unreadable or outdated history file (moved aside, a fresh one started), or,
// when even that fails, history turned off while the live endpoints keep serving.
import type { Logger } from "../../log/logger";
import { type HistoryThread, HistoryThreadError, spawnHistoryThread } from "../../store/history-thread";
import type { HistoryStatus } from "./status";

/**
 * Most distinct series ever created, per class (the safety kinds; the others): a poster
 * inventing agent names must not fill the disk. Default of NEOLIGHT_HISTORY_MAX_SERIES.
 */
export const MAX_SERIES_TOTAL = 20_000;
/** Shutdown waits at most this for the writer to close the file (a WAL checkpoint). */
const CLOSE_TIMEOUT_MS = 5_000;
/** One ERROR line per this many ms while recording keeps failing; the count of the rest is in it. */
const ERROR_LOG_INTERVAL_MS = 60_000;

export interface ThreadOptions {
  path: string;
  log: Logger;
  /** The figures /status shows: these threads keep enabled, series, failures and the rest. */
  status: HistoryStatus;
  queryTimeoutMs: number;
  /** Series created at most per class (the safety kinds; the others). */
  maxSeries: number;
  /** The history thread's code (tests start a thread that crashes). Default: workerEntry(). */
  workerEntry?: string;
  /** True once the history is closing: a writer that stopped is then not started again. */
  closing: () => boolean;
  /** Why history is off from the start (no thread is started), or null. */
  off: string | null;
}

export interface HistoryThreads {
  /**
   * The writer, started again when it stopped unexpectedly; null while history is off or
   * after close(). Never rejects.
   */
  writer(): Promise<HistoryThread | null>;
  /** The reader with the file open, started (again) when there is none. Rejects when it cannot open the file. */
  reader(): Promise<HistoryThread>;
  /** Moves the file aside after `err` said it is corrupt or outdated, and starts a fresh one; off when that fails. */
  recover(err: HistoryThreadError): Promise<void>;
  /** Counts a failure, and logs it at most once per ERROR_LOG_INTERVAL_MS. */
  failed(err: unknown): void;
  /** Closes the file and ends both threads. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the writer and opens the file with it (moving a broken one aside); history is off
 * when that fails, or when `off` says so.
 */
export async function startHistoryThreads(options: ThreadOptions): Promise<HistoryThreads> {
  const { path, log, status, queryTimeoutMs, maxSeries } = options;
  const spawn = (role: string) =>
    spawnHistoryThread({
      entry: options.workerEntry,
      onStop: (reason) => {
        status.failures++;
        status.last_error = `history ${role} thread stopped: ${reason}`;
        log.error("history thread stopped", { role, reason });
      },
    });
  const store = { path, maxSeries };
  /** The thread that writes (record, prune); null while history is off. */
  let writer: HistoryThread | null = null;
  /** The thread that answers queries, started with the first one; replaced when it stops. */
  let reader: Promise<HistoryThread> | null = null;
  let closed = false;
  let failingSince = 0;
  let unloggedFailures = 0;

  function disable(reason: string): void {
    status.enabled = false;
    status.disabled_reason = reason;
    writer?.terminate();
    writer = null;
  }

  function dropReader(): void {
    void reader?.then((r) => r.terminate()).catch(() => {});
    reader = null;
  }

  async function recover(thread: HistoryThread, err: HistoryThreadError): Promise<void> {
    const reason = err.outdated ? "outdated" : "corrupt";
    try {
      const { movedTo, series } = await thread.call("recover", { ...store, reason });
      status.corrupt_moved_to = movedTo;
      status.series = series;
      if (err.outdated) log.warn("history file of an older layout, moved aside", { path, moved_to: movedTo });
      else log.error("history file corrupt, moved aside", { path, moved_to: movedTo, error: err.message });
      status.enabled = true;
      status.disabled_reason = null;
      // ? The reader still has the old file open: the next query opens the fresh one.
      dropReader();
    } catch (again) {
      log.error("history unavailable, running without it", { path, error: (again as Error).message });
      disable((again as Error).message);
    }
  }

  async function startWriter(): Promise<void> {
    const thread = spawn("writer");
    writer = thread;
    try {
      status.series = (await thread.call("open", store)).series;
      status.enabled = true;
      status.disabled_reason = null;
    } catch (err) {
      if (err instanceof HistoryThreadError && (err.corrupt || err.outdated)) await recover(thread, err);
      else {
        // ? Not corrupt but unusable (a directory in its place, no permission, disk
        // full, a binary without the worker): leave whatever is there alone and serve
        // the live endpoints without it.
        log.error("history unavailable, running without it", { path, error: (err as Error).message });
        disable((err as Error).message);
      }
    }
  }

  function liveReader(): Promise<HistoryThread> {
    const current = reader;
    if (current !== null) {
      return current.then((r) => {
        if (r.alive) return r;
        if (reader === current) reader = null;
        return liveReader();
      });
    }
    const started = (async () => {
      const thread = spawn("reader");
      try {
        await thread.call("open", store, queryTimeoutMs);
      } catch (err) {
        thread.terminate();
        throw err;
      }
      return thread;
    })();
    reader = started;
    started.catch(() => {
      if (reader === started) reader = null;
    });
    return started;
  }

  if (options.off !== null) status.disabled_reason = options.off;
  else await startWriter();

  return {
    async writer() {
      if (writer !== null && !writer.alive && status.enabled && !closed && !options.closing()) await startWriter();
      return writer?.alive ? writer : null;
    },
    reader: liveReader,
    async recover(err) {
      if (writer !== null) await recover(writer, err);
    },
    failed(err) {
      status.failures++;
      status.last_error = (err as Error).message;
      const t = Date.now();
      if (t - failingSince >= ERROR_LOG_INTERVAL_MS) {
        log.error("history not recorded", {
          path,
          error: status.last_error,
          failures_since_last_line: unloggedFailures,
        });
        failingSince = t;
        unloggedFailures = 0;
      } else unloggedFailures++;
    },
    async close() {
      if (closed) return;
      closed = true;
      dropReader();
      if (writer?.alive) {
        try {
          await writer.call("close", {}, CLOSE_TIMEOUT_MS);
        } catch (err) {
          log.error("history not closed cleanly", { path, error: (err as Error).message });
        }
      }
      writer?.terminate();
      writer = null;
    },
  };
}
