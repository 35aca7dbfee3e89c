// The one polling wait of the tests and the benchmarks (test/helpers.ts re-exports it). It
// lives apart from helpers.ts so that bench/ can use it without loading the app.

/** How often `waitFor` asks by default: often enough for tests, rarely enough to stay cheap. */
export const POLL_MS = 10;

/**
 * Polls `condition` until it returns something truthy, and resolves with that (never a fixed
 * sleep); fails after `timeoutMs` with "timed out waiting for <what>". A condition that
 * throws fails the wait at once. `pollMs` is for callers that time what they wait for (the
 * benchmarks' start-up figure polls every millisecond).
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  pollMs = POLL_MS,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(pollMs);
  }
}
