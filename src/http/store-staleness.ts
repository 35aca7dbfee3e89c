// The staleness header of a replica whose shared store cannot be reached (issue 12): while
// it lasts, every answer says for how long the document served may have missed updates of
// other replicas, so a client (or a proxy rule) can tell "the last document" from "the
// document". Added only with a shared store: the embedded mode runs no hook for it.
import { Elysia } from "elysia";
import type { StoreStatus } from "../store/shared";

/** Seconds since the store was last reached; on every answer while it cannot be. */
export const STALE_HEADER = "x-neolight-store-stale-s";

/** Whole seconds since `since` (RFC 3339), never negative. */
export function staleSeconds(since: string, now = Date.now()): number {
  return Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
}

/**
 * The hook that stamps STALE_HEADER on what a handler answered while `status()` says the
 * store is unreachable; `headerFor` gives the same header to the error handler's answers.
 */
export function storeStaleness(status: () => StoreStatus) {
  const headerFor = (): string | null => {
    const since = status().unreachable_since;
    return since === null ? null : String(staleSeconds(since));
  };
  const plugin = new Elysia({ name: "store-staleness" }).onAfterHandle(
    { as: "global" },
    // ? Destructure only what is used (app.ts: the whole context costs a third of GET's throughput).
    ({ set, responseValue }) => {
      const value = headerFor();
      if (value === null) return;
      if (responseValue instanceof Response) responseValue.headers.set(STALE_HEADER, value);
      else set.headers[STALE_HEADER] = value;
    },
  );
  return { plugin: plugin as unknown as Elysia, headerFor };
}
