// The document store: the meta-metrics document as the union of every applied update,
// and the contract of its persistence. Interface first; the JSON-file backend lives in
// json-file.ts. The store never sees HTTP: it takes plain top-level key sets.
import type { Logger } from "../log/logger";
import type { PersistenceStatus } from "./model";

/** A JSON object as it arrived; the store only ever looks at its top-level keys. */
export type JsonObject = Record<string, unknown>;

/**
 * Who made an update: carried with it through the channel and the commit, so that what
 * is logged about a change (a guardian pause or resume) names the cause that was committed,
 * not a guess. `hive`: POST /meta/metrics (the contract's guardian poster is the hive
 * agent); `atlas`: POST /atlas/update; `corrupt_state`: the fail-safe pause recorded after
 * a corrupt state file at start-up; `pause_file`: a change of state/guardian_pause.json (or
 * its `until` passing) seen by the watcher; `operator`: POST /guardian/pause or /resume
 * (issue 11); `replica`: another replica's commit, caught up from the shared store (its own
 * source is not stored: the rows say what changed, not who); `store_unreachable`: the
 * shared store's fail-safe keys laid over, or lifted, after NEOLIGHT_STORE_STALE_S without
 * the database; `agent_files`: the shared copy of the agents' files, committed by the
 * replica that holds them (issue 12).
 */
export type UpdateSource =
  | "hive"
  | "atlas"
  | "corrupt_state"
  | "pause_file"
  | "operator"
  | "replica"
  | "store_unreachable"
  | "agent_files";

/** One accepted update: these top-level keys replace the document's (CONTRACT section 3). */
export interface DocumentUpdate {
  /** Acceptance order, strictly increasing within one process. */
  readonly seq: number;
  /** Top-level keys to replace. Owned by the store once committed: never mutated. */
  readonly set: Readonly<JsonObject>;
  /** Who made it. */
  readonly source: UpdateSource;
}

/** What the store holds: never mutated once published, so readers may keep a reference. */
export interface DocumentState {
  /**
   * The union of every committed update (top-level keys only; defaults are not stored).
   * Equal to what the file holds, with one exception: after a corrupt state file, the keys
   * StoreOptions.failSafe gave (the fail-safe pause) are here at once and stay here until a
   * write holding them succeeds (status().unsaved_keys). Every reader (the served document,
   * the live stream, the history, commit listeners) sees them.
   */
  readonly doc: Readonly<JsonObject>;
  /** RFC 3339 time of the last committed update; null before any. */
  readonly updatedAt: string | null;
  /** Increases by one on every commit; 0 for the state restored at start-up. */
  readonly version: number;
  /** seq of the last committed update; 0 when none in this process. */
  readonly lastSeq: number;
}

/**
 * The state could not be made durable. `published` false: nothing of the batch was applied.
 * `published` true: the new file replaced the old one, so the store published the batch to
 * stay equal to the disk, but the directory fsync failed and a power loss could still undo
 * it; the caller must not promise durability (re-sending the batch is safe: replacing keys
 * is idempotent).
 */
export class PersistenceError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
    readonly published = false,
  ) {
    super(message);
    this.name = "PersistenceError";
  }
}

/**
 * The key under which a state's commit time travels, in the persisted file and in the served
 * document alike (the Go original's format): no document may hold it (MetaService refuses
 * it in a POST), since the commit time would overwrite it.
 */
export const CACHE_TIMESTAMP_KEY = "cache_timestamp";

/** From Persistence.save: the new state is in place on disk, its durability unconfirmed. */
export class UnconfirmedWriteError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = "UnconfirmedWriteError";
  }
}

/** What a backend found at start-up. */
export interface LoadResult {
  state: { doc: JsonObject; updatedAt: string | null } | null;
  /** The file exists but is not a JSON object: why, in words (never its content). Left where it is. */
  corrupt: string | null;
}

