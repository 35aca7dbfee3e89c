// History's two threads and what happens when their file breaks: the writer (record, prune)
// and the reader (queries), each started when needed and again after a crash, and the
// recovery of an unreadable or outdated history file (moved aside, a fresh one started), or,
// when even that fails, history turned off while the live endpoints keep serving. With
// PostgreSQL (issue 12) the same interface runs each op against the database instead.

import type { Logger } from "../../log/logger";
import {
  type HistoryOp,
  type HistoryOps,
  type HistoryThread,
  HistoryThreadError,
  HistoryTimeoutError,
  spawnHistoryThread,
} from "../../store/history-thread";
// ? Types only: the PostgreSQL code is imported by service.ts, and only in that mode.
import type { PostgresHistory } from "../../store/postgres/history";
import { type HistoryStatus, unavailableReason } from "./status";

/**
 * gzip on libuv's thread pool. ? node:zlib is loaded on the first answer, not at import: it
 * takes 5-11 ms to load in the compiled binary (issue 14), and only PostgreSQL's answers
 * are gzipped here (the SQLite reader gzips in its own thread).
 */
async function gzipJson(json: Uint8Array): Promise<Uint8Array> {
  const { gzip } = await import("node:zlib");
  return new Promise((resolve, reject) => gzip(json, (err, out) => (err ? reject(err) : resolve(out))));
}

/**
 * Most distinct series ever created, per class (the safety kinds; the others): a poster
 * inventing agent names must not fill the disk. Default of NEOLIGHT_HISTORY_MAX_SERIES.
 */
export const MAX_SERIES_TOTAL = 20_000;
/** A fresh reader's start and open of the file take at most this (then the query is answered 503). */
const READER_OPEN_TIMEOUT_MS = 10_000;
/** Shutdown waits at most this for the writer to close the file (a WAL checkpoint). */
const CLOSE_TIMEOUT_MS = 5_000;
/**
 * The writer starts this long after start-up unless something needs it sooner (a commit, a
 * query): late enough that the first answers after a start do not share the 2 cores with
 * its boot (issue 14), soon enough that /status shows the file's series within a second.
 */
const WRITER_START_DELAY_MS = 1_000;
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
  /** The writer starts this long after start-up unless used sooner, ms. Default: WRITER_START_DELAY_MS. */
  writerStartDelayMs?: number;
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
  /**
   * Resolves once the writer has had its first start (its delay passed, or a use started it
   * sooner), without starting it: for work that may wait, so that start-up does not start it.
   */
  ready(): Promise<void>;
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
 * Starts the writer and opens the file with it (moving a broken one aside), in the
 * background and not at once (WRITER_START_DELAY_MS); history is off when that fails, or
 * when `off` says so.
 */
