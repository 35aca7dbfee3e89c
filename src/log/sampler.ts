// Sampling of lines a client can cause at will (refused requests: 404s, 401s, 429s), per
// client and window, so that a flood cannot fill the disk with them (issue 15 item 9: 16 KB
// 404s wrote 1.59 GB in 10 s) while an operator still sees a few of each and how many
// were left out. Plain logic: the logger owns one sampler per kind of line.

/** Lines of one kind one client may cause per window; the rest are counted. */
export const SAMPLED_LINES_PER_CLIENT = 10;
/**
 * Lines of one kind all clients together may cause per window. It also bounds the clients
 * tracked per window (and so the summary lines): a scan from a whole IPv6 /64 is one client
 * per address, and without it each would get its own ten lines.
 */
export const SAMPLED_LINES_TOTAL = 100;
/** Length of a window. Default: 10 s: a few lines of a flood every 10 s tell the story. */
export const SAMPLE_WINDOW_MS = 10_000;

export interface LineSampler {
  /**
   * Whether one more line about `client` may be written in the current window. A false
   * answer counts the line for that client's summary (or, beyond SAMPLED_LINES_TOTAL
   * clients' lines, for the summary of the others). O(1), synchronous.
   */
  admit(client: string): boolean;
  /** Reports the current window's suppressed counts now (shutdown) and starts a new window. */
  flush(): void;
}

export interface LineSamplerOptions {
  /**
   * Told once per client and window how many of its lines were suppressed (client null:
   * the clients that came after the window's total was reached). Called at the end of the
   * window (a timer that does not keep the process alive), at the next admit after it, or
   * from flush().
   */
  report(client: string | null, suppressed: number, windowMs: number): void;
  perClient?: number;
  total?: number;
  windowMs?: number;
  /** Milliseconds, monotonic. Default: performance.now. */
  now?: () => number;
}

export function createLineSampler({
  report,
  perClient = SAMPLED_LINES_PER_CLIENT,
  total = SAMPLED_LINES_TOTAL,
  windowMs = SAMPLE_WINDOW_MS,
  now = () => performance.now(),
}: LineSamplerOptions): LineSampler {
  /** Clients with at least one line written this window: at most `total`. */
  const clients = new Map<string, { written: number; suppressed: number }>();
  let written = 0;
  /** Suppressed lines of clients that found the window's total already reached. */
  let others = 0;
  let windowStart = now();
  let timer: ReturnType<typeof setTimeout> | undefined;

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const ended = Math.round(now() - windowStart);
    for (const [client, entry] of clients) if (entry.suppressed > 0) report(client, entry.suppressed, ended);
    if (others > 0) report(null, others, ended);
    clients.clear();
    written = 0;
    others = 0;
    windowStart = now();
  }

  /** The summary must come even when the flood stops: a timer to the window's end. */
  function arm(): void {
    if (timer !== undefined) return;
    timer = setTimeout(flush, Math.max(0, windowStart + windowMs - now()));
    timer.unref?.();
  }

  return {
    admit(client) {
      if (now() - windowStart >= windowMs) flush();
      let entry = clients.get(client);
      if (entry === undefined) {
        if (written >= total) {
          others++;
          arm();
          return false;
        }
        entry = { written: 0, suppressed: 0 };
        clients.set(client, entry);
      }
      if (entry.written >= perClient || written >= total) {
        entry.suppressed++;
        arm();
        return false;
      }
      entry.written++;
      written++;
      return true;
    },
    flush,
  };
}
