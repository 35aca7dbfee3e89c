// Guardian transitions in the log (issue 9): every change of the served
// `guardian.is_paused`, whoever caused it, is one WARN "guardian paused" or one INFO
// "guardian resumed". The execution router trades on this flag, so the operator woken at
// 3 a.m. must be able to read from the log alone when trading stopped or restarted, why,
// at what drawdown, and which source said so.
//
// It wraps the store rather than listening to the processor: the fail-safe pause after a
// corrupt state file is in the store before the processor runs (logged when wrapped), and a batch whose
// file was replaced but not confirmed durable changes the served state too. Every change of
// the document goes through commit(), so comparing the state before and after each commit
// sees each transition exactly once: a repeated identical post, or a post that does not
// touch the guardian, changes nothing here.
import { clip, type Logger } from "../../log/logger";
import type { DocumentState, DocumentStore, DocumentUpdate, JsonObject } from "../../store/store";
import { servedGuardianOf } from "./resolve";

/** What the router reads: only a literal true is a pause (the default is false). */
function isPaused(doc: Readonly<JsonObject>): boolean {
  return servedGuardianOf(doc).is_paused === true;
}

/**
 * The update of the batch whose guardian is served: the last one that carried it (else the
 * batch's last). `updates` is not empty: an empty commit changes nothing.
 */
function guardianUpdate(updates: readonly DocumentUpdate[]): DocumentUpdate {
  for (let i = updates.length - 1; i >= 0; i--) {
    const update = updates[i] as DocumentUpdate;
    if (Object.hasOwn(update.set, "guardian")) return update;
  }
  return updates.at(-1) as DocumentUpdate;
}

/** A reason as the log shows it: posted text, so cut like every client string (log/logger.ts). */
function logged(reason: unknown): unknown {
  return typeof reason === "string" ? clip(reason) : reason;
}

/** A transition as its log line has it: the alerts (issue 13) send the same fields. */
export type GuardianTransition = { paused: boolean; fields: Record<string, unknown> };

/**
 * Returns `store` with the same contract, whose commit() also logs each transition of the
 * served guardian.is_paused that the commit published (also when it then rejects with a
 * PersistenceError that says `published`), and hands it to `onTransition` right after its
 * line. `onTransition` runs inside the commit: it must not throw or wait (the alerts only
 * queue).
 */
export function logGuardianTransitions(
  store: DocumentStore,
  log: Logger,
  onTransition: (transition: GuardianTransition) => void = () => {},
): DocumentStore {
  /** When this process saw the current pause begin; null when it was restored paused. */
  let pausedAt: number | null = null;
  /** The reason of the pause in force, for the resume line. */
  let pausedReason: unknown = isPaused(store.current().doc) ? servedGuardianOf(store.current().doc).reason : null;
  // ? The fail-safe pause after a corrupt state file is in the store's state from the start
  // (issue 15: served before and whatever the disk allows, not committed): it is this
  // process's transition all the same, caused by the corrupt file.
  if (store.status().corrupt_found !== null && isPaused(store.current().doc)) {
    pausedAt = Date.now();
    const guardian = servedGuardianOf(store.current().doc);
    const fields = { reason: logged(guardian.reason), drawdown: guardian.drawdown, source: "corrupt_state", seq: 0 };
    log.warn("guardian paused", fields);
    onTransition({ paused: true, fields });
  }

  function report(before: DocumentState, after: DocumentState, updates: readonly DocumentUpdate[]): void {
    const paused = isPaused(after.doc);
    if (paused === isPaused(before.doc)) return;
    const guardian = servedGuardianOf(after.doc);
    const update = guardianUpdate(updates);
    const cause = { source: update.source, seq: update.seq };
    if (paused) {
      pausedAt = Date.now();
      pausedReason = guardian.reason;
      const fields = { reason: logged(guardian.reason), drawdown: guardian.drawdown, ...cause };
      log.warn("guardian paused", fields);
      onTransition({ paused: true, fields });
    } else {
      const fields = {
        reason: logged(guardian.reason),
        drawdown: guardian.drawdown,
        ...cause,
        paused_reason: logged(pausedReason),
        paused_for_s: pausedAt === null ? null : Math.round((Date.now() - pausedAt) / 1000),
      };
      log.info("guardian resumed", fields);
      onTransition({ paused: false, fields });
      pausedAt = null;
      pausedReason = null;
    }
  }

  return {
    current: () => store.current(),
    status: () => store.status(),
    close: () => store.close(),
    async commit(updates, prepare) {
      const before = store.current();
      try {
        return await store.commit(updates, prepare);
      } finally {
        const after = store.current();
        if (after !== before) report(before, after, updates);
      }
    },
  };
}
