// What a store shared by several replicas (issue 12: PostgreSQL) adds to the document
// store's contract: changes made by other replicas, reachability, readiness. Interface
// and schemas only; the PostgreSQL backend lives in postgres/, loaded only when
// NEOLIGHT_DATABASE_URL is set, so that the embedded mode pays nothing for it.
import { Type as t } from "@sinclair/typebox";
import type { DocumentState, DocumentStore, DocumentUpdate } from "./store";

const Time = (description: string) => t.Union([t.String(), t.Null()], { description });

/** /status `store`: which backend holds the document, and (shared) whether it can be reached. */
export const StoreStatus = t.Object({
  kind: t.Union([t.Literal("file"), t.Literal("postgres")], {
    description: "file: this process's JSON file (the embedded mode); postgres: shared by every replica",
  }),
  target: t.String({ description: "the state file, or the database URL with its password replaced by ***" }),
  reachable: t.Boolean({ description: "the last attempt to reach the store succeeded (always true for a file)" }),
  unreachable_since: Time("RFC 3339 time since which the store cannot be reached; null while it can"),
  ready: t.Boolean({
    description: "the first full load is done and the store is reachable: GET /health/ready answers 200",
  }),
  seq: t.Integer({ description: "sequence of the last update applied here (shared by every replica when postgres)" }),
  caught_up_at: Time("RFC 3339 time this replica last confirmed it holds the store's head (postgres); null for a file"),
  served_from: t.Union([t.Literal("store"), t.Literal("local_copy")], {
    description:
      "store: what the store holds; local_copy: the last local copy, loaded while the database could not be reached at start-up",
  }),
  fail_safe: t.Boolean({
    description:
      "the served guardian is paused because the store was unreachable longer than NEOLIGHT_STORE_STALE_S; clears on catch-up",
  }),
});
export type StoreStatus = typeof StoreStatus.static;

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
