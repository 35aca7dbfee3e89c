// The PostgreSQL document store (issue 12): one document shared by every replica. Memory
// holds the served state and reads never query; a commit is one transaction under the head
// row's lock (sequence order = commit order), and a follower (LISTEN, every reconnect, a
// one-second head check) brings other replicas' commits in. When the database cannot be
// reached, writes fail fast (PersistenceError: 503), reads keep the last document, and after
// `staleMs` the fail-safe keys (the lead passes a guardian pause) are laid over what is
// served, never written. Loaded by a dynamic import only when NEOLIGHT_DATABASE_URL is set.
import type { ReservedSQL, SQL } from "bun";
import type { Logger } from "../../log/logger";
import type { SharedStore } from "../shared";
import {
  assignOwn,
  type DocumentState,
  type DocumentUpdate,
  initialFigures,
  type JsonObject,
  type Persistence,
  PersistenceError,
  type Restored,
  UNSAVED_RETRY_MS,
} from "../store";
import { DatabaseError, errorText, isUnreachable, openClient, POOL_MAX, redactUrl } from "./connect";
import { migrate, SchemaTooNewError } from "./migrate";
import { NOTIFY_CHANNEL } from "./migrations";

/**
 * Longest a commit may take from the processor's call to COMMIT, queue wait included, ms.
 * Default: 2000. ? A commit takes ~1 ms here (the prototype: p50 1.1 ms); a POST
 * must never hang on a black-holed network, and the hive's client gives up after its own
 * timeout and retries with back-off, so a quick 503 with Retry-After serves it better than
 * a slow 200.
 */
export const COMMIT_TIMEOUT_MS = 2000;
/** NEOLIGHT_STORE_STALE_S's default (issue 12), ms: unreachable this long lays the fail-safe keys over. */
export const STORE_STALE_MS = 30_000;
/** The safety net for a lost NOTIFY (issue 12), and the retry of a start-up without the database, ms. */
export const HEAD_CHECK_MS = 1000;
/**
 * Longest a catch-up, a full load or a head check may take, ms. ? Longer than a commit's:
 * nobody waits on them but the queue, and a large document (up to NEOLIGHT_MAX_DOCUMENT_MB)
 * read in full must not time out on a slow link.
 */
export const READ_TIMEOUT_MS = 5000;
/**
 * At most one write of the local copy (METRICS_PATH) per this many ms. ? Off the commit path
 * and coalesced: at 5,000 commits/s a write per commit would be the bottleneck, and the copy
 * is only read when the database cannot be reached at start-up.
 */
export const LOCAL_COPY_INTERVAL_MS = 1000;

export interface PostgresStoreOptions {
  /** NEOLIGHT_DATABASE_URL. Shown only through redactUrl. */
  url: string;
  log?: Logger;
  /** Judges the document loaded from the database (the schemas of a POST), as openStore's. Default: as it is. */
  restore?: (doc: JsonObject) => Restored;
  /**
   * Keys laid over the served document while the database has been unreachable for longer
   * than `staleMs` (`problem` says so in words), lifted on the first catch-up; never written
   * to the database. Default: none.
   */
  failSafe?: (problem: string, served: Readonly<JsonObject>) => JsonObject;
  /**
   * Keys served at once when the loaded document is corrupt (`restore` found a problem):
   * written to the database with the next commit, retried every `retryMs` until then, as
   * openStore's failSafe. Default: `failSafe`.
   */
  corruptFailSafe?: (problem: string) => JsonObject;
  /** Unreachable this long, ms, lays `failSafe` over; 0 = never. Default: STORE_STALE_MS. */
  staleMs?: number;
  /** Default: COMMIT_TIMEOUT_MS. */
  commitTimeoutMs?: number;
  /** Default: READ_TIMEOUT_MS. */
  readTimeoutMs?: number;
  /** The JSON file at METRICS_PATH: written after changes (coalesced), loaded when the database is down at start-up. Default: none. */
  localCopy?: Persistence;
  /** Default: LOCAL_COPY_INTERVAL_MS. */
  localCopyMs?: number;
  /** Default: HEAD_CHECK_MS. */
  checkMs?: number;
  /**
   * Follow other replicas' commits (LISTEN and the head check). Default: true. false: they
   * arrive only with this replica's own commits, which read them under the head lock (tests
   * of that catch-up; a replica that only writes).
   */
  follow?: boolean;
  /** How often unsaved corrupt-state keys are retried, ms. Default: UNSAVED_RETRY_MS. */
  retryMs?: number;
  now?: () => Date;
}

