// The history feature: records the figures of every committed update as time series
// (off the request path) and answers range queries for the charts. Plain logic, no Elysia.
//
// Recording never touches the commit: onCommit only notes which top-level keys changed
// and which state is the latest; a timer hands the figures of those keys to the history
// writer thread once per FLUSH_MS, written there in one transaction. Queries go to a
// second thread, the reader. SQLite never runs on the main thread, so no request waits
// for history (issue 16: a 30-day chart held up GET /meta/metrics for seconds), and a
// broken history file or a crashed thread costs an ERROR line, never a failed request.
import { BadRequestError, UnavailableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import type { HistoryPoint } from "../../store/history";
import {
  type HistoryBody,
  type HistoryThread,
  HistoryThreadError,
  HistoryTimeoutError,
  spawnHistoryThread,
} from "../../store/history-thread";
import type { DocumentState, DocumentUpdate, JsonObject } from "../../store/store";
import type { WatchedFile } from "../agent-files/service";
import { type HistoryQuery, type HistoryStatus, RANGES, type RangeName } from "./model";

/** Samples are written at most this often: one transaction per tick (the samples kept follow SAMPLE_MS). */
export const FLUSH_MS = 1000;
/**
 * The sampling rule: of each top-level key (per_agent, guardian, ...) the recorder keeps
 * the last state in every window of this length, a window starting at the first change
 * after the one before. So a hive posting once a second has every snapshot kept, and a
 * flood of posts costs at most 1000 / SAMPLE_MS samples a second. (Before issue 16 a
 * flush kept only the last state of each second: 58-65 % of 1 Hz snapshots.)
 */
export const SAMPLE_MS = 500;
/** Default points per series in an answer: one per ~3 px of a 1000 px chart. */
export const DEFAULT_POINTS = 300;
/** Most points per series in an answer: bounds the work and the size of one answer. */
export const MAX_POINTS = 2000;
/** Most series in one answer (~100 agents x 8 figures); the answer says when it cut. */
export const MAX_SERIES_PER_ANSWER = 1000;
/** Most distinct series ever created: a poster inventing agent names must not fill the disk. */
export const MAX_SERIES_TOTAL = 20_000;
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
/** Retry-After of a 503 for a full query queue: the queries ahead finish within a second or two. */
const BUSY_RETRY_AFTER_S = 1;
/** Retry-After when a query timed out or the reader failed: a restarted reader needs a few seconds. */
const READ_FAILED_RETRY_AFTER_S = 5;
/** Retry-After while history is off or not open: that lasts until an operator acts. */
const DISABLED_RETRY_AFTER_S = 60;
/** Shutdown waits at most this for the writer to close the file (a WAL checkpoint). */
const CLOSE_TIMEOUT_MS = 5_000;
/** Old points are pruned this often, and at start-up. */
export const PRUNE_INTERVAL_MS = 3_600_000;
/** Points deleted per prune step; the recorder's writes queue behind one step, not the whole prune. */
const PRUNE_CHUNK = 5000;
/** One ERROR line per this many ms while recording keeps failing; the count of the rest is in it. */
const ERROR_LOG_INTERVAL_MS = 60_000;
/** How often the governor's allocations file is checked for a new version to record. */
const GOVERNOR_SAMPLE_MS = 5000;
const DAY_MS = 86_400_000;

/** Breaker states as numbers for the chart: OPEN is the alarming top. */
const BREAKER_CODE: Record<string, number> = { CLOSED: 0, HALF_OPEN: 0.5, OPEN: 1 };

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
  /** The capital governor's allocations file, sampled for allocation weights and bounds. */
  governor?: WatchedFile;
  /** Default: FLUSH_MS. */
  flushMs?: number;
  /** Default: QUERY_TIMEOUT_MS. */
  queryTimeoutMs?: number;
  /** Default: CACHE_MS. */
  cacheMs?: number;
  /** The history thread's code (tests start a thread that crashes). Default: workerEntry(). */
  workerEntry?: string;
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** The figures of `doc` under the top-level keys `keys`, stamped `ts`. */
export function extractPoints(doc: Readonly<JsonObject>, keys: Iterable<string>, ts: number): HistoryPoint[] {
  const out: HistoryPoint[] = [];
  const num = (kind: string, subject: string, field: string, value: unknown, peak = false) => {
    if (isNumber(value)) out.push({ kind, subject, field, ts, value, peak });
  };
  for (const key of keys) {
    const section = doc[key];
    switch (key) {
      case "per_agent":
      case "per_strategy": {
        if (!isObject(section)) break;
        const kind = key === "per_agent" ? "agent" : "strategy";
        for (const [name, figures] of Object.entries(section)) {
          if (!isObject(figures)) continue;
          for (const [field, value] of Object.entries(figures)) num(kind, name, field, value);
        }
        break;
      }
      case "guardian":
        if (!isObject(section)) break;
        if (typeof section.is_paused === "boolean") num("guardian", "", "is_paused", section.is_paused ? 1 : 0, true);
        num("guardian", "", "drawdown", section.drawdown);
        break;
      case "breakers":
        if (!isObject(section)) break;
        for (const [name, state] of Object.entries(section)) {
          if (typeof state === "string" && state in BREAKER_CODE) {
            out.push({
              kind: "breaker",
              subject: name,
              field: "state",
              ts,
              value: BREAKER_CODE[state] ?? null,
              label: state,
              peak: true,
            });
          }
        }
        break;
      case "market_regime":
        if (!isObject(section) || typeof section.regime !== "string") break;
        out.push({ kind: "regime", subject: "", field: "label", ts, value: null, label: section.regime });
        for (const field of ["confidence", "risk_multiplier", "risk_scaler", "volatility"]) {
          num("regime", "", field, section[field]);
        }
        break;
      case "mode":
        if (typeof section === "string")
          out.push({ kind: "mode", subject: "", field: "label", ts, value: null, label: section });
        break;
      case "atlas":
        if (!isObject(section) || !isObject(section.allocations)) break;
        for (const [agent, weight] of Object.entries(section.allocations)) num("allocation", agent, "atlas", weight);
        break;
    }
  }
  return out;
}

/** The governor file's weights and bounds as points. */
function governorPoints(value: unknown, ts: number): HistoryPoint[] {
  if (!isObject(value) || !isObject(value.allocations)) return [];
  const out: HistoryPoint[] = [];
  for (const [agent, weight] of Object.entries(value.allocations)) {
    if (isNumber(weight)) out.push({ kind: "allocation", subject: agent, field: "governor", ts, value: weight });
  }
  if (isNumber(value.min_allocation))
    out.push({ kind: "allocation", subject: "", field: "min", ts, value: value.min_allocation });
  if (isNumber(value.max_allocation))
    out.push({ kind: "allocation", subject: "", field: "max", ts, value: value.max_allocation });
  return out;
}

/** `2025-11-03T22:00:00Z` or `1762207200000` -> Unix ms; BadRequestError otherwise. */
function parseTime(name: string, text: string): number {
  const ms = /^\d{1,15}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms))
    throw new BadRequestError(`${name} must be RFC 3339 or Unix ms, got ${JSON.stringify(text)}`);
  return ms;
}

