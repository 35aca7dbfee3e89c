// The processor: the one consumer of the telemetry channel. It takes everything queued
// as one batch, commits it to the store (one durable write for the batch: group commit),
// and only then answers every request of the batch. Order of application = order of
// acceptance, because the channel is FIFO and there is exactly one processor.
import { clip, type Logger } from "../log/logger";
import { type DocumentState, type DocumentStore, type DocumentUpdate, PersistenceError } from "../store/store";
import type { Channel } from "./channel";

/** One accepted POST waiting for its update to be durable. */
export interface Envelope {
  readonly update: DocumentUpdate;
  /**
   * Called once, after the batch holding this update is on disk (or failed to be). `seq`:
   * the sequence the update was committed as (shared by every replica with a shared store;
   * DocumentStore.commit: the batch's updates end at state.lastSeq, one apart).
   */
  settle(result: { ok: true; state: DocumentState; seq: number } | { ok: false; error: Error }): void;
}

/**
 * Where a published state came from: `local`, a batch this processor committed; `remote`, a
 * change the shared store brought in (another replica's commits, or the fail-safe pause laid
 * over or lifted). Listeners that write what a commit made (history) take only `local`: the
 * replica that committed a change records it, once.
 */
export type Origin = "local" | "remote";

export type CommitListener = (state: DocumentState, batch: readonly DocumentUpdate[], origin: Origin) => void;

export interface Processor {
  /** Resolves when the channel was closed and everything accepted has been settled. */
  readonly done: Promise<void>;
  /**
   * Listeners run after each committed batch, off the request path, and after each change
   * the shared store brought in (`origin` says which), in the order the states were
   * published. A listener that throws is logged; the others still run.
   */
  onCommit(listener: CommitListener): void;
}

export interface ProcessorOptions {
  /** A shared store's feed of changes it did not commit here (SharedStore.onExternal). */
  external?: (listener: (state: DocumentState, batch: readonly DocumentUpdate[]) => void) => void;
}

/**
 * Posted keys the "Telemetry processed" line names; the rest are only counted. A real post
 * carries a handful; a 45,000-key post made a 460 KB line (issue 15).
 */
const MAX_LOGGED_KEYS = 50;

/** The line's `keys` (each cut to MAX_LOGGED_BYTES: they come from the body), and how many more there were. */
function loggedKeys(set: Record<string, unknown>): { keys: string[]; keys_more?: number } {
  const all = Object.keys(set);
  const keys = all.slice(0, MAX_LOGGED_KEYS).map(clip);
  return all.length > MAX_LOGGED_KEYS ? { keys, keys_more: all.length - MAX_LOGGED_KEYS } : { keys };
}

function countKeys(value: unknown): number {
  return typeof value === "object" && value !== null ? Object.keys(value).length : 0;
}

export function startProcessor(
  channel: Channel<Envelope>,
  store: DocumentStore,
  log: Logger,
  options: ProcessorOptions = {},
): Processor {
  const listeners: CommitListener[] = [];
  options.external?.((state, batch) => notify(state, batch, "remote"));

  async function run(): Promise<void> {
    for await (const batch of channel) {
      const updates = batch.map((e) => e.update);
      let state: DocumentState;
      try {
        state = await store.commit(updates);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        const published = err instanceof PersistenceError && err.published;
        log.error("telemetry batch not persisted", { updates: batch.length, error: error.message, published });
        for (const envelope of batch) envelope.settle({ ok: false, error });
        // The document changed all the same: the page and the history must show it.
        if (published) notify(store.current(), updates, "local");
        continue;
      }
      // ? The batch's updates were committed one apart, ending at lastSeq: with a shared store
      // that is the shared sequence, not the one given at acceptance.
      const first = state.lastSeq - batch.length + 1;
      updates.forEach((update, i) => {
        log.info("Telemetry processed", {
          seq: first + i,
          ...loggedKeys(update.set),
          agents: countKeys(update.set.per_agent ?? state.doc.per_agent),
        });
      });
      for (const [i, envelope] of batch.entries()) envelope.settle({ ok: true, state, seq: first + i });
      notify(state, updates, "local");
    }
  }

  function notify(state: DocumentState, updates: readonly DocumentUpdate[], origin: Origin): void {
    for (const listener of listeners) {
      try {
        listener(state, updates, origin);
      } catch (err) {
        log.error("commit listener failed", { error: err });
      }
    }
  }

  const done = run().catch((err) => {
    // ? Unreachable by design (commit failures are settled above); if it happens anyway
    // the stack must reach the log rather than vanish with a dead processor.
    log.error("telemetry processor stopped", { error: err });
    throw err;
  });
  return {
    done,
    onCommit(listener) {
      listeners.push(listener);
    },
  };
}
