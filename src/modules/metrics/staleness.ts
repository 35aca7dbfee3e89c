// Staleness of NeoLight's sources: the most requested feature of metrics gateways is
// knowing when a pusher has gone quiet (issue 6). Each source has an expected interval; one
// silent for more than STALE_FACTOR times it is stale. /status lists every source, /metrics
// exposes the same figures, and the log says "source stale" once when one goes stale and
// "source recovered" once when it reports again.
//
// A source never heard from since start-up counts as silent since start-up: it goes stale
// STALE_FACTOR intervals after the process started. (The persisted document does not say
// which source wrote which key when, and a poster's own timestamps are its clock, not ours.)
import type { Logger } from "../../log/logger";
import type { SourceStaleness } from "./model";

/** Silent for more than this many intervals = stale: one late report is not an incident. */
export const STALE_FACTOR = 2;
/** The check runs at a tenth of the shortest interval, but not more often than this... */
const MIN_CHECK_MS = 10;
/** ...nor less often: a stale source shows within a second. */
const MAX_CHECK_MS = 1000;

export interface SourceWatch {
  /** Short stable name: the `source` label and the /status entry. */
  readonly name: string;
  /** Expected interval between good updates, seconds; 0: not watched (listed, never stale). */
  readonly intervalS: number;
  /** Epoch ms of the last good update; null when none since start-up. Must be cheap. */
  lastUpdate(): number | null;
}

export interface StalenessMonitor {
  /**
   * Every source, in the order given, as of now. Runs a check first, so what it returns and
   * what the log said agree. A fresh array each call.
   */
  entries(): SourceStaleness[];
  /** Compares every source with its interval and logs each change of state once. */
  check(): void;
  /** Stops the timer. Idempotent; entries() still answers afterwards. */
  close(): void;
}

export interface StalenessOptions {
  sources: readonly SourceWatch[];
  log: Logger;
  /** Epoch ms of start-up: silence of a source never heard from is counted from here. */
  startedAt: number;
  now?: () => number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function startStalenessMonitor({ sources, log, startedAt, now = Date.now }: StalenessOptions): StalenessMonitor {
  const stale = new Map<string, boolean>(sources.map((s) => [s.name, false]));

  function evaluate(at: number): SourceStaleness[] {
    return sources.map((s) => {
      const last = s.lastUpdate();
      const silentMs = at - (last ?? startedAt);
      const isStale = s.intervalS > 0 && silentMs > STALE_FACTOR * s.intervalS * 1000;
      const was = stale.get(s.name);
      if (isStale && !was) {
        log.warn("source stale", {
          source: s.name,
          expected_interval_s: s.intervalS,
          last_update: last === null ? null : new Date(last).toISOString(),
          silent_s: round3(silentMs / 1000),
        });
      } else if (!isStale && was) {
        log.info("source recovered", {
          source: s.name,
          expected_interval_s: s.intervalS,
          last_update: last === null ? null : new Date(last).toISOString(),
        });
      }
      stale.set(s.name, isStale);
      return {
        source: s.name,
        last_update: last === null ? null : new Date(last).toISOString(),
        expected_interval_s: s.intervalS,
        age_s: last === null ? null : round3(Math.max(0, at - last) / 1000),
        stale: isStale,
      };
    });
  }

  const watched = sources.filter((s) => s.intervalS > 0).map((s) => s.intervalS * 100);
  let timer: ReturnType<typeof setInterval> | undefined;
  if (watched.length > 0) {
    const period = Math.min(MAX_CHECK_MS, Math.max(MIN_CHECK_MS, Math.min(...watched)));
    timer = setInterval(() => evaluate(now()), period);
    // ? The check alone must not keep a stopping process alive.
    timer.unref?.();
  }

  return {
    entries: () => evaluate(now()),
    check: () => void evaluate(now()),
    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
