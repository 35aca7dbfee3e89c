// The Service card's list of sources, as data: one entry per source of /status
// `staleness` (the posters, the agent files, the risk engine) with the state it is shown
// in. Pure (no DOM), so test/web/sources.test.ts checks it against a real /status answer.
import type { Status } from "../../modules/system/model";

/** A source's state, worst first; the row's CSS class is `source-<state>`. */
export type SourceState = "absent" | "unreachable" | "stale" | "last-good" | "waiting" | "ok";

export const SOURCE_LABELS: Record<SourceState, string> = {
  absent: "absent",
  unreachable: "unreachable",
  stale: "stale",
  "last-good": "last good copy",
  waiting: "no data yet",
  ok: "ok",
};

export interface SourceRow {
  source: string;
  state: SourceState;
  /** RFC 3339 time of its last good update; null when none since start-up. */
  lastUpdate: string | null;
  /** Its expected interval, s (stale after twice it); 0 when not watched. */
  intervalS: number;
  /** Why its file or the engine could not be used, for the row's tooltip; null when nothing failed. */
  problem: string | null;
}

/**
 * Stale is what /status `staleness` says: silent for more than twice its interval. Apart
 * from that, an agent file whose current version cannot be used is served from its last
 * good copy (fresh or not), a file that does not exist is absent, and the risk engine is
 * unreachable once a request to it failed.
 */
export function sourceRows(status: Status): SourceRow[] {
  const files = new Map(status.sources.files.map((f) => [f.name, f]));
  const risk = status.sources.risk_engine;
  return status.staleness.map((s) => {
    const file = files.get(s.source);
    const engine = s.source === "risk_engine";
    let state: SourceState = "ok";
    if (file?.present === false && file.serving === "none") state = "absent";
    else if (engine && risk.last_attempt_at !== null && !risk.reachable) state = "unreachable";
    else if (s.stale) state = "stale";
    else if (file?.serving === "last_good") state = "last-good";
    else if (s.last_update === null) state = "waiting";
    return {
      source: s.source,
      state,
      lastUpdate: s.last_update,
      intervalS: s.expected_interval_s,
      problem: file?.last_error ?? (engine ? risk.last_error : null),
    };
  });
}
