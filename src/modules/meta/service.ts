// The meta-metrics feature: accepting updates into the channel and serving the merged
// document. Plain logic, no Elysia: routes in index.ts call this.

import { TypeCompiler } from "@sinclair/typebox/compiler";
import { describeProblems, UnavailableError, UnprocessableError } from "../../http/errors";
import { coerce } from "../../http/json-body";
import { clip, type Logger } from "../../log/logger";
import {
  CACHE_TIMESTAMP_KEY,
  type DocumentState,
  type DocumentStore,
  type JsonObject,
  PersistenceError,
  type Restored,
  type UpdateSource,
} from "../../store/store";
import { type Channel, ChannelClosedError } from "../../telemetry/channel";
import type { Envelope } from "../../telemetry/processor";
import { type MetaMetricsDocument, MetaMetricsUpdate, type QueueStats, SAFETY_KEYS } from "./model";

/** Seconds a client is told to wait after a 503 for a full channel: one batch is milliseconds. */
export const QUEUE_FULL_RETRY_AFTER_S = 1;
/** Seconds a client is told to wait after a failed durable write: a disk rarely heals faster. */
export const PERSIST_FAILED_RETRY_AFTER_S = 5;
/** Seconds a client is told to wait when the service is stopping: a restart takes a few. */
export const SHUTTING_DOWN_RETRY_AFTER_S = 5;
/** At most one "telemetry queue full" WARN per this many ms; the count of the rest is in it. */
const FULL_WARN_INTERVAL_MS = 1000;
/** At most one "posted values stored as null" WARN per this many ms (paths not listed are listed later). */
const COERCED_WARN_INTERVAL_MS = 1000;
/** Paths one such line lists; the rest of that post's new paths are counted in `more`. */
const MAX_LISTED_COERCED_PATHS = 20;
/** Paths remembered as warned about (each is warned once); past this the memory starts over. */
const MAX_WARNED_COERCED_PATHS = 10_000;

/** CONTRACT section 3: what GET /meta/metrics serves before any data. */
export function defaultDocument(now: Date): JsonObject {
  return {
    timestamp: now.toISOString(),
    per_agent: {},
    per_strategy: {},
    guardian: { is_paused: false, drawdown: 0, reason: "Normal operation" },
    breakers: { quote_state: "CLOSED", trade_state: "CLOSED" },
    mode: "TEST_MODE",
    summary: { total_agents: 0, total_strategies: 0 },
  };
}

/**
 * The served document: the defaults, then every stored key, then cache_timestamp.
 * ? Typed as the schema says: the defaults hold every required section, and the store only
 * holds what passed MetaMetricsUpdate, except values a poster broke, which are null (the
 * schema's description says so): readers still check a figure before they use it.
 */
export function servedDocument(state: DocumentState, now: Date): MetaMetricsDocument {
  return { ...defaultDocument(now), ...state.doc, [CACHE_TIMESTAMP_KEY]: state.updatedAt } as MetaMetricsDocument;
}

/**
 * StoreOptions.failSafe: after a corrupt state file the guardian's last state is unknown.
 * The contract's default says "not paused", and a wrong "not paused" lets a paused system
 * trade (CONTRACT section 2): so the store serves a pause, with the reason, from the start
 * and whatever the disk allows, until the hive's next snapshot (every 300 s) replaces it
 * with the real state. A missing file (a first start) keeps the default.
 * ? Hook for commit listeners (guardian transition logging): the pause is in the store's
 * state from version 0 on, so the first commit's "previous guardian" is this pause.
 */
export function pauseAfterCorruption(log: Logger): (problem: string) => JsonObject {
  return (problem) => {
    log.warn("guardian paused until it reports: persisted state was corrupt", { problem });
    return {
      guardian: {
        is_paused: true,
        drawdown: 0,
        reason: `persisted state was corrupt (${problem}): paused until the guardian reports`,
      },
    };
  };
}

const restoreCheck = TypeCompiler.Compile(MetaMetricsUpdate);
const SAFETY = new Set<string>(SAFETY_KEYS);

/**
 * StoreOptions.restore: the state file is checked with the schema of a POST, by the same
 * rule. A safety key that breaks it (the Go original's `{"guardian": {"drawdown": 9}}`, a
 * hand edit's `"is_paused": "true"`) makes the file corrupt: that key is dropped, the
 * rest is kept, the file is kept aside and the guardian paused (pauseAfterCorruption).
 * Any other value that breaks it is served as null (WARN with the paths), as a POST's would.
 */
export function restoreDocument(log: Logger): (doc: JsonObject) => Restored {
  return (doc) => {
    if (restoreCheck.Check(doc)) return { doc, problem: null };
    let problem: string | null = null;
    let { coerced, refused } = coerce(restoreCheck, doc, SAFETY);
    if (refused.length > 0) {
      problem = `schema: ${describeProblems(refused)}`;
      for (const error of refused) delete doc[error.path.split("/")[1] as string];
      ({ coerced } = coerce(restoreCheck, doc, SAFETY));
    }
    if (coerced.length > 0) {
      log.warn("persisted values stored as null", {
        paths: coerced.slice(0, MAX_LISTED_COERCED_PATHS).map(clip),
        more: Math.max(0, coerced.length - MAX_LISTED_COERCED_PATHS),
      });
    }
    return { doc, problem };
  };
}

