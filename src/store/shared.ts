// What a store shared by several replicas (issue 12: PostgreSQL) adds to the document
// store's contract: changes made by other replicas, reachability, readiness. Interface
// only (its schema, StoreStatus, is in model.ts, which the page reads too); the PostgreSQL
// backend lives in postgres/, loaded only when NEOLIGHT_DATABASE_URL is set, so that the
// embedded mode pays nothing for it.
import type { StoreStatus } from "./model";
import type { DocumentState, DocumentStore, DocumentUpdate } from "./store";

export { StoreStatus } from "./model";

/**
 * A document store that other processes write too. Everything DocumentStore promises holds
 * across replicas: commit() resolves only once the batch is committed (fsynced by the
 * database), in one order shared by every replica (the head sequence), and a 200 may go out.
 */
export interface SharedStore extends DocumentStore {
  /**
   * The database's own id (its head row's `cluster`), fixed at its creation: live-stream ids
   * carry it, so that an id from another database is never resumed from.
   */
  readonly cluster: string;
  /**
   * Listeners called, in sequence order and never concurrently with a commit of this
   * process, with each state that changed other than by this process's commit(): another
   * replica's commits (caught up after a NOTIFY, a reconnect or the head check, possibly
   * several at once as one batch of the keys they changed), and the fail-safe pause being
   * laid over or lifted. A listener must not block or throw (errors are logged by the caller).
   */
  onExternal(listener: (state: DocumentState, batch: readonly DocumentUpdate[]) => void): void;
  /** Reachability and readiness. A fresh object each call. */
  storeStatus(): StoreStatus;
}

/** The embedded store's StoreStatus: a file is always reachable and ready once loaded. */
export function fileStoreStatus(store: DocumentStore): StoreStatus {
  return {
    kind: "file",
    target: store.status().path,
    reachable: true,
    unreachable_since: null,
    ready: true,
    seq: store.current().lastSeq,
    caught_up_at: null,
    served_from: "store",
    fail_safe: false,
  };
}

export function isShared(store: DocumentStore): store is SharedStore {
  return typeof (store as Partial<SharedStore>).onExternal === "function";
}
