// The document store: the meta-metrics document as the union of every applied update,
// and the contract of its persistence. Interface first; the JSON-file backend lives in
// json-file.ts. The store never sees HTTP: it takes plain top-level key sets.

/** A JSON object as it arrived; the store only ever looks at its top-level keys. */
export type JsonObject = Record<string, unknown>;

/**
 * Who made an update: carried with it through the channel and the commit, so that what
 * is logged about a change (a guardian pause or resume) names the cause that was committed,
 * not a guess. `hive`: POST /meta/metrics (the contract's guardian poster is the hive
 * agent); `atlas`: POST /atlas/update; `corrupt_state`: the fail-safe pause recorded after
 * a corrupt state file at start-up. Later sources (the pause file and an operator, issue
 * 11) add their own names here.
 */
export type UpdateSource = "hive" | "atlas" | "corrupt_state";

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
  /** The union of every committed update (top-level keys only; defaults are not stored). */
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

export interface PersistenceStatus {
  path: string;
  /** RFC 3339 time of the last durable write; null before any. */
  last_write_at: string | null;
  /** Duration of the last durable write (write + fsync + rename + dir fsync). */
  last_write_ms: number | null;
  writes: number;
  failures: number;
  /** The last failure's message while writes are failing; null once a write succeeds again. */
  last_error: string | null;
  last_error_at: string | null;
  /** Whether the state at start-up came from disk. */
  restored: boolean;
  /** Where a corrupt file found at start-up was moved; null when none was. */
  corrupt_moved_to: string | null;
}

/** What a backend found at start-up. */
export interface LoadResult {
  state: { doc: JsonObject; updatedAt: string | null } | null;
  /** A corrupt file was moved aside to this path (and reported by the backend). */
  corruptMovedTo: string | null;
}

/** Durable storage of the whole document. One writer at a time (the store serialises). */
export interface Persistence {
  readonly path: string;
  /**
   * Reads the last saved state. A missing file is `state: null`; a corrupt one is moved
   * aside, never overwritten or deleted, and also gives `state: null`. Any other read
   * failure (permissions, I/O) rejects: starting empty would hide a paused guardian.
   */
  load(): Promise<LoadResult>;
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
   * current() is unchanged: nothing is visible that is not on disk. The one exception keeps
   * memory equal to the disk: when the file was replaced but its durability is unconfirmed
   * (UnconfirmedWriteError), the state is published and the PersistenceError says
   * `published: true`. Callers must not
   * overlap commits (the processor is the one caller); an overlapping call throws.
   */
  commit(updates: readonly DocumentUpdate[]): Promise<DocumentState>;
  /** Persistence figures for /status. A fresh object each call. */
  status(): PersistenceStatus;
}

export interface StoreOptions {
  persistence: Persistence;
  now?: () => Date;
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

/** Loads the persisted state (if any) and returns a store publishing from it. */
export async function openStore(options: StoreOptions): Promise<DocumentStore> {
  const { persistence } = options;
  const now = options.now ?? (() => new Date());
  const loaded = await persistence.load();
  let state: DocumentState = Object.freeze({
    doc: Object.freeze({ ...(loaded.state?.doc ?? {}) }),
    updatedAt: loaded.state?.updatedAt ?? null,
    version: 0,
    lastSeq: 0,
  });
  let committing = false;
  const figures: PersistenceStatus = {
    path: persistence.path,
    last_write_at: null,
    last_write_ms: null,
    writes: 0,
    failures: 0,
    last_error: null,
    last_error_at: null,
    restored: loaded.state !== null,
    corrupt_moved_to: loaded.corruptMovedTo,
  };

  return {
    current: () => state,
    status: () => ({ ...figures }),
    async commit(updates) {
      if (committing) throw new Error("DocumentStore.commit called while a commit is in progress");
      if (updates.length === 0) return state;
      committing = true;
      try {
        // ? Copy-on-write of the top level only: values are never mutated after acceptance,
        // so sharing them between versions is safe and keeps a commit O(keys).
        const doc: JsonObject = { ...state.doc };
        for (const update of updates) assignOwn(doc, update.set);
        const updatedAt = now().toISOString();
        const started = performance.now();
        const last = updates[updates.length - 1] as DocumentUpdate;
        const next: DocumentState = Object.freeze({
          doc: Object.freeze(doc),
          updatedAt,
          version: state.version + 1,
          lastSeq: last.seq,
        });
        try {
          await persistence.save({ doc, updatedAt });
        } catch (err) {
          figures.failures++;
          figures.last_error = err instanceof Error ? err.message : String(err);
          figures.last_error_at = updatedAt;
          // ? The file already holds `next`: serving the old state would let a restart
          // (or the next commit) bring back what clients were told was refused.
          const published = err instanceof UnconfirmedWriteError;
          if (published) state = next;
          throw new PersistenceError(`could not persist ${persistence.path}: ${figures.last_error}`, err, published);
        }
        figures.writes++;
        figures.last_write_at = updatedAt;
        figures.last_write_ms = Math.round((performance.now() - started) * 1000) / 1000;
        figures.last_error = null;
        state = next;
        return state;
      } finally {
        committing = false;
      }
    },
  };
}
