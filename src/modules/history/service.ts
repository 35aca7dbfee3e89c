// The history feature: records the figures of every committed update as time series
// (off the request path) and answers range queries for the charts. Plain logic, no Elysia.
//
// Recording never touches the commit: onCommit only notes which top-level keys changed
// and which state is the latest; a timer hands the figures of those keys to the history
// writer thread once per FLUSH_MS, written there in one transaction. Queries go to a
// second thread, the reader. SQLite never runs on the main thread, so no request waits
// for history (issue 16: a 30-day chart held up GET /meta/metrics for seconds), and a
// broken history file or a crashed thread costs an ERROR line, never a failed request.
// Nor can history take the document's disk (issue 14): under NEOLIGHT_MIN_FREE_MB free it
// records nothing, and it never grows past NEOLIGHT_HISTORY_MAX_MB. With `database`
// (issue 12) the same runs against PostgreSQL, shared by every replica (threads.ts).
// The jobs live in their own files: points.ts (which figures become points), query.ts (the
// query's range and selection), recorder.ts (commits to writes, the sampling rule),
// prune.ts (retention and the size cap), threads.ts (the two threads and recovery of a broken file). This
// file puts them together and answers queries: one at a time, named ranges shared.
import { dirname } from "node:path";
import type { SQL } from "bun";
import { UnavailableError } from "../../http/errors";
import { spaceFloor } from "../../log/free-space";
import type { Logger } from "../../log/logger";
import { type HistoryBody, HistoryThreadError, HistoryTimeoutError } from "../../store/history-thread";
import type { DocumentState, DocumentUpdate } from "../../store/store";
import type { AgentFiles } from "../agent-files/service";
import type { HistoryQuery } from "./model";
import { startPruner } from "./prune";
import { planQuery, type QueryPlan } from "./query";
import { FLUSH_MS, startRecorder } from "./recorder";
import { type HistoryStatus, initialStatus, unavailableReason } from "./status";
import { MAX_SERIES_TOTAL, startHistoryThreads, startPostgresThreads } from "./threads";

/**
 * Most series in one answer (~100 agents x 8 figures), the safety kinds first; the answer
 * says when it cut. Default of NEOLIGHT_HISTORY_ANSWER_SERIES.
 */
export const MAX_SERIES_PER_ANSWER = 1000;
/**
 * A query not answered within this is stopped (its thread is replaced) and answered 503:
 * a viewer gets a clear answer instead of a hung request. Generous, as the query runs
 * off the main thread and holds up nothing but other history queries.
 */
export const QUERY_TIMEOUT_MS = 10_000;
/**
 * One answer per (range, points, kinds, subject) is shared by every viewer for this long:
 * ten open dashboards cost one query, and a chart a few seconds old looks the same.
 */
export const CACHE_MS = 5_000;
/**
 * Queries waiting for the reader beyond this get a 503 at once: a crowd of viewers asking
 * different ranges must not pile up answers nobody waits for any more. A 30-day chart at
 * 300 agents takes 1-2 s, so the last in line waits less than the idle timeout (10 s), after
 * which Bun would close its connection.
 */
export const MAX_QUEUED_QUERIES = 4;
/** Recording resumes once free space is this share above the floor (6.4 MB at the default 64 MB). */
const FLOOR_HYSTERESIS = 0.1;
/** Retry-After of a 503 for a full query queue: the queries ahead finish within a second or two. */
const BUSY_RETRY_AFTER_S = 1;
/** Retry-After when a query timed out or the reader failed: a restarted reader needs a few seconds. */
const READ_FAILED_RETRY_AFTER_S = 5;
/** Retry-After while history is off or not open: that lasts until an operator acts. */
const DISABLED_RETRY_AFTER_S = 60;

