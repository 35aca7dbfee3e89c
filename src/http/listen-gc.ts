// Elysia's garbage collections while it starts to listen, moved off the path to the first
// answer (issue 14).
//
// ? Elysia's Bun adapter asks Bun for a collection three times as it starts to listen:
// after each of its two compiles of the routes (`composeGeneralHandler`, once in `listen`,
// once a tick later) and after it reloads the server with the second. Each `Bun.gc(false)`
// is a synchronous collection on the main thread before any request can be answered: 2.9 ms
// of every start-up here (README, "Resources against the framework"). What they collect,
// the compiles' garbage, is collected as well a second later, once the first answers are
// out, so for that second the calls are coalesced into one collection run at its end.

/** The collections asked for while listening starts are run together this long after it. */
export const LISTEN_GC_DELAY_MS = 1000;

type Gc = typeof Bun.gc;

/** Whether a window is open (module state: `Bun.gc` is one per process). */
let active = false;

/** What `coalesceCollections` did, for the test that keeps the lever honest. */
export interface CoalescedCollections {
  /** How many collections were asked for during the window (Elysia's, so far). */
  readonly asked: number;
  /** Whether the window has ended: `Bun.gc` is Bun's own again and any asked-for collection ran. */
  readonly ended: boolean;
}

/**
 * For `delayMs` from now, a call to `Bun.gc` does not collect: it only asks for one
 * collection, which runs when the time is up (forced if any call asked for a forced one);
 * then `Bun.gc` is Bun's own again. A collection is memory upkeep, never correctness, so
 * deferring it loses nothing. The timer does not keep the process alive. Call it once, just
 * before `listen`; a second call while a window is open would make the first one's end
 * restore the wrapper, so it throws instead.
 */
export function coalesceCollections(delayMs = LISTEN_GC_DELAY_MS): CoalescedCollections {
  const bun = Bun as { gc: Gc };
  if (active) throw new Error("coalesceCollections: a window is already open");
  active = true;
  const gc = bun.gc;
  let asked = 0;
  let forced = false;
  let ended = false;
  bun.gc = (force?: boolean) => {
    asked++;
    forced ||= force === true;
  };
  setTimeout(() => {
    bun.gc = gc;
    active = false;
    ended = true;
    if (asked > 0) gc(forced);
  }, delayMs).unref();
  return {
    get asked() {
      return asked;
    },
    get ended() {
      return ended;
    },
  };
}
