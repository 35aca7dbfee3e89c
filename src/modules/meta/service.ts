// The meta-metrics feature: accepting updates into the channel and serving the merged
// document. Plain logic, no Elysia: routes in index.ts call this.

import { describeProblems, HttpError, UnavailableError, UnprocessableError } from "../../http/errors";
import { coerce, compiledCheck, jsonTextBound, loneSurrogateAt, repairLoneSurrogates } from "../../http/json-body";
import { clip, type Logger } from "../../log/logger";
import { objectJson, valueJson } from "../../store/json-text";
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
import { AGENT_FILES_KEY } from "../agent-files/model";
import { DEFAULT_GUARDIAN, GUARDIAN_SOURCES_KEY, isoSeconds, servedGuardianOf } from "../guardian/resolve";
import { type MetaMetricsDocument, MetaMetricsUpdate, type QueueStats, SAFETY_KEYS } from "./model";

/** Seconds a client is told to wait after a 503 for a full channel: one batch is milliseconds. */
export const QUEUE_FULL_RETRY_AFTER_S = 1;
/** Seconds a client is told to wait after a failed durable write: a disk rarely heals faster. */
export const PERSIST_FAILED_RETRY_AFTER_S = 5;
/** Seconds a client is told to wait when the service is stopping: a restart takes a few. */
export const SHUTTING_DOWN_RETRY_AFTER_S = 5;
/** At most one "telemetry queue full" WARN per this many ms; the count of the rest is in it. */
const FULL_WARN_INTERVAL_MS = 1000;
/** At most one "update over a size limit" WARN per this many ms; the count of the rest is in the next. */
const TOO_LARGE_WARN_INTERVAL_MS = 1000;
/** At most one "posted values stored as null" WARN per this many ms (paths not listed are listed later). */
const COERCED_WARN_INTERVAL_MS = 1000;
/** Paths one such line lists; the rest of that post's new paths are counted in `more`. */
const MAX_LISTED_COERCED_PATHS = 20;
/** Paths remembered as warned about (each is warned once); past this the memory starts over. */
const MAX_WARNED_COERCED_PATHS = 10_000;

/**
 * Top-level keys the document holds at most by default (NEOLIGHT_MAX_DOCUMENT_KEYS); an
 * update adding a key beyond it gets 413.
 * The hive and its peers use about ten; 30 posts of 40k new keys made a 20.5 MB document
 * that put /health's p99 at 6.9 s (issue 15).
 */
export const MAX_DOCUMENT_KEYS = 1000;
/**
 * JSON bytes of the stored keys at most by default (NEOLIGHT_MAX_DOCUMENT_MB); an update
 * that grows the document beyond it gets 413. A real document is a few KB; at 8 MiB a render or a durable write still costs tens
 * of milliseconds, where 69 MB cost 1.1 s per GET and 6.2 s to start (issue 15).
 */
export const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;

/**
 * The update broke a size limit: the document's caps (413), or the body's (413 for bytes,
 * 400 for keys: the parser kept only its safety keys). Its safety keys (SAFETY_KEYS) were
 * still applied and made durable as update `seq`, and the message says so: a pause is
 * never refused for size.
 */
export class SizeLimitError extends HttpError {
  constructor(status: number, problem: string, applied: readonly string[], seq: number | null) {
    super(
      status,
      `${problem}; nothing else of this update was stored${
        applied.length > 0 ? `, but its ${applied.join(", ")} were applied (seq ${seq})` : ""
      }`,
    );
  }
}

/**
 * Bytes `key: value` adds to the document's JSON (its comma included). The value's text is
 * the one the file, the GET and the live stream use too (json-text.ts): made once.
 */
function entryBytes(key: string, value: unknown): number {
  return Buffer.byteLength(JSON.stringify(key)) + Buffer.byteLength(valueJson(value)) + 2;
}

/** CONTRACT section 3: the mode served until a poster says another. */
export const DEFAULT_MODE = "TEST_MODE";