export interface History {
  /** The processor's onCommit listener: notes what changed; the write happens later. Never blocks. */
  onCommit(state: DocumentState, batch: readonly DocumentUpdate[]): void;
  /**
   * Writes what is pending now; resolves once the writer has answered every write sent
   * so far, so a query after it sees them (unless a cached answer is younger than
   * CACHE_MS). Never rejects (failures are logged and counted).
   */
  flush(): Promise<void>;
  /**
   * Answers GET /meta/history from the reader thread, ready to send (the caller must not
   * modify it: cached answers are shared); named ranges from the shared cache; one query
   * at a time, MAX_QUEUED_QUERIES waiting at most. Rejects with
   * BadRequestError for a bad query, and UnavailableError when history is off, the file
   * unreadable, the thread stopped, or the query slower than QUERY_TIMEOUT_MS.
   */
  query(q: HistoryQuery, now?: number): Promise<HistoryBody>;
  /** Deletes everything older than the retention window; resolves with how many. Never rejects. */
  prune(now?: number): Promise<number>;
  /** Figures as of now (the main thread's own count of the threads' answers). */
  status(): HistoryStatus;
  /** Flushes the last samples, stops the timers, closes the file and ends both threads. Idempotent. */
  close(): Promise<void>;
}

export interface HistoryOptions {
  path: string;
  /** Retention in days; 0 turns history off. */
  days: number;
  log: Logger;
  /** The agent files: the governor's allocations (its file, else its override copy) are sampled from them. */
  files?: Pick<AgentFiles, "regime" | "governor" | "override">;
  /** The size cap, bytes: over it the oldest rows are pruned. Default: none. */
  maxBytes?: number;
  /** Free bytes on the state disk below which nothing is recorded (issue 14). Default: 0 (none). */
  minFreeBytes?: number;
  /** Series recorded at most per class (the safety kinds; the others). Default: MAX_SERIES_TOTAL. */
  maxSeries?: number;
  /** Series in one answer at most, the safety kinds first. Default: MAX_SERIES_PER_ANSWER. */
  answerSeries?: number;
  /** Default: FLUSH_MS. */
  flushMs?: number;
  /** Default: QUERY_TIMEOUT_MS. */
  queryTimeoutMs?: number;
  /** Default: CACHE_MS. */
  cacheMs?: number;
  /** The history thread's code (tests start a thread that crashes). Default: workerEntry(). */
  workerEntry?: string;
  /** How long after start-up the writer starts unless used sooner, ms (tests shorten or lengthen it). */
  writerStartDelayMs?: number;
  /**
   * History in PostgreSQL, shared by every replica (issue 12), instead of `path`: no thread
   * and no history.db; records, queries, retention and the size cap (maxBytes, counted as
   * pg_total_relation_size of the history tables) run against the database. The
   * free-space floor (minFreeBytes) is the local disk's and does not apply: the database
   * keeps its own disk. `sql` is the caller's pool (it closes it); `target` is what
   * /status names, the URL with its password replaced. Default: none (SQLite at `path`).
   */
  database?: { sql: SQL; target: string };
}

