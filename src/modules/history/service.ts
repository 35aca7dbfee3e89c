// The history feature: records the figures of every committed update as time series
// (off the request path) and answers range queries for the charts. Plain logic, no Elysia.
//
// Recording never touches the commit: onCommit only notes which top-level keys changed
// and which state is the latest; a timer writes the figures of those keys once per
// FLUSH_MS in one transaction. So a burst of 10 000 POSTs costs one small write per
// second, and a broken history file costs an ERROR line, never a failed POST.
import { BadRequestError, UnavailableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import { type HistoryPoint, type HistoryStore, isCorruption, moveAside, openSqliteHistory } from "../../store/history";
import type { DocumentState, DocumentUpdate, JsonObject } from "../../store/store";
import type { WatchedFile } from "../agent-files/service";
import { type HistoryAnswer, type HistoryQuery, RANGES, type RangeName } from "./model";

/** Samples are written at most this often: chart resolution, and one transaction per tick. */
export const FLUSH_MS = 1000;
/** Default points per series in an answer: one per ~3 px of a 1000 px chart. */
export const DEFAULT_POINTS = 300;
/** Most points per series in an answer: bounds the work and the size of one answer. */
export const MAX_POINTS = 2000;
/** Most series in one answer (~100 agents x 8 figures); the answer says when it cut. */
export const MAX_SERIES_PER_ANSWER = 1000;
/** Most distinct series ever created: a poster inventing agent names must not fill the disk. */
export const MAX_SERIES_TOTAL = 20_000;
/** Old points are pruned this often, and at start-up. */
export const PRUNE_INTERVAL_MS = 3_600_000;
/** Points deleted per prune step; steps yield to the event loop so requests keep flowing. */
const PRUNE_CHUNK = 5000;
/** One ERROR line per this many ms while recording keeps failing; the count of the rest is in it. */
const ERROR_LOG_INTERVAL_MS = 60_000;
/** How often the governor's allocations file is checked for a new version to record. */
const GOVERNOR_SAMPLE_MS = 5000;
const DAY_MS = 86_400_000;

/** Breaker states as numbers for the chart: OPEN is the alarming top. */
const BREAKER_CODE: Record<string, number> = { CLOSED: 0, HALF_OPEN: 0.5, OPEN: 1 };

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

export interface History {
  /** The processor's onCommit listener: notes what changed; the write happens later. */
  onCommit(state: DocumentState, batch: readonly DocumentUpdate[]): void;
  /** Writes what is pending now. Never throws (failures are logged and counted). */
  flush(): void;
  /** Answers GET /meta/history. Throws BadRequestError for a bad query, UnavailableError when history is off. */
  query(q: HistoryQuery, now?: number): HistoryAnswer;
  /** Deletes everything older than the retention window. Never throws. */
  prune(now?: number): Promise<number>;
  status(): HistoryStatus;
  /** Flushes, stops the timers and closes the file. Idempotent. */
  close(): void;
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

export function createHistory(options: HistoryOptions): History {
  const { path, days, log } = options;
  const flushMs = options.flushMs ?? FLUSH_MS;
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
  let store: HistoryStore | null = null;

  function disable(reason: string): void {
    figures.enabled = false;
    figures.disabled_reason = reason;
    store?.close();
    store = null;
  }

  /** Moves an unreadable file aside and starts a fresh one; off when even that fails. */
  function recover(err: unknown): void {
    store?.close();
    store = null;
    try {
      const aside = moveAside(path);
      figures.corrupt_moved_to = aside;
      log.error("history file corrupt, moved aside", { path, moved_to: aside, error: (err as Error).message });
      store = openSqliteHistory(path, MAX_SERIES_TOTAL);
      figures.enabled = true;
      figures.disabled_reason = null;
    } catch (again) {
      log.error("history unavailable, running without it", { path, error: (again as Error).message });
      disable((again as Error).message);
    }
  }

  if (days === 0) {
    figures.disabled_reason = "NEOLIGHT_HISTORY_DAYS is 0";
  } else {
    try {
      store = openSqliteHistory(path, MAX_SERIES_TOTAL);
      figures.enabled = true;
    } catch (err) {
      if (isCorruption(err)) recover(err);
      else {
        // ? Not corrupt but unusable (a directory in its place, no permission, disk
        // full): leave whatever is there alone and serve the live endpoints without it.
        log.error("history unavailable, running without it", { path, error: (err as Error).message });
        disable((err as Error).message);
      }
    }
  }

  /** Top-level keys changed since the last flush, each with the time of its last change. */
  const dirty = new Map<string, number>();
  let latest: DocumentState | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failingSince = 0;
  let unloggedFailures = 0;
  let seriesCapWarned = false;
  let governorSeen: string | null = null;

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
    if (isCorruption(err)) recover(err);
  }

  function write(points: HistoryPoint[]): void {
    if (store === null || points.length === 0) return;
    try {
      const { written, skipped } = store.record(points);
      figures.points_written += written;
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
    }
  }

  function flush(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (latest === null || dirty.size === 0) return;
    // ? Each key is stamped with the commit that last changed it, not the flush: an atlas
    // update a moment after a hive snapshot must not move the agents' figures in time.
    const byTime = new Map<number, string[]>();
    for (const [key, ts] of dirty) byTime.set(ts, [...(byTime.get(ts) ?? []), key]);
    dirty.clear();
    const points: HistoryPoint[] = [];
    for (const [ts, keys] of byTime) points.push(...extractPoints(latest.doc, keys, ts));
    write(points);
  }

  function sampleGovernor(): void {
    const file = options.governor;
    if (file === undefined || store === null) return;
    const stamp = file.state().last_good_read;
    if (stamp === null || stamp === governorSeen) return;
    governorSeen = stamp;
    const points = governorPoints(file.value(), Date.now());
    write(points);
  }

  let pruning: Promise<number> | null = null;
  async function prune(now = Date.now()): Promise<number> {
    if (pruning) return pruning;
    pruning = (async () => {
      let total = 0;
      try {
        for (;;) {
          if (store === null) break;
          const n = store.prune(now - days * DAY_MS, PRUNE_CHUNK);
          total += n;
          if (n < PRUNE_CHUNK) break;
          await Bun.sleep(0);
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

  const timers: ReturnType<typeof setInterval>[] = [];
  if (store !== null) {
    void prune();
    timers.push(setInterval(() => void prune(), PRUNE_INTERVAL_MS));
    if (options.governor) {
      sampleGovernor();
      timers.push(setInterval(sampleGovernor, GOVERNOR_SAMPLE_MS));
    }
    for (const t of timers) t.unref?.();
  }

  let closed = false;
  return {
    onCommit(state, batch) {
      if (store === null || closed) return;
      latest = state;
      const ts = state.updatedAt === null ? Date.now() : Date.parse(state.updatedAt);
      for (const update of batch) for (const key of Object.keys(update.set)) dirty.set(key, ts);
      if (timer === undefined) {
        timer = setTimeout(flush, flushMs);
        timer.unref?.();
      }
    },
    flush,
    query(q, now = Date.now()) {
      if (store === null) {
        throw new UnavailableError(`history unavailable: ${figures.disabled_reason ?? "not open"}`, 60);
      }
      const to = q.to === undefined ? now : parseTime("to", q.to);
      const range = (q.range ?? "24h") as RangeName;
      const from = q.from === undefined ? to - RANGES[range] : parseTime("from", q.from);
      if (from >= to) throw new BadRequestError("from must be before to");
      const points = q.points === undefined ? DEFAULT_POINTS : Number(q.points);
      if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) {
        throw new BadRequestError(`points must be an integer from 1 to ${MAX_POINTS}, got ${JSON.stringify(q.points)}`);
      }
      const kinds =
        q.kinds === undefined
          ? undefined
          : q.kinds
              .split(",")
              .map((k) => k.trim())
              .filter(Boolean);
      let answer: ReturnType<HistoryStore["query"]>;
      try {
        answer = store.query({ from, to, points, kinds, maxSeries: MAX_SERIES_PER_ANSWER });
      } catch (err) {
        failed(err);
        throw new UnavailableError("history could not be read; see the log", 5);
      }
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        points: answer.series.reduce((m, s) => Math.max(m, s.t.length), 0),
        bucket_ms: answer.bucketMs,
        retention_days: days,
        truncated: answer.truncated,
        series: answer.series,
      };
    },
    prune,
    status: () => ({ ...figures, series: store?.seriesCount() ?? 0 }),
    close() {
      if (closed) return;
      flush();
      closed = true;
      for (const t of timers) clearInterval(t);
      store?.close();
      store = null;
    },
  };
}
