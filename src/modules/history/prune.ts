// History's retention: everything older than NEOLIGHT_HISTORY_DAYS is deleted, at start-up
// and hourly, and the oldest rows whenever the history outgrows NEOLIGHT_HISTORY_MAX_MB
// (raw points first, then minute, then hour roll-ups), in chunks so that the recorder's
// writes queue behind one chunk, not the whole. SQLite gives the pages back to the file
// system; PostgreSQL keeps its files and reuses the space (see reuseFloor).
import type { Logger } from "../../log/logger";
import type { HistoryStatus } from "./status";
import type { HistoryThreads } from "./threads";

/** Old points are pruned this often, and at start-up. */
export const PRUNE_INTERVAL_MS = 3_600_000;
/** Points deleted per prune step; the recorder's writes queue behind one step, not the whole prune. */
const PRUNE_CHUNK = 5000;
const DAY_MS = 86_400_000;
/**
 * Over the cap, rows go until the history is under this share of it: room for a while of
 * writes before the next prune, instead of one prune per flush at the cap.
 */
const SHRINK_TO = 0.9;

export interface Pruner {
  /** Deletes everything older than the retention window; resolves with how many. Never rejects. One at a time. */
  prune(now?: number): Promise<number>;
  /**
   * Deletes the oldest rows until the history is under SHRINK_TO of the cap, when `bytes`
   * (its size now) is over the cap; resolves with how many. Never rejects. One at a time.
   */
  shrink(bytes: number): Promise<number>;
  /** Stops the timer; resolves when a prune running now has ended. Idempotent. */
  stop(): Promise<void>;
}

export function startPruner(
  days: number,
  maxBytes: number,
  log: Logger,
  status: HistoryStatus,
  threads: HistoryThreads,
  /** Run the hourly prune even while history is not open yet (PostgreSQL: it opens once the database answers). */
  keepTrying = false,
): Pruner {
  let pruning: Promise<number> | null = null;
  let shrinking: Promise<number> | null = null;
  /**
   * For a store that reuses freed space instead of giving it back (PostgreSQL): its size
   * after the last shrink plus the room a shrink leaves (1 - SHRINK_TO of the cap). Its
   * files do not get smaller, so it is shrunk again only once they grew by that much: else
   * every write over the cap would prune again until nothing was left. (Not at the size
   * itself: an index page split now and then grows the files a little even while the
   * freed rows' space is being reused; test/store/postgres-history.test.ts.)
   */
  let reuseFloor = 0;
  function shrink(bytes: number): Promise<number> {
    if (bytes <= Math.max(maxBytes, reuseFloor)) return shrinking ?? Promise.resolve(0);
    shrinking ??= (async () => {
      let total = 0;
      let size = bytes;
      /** What the rows deleted took, estimated by a store that keeps its files (0 for SQLite). */
      let freed = 0;
      let reuses = false;
      try {
        while (size - freed > maxBytes * SHRINK_TO) {
          const thread = await threads.writer();
          if (thread === null) break;
          const { rows, size: after, freedBytes } = await thread.call("shrink", { limit: PRUNE_CHUNK });
          total += rows;
          size = after.bytes;
          if (freedBytes !== undefined) {
            reuses = true;
            freed += freedBytes;
          }
          status.bytes = after.bytes;
          status.wal_bytes = after.walBytes;
          if (rows === 0) break;
        }
      } catch (err) {
        threads.failed(err);
      }
      if (reuses) reuseFloor = size + maxBytes * (1 - SHRINK_TO);
      status.pruned_for_size += total;
      if (total > 0) log.info("history pruned for size", { rows: total, bytes: size, max_bytes: maxBytes });
      return total;
    })().finally(() => {
      shrinking = null;
    });
    return shrinking;
  }
  function prune(now = Date.now()): Promise<number> {
    pruning ??= (async () => {
      let total = 0;
      try {
        for (;;) {
          const thread = await threads.writer();
          if (thread === null) break;
          // ? In chunks: the recorder's writes queue behind each one, not behind all.
          const n = await thread.call("prune", { before: now - days * DAY_MS, limit: PRUNE_CHUNK });
          total += n;
          if (n < PRUNE_CHUNK) break;
        }
      } catch (err) {
        threads.failed(err);
      }
      status.pruned += total;
      if (total > 0) log.info("history pruned", { points: total, retention_days: days });
      return total;
    })().finally(() => {
      pruning = null;
    });
    return pruning;
  }
  let timer: ReturnType<typeof setInterval> | undefined;
  if (status.enabled || keepTrying) {
    // ? Once the writer has started on its own: a prune at start-up would start it while the
    // service makes its first answers (issue 14); an hour's retention can wait a second.
    void threads.ready().then(() => prune());
    timer = setInterval(() => void prune(), PRUNE_INTERVAL_MS);
    timer.unref?.();
  }
  return {
    prune,
    shrink,
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await pruning;
      await shrinking;
    },
  };
}