/** The comma-separated list of a query parameter, or undefined when absent. */
function listParam(text: string | undefined): string[] | undefined {
  return text
    ?.split(",")
    .map((k) => k.trim())
    .filter(Boolean);
}

export async function createHistory(options: HistoryOptions): Promise<History> {
  const { path, days, log } = options;
  const flushMs = options.flushMs ?? FLUSH_MS;
  const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  const cacheMs = options.cacheMs ?? CACHE_MS;
  const figures: HistoryStatus = {
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
  };
  const spawn = (role: string) =>
    spawnHistoryThread({
      entry: options.workerEntry,
      onStop: (reason) => {
        figures.failures++;
        figures.last_error = `history ${role} thread stopped: ${reason}`;
        log.error("history thread stopped", { role, reason });
      },
    });
  const store = { path, maxSeries: MAX_SERIES_TOTAL };
  /** The thread that writes (record, prune); null while history is off. */
  let writer: HistoryThread | null = null;
  /** The thread that answers queries, started with the first one; replaced when it stops. */
  let reader: Promise<HistoryThread> | null = null;
  let closed = false;

  function disable(reason: string): void {
    figures.enabled = false;
    figures.disabled_reason = reason;
    writer?.terminate();
    writer = null;
  }

  /** Moves an unreadable or outdated file aside and starts a fresh one; off when even that fails. */
  async function recover(thread: HistoryThread, err: HistoryThreadError): Promise<void> {
    const reason = err.outdated ? "outdated" : "corrupt";
    try {
      const { movedTo, series } = await thread.call("recover", { ...store, reason });
      figures.corrupt_moved_to = movedTo;
      figures.series = series;
      if (err.outdated) log.warn("history file of an older layout, moved aside", { path, moved_to: movedTo });
      else log.error("history file corrupt, moved aside", { path, moved_to: movedTo, error: err.message });
      figures.enabled = true;
      figures.disabled_reason = null;
      // ? The reader still has the old file open: the next query opens the fresh one.
      void reader?.then((r) => r.terminate()).catch(() => {});
      reader = null;
    } catch (again) {
      log.error("history unavailable, running without it", { path, error: (again as Error).message });
      disable((again as Error).message);
    }
  }

  /** Starts the writer thread and opens the file with it; history is off when that fails. */
  async function startWriter(): Promise<void> {
    const thread = spawn("writer");
    writer = thread;
    try {
      figures.series = (await thread.call("open", store)).series;
      figures.enabled = true;
      figures.disabled_reason = null;
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

  if (days === 0) figures.disabled_reason = "NEOLIGHT_HISTORY_DAYS is 0";
  else await startWriter();

  /** Top-level keys changed since the last flush, each with the time of its last change. */
  const dirty = new Map<string, number>();
  /** When each dirty key's current sampling window began (the first change in it). */
  const windowStart = new Map<string, number>();
  /** Samples of earlier windows, taken at a commit, written with the next flush. */
  let captured: HistoryPoint[] = [];
  let latest: DocumentState | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failingSince = 0;
  let unloggedFailures = 0;
  let seriesCapWarned = false;
  let governorSeen: string | null = null;
  /** Writes sent to the writer and not answered yet: flush() and close() wait for them. */
  const writing = new Set<Promise<void>>();

  function failed(err: unknown): void {
    figures.failures++;
    figures.last_error = (err as Error).message;
    const t = Date.now();
    if (t - failingSince >= ERROR_LOG_INTERVAL_MS) {
      log.error("history not recorded", {
        path,
        error: figures.last_error,
        failures_since_last_line: unloggedFailures,
      });
      failingSince = t;
      unloggedFailures = 0;
    } else unloggedFailures++;
  }

  /** The writer, restarted when it stopped unexpectedly; null while history is off. */
  async function liveWriter(): Promise<HistoryThread | null> {
    if (writer !== null && !writer.alive && figures.enabled && !closed) await startWriter();
    return writer?.alive ? writer : null;
  }

  function write(points: HistoryPoint[]): Promise<void> {
    if (points.length === 0 || !figures.enabled) return Promise.resolve();
    const done = (async () => {
      const thread = await liveWriter();
      if (thread === null) return;
      try {
        const { written, skipped, series } = await thread.call("record", { points });
        figures.points_written += written;
        figures.series = series;
        figures.flushes++;
        figures.last_flush_at = new Date().toISOString();
        figures.last_error = null;
        if (skipped > 0 && !seriesCapWarned) {
          // ? Only new series are refused; the ones already charted keep being recorded.
          log.warn("history series limit reached, new series not recorded", { limit: MAX_SERIES_TOTAL, skipped });
          seriesCapWarned = true;
        }
      } catch (err) {
        failed(err);
        if (err instanceof HistoryThreadError && err.corrupt) await recover(thread, err);
      }
    })();
    writing.add(done);
    void done.finally(() => writing.delete(done));
    return done;
  }

  /** Hands what is pending to the writer; resolves once every write sent so far is answered. */
  async function flush(): Promise<void> {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (latest !== null && dirty.size > 0) {
      // ? Each key is stamped with the commit that last changed it, not the flush: an atlas
      // update a moment after a hive snapshot must not move the agents' figures in time.
      const byTime = new Map<number, string[]>();
      for (const [key, ts] of dirty) byTime.set(ts, [...(byTime.get(ts) ?? []), key]);
      dirty.clear();
      windowStart.clear();
      const points: HistoryPoint[] = captured;
      captured = [];
      for (const [ts, keys] of byTime) points.push(...extractPoints(latest.doc, keys, ts));
      void write(points);
    }
    await Promise.all([...writing]);
  }

  function sampleGovernor(): void {
    const file = options.governor;
    if (file === undefined || !figures.enabled) return;
    const stamp = file.state().last_good_read;
    if (stamp === null || stamp === governorSeen) return;
    governorSeen = stamp;
    void write(governorPoints(file.value(), Date.now()));
  }

  let pruning: Promise<number> | null = null;
  function prune(now = Date.now()): Promise<number> {
    pruning ??= (async () => {
      let total = 0;
      try {
        for (;;) {
          const thread = await liveWriter();
          if (thread === null) break;
          // ? In chunks: the recorder's writes queue behind each one, not behind all.
          const n = await thread.call("prune", { before: now - days * DAY_MS, limit: PRUNE_CHUNK });
          total += n;
          if (n < PRUNE_CHUNK) break;
        }
      } catch (err) {
        failed(err);
      }
      figures.pruned += total;
      if (total > 0) log.info("history pruned", { points: total, retention_days: days });
      return total;
    })().finally(() => {
      pruning = null;
    });
    return pruning;
  }

  /** The reader thread with the file open; started (again) when there is none. */
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

  /** Queries waiting for the reader or running: one runs at a time, so its timeout is its own. */
  let queued = 0;
  let queue: Promise<unknown> = Promise.resolve();

  function answer(from: number, to: number, points: number, q: HistoryQuery): Promise<HistoryBody> {
    // ? `queued` counts the running query too: one runs, MAX_QUEUED_QUERIES wait.
    if (queued > MAX_QUEUED_QUERIES) {
      return Promise.reject(new UnavailableError(`history busy: ${queued - 1} queries waiting`, BUSY_RETRY_AFTER_S));
    }
    queued++;
    const run = queue.then(() => ask(from, to, points, q));
    queue = run.catch(() => {});
    void queue.then(() => queued--);
    return run;
  }

  async function ask(from: number, to: number, points: number, q: HistoryQuery): Promise<HistoryBody> {
    try {
      const thread = await liveReader();
      return await thread.call(
        "answer",
        {
          from,
          to,
          points,
          kinds: listParam(q.kinds),
          subjects: listParam(q.subject),
          maxSeries: MAX_SERIES_PER_ANSWER,
          retentionDays: days,
        },
        queryTimeoutMs,
      );
    } catch (err) {
      failed(err);
      if (err instanceof HistoryTimeoutError) {
        throw new UnavailableError(
          `history query took longer than ${queryTimeoutMs} ms and was stopped; ask for a shorter range or fewer kinds`,
          READ_FAILED_RETRY_AFTER_S,
        );
      }
      if (err instanceof HistoryThreadError && err.corrupt && writer !== null) void recover(writer, err);
      throw new UnavailableError("history could not be read; see the log", READ_FAILED_RETRY_AFTER_S);
    }
  }

  /** Answers of named ranges (no from/to), by query: shared by every viewer for cacheMs. */
  const cache = new Map<string, { at: number; answer: Promise<HistoryBody> }>();

  const timers: ReturnType<typeof setInterval>[] = [];
  if (figures.enabled) {
    void prune();
    timers.push(setInterval(() => void prune(), PRUNE_INTERVAL_MS));
    if (options.governor) {
      sampleGovernor();
      timers.push(setInterval(sampleGovernor, GOVERNOR_SAMPLE_MS));
    }
    for (const t of timers) t.unref?.();
  }

  return {
    onCommit(state, batch) {
      if (!figures.enabled || closed) return;
      const ts = state.updatedAt === null ? Date.now() : Date.parse(state.updatedAt);
      for (const update of batch) {
        for (const key of Object.keys(update.set)) {
          const since = windowStart.get(key);
          const last = dirty.get(key);
          if (since === undefined) windowStart.set(key, ts);
          else if (last !== undefined && latest !== null && ts - since >= SAMPLE_MS) {
            // ? The sampling rule: the last state of each key in each SAMPLE_MS window is
            // kept. The previous state still holds this key as of its last change (states
            // are immutable), so its sample is taken now, before it is replaced.
            captured.push(...extractPoints(latest.doc, [key], last));
            windowStart.set(key, ts);
          }
          dirty.set(key, ts);
        }
      }
      latest = state;
      if (timer === undefined) {
        timer = setTimeout(() => void flush(), flushMs);
        timer.unref?.();
      }
    },
    flush,
    async query(q, now = Date.now()) {
      if (!figures.enabled) {
        throw new UnavailableError(
          `history unavailable: ${figures.disabled_reason ?? "not open"}`,
          DISABLED_RETRY_AFTER_S,
        );
      }
      const to = q.to === undefined ? now : parseTime("to", q.to);
      const range = (q.range ?? "24h") as RangeName;
      const from = q.from === undefined ? to - RANGES[range] : parseTime("from", q.from);
      if (from >= to) throw new BadRequestError("from must be before to");
      const points = q.points === undefined ? DEFAULT_POINTS : Number(q.points);
      if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) {
        throw new BadRequestError(`points must be an integer from 1 to ${MAX_POINTS}, got ${JSON.stringify(q.points)}`);
      }
      // ? Only "the last <range>" is shared: it is what the page asks, every viewer the
      // same, and a few seconds of age do not show on a chart of an hour or a month.
      if (q.from !== undefined || q.to !== undefined) return answer(from, to, points, q);
      const key = JSON.stringify([range, points, q.kinds ?? null, q.subject ?? null]);
      const hit = cache.get(key);
      if (hit !== undefined && now - hit.at < cacheMs) return hit.answer;
      for (const [k, entry] of cache) if (now - entry.at >= cacheMs) cache.delete(k);
      const fresh = answer(from, to, points, q);
      cache.set(key, { at: now, answer: fresh });
      // ? A failure is not kept: the next viewer asks again.
      fresh.catch(() => {
        if (cache.get(key)?.answer === fresh) cache.delete(key);
      });
      return fresh;
    },
    prune,
    status: () => ({ ...figures }),
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearInterval(t);
      await flush();
      await pruning;
      void reader?.then((r) => r.terminate()).catch(() => {});
      reader = null;
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
