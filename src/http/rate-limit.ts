// Per-client token buckets for the write routes. Plain logic, no Elysia: auth.ts asks
// take(address) on every write and answers 429 with Retry-After when it says wait.
// Why per address and not global: one runaway writer must not starve the others; NeoLight's
// own agents all post from 127.0.0.1, so they share one bucket sized for all of them.
import type { RateLimitStats } from "./model";

/**
 * Most buckets kept at once. Each is two numbers (~100 bytes with its key), so 10,000 is
 * ~1 MiB; a scan from more addresses than that evicts idle buckets first, then the oldest.
 */
export const MAX_RATE_BUCKETS = 10_000;

export interface RateLimiter {
  /**
   * Takes one token from `key`'s bucket. Returns 0 when the write may proceed, else the
   * whole seconds (>= 1) until a token is available (the Retry-After value); nothing is
   * taken then. Synchronous and O(1) except when the map is full (an O(n) sweep, at most
   * once per idle-bucket lifetime).
   */
  take(key: string): number;
  stats(): RateLimitStats;
}

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
}

export interface RateLimiterOptions {
  /** Tokens per second; 0 disables the limiter (take always returns 0). */
  rate: number;
  burst: number;
  maxBuckets?: number;
  /** Milliseconds, monotonic. Default: performance.now. */
  now?: () => number;
}

export function createRateLimiter({
  rate,
  burst,
  maxBuckets = MAX_RATE_BUCKETS,
  now = () => performance.now(),
}: RateLimiterOptions): RateLimiter {
  const buckets = new Map<string, Bucket>();
  let limited = 0;
  let evictedBusy = 0;
  const perMs = rate / 1000;
  /** A bucket untouched this long is full again: forgetting it loses nothing. */
  const refillMs = rate > 0 ? burst / perMs : 0;

  function makeRoom(t: number): void {
    for (const [key, b] of buckets) if (t - b.at >= refillMs) buckets.delete(key);
    if (buckets.size < maxBuckets) return;
    // ? Every bucket is busy: drop the oldest-created 1 %, so the sweep above runs at most
    // once per that many new addresses. Those clients start from a full bucket again: a
    // bounded leniency, preferred over unbounded memory.
    let drop = Math.max(1, Math.floor(maxBuckets / 100));
    for (const key of buckets.keys()) {
      if (drop-- === 0) break;
      buckets.delete(key);
      evictedBusy++;
    }
  }

  return {
    take(key) {
      if (rate === 0) return 0;
      const t = now();
      let b = buckets.get(key);
      if (b === undefined) {
        if (buckets.size >= maxBuckets) makeRoom(t);
        b = { tokens: burst, at: t };
        buckets.set(key, b);
      } else {
        b.tokens = Math.min(burst, b.tokens + (t - b.at) * perMs);
        b.at = t;
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      limited++;
      return Math.max(1, Math.ceil((1 - b.tokens) / rate));
    },
    stats: () => ({
      rate,
      burst,
      buckets: buckets.size,
      max_buckets: maxBuckets,
      limited,
      evicted_busy: evictedBusy,
    }),
  };
}