/** CONTRACT section 3: what GET /meta/metrics serves before any data. */
export function defaultDocument(now: Date): JsonObject {
  return {
    timestamp: now.toISOString(),
    per_agent: {},
    per_strategy: {},
    guardian: DEFAULT_GUARDIAN,
    breakers: { quote_state: "CLOSED", trade_state: "CLOSED" },
    mode: DEFAULT_MODE,
    summary: { total_agents: 0, total_strategies: 0 },
  };
}

/**
 * Keys the service keeps in the document for itself, never served, never streamed, refused
 * in a POST: the guardian's sources (modules/guardian/resolve.ts) and the agent files'
 * shared copy (issue 12, modules/agent-files/shared.ts).
 */
export const HIDDEN_KEYS: readonly string[] = [GUARDIAN_SOURCES_KEY, AGENT_FILES_KEY];

/**
 * The served document: the defaults, then every stored key but the hidden ones (not part
 * of the contract: HIDDEN_KEYS), then cache_timestamp.
 * ? Typed as the schema says: the defaults hold every required section, and the store only
 * holds what passed MetaMetricsUpdate, except values a poster broke, which are null (the
 * schema's description says so): readers still check a figure before they use it.
 */
export function servedDocument(state: DocumentState, now: Date): MetaMetricsDocument {
  const { [GUARDIAN_SOURCES_KEY]: _sources, [AGENT_FILES_KEY]: _files, ...doc } = state.doc;
  return {
    ...defaultDocument(now),
    ...doc,
    guardian: servedGuardianOf(doc),
    [CACHE_TIMESTAMP_KEY]: state.updatedAt,
  } as MetaMetricsDocument;
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
        // ? The served shape (issue 11): it stands in for the hive's report until the next one.
        paused_by: "hive",
        paused_since: isoSeconds(Date.now()),
      },
    };
  };
}

/**
 * A shared store's fail-safe (issue 12): after NEOLIGHT_STORE_STALE_S without the database
 * the served guardian is paused, laid over what this replica last had (the hive's fields
 * kept), never written. A pause another replica committed meanwhile would be unseen, and the
 * router trades on any "not paused". Lifted when the store is reached and caught up.
 */
export function pauseWhileUnreachable(log: Logger): (problem: string, doc?: Readonly<JsonObject>) => JsonObject {
  return (problem, doc) => {
    const served = doc === undefined ? undefined : servedGuardianOf(doc);
    log.warn("guardian paused: shared store unreachable", { problem });
    return {
      guardian: {
        ...(served ?? { drawdown: 0 }),
        is_paused: true,
        reason: `shared store unreachable: ${problem}; paused until it is reached again`,
        paused_by: "store",
        paused_since: served?.is_paused && served.paused_since !== null ? served.paused_since : isoSeconds(Date.now()),
      },
    };
  };
}

const SAFETY = new Set<string>(SAFETY_KEYS);
/**
 * Keys the size caps never refuse: the safety keys, and the guardian's sources, which are
 * committed with the guardian resolved from them (a pause file's pause must not be refused
 * for size either).
 */
const UNCAPPED: readonly string[] = [...SAFETY_KEYS, GUARDIAN_SOURCES_KEY];
const UNCAPPED_SET = new Set(UNCAPPED);

/**
 * StoreOptions.restore: the state file is checked with the schema of a POST, by the same
 * rule. A safety key that breaks it (the Go original's `{"guardian": {"drawdown": 9}}`, a
 * hand edit's `"is_paused": "true"`) makes the file corrupt: that key is dropped, the
 * rest is kept, the file is kept aside and the guardian paused (pauseAfterCorruption).
 * Any other value that breaks it is served as null (WARN with the paths), as a POST's would.
 */
