// The meta-metrics feature: accepting updates into the channel and serving the merged
// document. Plain logic, no Elysia: routes in index.ts call this.

import { UnavailableError, UnprocessableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import { CACHE_TIMESTAMP_KEY } from "../../store/json-file";
import {
  type DocumentState,
  type DocumentStore,
  type JsonObject,
  PersistenceError,
  type UpdateSource,
} from "../../store/store";
import { type Channel, ChannelClosedError } from "../../telemetry/channel";
import type { Envelope } from "../../telemetry/processor";

/** Seconds a client is told to wait after a 503 for a full channel: one batch is milliseconds. */
export const QUEUE_FULL_RETRY_AFTER_S = 1;
/** Seconds a client is told to wait after a failed durable write: a disk rarely heals faster. */
export const PERSIST_FAILED_RETRY_AFTER_S = 5;
/** At most one "telemetry queue full" WARN per this many ms; the count of the rest is in it. */
const FULL_WARN_INTERVAL_MS = 1000;

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

/** The served document: the defaults, then every stored key, then cache_timestamp. */
export function servedDocument(state: DocumentState, now: Date): JsonObject {
  return { ...defaultDocument(now), ...state.doc, [CACHE_TIMESTAMP_KEY]: state.updatedAt };
}

/**
 * After a corrupt state file was moved aside, the guardian's last state is unknown. The
 * contract's default says "not paused", and a wrong "not paused" lets a paused system trade
 * (CONTRACT section 2): so the service records a pause, with the reason, which the hive's
 * next snapshot (every 300 s) replaces with the real state. A missing file (a first start)
 * keeps the default. If even this cannot be written, the failure is logged and start-up
 * goes on: refusing to start would serve nothing at all.
 */
export async function pauseAfterCorruption(store: DocumentStore, log: Logger): Promise<void> {
  const movedTo = store.status().corrupt_moved_to;
  if (movedTo === null) return;
  const guardian = {
    is_paused: true,
    drawdown: 0,
    reason: `persisted state was corrupt (kept at ${movedTo}): paused until the guardian reports`,
  };
  try {
    await store.commit([{ seq: 0, set: { guardian }, source: "corrupt_state" }]);
    log.warn("guardian paused until it reports: persisted state was corrupt", { moved_to: movedTo });
  } catch (err) {
    log.error("could not record the pause after a corrupt state", { moved_to: movedTo, error: err });
  }
}

export interface QueueStats {
  depth: number;
  capacity: number;
  accepted: number;
  applied: number;
  rejected_full: number;
  rejected_unpersisted: number;
}

export interface MetaService {
  /**
   * Queues `set` (top-level keys to replace) and resolves once it is applied and durable.
   * Rejects at once with UnavailableError (503, Retry-After) when the channel is full or
   * closed, and later with UnavailableError when the batch could not be persisted: in
   * every rejected case nothing of `set` is visible or stored. `source` says who sent it.
   */
  submit(set: JsonObject, source: UpdateSource): Promise<{ seq: number; state: DocumentState }>;
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

  return {
    submit(set, source) {
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
            reject(new UnavailableError("service is shutting down; retry later", PERSIST_FAILED_RETRY_AFTER_S));
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