export async function startHistoryThreads(options: ThreadOptions): Promise<HistoryThreads> {
  const { path, log, status, queryTimeoutMs, maxSeries } = options;
  const failed = failureCounter(path, log, status);
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
        // ? Bounded on its own, not by the query's timeout: starting a thread and opening the
        // file is not the query's slowness, and took over a second on a loaded 2-core machine,
        // which answered a quick query 503 right after a slow one had been stopped.
        await thread.call("open", store, Math.max(queryTimeoutMs, READER_OPEN_TIMEOUT_MS));
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

  /**
   * The writer's first start and open: on the first use, or writerStartDelayMs after
   * start-up, whichever comes first; every use below awaits it. ? Not at start-up: the
   * thread's VM boots on the other core, and on this 2-core machine that slowed the first
   * answers (issue 14: 25-35 ms when awaited before listening, 2-6 ms when spawned as
   * listen began), where a second later the service is idle.
   */
  let starting: Promise<void> | null = null;
  let startTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settled once the first start has been made: what ready() hands out. */
  const firstStart = Promise.withResolvers<void>();
  function started(): Promise<void> {
    if (starting === null) {
      clearTimeout(startTimer);
      // ? After close() nothing starts it: a late commit or prune then finds no writer (null).
      starting = closed ? Promise.resolve() : startWriter();
      void starting.then(firstStart.resolve);
    }
    return starting;
  }
  if (options.off !== null) {
    status.disabled_reason = options.off;
    starting = Promise.resolve();
    firstStart.resolve();
  } else {
    // ? Enabled from the start, as the open succeeds nearly always: a commit in the first
    // milliseconds is then recorded (its write starts the thread and waits for the open),
    // not dropped. An open that fails turns it off as before, with the reason.
    status.enabled = true;
    startTimer = setTimeout(started, options.writerStartDelayMs ?? WRITER_START_DELAY_MS);
    startTimer.unref?.();
  }

  return {
    async writer() {
      await started();
      if (writer !== null && !writer.alive && status.enabled && !closed && !options.closing()) await startWriter();
      return writer?.alive ? writer : null;
    },
    ready: () => firstStart.promise,
    async reader() {
      // ? The writer's open may be moving a corrupt file aside: the reader opens after it.
      await started();
      if (!status.enabled) throw new HistoryThreadError(unavailableReason(status));
      return liveReader();
    },
    async recover(err) {
      await started();
      if (writer !== null) await recover(writer, err);
    },
    failed,
    async close() {
      if (closed) return;
      closed = true;
      // ? Never started (a stop within the start delay): nothing to close; started() below
      // only settles what waits for the start.
      if (starting === null) return void started();
      await starting;
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

/** HistoryThreads.failed: counts a failure in `status`, and logs at most one ERROR per ERROR_LOG_INTERVAL_MS. */
function failureCounter(path: string, log: Logger, status: HistoryStatus): (err: unknown) => void {
  let failingSince = 0;
  let unloggedFailures = 0;
  return (err) => {
    status.failures++;
    status.last_error = (err as Error).message;
    const t = Date.now();
    if (t - failingSince >= ERROR_LOG_INTERVAL_MS) {
      log.error("history not recorded", { path, error: status.last_error, failures_since_last_line: unloggedFailures });
      failingSince = t;
      unloggedFailures = 0;
    } else unloggedFailures++;
  };
}

/** Start-up waits at most this for history to open in PostgreSQL; it opens later when slower. */
export const OPEN_WAIT_MS = 2_000;
/** While the database does not answer at start-up, opening the history is tried again this often. */
export const REOPEN_MS = 5_000;
/**
 * A write (record, prune, shrink) to PostgreSQL not answered within this is given up (its
 * transaction is rolled back by the database when the connection goes): a black-holed
 * network must not pile up the recorder's writes. A flush's transaction takes milliseconds.
 */
export const PG_WRITE_TIMEOUT_MS = 30_000;

export interface PostgresThreadOptions {
  /** Opens the history in the database (openPostgresHistory, imported by the caller only in that mode). */
  open: () => Promise<PostgresHistory>;
  /** What /status shows as the history's place: the database URL without its password. */
  target: string;
  log: Logger;
  status: HistoryStatus;
  queryTimeoutMs: number;
  closing: () => boolean;
  off: string | null;
}

/**
 * History in PostgreSQL behind the same HistoryThreads the recorder, the pruner and the
 * queries use: no worker thread and no history.db (the database runs the queries, off the
 * main thread by nature), so writer() and reader() hand out one adapter that runs each op
 * against the database. A database that does not answer at start-up leaves history off,
 * tried again every REOPEN_MS; one that stops answering later fails the calls (counted,
 * logged once a minute), and they succeed again once it is back.
 */
export async function startPostgresThreads(options: PostgresThreadOptions): Promise<HistoryThreads> {
  const { target, log, status, queryTimeoutMs } = options;
  const failed = failureCounter(target, log, status);
  let db: PostgresHistory | null = null;
  let closed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;

  async function open(): Promise<void> {
    try {
      const opened = await options.open();
      // ? An open that finished after shutdown began is not used.
      if (closed) return opened.close();
      db = opened;
      status.series = opened.seriesCount();
      status.enabled = true;
      status.disabled_reason = null;
      log.info("history opened", { target, series: status.series });
    } catch (err) {
      const reason = `database: ${(err as Error).message}`;
      if (status.disabled_reason !== reason) log.error("history unavailable, trying again", { target, error: reason });
      status.disabled_reason = reason;
      if (!closed && !options.closing()) {
        retry = setTimeout(() => void open(), REOPEN_MS);
        retry.unref?.();
      }
    }
  }

  if (options.off !== null) status.disabled_reason = options.off;
  else {
    // ? Start-up waits for the first open at most OPEN_WAIT_MS: a database behind a
    // black-holed network must not hold up the service (the store serves its local copy
    // then); history turns on when the open finishes.
    let waited: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([open(), new Promise<void>((resolve) => (waited = setTimeout(resolve, OPEN_WAIT_MS)))]);
    clearTimeout(waited);
  }

  const thread = (store: PostgresHistory): HistoryThread => postgresThread(store, queryTimeoutMs);
  return {
    async writer() {
      return db !== null && !closed && status.enabled ? thread(db) : null;
    },
    // ? Open already, or being tried again every REOPEN_MS: nothing to wait for.
    async ready() {},
    async reader() {
      if (db === null) throw new HistoryThreadError(unavailableReason(status));
      return thread(db);
    },
    // ? Nothing to move aside: the database has no file of ours that can be corrupt.
    async recover() {},
    failed,
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retry);
      db?.close();
      db = null;
    },
  };
}

/** PostgreSQL's errors as the threads' (the callers' catch paths are the same), its timeout as HistoryTimeoutError. */
function asThreadError(op: string, err: unknown, timeoutMs: number): HistoryThreadError {
  if (err instanceof HistoryThreadError) return err;
  if ((err as { errno?: unknown }).errno === QUERY_CANCELED) return new HistoryTimeoutError(op, timeoutMs);
  return new HistoryThreadError(`history ${op} failed: ${(err as Error).message}`);
}

/** One HistoryThread's ops run against the database; gzip on libuv's thread pool, not the main thread. */
function postgresThread(db: PostgresHistory, queryTimeoutMs: number): HistoryThread {
  type Handlers = {
    [K in HistoryOp]: (args: HistoryOps[K]["args"], timeoutMs: number) => Promise<HistoryOps[K]["result"]>;
  };
  const handlers: Handlers = {
    open: async () => ({ series: db.seriesCount() }),
    record: async ({ points }) => ({ ...(await db.record(points)), series: db.seriesCount(), size: await db.size() }),
    answer: async ({ retentionDays, recordedThrough, ...q }, timeoutMs) => {
      const json = await db.answer(q, { retentionDays, recordedThrough }, timeoutMs);
      return { json, gzip: await gzipJson(json) };
    },
    prune: ({ before, limit }) => db.prune(before, limit),
    shrink: async ({ limit }) => {
      const { rows, freedBytes } = await db.pruneOldest(limit);
      return { rows, size: await db.size(), freedBytes };
    },
    recover: async () => {
      throw new HistoryThreadError("history in PostgreSQL has no file to move aside");
    },
    close: async () => null,
  };
  return {
    alive: true,
    terminate() {},
    async call(op, args, timeoutMs) {
      const limit = timeoutMs ?? (op === "answer" ? queryTimeoutMs : PG_WRITE_TIMEOUT_MS);
      let timer: ReturnType<typeof setTimeout> | undefined;
      // ? The database stops a query at its statement_timeout; this timer is for a
      // connection that does not answer at all.
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HistoryTimeoutError(op, limit)), limit + LATE_MARGIN_MS);
      });
      try {
        // ? The op pairs with its args as in the worker; TypeScript cannot follow that through an indexed call.
        const run = (handlers[op] as (a: unknown, t: number) => Promise<HistoryOps[typeof op]["result"]>)(args, limit);
        return await Promise.race([run, late]);
      } catch (err) {
        throw asThreadError(op, err, limit);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** PostgreSQL's SQLSTATE for a statement stopped by statement_timeout (query_canceled). */
const QUERY_CANCELED = "57014";
/** A call's own timer fires this long after the database's statement_timeout should have. */
const LATE_MARGIN_MS = 1_000;