export async function createHistory(options: HistoryOptions): Promise<History> {
  const { path, days, log } = options;
  const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  const cacheMs = options.cacheMs ?? CACHE_MS;
  const maxSeries = options.maxSeries ?? MAX_SERIES_TOTAL;
  const answerSeries = options.answerSeries ?? MAX_SERIES_PER_ANSWER;
  const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const database = options.database;
  // ? The floor guards the local state disk; with PostgreSQL nothing is written to it.
  const minFreeBytes = database === undefined ? (options.minFreeBytes ?? 0) : 0;
  const status = initialStatus(database?.target ?? path, days, maxBytes, minFreeBytes);
  let closed = false;
  const off = days === 0 ? "NEOLIGHT_HISTORY_DAYS is 0" : null;
  const threads =
    database === undefined
      ? await startHistoryThreads({
          path,
          log,
          status,
          queryTimeoutMs,
          maxSeries,
          workerEntry: options.workerEntry,
          writerStartDelayMs: options.writerStartDelayMs,
          closing: () => closed,
          off,
        })
      : await startPostgresThreads({
          // ? Imported here, and only in this mode: the embedded mode loads no PostgreSQL code.
          open: async () =>
            (await import("../../store/postgres/history")).openPostgresHistory(database.sql, {
              maxSeries,
              target: database.target,
            }),
          target: database.target,
          log,
          status,
          queryTimeoutMs,
          closing: () => closed,
          off,
        });
  const pruner = startPruner(days, maxBytes, log, status, threads, database !== undefined && off === null);
  const recorder = startRecorder({
    log,
    status,
    threads,
    flushMs: options.flushMs ?? FLUSH_MS,
    maxSeries,
    // ? Going back up at the floor plus FLOOR_HYSTERESIS of it: a disk hovering at the
    // floor does not turn recording on and off (and log it) every second.
    floor:
      minFreeBytes > 0 && database === undefined
        ? spaceFloor(dirname(path), minFreeBytes, minFreeBytes * (1 + FLOOR_HYSTERESIS))
        : null,
    onSize: (bytes) => void pruner.shrink(bytes),
    files: options.files,
  });

  /** Queries waiting for the reader or running: one runs at a time, so its timeout is its own. */
  let queued = 0;
  let queue: Promise<unknown> = Promise.resolve();

  function answer(plan: QueryPlan): Promise<HistoryBody> {
    // ? `queued` counts the running query too: one runs, MAX_QUEUED_QUERIES wait.
    if (queued > MAX_QUEUED_QUERIES) {
      return Promise.reject(new UnavailableError(`history busy: ${queued - 1} queries waiting`, BUSY_RETRY_AFTER_S));
    }
    queued++;
    const run = queue.then(() => ask(plan));
    queue = run.catch(() => {});
    void queue.then(() => queued--);
    return run;
  }

  async function ask({ from, to, points, kinds, subjects }: QueryPlan): Promise<HistoryBody> {
    try {
      const thread = await threads.reader();
      return await thread.call(
        "answer",
        // ? Read as the query starts: the writes it counts are committed, so the reader sees them.
        {
          from,
          to,
          points,
          kinds,
          subjects,
          maxSeries: answerSeries,
          retentionDays: days,
          recordedThrough: recorder.recordedThrough(),
        },
        queryTimeoutMs,
      );
    } catch (err) {
      threads.failed(err);
      if (err instanceof HistoryTimeoutError) {
        throw new UnavailableError(
          `history query took longer than ${queryTimeoutMs} ms and was stopped; ask for a shorter range or fewer kinds`,
          READ_FAILED_RETRY_AFTER_S,
        );
      }
      if (err instanceof HistoryThreadError && err.corrupt) void threads.recover(err);
      throw new UnavailableError("history could not be read; see the log", READ_FAILED_RETRY_AFTER_S);
    }
  }

  /** Answers of named ranges (no from/to), by query: shared by every viewer for cacheMs. */
  const cache = new Map<string, { at: number; answer: Promise<HistoryBody> }>();

  return {
    onCommit: recorder.onCommit,
    flush: recorder.flush,
    async query(q, now = Date.now()) {
      if (!status.enabled) {
        throw new UnavailableError(unavailableReason(status), DISABLED_RETRY_AFTER_S);
      }
      const plan = planQuery(q, now);
      const key = plan.shareKey;
      if (key === null) return answer(plan);
      const hit = cache.get(key);
      if (hit !== undefined && now - hit.at < cacheMs) return hit.answer;
      for (const [k, entry] of cache) if (now - entry.at >= cacheMs) cache.delete(k);
      const fresh = answer(plan);
      cache.set(key, { at: now, answer: fresh });
      // ? A failure is not kept: the next viewer asks again.
      fresh.catch(() => {
        if (cache.get(key)?.answer === fresh) cache.delete(key);
      });
      return fresh;
    },
    prune: pruner.prune,
    status: (): HistoryStatus => ({ ...status }),
    async close() {
      if (closed) return;
      closed = true;
      recorder.stop();
      await recorder.flush();
      await pruner.stop();
      await threads.close();
    },
  };
}