export interface MetaService {
  /**
   * Queues `set` (top-level keys to replace) and resolves once it is applied and durable.
   * Rejects at once with UnavailableError (503, Retry-After) when the channel is full or
   * closed, and later with UnavailableError when the batch could not be persisted: in
   * every rejected case nothing of `set` is visible or stored. `source` says who sent it.
   * `coerced`: paths of `set` the parser stored as null; each is warned about once
   * (rate-bounded), when accepted.
   */
  submit(
    set: JsonObject,
    source: UpdateSource,
    coerced?: readonly string[],
  ): Promise<{ seq: number; state: DocumentState }>;
  /** The served document as JSON text, rebuilt only when the store's version changes. */
  documentJson(): string;
  stats(): QueueStats;
}

export interface MetaServiceDeps {
  channel: Channel<Envelope>;
  store: DocumentStore;
  log: Logger;
  now?: () => Date;
}

export function createMetaService({ channel, store, log, now = () => new Date() }: MetaServiceDeps): MetaService {
  let seq = 0;
  const counts = { accepted: 0, applied: 0, rejected_full: 0, rejected_unpersisted: 0 };
  let fullSinceWarn = 0;
  let lastFullWarn = 0;
  const warnedCoerced = new Set<string>();
  let lastCoercedWarn = Number.NEGATIVE_INFINITY;
  let cache: { version: number; json: string } | undefined;

  function render(state: DocumentState): string {
    return JSON.stringify(servedDocument(state, now()));
  }

  function queueFull(): UnavailableError {
    counts.rejected_full++;
    fullSinceWarn++;
    const t = Date.now();
    if (t - lastFullWarn >= FULL_WARN_INTERVAL_MS) {
      log.warn("telemetry queue full", { depth: channel.depth, capacity: channel.capacity, rejected: fullSinceWarn });
      lastFullWarn = t;
      fullSinceWarn = 0;
    }
    return new UnavailableError(
      `telemetry queue full (${channel.capacity} updates waiting); retry later`,
      QUEUE_FULL_RETRY_AFTER_S,
    );
  }

  /** One WARN for the paths not warned about yet; skipped (and so warned later) within the interval. */
  function warnCoerced(paths: readonly string[], seq: number): void {
    const fresh = paths.filter((p) => !warnedCoerced.has(p));
    const t = now().getTime();
    if (fresh.length === 0 || t - lastCoercedWarn < COERCED_WARN_INTERVAL_MS) return;
    lastCoercedWarn = t;
    if (warnedCoerced.size + fresh.length > MAX_WARNED_COERCED_PATHS) warnedCoerced.clear();
    for (const p of fresh) warnedCoerced.add(p);
    log.warn("posted values stored as null", {
      seq,
      paths: fresh.slice(0, MAX_LISTED_COERCED_PATHS).map(clip),
      more: Math.max(0, fresh.length - MAX_LISTED_COERCED_PATHS),
    });
  }

  return {
    submit(set, source, coerced = []) {
      if (Object.hasOwn(set, CACHE_TIMESTAMP_KEY)) {
        return Promise.reject(
          new UnprocessableError(`${CACHE_TIMESTAMP_KEY} is set by the service and cannot be posted`),
        );
      }
      return new Promise((resolve, reject) => {
        const update = { seq: seq + 1, set, source };
        const envelope: Envelope = {
          update,
          settle(result) {
            if (result.ok) {
              counts.applied++;
              resolve({ seq: update.seq, state: result.state });
            } else {
              counts.rejected_unpersisted++;
              const published = result.error instanceof PersistenceError && result.error.published;
              reject(
                new UnavailableError(
                  published
                    ? `update written but not confirmed durable: ${result.error.message}; re-send it (replacing keys again is safe)`
                    : `update not stored: ${result.error.message}; nothing was changed, retry later`,
                  PERSIST_FAILED_RETRY_AFTER_S,
                ),
              );
            }
          },
        };
        let sent: boolean;
        try {
          sent = channel.trySend(envelope);
        } catch (err) {
          if (err instanceof ChannelClosedError) {
            reject(new UnavailableError("service is shutting down; retry later", SHUTTING_DOWN_RETRY_AFTER_S));
            return;
          }
          throw err;
        }
        if (!sent) {
          reject(queueFull());
          return;
        }
        seq = update.seq;
        counts.accepted++;
        if (coerced.length > 0) warnCoerced(coerced, update.seq);
      });
    },
    documentJson() {
      const state = store.current();
      // ? Before any poster sent `timestamp` the default's timestamp is "now", so that
      // one case cannot be cached.
      if (!Object.hasOwn(state.doc, "timestamp")) return render(state);
      if (cache?.version !== state.version) cache = { version: state.version, json: render(state) };
      return cache.json;
    },
    stats: () => ({ depth: channel.depth, capacity: channel.capacity, ...counts }),
  };
}