/** A row of neolight_document as read: the value's JSON text, parsed here (own keys, "__proto__" safe). */
interface Row {
  key: string;
  value: string;
  seq: string | number;
}

interface Head {
  seq: number;
  cluster: string;
  updatedAt: string | null;
}

/** What one read transaction found: the head, and the rows after `since` (all when `full`). */
interface Read {
  head: Head;
  rows: Row[];
  full: boolean;
}

const SELECT_HEAD = "SELECT seq, cluster, updated_at FROM neolight_head";

function headOf(row: { seq: string | number; cluster: string; updated_at: Date | string | null }): Head {
  return {
    seq: Number(row.seq),
    cluster: row.cluster,
    updatedAt: row.updated_at === null ? null : new Date(row.updated_at).toISOString(),
  };
}

/** The updates other replicas made, from their rows: one per sequence, in order, with the keys it last wrote. */
function replicaUpdates(rows: readonly Row[], values: Readonly<JsonObject>): DocumentUpdate[] {
  const bySeq = new Map<number, JsonObject>();
  for (const row of rows) {
    const seq = Number(row.seq);
    const set = bySeq.get(seq) ?? {};
    bySeq.set(seq, set);
    assignOwn(set, { [row.key]: values[row.key] });
  }
  return [...bySeq.entries()]
    .sort(([a], [b]) => a - b)
    .map(([seq, set]) => Object.freeze({ seq, set: Object.freeze(set), source: "replica" as const }));
}

/** The rows' values, parsed. Own data properties only: a key "__proto__" stays a key. */
function parseRows(rows: readonly Row[]): JsonObject {
  const values: JsonObject = {};
  for (const row of rows) assignOwn(values, { [row.key]: JSON.parse(row.value) as unknown });
  return values;
}