/** Durable storage of the whole document. One writer at a time (the store serialises). */
export interface Persistence {
  readonly path: string;
  /**
   * Reads the last saved state. A missing file is `state: null, corrupt: null`; one that is
   * not a JSON object gives `state: null` and `corrupt`, and is left in place (keepAside
   * keeps it before the first save replaces it). Any other read failure (permissions, I/O)
   * rejects: starting empty would hide a paused guardian.
   */
  load(): Promise<LoadResult>;
  /**
   * Keeps the file now at `path` under a new name next to it, durably, without removing it
   * from `path`, and resolves with that name. Until the next save replaces `path`, a
   * restart still finds the corrupt file there. Rejects when it could not (nothing to undo).
   */
  keepAside(): Promise<string>;
  /**
   * Resolves only once the state is durable on disk (fsync of file and directory). Rejects
   * with UnconfirmedWriteError when the new state already replaced the file but the
   * directory fsync failed; with any other error the file on disk is unchanged.
   */
  save(state: { doc: JsonObject; updatedAt: string | null }): Promise<void>;
}

export interface DocumentStore {
  /** The current state. Cheap; the returned object is immutable and safe to keep. */
  current(): DocumentState;
  /**
   * Applies `updates` in array order (a later update's key wins), saves the result once,
   * and only then publishes it. On a failed save it rejects with PersistenceError and
   * current() is unchanged: nothing is visible that is not on disk (but for the fail-safe
   * keys of DocumentState.doc, which every successful commit writes too). The one exception keeps
   * memory equal to the disk: when the file was replaced but its durability is unconfirmed
   * (UnconfirmedWriteError), the state is published and the PersistenceError says
   * `published: true`. Callers must not
   * overlap commits (the processor is the one caller); an overlapping call throws.
   * `prepare`, when given, is called once per commit, synchronously, with the document the
   * batch is applied over (for a shared store: the database's, read under the head lock, so
   * it holds every other replica's committed change; for the file store: current().doc) and
   * the batch; its result is what is applied, saved and published (it may rewrite the
   * updates' sets, never their number: the answer to update i is its seq). ? A merge base
   * read before the commit may be behind another replica's: resolving there would write
   * back stale data (an operator's pause erased by a hive report resolved on this replica).
   * A shared store gives the committed updates the shared sequence (head+1..head+n, in
   * order): the returned state's lastSeq is that of the batch's last update, so update i of
   * n was committed as `lastSeq - n + 1 + i`.
   */
  commit(
    updates: readonly DocumentUpdate[],
    prepare?: (base: Readonly<JsonObject>, updates: readonly DocumentUpdate[]) => readonly DocumentUpdate[],
  ): Promise<DocumentState>;
  /** Persistence figures for /status. A fresh object each call. */
  status(): PersistenceStatus;
  /**
   * Stops retrying unsaved keys after one last attempt (shutdown: persist once more).
   * Call after the last commit. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * How often unsaved keys (the fail-safe pause after a corrupt state file) are retried.
 * Default: 1000 ms. A full or read-only disk heals when an operator acts; one failed
 * attempt costs an open and an unlink, and a second of delay is nothing next to the 300 s
 * the hive takes to report the real guardian.
 */
export const UNSAVED_RETRY_MS = 1000;
/** While the retries fail, one ERROR line per this many ms (with the attempt count), not one per attempt. */
const UNSAVED_LOG_INTERVAL_MS = 60_000;

/** What StoreOptions.restore makes of a document that parsed. */
export interface Restored {
  /** The document to serve (values the schema refused may be replaced, keys dropped). */
  doc: JsonObject;
  /** Why the document cannot be trusted (a safety key broke its schema): taken as a corrupt file. */
  problem: string | null;
}

export interface StoreOptions {
  persistence: Persistence;
  now?: () => Date;
  /** Where the store reports corruption and the retries of unsaved keys. Default: nowhere. */
  log?: Logger;
  /** Judges a document that parsed (the schemas of a POST). Default: taken as it is. */
  restore?: (doc: JsonObject) => Restored;
  /**
   * Keys to serve at once when the state file was corrupt (`problem` says why), before and
   * whatever the disk allows: written with the next write, retried every `retryMs`.
   * Default: none.
   */
  failSafe?: (problem: string) => JsonObject;
  /** Default: UNSAVED_RETRY_MS. */
  retryMs?: number;
}

/**
 * Copies own keys as data properties. Not Object.assign: its [[Set]] would run the
 * `__proto__` setter for a posted "__proto__" key and replace the document's prototype.
 */
export function assignOwn(target: JsonObject, source: Readonly<JsonObject>): void {
  for (const key of Object.keys(source)) {
    Object.defineProperty(target, key, { value: source[key], enumerable: true, writable: true, configurable: true });
  }
}

/** A store's figures before its first write (every backend's /status `persistence` starts here). */
export function initialFigures(
  path: string,
  retryMs: number,
  found: Pick<PersistenceStatus, "restored" | "corrupt_found" | "unsaved_keys">,
): PersistenceStatus {
  return {
    path,
    last_write_at: null,
    last_write_ms: null,
    writes: 0,
    failures: 0,
    last_error: null,
    last_error_at: null,
    corrupt_moved_to: null,
    unsaved_retry_ms: retryMs,
    ...found,
  };
}

/**
 * Loads the persisted state (if any) and returns a store publishing from it. A corrupt file
 * (unparseable, or refused by `restore`) stays at its path until a write can replace it:
 * the first write keeps it aside first (Persistence.keepAside), so that at no moment the
 * path holds neither it nor a state with the fail-safe keys. One attempt to write is made
 * before this resolves; then every `retryMs` until one (or any commit) succeeds.
 */
export async function openStore(options: StoreOptions): Promise<DocumentStore> {
  const { persistence, log } = options;
  const now = options.now ?? (() => new Date());
  const retryMs = options.retryMs ?? UNSAVED_RETRY_MS;
  const loaded = await persistence.load();
  let problem = loaded.corrupt;
  let doc: JsonObject = { ...(loaded.state?.doc ?? {}) };
  let updatedAt = loaded.state?.updatedAt ?? null;
  if (loaded.state !== null && options.restore !== undefined) {
    ({ doc, problem } = options.restore(doc));
  }
  let unsaved: string[] = [];
  if (problem !== null) {
    log?.error("persisted state corrupt", { path: persistence.path, problem, kept_until_replaced: true });
    const hold = options.failSafe?.(problem) ?? {};
    assignOwn(doc, hold);
    unsaved = Object.keys(hold);
    updatedAt = now().toISOString();
  }
  let state: DocumentState = Object.freeze({ doc: Object.freeze(doc), updatedAt, version: 0, lastSeq: 0 });
  /** The corrupt file still sits at `path`: the next write must keep it aside first. */
  let asidePending = problem !== null;
  /** Where keepAside put it (once; a later attempt of the same run reuses it). */
  let keptAt: string | null = null;
  let committing = false;
  let flushing: Promise<void> | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let attempts = 0;
  let lastRetryLog = Number.NEGATIVE_INFINITY;
  let closed = false;
  const figures = initialFigures(persistence.path, retryMs, {
    restored: loaded.state !== null,
    corrupt_found: problem,
    unsaved_keys: unsaved,
  });
  const pending = () => asidePending || unsaved.length > 0;

  /**
   * One durable write of `next` (keeping the corrupt file aside first while it is still at
   * the path). Records the figures; throws PersistenceError, `published` when the file was
   * replaced but its durability is unconfirmed. `at`: when, for last_write_at.
   */
  async function write(next: { doc: JsonObject; updatedAt: string | null }, at: string): Promise<void> {
    const started = performance.now();
    try {
      if (asidePending && keptAt === null) keptAt = await persistence.keepAside();
      await persistence.save(next);
    } catch (err) {
      figures.failures++;
      figures.last_error = err instanceof Error ? err.message : String(err);
      figures.last_error_at = at;
      // ? From the rename on, the file holds every served key and no longer the corrupt
      // state: retrying would keep the new file aside as if it were the corrupt one.
      const published = err instanceof UnconfirmedWriteError;
      if (published) settled();
      throw new PersistenceError(`could not persist ${persistence.path}: ${figures.last_error}`, err, published);
    }
    figures.writes++;
    figures.last_write_at = at;
    figures.last_write_ms = Math.round((performance.now() - started) * 1000) / 1000;
    figures.last_error = null;
    settled();
  }

  function settled(): void {
    if (asidePending) {
      asidePending = false;
      figures.corrupt_moved_to = keptAt;
      log?.warn("persisted state corrupt, moved aside", { path: persistence.path, moved_to: keptAt });
    }
    if (unsaved.length > 0) {
      log?.info("unsaved state written", { path: persistence.path, keys: unsaved, attempts });
      unsaved = [];
      figures.unsaved_keys = unsaved;
    }
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  }

  /** Writes what is served but not on disk; logs the outcome (rate-bounded). Never overlaps a commit. */
  function flush(): Promise<void> {
    if (!pending() || committing) return Promise.resolve();
    flushing ??= (async () => {
      attempts++;
      try {
        await write({ doc: state.doc, updatedAt: state.updatedAt }, now().toISOString());
      } catch (err) {
        if (err instanceof PersistenceError && err.published) return;
        const t = Date.now();
        if (t - lastRetryLog >= UNSAVED_LOG_INTERVAL_MS) {
          lastRetryLog = t;
          log?.error("served state not on disk yet, retrying", {
            path: persistence.path,
            keys: unsaved,
            attempts,
            retry_ms: retryMs,
            error: figures.last_error,
          });
        }
        if (timer === undefined && !closed) {
          timer = setInterval(() => void flush(), retryMs);
          timer.unref?.();
        }
      }
    })().finally(() => {
      flushing = null;
    });
    return flushing;
  }

  if (pending()) await flush();

  return {
    current: () => state,
    status: () => ({ ...figures, unsaved_keys: [...figures.unsaved_keys] }),
    async commit(accepted, prepare) {
      if (committing) throw new Error("DocumentStore.commit called while a commit is in progress");
      if (accepted.length === 0) return state;
      committing = true;
      try {
        // ? A retry of unsaved keys in flight writes the same file: let it finish first.
        if (flushing !== null) await flushing;
        const updates = prepare === undefined ? accepted : prepare(state.doc, accepted);
        // ? Copy-on-write of the top level only: values are never mutated after acceptance,
        // so sharing them between versions is safe and keeps a commit O(keys).
        const doc: JsonObject = { ...state.doc };
        for (const update of updates) assignOwn(doc, update.set);
        const updatedAt = now().toISOString();
        const last = updates[updates.length - 1] as DocumentUpdate;
        const next: DocumentState = Object.freeze({
          doc: Object.freeze(doc),
          updatedAt,
          version: state.version + 1,
          lastSeq: last.seq,
        });
        try {
          await write({ doc, updatedAt }, updatedAt);
        } catch (err) {
          // ? The file already holds `next`: serving the old state would let a restart
          // (or the next commit) bring back what clients were told was refused.
          if (err instanceof PersistenceError && err.published) state = next;
          throw err;
        }
        state = next;
        return state;
      } finally {
        committing = false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (flushing !== null) await flushing;
      await flush();
      if (pending()) {
        log?.error("served state not on disk at shutdown", {
          path: persistence.path,
          keys: unsaved,
          corrupt_file_still_at_path: asidePending,
          error: figures.last_error,
        });
      }
    },
  };
}