export function restoreDocument(log: Logger): (doc: JsonObject) => Restored {
  return (doc) => {
    // ? Repaired, not refused: a hand edit may hold a lone surrogate (a POST holding one is
    // refused, json-body.ts), and served as a \ud800 escape it breaks jq on the whole document.
    const repaired = loneSurrogateAt(doc) === null ? [] : repairLoneSurrogates(doc);
    if (repaired.length > 0) {
      log.warn("persisted lone surrogates replaced by U+FFFD", {
        paths: repaired.slice(0, MAX_LISTED_COERCED_PATHS).map(clip),
        more: Math.max(0, repaired.length - MAX_LISTED_COERCED_PATHS),
      });
    }
    const restoreCheck = compiledCheck(MetaMetricsUpdate);
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
   * Size caps: when `set` without its safety keys would add a key beyond maxDocumentKeys,
   * or grow the document beyond maxDocumentBytes (counting accepted updates still queued),
   * its safety keys alone are submitted and, once durable, it rejects with SizeLimitError
   * (413); with no safety key it rejects at once. `overLimit`: the poster's body broke a
   * body limit and `set` holds only its safety keys: they are submitted, and once durable
   * it rejects with SizeLimitError of overLimit's status and words.
   */
  submit(
    set: JsonObject,
    source: UpdateSource,
    coerced?: readonly string[],
    overLimit?: HttpError,
  ): Promise<{ seq: number; state: DocumentState }>;
  /**
   * The served document as JSON text, rebuilt only when the store's version changes (before
   * any poster sent `timestamp`, only the default's timestamp is filled in per call).
   */
  documentJson(): string;
  stats(): QueueStats;
}

export interface MetaServiceDeps {
  channel: Channel<Envelope>;
  store: DocumentStore;
  log: Logger;
  now?: () => Date;
  /** Default: MAX_DOCUMENT_KEYS. */
  maxDocumentKeys?: number;
  /** Default: MAX_DOCUMENT_BYTES. */
  maxDocumentBytes?: number;
}

export function createMetaService(deps: MetaServiceDeps): MetaService {
  const { channel, store, log, now = () => new Date() } = deps;
  const maxKeys = deps.maxDocumentKeys ?? MAX_DOCUMENT_KEYS;
  const maxBytes = deps.maxDocumentBytes ?? MAX_DOCUMENT_BYTES;
  let seq = 0;
  const counts = { accepted: 0, applied: 0, rejected_full: 0, rejected_unpersisted: 0, rejected_too_large: 0 };
  let fullSinceWarn = 0;
  let lastFullWarn = 0;
  const warnedCoerced = new Set<string>();
  let lastCoercedWarn = Number.NEGATIVE_INFINITY;
  let tooLargeSinceWarn = 0;
  let lastTooLargeWarn = Number.NEGATIVE_INFINITY;
  /**
   * `json`: the served text; or, when the document has no `timestamp` of its own, the text
   * after the default's timestamp (`tail`), which each call prefixes with the current time.
   */
  let cache: { version: number; json: string; stamped: boolean } | undefined;
  /**
   * Bytes of each stored key (entryBytes), including accepted updates still queued: what
   * the caps are judged on. Rebuilt from the store when an update was not stored. A key
   * is either here or in `unmeasured`.
   */
  const sizes = new Map<string, number>();
  let totalBytes = 0;
  /**
   * Keys accepted on their post's text bound (jsonTextBound) and not measured yet, each
   * with its latest accepted value and that post's `bound`: at least the bytes of all the
   * post's keys, counted in `boundBytes` while any of them is still here. Measured on
   * demand (measureAll): for an exact judgement near the cap, and for stats().
   * ? Issue 16: measuring is serialising, and at 3,000 agents a post's values took 2.7 ms
   * to serialise, for a text that only the last post of each batch (one in ~25 at 50
   * connections) would have used for the file: judged on the bound, the text of a value
   * is made once, by the file, and only for the value committed.
   */
  const unmeasured = new Map<string, { value: unknown; bound: { bytes: number; keys: number } }>();
  let boundBytes = 0;

  function measureStore(): void {
    sizes.clear();
    unmeasured.clear();
    totalBytes = 0;
    boundBytes = 0;
    const { doc } = store.current();
    for (const key of Object.keys(doc)) {
      const n = entryBytes(key, doc[key]);
      sizes.set(key, n);
      totalBytes += n;
    }
  }
  measureStore();

  /** Makes `sizes` and `totalBytes` exact for every key. */
  function measureAll(): void {
    for (const [key, { value }] of unmeasured) {
      const n = entryBytes(key, value);
      sizes.set(key, n);
      totalBytes += n;
    }
    unmeasured.clear();
    boundBytes = 0;
  }

  /** Takes `key`'s bytes out of the totals: it is about to be replaced. */
  function forget(key: string): void {
    const n = sizes.get(key);
    if (n !== undefined) {
      totalBytes -= n;
      sizes.delete(key);
      return;
    }
    const entry = unmeasured.get(key);
    if (entry === undefined) return;
    unmeasured.delete(key);
    if (--entry.bound.keys === 0) boundBytes -= entry.bound.bytes;
  }

  /**
   * Why `set` (without its safety keys) may not be stored, or null. O(keys) until it fits
   * the key cap. `bound`: at least the bytes of all of `set` (jsonTextBound): when the
   * document fits the byte cap even with that much more, no value is measured.
   */
  function overCap(set: JsonObject, bound: number | undefined): string | null {
    const keys = Object.keys(set).filter((k) => !UNCAPPED_SET.has(k));
    const stored = sizes.size + unmeasured.size;
    const fresh = keys.filter((k) => !sizes.has(k) && !unmeasured.has(k)).length;
    if (fresh > 0 && stored + fresh > maxKeys) {
      return `document key limit reached: ${stored} top-level keys stored, this update adds ${fresh}, at most ${maxKeys} (raise NEOLIGHT_MAX_DOCUMENT_KEYS, --max-document-keys)`;
    }
    // ? An upper bound of the document after the update: the exact judgement below could not refuse it.
    if (bound !== undefined && totalBytes + boundBytes + bound <= maxBytes) return null;
    measureAll();
    let growth = 0;
    for (const k of keys) growth += entryBytes(k, set[k]) - (sizes.get(k) ?? 0);
    if (growth > 0 && totalBytes + growth > maxBytes) {
      return `document size limit reached: ${totalBytes} bytes stored, this update adds ${growth}, at most ${maxBytes} (raise NEOLIGHT_MAX_DOCUMENT_MB, --max-document-mb)`;
    }
    return null;
  }

  /** Counts `set`'s keys as stored: measured, or (with `bound`, overCap's) on the bound. */
  function account(set: JsonObject, bound: number | undefined): void {
    const keys = Object.keys(set);
    const shared = bound === undefined ? null : { bytes: bound, keys: keys.length };
    for (const key of keys) {
      forget(key);
      if (shared === null) {
        const n = entryBytes(key, set[key]);
        sizes.set(key, n);
        totalBytes += n;
      } else unmeasured.set(key, { value: set[key], bound: shared });
    }
    if (shared !== null && shared.keys > 0) boundBytes += shared.bytes;
  }

  /** The epoch's ISO text, the same length as any other: the placeholder cut off a cached tail. */
  const STAMP_PREFIX = `{"timestamp":${JSON.stringify(new Date(0).toISOString())}`;

  function render(state: DocumentState): { json: string; stamped: boolean } {
    if (Object.hasOwn(state.doc, "timestamp"))
      return { json: objectJson(servedDocument(state, now())), stamped: false };
    // ? CONTRACT section 3: the default's timestamp is the current time. It is the first key
    // (defaultDocument's order, and no stored key overrides it), so the rest is cached.
    const json = objectJson(servedDocument(state, new Date(0)));
    return { json: json.slice(STAMP_PREFIX.length), stamped: true };
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

  /** One WARN per TOO_LARGE_WARN_INTERVAL_MS for updates refused for size, saying what of the last was applied. */
  function warnTooLarge(problem: string, applied: readonly string[], seq: number | null): void {
    tooLargeSinceWarn++;
    const t = now().getTime();
    if (t - lastTooLargeWarn < TOO_LARGE_WARN_INTERVAL_MS) return;
    log.warn("update over a size limit, only its safety keys applied", {
      problem: clip(problem),
      applied,
      seq,
      refused: tooLargeSinceWarn,
    });
    lastTooLargeWarn = t;
    tooLargeSinceWarn = 0;
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

  async function submitCapped(
    set: JsonObject,
    source: UpdateSource,
    coerced: readonly string[],
    overLimit: HttpError | undefined,
  ): Promise<{ seq: number; state: DocumentState }> {
    if (Object.hasOwn(set, CACHE_TIMESTAMP_KEY)) {
      throw new UnprocessableError(`${CACHE_TIMESTAMP_KEY} is set by the service and cannot be posted`);
    }
    // ? The guardian's sources are what its pause is resolved from: a poster setting them
    // could undo a pause file's or an operator's pause.
    if (Object.hasOwn(set, GUARDIAN_SOURCES_KEY) && (source === "hive" || source === "atlas")) {
      throw new UnprocessableError(`${GUARDIAN_SOURCES_KEY} is kept by the service and cannot be posted`);
    }
    // ? The agent files' shared copy is what replicas without the files serve: a poster
    // setting it would serve a regime or allocations no agent wrote.
    if (Object.hasOwn(set, AGENT_FILES_KEY) && (source === "hive" || source === "atlas")) {
      throw new UnprocessableError(`${AGENT_FILES_KEY} is kept by the service and cannot be posted`);
    }
    const bound = jsonTextBound(set);
    const problem = overLimit === undefined ? overCap(set, bound) : overLimit.message;
    if (problem === null) return enqueue(set, source, coerced, bound);
    counts.rejected_too_large++;
    // ? A pause must never be refused for size (issues 15, 16): the router trades unless we
    // say paused. The safety keys never count toward the caps, so they are stored on their own.
    const safety: JsonObject = {};
    for (const key of UNCAPPED) if (Object.hasOwn(set, key)) safety[key] = set[key];
    const applied = Object.keys(safety);
    let seq: number | null = null;
    if (applied.length > 0) {
      ({ seq } = await enqueue(
        safety,
        source,
        coerced.filter((p) => SAFETY.has(p.split("/")[0] as string)),
      ));
    }
    warnTooLarge(problem, applied, seq);
    throw new SizeLimitError(overLimit?.status ?? 413, problem, applied, seq);
  }

  /** `bound`: overCap's, when it judged `set` on it. */
  function enqueue(
    set: JsonObject,
    source: UpdateSource,
    coerced: readonly string[],
    bound?: number,
  ): Promise<{ seq: number; state: DocumentState }> {
    return new Promise((resolve, reject) => {
      const update = { seq: seq + 1, set, source };
      const envelope: Envelope = {
        update,
        settle(result) {
          if (result.ok) {
            counts.applied++;
            resolve({ seq: result.seq, state: result.state });
          } else {
            counts.rejected_unpersisted++;
            // ? What the store holds is what counts: a refused update's keys were
            // counted when it was queued.
            measureStore();
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
      account(set, bound);
      if (coerced.length > 0) warnCoerced(coerced, update.seq);
    });
  }

  return {
    submit: (set, source, coerced = [], overLimit) => submitCapped(set, source, coerced, overLimit),
    documentJson() {
      const state = store.current();
      if (cache?.version !== state.version) cache = { version: state.version, ...render(state) };
      return cache.stamped ? `{"timestamp":${JSON.stringify(now().toISOString())}${cache.json}` : cache.json;
    },
    stats() {
      measureAll();
      return {
        depth: channel.depth,
        capacity: channel.capacity,
        ...counts,
        document_keys: sizes.size,
        document_bytes: totalBytes,
        max_document_keys: maxKeys,
        max_document_bytes: maxBytes,
      };
    },
  };
}