/**
 * Opens the store: migrates, loads the whole document and the head, applies `restore`, and
 * starts following. When the database cannot be reached (refused, no answer, shutting down),
 * it resolves all the same, serving the local copy (served_from "local_copy", not ready) and
 * retrying every `checkMs`; the first load that succeeds replaces it. Any other failure (a
 * schema newer than this binary, a URL Bun cannot use, a database that does not exist, a
 * failed migration) rejects: retrying cannot help and the operator must act.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<SharedStore> {
  const { url, log, localCopy } = options;
  const target = redactUrl(url);
  const now = options.now ?? (() => new Date());
  const staleMs = options.staleMs ?? STORE_STALE_MS;
  const commitTimeoutMs = options.commitTimeoutMs ?? COMMIT_TIMEOUT_MS;
  const readTimeoutMs = options.readTimeoutMs ?? READ_TIMEOUT_MS;
  const checkMs = options.checkMs ?? HEAD_CHECK_MS;
  const retryMs = options.retryMs ?? UNSAVED_RETRY_MS;
  const localCopyMs = options.localCopyMs ?? LOCAL_COPY_INTERVAL_MS;
  const unreachableFailSafe = options.failSafe;
  const corruptFailSafe =
    options.corruptFailSafe ??
    (unreachableFailSafe === undefined ? undefined : (problem: string) => unreachableFailSafe(problem, {}));
  const startedAt = now().toISOString();
  const sql: SQL = openClient(url, { idleInTransactionMs: Math.max(1000, commitTimeoutMs) });

  /** The database's document at `seq`, as this replica has it (restored at load; never the fail-safe keys). */
  let db: JsonObject = {};
  /** The head this replica holds: every commit up to it is in `db`. */
  let head: Head = { seq: 0, cluster: "", updatedAt: null };
  /** Corrupt-state fail-safe keys served but not in the database yet (openStore's unsaved keys). */
  let hold: JsonObject = {};
  /** Unreachable-fail-safe keys, served only; null while not laid over. */
  let overlay: JsonObject | null = null;
  let loaded = false;
  let servedFrom: "store" | "local_copy" = "store";
  let everReachable = false;
  let reachable = false;
  let unreachableSince: string | null = null;
  let caughtUpAt: string | null = null;
  /** Bumped by every publish; the state loaded at start-up is version 0 (DocumentState's contract). */
  let version = -1;
  let state: DocumentState = Object.freeze({ doc: Object.freeze({}), updatedAt: null, version: 0, lastSeq: 0 });
  let closed = false;
  let committing = false;
  let lastHoldAttempt = Number.NEGATIVE_INFINITY;
  const listeners: ((state: DocumentState, batch: readonly DocumentUpdate[]) => void)[] = [];
  const figures = initialFigures(target, retryMs, { restored: false, corrupt_found: null, unsaved_keys: [] });

  // --- the one queue: commits, catch-ups, loads and fail-safe changes never interleave ---
  let chain: Promise<unknown> = Promise.resolve();
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const run = chain.then(work);
    chain = run.catch(() => {});
    return run;
  }

  function publish(): DocumentState {
    const doc: JsonObject = { ...db };
    assignOwn(doc, hold);
    if (overlay !== null) assignOwn(doc, overlay);
    version++;
    state = Object.freeze({ doc: Object.freeze(doc), updatedAt: head.updatedAt, version, lastSeq: head.seq });
    figures.unsaved_keys = Object.keys(hold);
    scheduleLocalCopy();
    return state;
  }

  function emit(batch: readonly DocumentUpdate[]): void {
    if (batch.length === 0) return;
    for (const listener of listeners) {
      try {
        listener(state, batch);
      } catch (err) {
        log?.error("store listener failed", { error: err });
      }
    }
  }

  // --- reachability ---
  let staleTimer: ReturnType<typeof setTimeout> | undefined;

  function markReachable(): void {
    everReachable = true;
    if (reachable) return;
    reachable = true;
    if (unreachableSince !== null) {
      log?.info("database reachable again", {
        target,
        unreachable_since: unreachableSince,
        unreachable_s: Math.round((now().getTime() - Date.parse(unreachableSince)) / 100) / 10,
      });
    }
    unreachableSince = null;
    clearTimeout(staleTimer);
    staleTimer = undefined;
    // ? LISTEN was stopped for the outage (markFailure): back now, not at the next head check.
    if (loaded) void follow();
  }

  /** Records a failed query; one WARN per outage. Errors that are about the statement only change nothing. */
  function markFailure(err: unknown): void {
    if (!isUnreachable(err)) return;
    const wasReachable = reachable || unreachableSince === null;
    reachable = false;
    if (!wasReachable) return;
    // ? Before the first success the outage began when we started trying, not at this failure.
    unreachableSince = everReachable ? now().toISOString() : startedAt;
    log?.warn("database unreachable", { target, error: errorText(err, url), since: unreachableSince });
    // ? Bun's LISTEN connection retries on its own and prints a plain-text line to stderr per
    // failed attempt: stop it for the outage; the head check subscribes again once it answers
    // (and onlisten catches up on what was sent meanwhile).
    void unfollow();
    if (staleMs > 0 && options.failSafe !== undefined && !closed) {
      const wait = Math.max(0, Date.parse(unreachableSince) + staleMs - now().getTime());
      staleTimer = setTimeout(() => void serial(layFailSafe), wait);
      staleTimer.unref?.();
    }
  }

  async function layFailSafe(): Promise<void> {
    if (closed || reachable || overlay !== null || options.failSafe === undefined) return;
    const problem = `the database has been unreachable since ${unreachableSince} (more than ${staleMs / 1000} s)`;
    overlay = options.failSafe(problem, state.doc);
    log?.error("store unreachable, fail-safe applied", {
      target,
      unreachable_since: unreachableSince,
      stale_s: staleMs / 1000,
      keys: Object.keys(overlay),
    });
    publish();
    emit([Object.freeze({ seq: head.seq, set: Object.freeze({ ...overlay }), source: "store_unreachable" as const })]);
  }

  /** Lifts the fail-safe keys (a catch-up succeeded): the update that restores what they covered. */
  function liftFailSafe(): DocumentUpdate | null {
    if (overlay === null) return null;
    const covered = Object.keys(overlay);
    overlay = null;
    log?.info("store fail-safe lifted", { target, keys: covered });
    const set: JsonObject = {};
    for (const key of covered) {
      if (Object.hasOwn(hold, key)) assignOwn(set, { [key]: hold[key] });
      else if (Object.hasOwn(db, key)) assignOwn(set, { [key]: db[key] });
    }
    return Object.freeze({ seq: head.seq, set: Object.freeze(set), source: "store_unreachable" as const });
  }

  // --- bounded database work ---

  /**
   * Runs `work` on a connection of its own, within `timeoutMs` from now, reserve included.
   * On the deadline the connection is closed (discarded: a black-holed network would never
   * answer it) and this rejects with a DatabaseError, whatever the work was doing. Every
   * outcome updates the reachability.
   */
  async function bounded<T>(what: string, timeoutMs: number, work: (conn: ReservedSQL) => Promise<T>): Promise<T> {
    if (timeoutMs <= 0) throw new DatabaseError(`${what}: no time left`, true);
    const abort = new AbortController();
    let conn: ReservedSQL | undefined;
    let expired = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        abort.abort();
        void conn?.close().catch(() => {});
        reject(new DatabaseError(`${what} did not finish within ${timeoutMs} ms`, true));
      }, timeoutMs);
    });
    const run = (async () => {
      const reserved = await sql.reserve({ signal: abort.signal });
      if (expired) {
        void reserved.close().catch(() => {});
        throw new DatabaseError(`${what} did not finish within ${timeoutMs} ms`, true);
      }
      conn = reserved;
      return work(reserved);
    })();
    run.catch(() => {});
    try {
      const result = await Promise.race([run, deadline]);
      markReachable();
      return result;
    } catch (err) {
      markFailure(err);
      throw err;
    } finally {
      clearTimeout(timer);
      if (!expired) void conn?.release().catch(() => {});
    }
  }

  /** `SET LOCAL statement_timeout`: the server gives up too (the lock wait included), not only us. */
  const localTimeout = (tx: SQL, ms: number) =>
    tx.unsafe(`SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(ms))}`);

  /** The head, and the rows changed since `since` (all of them for a full read, or when the database's sequence is not ours). */
  async function readRows(tx: SQL, since: number | null, lock: boolean): Promise<Read> {
    const [row] = await tx.unsafe(lock ? `${SELECT_HEAD} FOR UPDATE` : SELECT_HEAD);
    const found = headOf(row);
    // ? Another cluster (a restore, a rebuilt database) or a sequence that went back (a
    // failover that lost commits): what we hold is not a prefix of it, so read it all.
    const full = since === null || found.cluster !== head.cluster || found.seq < since;
    if (!full && found.seq === since) return { head: found, rows: [], full };
    const rows: Row[] = full
      ? await tx`SELECT key, value::text AS value, seq FROM neolight_document ORDER BY seq, key`
      : await tx`SELECT key, value::text AS value, seq FROM neolight_document WHERE seq > ${since} ORDER BY seq, key`;
    if (full && since !== null) {
      log?.error("database sequence not ours, reloading it all", {
        target,
        seq: found.seq,
        held_seq: since,
        cluster_changed: found.cluster !== head.cluster,
      });
    }
    return { head: found, rows: [...rows], full };
  }

  /**
   * Takes in what a read found (before a commit's own keys): `db` and `head` move to it, the
   * corrupt-state keys it overwrote are no longer held (a later write is trusted over them).
   * Returns the updates to tell listeners (none when nothing changed).
   */
  function absorb(read: Read): DocumentUpdate[] {
    if (read.rows.length === 0 && read.head.seq === head.seq && !read.full) return [];
    const values = parseRows(read.rows);
    if (read.full) db = values;
    else db = { ...db };
    if (!read.full) assignOwn(db, values);
    for (const key of Object.keys(values)) delete hold[key];
    head = read.head;
    return replicaUpdates(read.rows, values);
  }

  // --- loading ---

  let migrated = false;

  /** Migrates (once), reads everything, restores: the replica becomes ready. In the queue. */
  async function fullLoad(): Promise<void> {
    if (!migrated) {
      await migrate(sql, { log }).catch((err: unknown) => {
        markFailure(err);
        throw err;
      });
      migrated = true;
    }
    const read = await bounded("full load", readTimeoutMs, (conn) =>
      conn.begin("isolation level repeatable read read only", async (tx) => {
        await localTimeout(tx, readTimeoutMs);
        return readRows(tx, null, false);
      }),
    );
    const fromLocalCopy = servedFrom === "local_copy";
    const values = parseRows(read.rows);
    // ? A copy to restore: it may drop or null what it refuses, and the listeners get the rows as they are.
    const restored = options.restore?.({ ...values }) ?? { doc: { ...values }, problem: null };
    db = restored.doc;
    head = read.head;
    hold = {};
    figures.restored = read.rows.length > 0;
    if (restored.problem !== null) {
      figures.corrupt_found = restored.problem;
      log?.error("persisted state corrupt", { path: target, problem: restored.problem, kept_until_replaced: true });
      hold = corruptFailSafe?.(restored.problem) ?? {};
    }
    loaded = true;
    servedFrom = "store";
    caughtUpAt = now().toISOString();
    const lifted = liftFailSafe();
    publish();
    log?.info("database loaded", { target, seq: head.seq, keys: read.rows.length, from_local_copy: fromLocalCopy });
    if (fromLocalCopy || lifted !== null) emit([...replicaUpdates(read.rows, values), ...(lifted ? [lifted] : [])]);
  }

  // --- following ---

  let catchUpQueued = false;

  function requestCatchUp(): void {
    if (catchUpQueued || closed) return;
    catchUpQueued = true;
    void serial(async () => {
      catchUpQueued = false;
      if (closed) return;
      if (!loaded) {
        await fullLoad();
        void follow();
        return;
      }
      await catchUp();
    }).catch((err: unknown) => {
      log?.debug("catch-up failed", { target, error: errorText(err, url) });
    });
  }

  async function catchUp(): Promise<void> {
    const read = await bounded("catch-up", readTimeoutMs, (conn) =>
      conn.begin("isolation level repeatable read read only", async (tx) => {
        await localTimeout(tx, readTimeoutMs);
        return readRows(tx, head.seq, false);
      }),
    );
    caughtUpAt = now().toISOString();
    const batch = absorb(read);
    const lifted = liftFailSafe();
    if (lifted !== null) batch.push(lifted);
    if (batch.length === 0 && read.head.seq === state.lastSeq && read.head.updatedAt === state.updatedAt) return;
    publish();
    emit(batch);
  }

  let subscription: { unlisten(): Promise<void> } | null = null;
  let subscribing = false;

  async function follow(): Promise<void> {
    if (subscription !== null || subscribing || closed || options.follow === false) return;
    subscribing = true;
    try {
      const sub = await sql.listen(
        NOTIFY_CHANNEL,
        (payload) => {
          // ? Our own commits notify too: only a sequence ahead of ours is news.
          if (Number(payload) > head.seq) requestCatchUp();
        },
        // ? Runs on the first LISTEN and after every reconnect: what was sent meanwhile is lost.
        () => requestCatchUp(),
      );
      if (closed) await sub.unlisten();
      else subscription = sub;
    } catch (err) {
      markFailure(err);
    } finally {
      subscribing = false;
    }
  }

  async function unfollow(): Promise<void> {
    const sub = subscription;
    subscription = null;
    await sub?.unlisten().catch(() => {});
  }

  let checking = false;

  /** Every checkMs: a start-up without the database retries, else the head is compared with ours. */
  async function check(): Promise<void> {
    if (checking || closed) return;
    checking = true;
    try {
      if (!loaded) return requestCatchUp();
      const row = await bounded("head check", readTimeoutMs, async (conn) => (await conn.unsafe(SELECT_HEAD))[0]);
      void follow();
      const found = headOf(row);
      if (options.follow === false) return;
      if (found.seq !== head.seq || found.cluster !== head.cluster || overlay !== null) requestCatchUp();
      if (Object.keys(hold).length > 0 && !committing && now().getTime() - lastHoldAttempt >= retryMs) {
        lastHoldAttempt = now().getTime();
        void serial(writeHold).catch(() => {});
      }
    } catch {
      // ? Recorded by bounded(): /status and the log say the database is unreachable.
    } finally {
      checking = false;
    }
  }

  // --- committing ---

  /**
   * One transaction: lock the head, catch up on what others committed, prepare the batch
   * over that base, upsert its keys (and the held corrupt-state keys), move the head, NOTIFY,
   * COMMIT; only then memory changes. `accepted` empty: only the held keys are written.
   */
  async function commitNow(
    accepted: readonly DocumentUpdate[],
    prepare:
      | ((base: Readonly<JsonObject>, updates: readonly DocumentUpdate[]) => readonly DocumentUpdate[])
      | undefined,
    deadline: number,
  ): Promise<void> {
    const started = performance.now();
    const at = now().toISOString();
    let prepared: readonly DocumentUpdate[] = accepted;
    let read: Read | undefined;
    let values: JsonObject = {};
    /** prepare ran: from here the attempt wrote, and `prepare` is called once per commit. */
    let prepareCalled = false;
    const attempt = () =>
      bounded("commit", deadline - performance.now(), (conn) =>
        conn.begin(async (tx) => {
          await localTimeout(tx, deadline - performance.now());
          read = await readRows(tx, head.seq, true);
          // ? The base is the database's document under the lock: the rows caught up over
          // ours, then the held keys that no row replaced since (they stand in for corrupt ones).
          values = parseRows(read.rows);
          const base: JsonObject = read.full ? { ...values } : { ...db };
          if (!read.full) assignOwn(base, values);
          for (const key of Object.keys(hold)) if (!Object.hasOwn(values, key)) assignOwn(base, { [key]: hold[key] });
          prepareCalled = true;
          prepared = prepare === undefined ? accepted : prepare(base, accepted);
          if (prepared.length !== accepted.length) {
            throw new Error(`prepare returned ${prepared.length} updates for ${accepted.length}`);
          }
          const first = read.head.seq + 1;
          const keys: string[] = [];
          const texts: string[] = [];
          const seqs: number[] = [];
          const rows = new Map<string, { text: string; seq: number }>();
          for (const key of Object.keys(hold)) {
            if (!Object.hasOwn(values, key)) rows.set(key, { text: JSON.stringify(hold[key]) ?? "null", seq: first });
          }
          prepared.forEach((update, i) => {
            // ? The merge rule: a later update's key wins, and its row carries that update's seq.
            for (const key of Object.keys(update.set)) {
              rows.set(key, { text: JSON.stringify(update.set[key]) ?? "null", seq: first + i });
            }
          });
          for (const [key, row] of rows) {
            keys.push(key);
            texts.push(row.text);
            seqs.push(row.seq);
          }
          const next = read.head.seq + Math.max(1, prepared.length);
          if (keys.length > 0) {
            await tx`INSERT INTO neolight_document (key, value, seq)
              SELECT k, v::json, s FROM unnest(${sql.array(keys, "TEXT")}, ${sql.array(texts, "TEXT")}, ${sql.array(seqs, "BIGINT")}) AS u(k, v, s)
              ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, seq = EXCLUDED.seq`;
          }
          await tx`UPDATE neolight_head SET seq = ${next}, updated_at = ${at}::timestamptz`;
          await tx.notify(NOTIFY_CHANNEL, String(next));
        }),
      );
    try {
      // ? A pooled connection the server (or a proxy) closed while idle fails its first
      // statements: nothing of this transaction was written yet, so another attempt, within
      // the same deadline, spares the client a 503. Up to one per pooled connection: after a
      // server restart every idle one is dead.
      for (let attempts = 1; ; attempts++) {
        try {
          await attempt();
          break;
        } catch (err) {
          const closed = (err as { code?: unknown }).code === "ERR_POSTGRES_CONNECTION_CLOSED";
          if (prepareCalled || !closed || attempts > POOL_MAX) throw err;
        }
      }
    } catch (err) {
      figures.failures++;
      figures.last_error = errorText(err, url);
      figures.last_error_at = at;
      // ? The cause is redacted too: whoever logs it must not find the password in it.
      throw new PersistenceError(`could not commit to ${target}: ${figures.last_error}`, new Error(figures.last_error));
    }
    // COMMIT answered: from here on memory follows the database.
    const done = read as Read;
    const caught = absorb(done);
    const lifted = liftFailSafe();
    if (caught.length > 0 || lifted !== null) {
      // ? Others' commits first, as their own batch: listeners see every change in sequence order.
      publish();
      emit(lifted === null ? caught : [...caught, lifted]);
    }
    const next = done.head.seq + Math.max(1, prepared.length);
    db = { ...db };
    const first = done.head.seq + 1;
    for (const key of Object.keys(hold)) if (!Object.hasOwn(values, key)) assignOwn(db, { [key]: hold[key] });
    for (const update of prepared) assignOwn(db, update.set);
    if (Object.keys(hold).length > 0)
      log?.info("unsaved state written", { path: target, keys: Object.keys(hold), seq: first });
    hold = {};
    head = { seq: next, cluster: done.head.cluster, updatedAt: at };
    caughtUpAt = at;
    figures.writes++;
    figures.last_write_at = at;
    figures.last_write_ms = Math.round((performance.now() - started) * 1000) / 1000;
    figures.last_error = null;
  }

  /** Writes the held corrupt-state keys on their own (a commit writes them too). In the queue. */
  async function writeHold(): Promise<void> {
    if (closed || !loaded || Object.keys(hold).length === 0) return;
    lastHoldAttempt = now().getTime();
    const keys = Object.keys(hold);
    const set: JsonObject = { ...hold };
    try {
      await commitNow([], undefined, performance.now() + commitTimeoutMs);
    } catch (err) {
      log?.error("served state not in the database yet, retrying", {
        path: target,
        keys,
        retry_ms: retryMs,
        error: (err as Error).message,
      });
      return;
    }
    publish();
    emit([Object.freeze({ seq: head.seq, set: Object.freeze(set), source: "corrupt_state" as const })]);
  }

  // --- the local copy ---

  let copyTimer: ReturnType<typeof setTimeout> | undefined;
  let copying: Promise<void> | null = null;
  let copyDirty = false;
  let lastCopyAt = Number.NEGATIVE_INFINITY;
  let copyFailing = false;

  function scheduleLocalCopy(): void {
    if (localCopy === undefined) return;
    copyDirty = true;
    if (copyTimer !== undefined || copying !== null || closed) return;
    copyTimer = setTimeout(
      () => {
        copyTimer = undefined;
        void writeLocalCopy();
      },
      Math.max(0, lastCopyAt + localCopyMs - performance.now()),
    );
    copyTimer.unref?.();
  }

  function writeLocalCopy(): Promise<void> {
    if (localCopy === undefined) return Promise.resolve();
    copying ??= (async () => {
      copyDirty = false;
      const { doc, updatedAt } = state;
      try {
        await localCopy.save({ doc: { ...doc }, updatedAt });
        if (copyFailing) log?.info("local copy written again", { path: localCopy.path });
        copyFailing = false;
      } catch (err) {
        // ? One line per failing stretch: a full disk must not fill the log from here.
        if (!copyFailing) log?.warn("local copy not written", { path: localCopy.path, error: (err as Error).message });
        copyFailing = true;
      } finally {
        lastCopyAt = performance.now();
      }
    })().finally(() => {
      copying = null;
      if (copyDirty) scheduleLocalCopy();
    });
    return copying;
  }

  /**
   * The database is down at start-up: serve the local copy, marked. ? Never the default
   * document as if it were current. With no copy at all the document is empty (served as the
   * contract's default) and not ready: the load balancer sends no traffic here, and after
   * staleMs the fail-safe pause is laid over like in any outage. Exiting instead would be the
   * unsafe side: the router takes a refused connection as "not paused" and trades.
   */
  async function serveLocalCopy(reason: unknown): Promise<void> {
    servedFrom = "local_copy";
    let doc: JsonObject = {};
    let updatedAt: string | null = null;
    let problem: string | null = null;
    if (localCopy !== undefined) {
      try {
        const found = await localCopy.load();
        if (found.state !== null) {
          const restored = options.restore?.({ ...found.state.doc }) ?? { doc: { ...found.state.doc }, problem: null };
          ({ doc, problem } = restored);
          updatedAt = found.state.updatedAt;
          figures.restored = true;
        } else if (found.corrupt !== null) {
          problem = found.corrupt;
        }
      } catch (err) {
        problem = `local copy unreadable: ${(err as Error).message}`;
      }
    }
    db = doc;
    head = { seq: 0, cluster: "", updatedAt };
    // ? A copy that cannot be trusted pauses at once (served only: the database is the truth).
    if (problem !== null && options.failSafe !== undefined) overlay = options.failSafe(problem, doc);
    publish();
    log?.error("database unreachable at start-up, serving the local copy", {
      target,
      error: errorText(reason, url),
      local_copy: localCopy?.path ?? null,
      keys: Object.keys(doc).length,
      problem,
      retry_ms: checkMs,
    });
  }

  // --- start-up ---

  try {
    await serial(fullLoad);
  } catch (err) {
    if (err instanceof SchemaTooNewError || !isUnreachable(err)) {
      await sql.close().catch(() => {});
      if (err instanceof SchemaTooNewError) throw err;
      throw new DatabaseError(`cannot open the database ${target}: ${errorText(err, url)}`, false);
    }
    await serveLocalCopy(err);
  }
  if (loaded) {
    await follow();
    if (Object.keys(hold).length > 0) await serial(writeHold);
  }
  const ticker = setInterval(() => void check(), checkMs);
  ticker.unref?.();

  return {
    // ? A getter: a replica that started while the database was down learns it at its first load.
    get cluster() {
      return head.cluster;
    },
    current: () => state,
    async commit(accepted, prepare) {
      if (committing) throw new Error("DocumentStore.commit called while a commit is in progress");
      if (accepted.length === 0) return state;
      if (closed) throw new PersistenceError("the store is closed", null);
      if (!loaded) {
        // ? No base to commit over: the database has not been read since start-up.
        throw new PersistenceError(
          `could not commit to ${target}: the database has not been reachable since ${unreachableSince ?? startedAt}`,
          null,
        );
      }
      if (!reachable) {
        // ? Fail fast while the database is known down: writes queued behind a commit that
        // timed out would otherwise each wait a timeout of their own (a POST waited twice
        // NEOLIGHT_STORE_TIMEOUT_MS). The head check (every checkMs) finds it back.
        figures.failures++;
        figures.last_error = `the database has been unreachable since ${unreachableSince ?? startedAt}: not attempted`;
        figures.last_error_at = now().toISOString();
        throw new PersistenceError(`could not commit to ${target}: ${figures.last_error}`, null);
      }
      committing = true;
      const deadline = performance.now() + commitTimeoutMs;
      let started = false;
      let abandoned = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // ? The deadline counts the wait behind a catch-up in the queue too: once the
        // commit's own transaction starts, bounded() holds it to what is left.
        const queued = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            if (started) return;
            abandoned = true;
            figures.failures++;
            figures.last_error = `commit did not start within ${commitTimeoutMs} ms`;
            figures.last_error_at = now().toISOString();
            reject(new PersistenceError(`could not commit to ${target}: ${figures.last_error}`, null));
          }, commitTimeoutMs);
        });
        const run = serial(async () => {
          if (abandoned) return null;
          started = true;
          await commitNow(accepted, prepare, deadline);
          return publish();
        });
        run.catch(() => {});
        const result = await Promise.race([run, queued]);
        return result as DocumentState;
      } finally {
        clearTimeout(timer);
        committing = false;
      }
    },
    status: () => ({ ...figures, unsaved_keys: [...figures.unsaved_keys] }),
    storeStatus: () => ({
      kind: "postgres",
      target,
      reachable,
      unreachable_since: unreachableSince,
      ready: loaded && reachable,
      seq: head.seq,
      caught_up_at: caughtUpAt,
      served_from: servedFrom,
      fail_safe: overlay !== null,
    }),
    onExternal(listener) {
      listeners.push(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(ticker);
      clearTimeout(staleTimer);
      clearTimeout(copyTimer);
      copyTimer = undefined;
      await subscription?.unlisten().catch(() => {});
      await chain;
      if (copying !== null) await copying;
      await writeLocalCopy();
      await sql.close({ timeout: 1 }).catch(() => {});
    },
  };
}
