// Which replica holds the agents' files (issue 12). The agents write their files, the pause
// file among them, on one host; with a shared store several replicas, on other hosts too,
// serve one document. Only a replica that holds the files may turn their readings into
// updates: a replica on a host without them reads the pause file as "absent", and committing
// that over the shared reading would erase a pause (the router trades on any "not paused").
//
// ? The rule: a replica holds the agents' files once it has seen any of them present under
// its NEOLIGHT_HOME (the four agent files of CONTRACT section 1, or the pause file), at
// start-up or since; it keeps holding them until it stops. Sticky because the pause file is
// deleted to clear a cooldown: the replica that saw it must still commit that it is gone.
// An operator runs the replica of the agents' host with NEOLIGHT_HOME = the agents' NeoLight
// root (where they write), and every other replica with a NEOLIGHT_HOME the agents do not
// write to (a sync script must not copy their files there).
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../log/logger";

/** CONTRACT section 1: the files the agents write, relative to NEOLIGHT_HOME (the pause file last). */
export const AGENTS_FILES = [
  "state/performance_attribution.json",
  "runtime/market_regime.json",
  "runtime/capital_governor_allocations.json",
  "runtime/allocations_override.json",
  "state/guardian_pause.json",
] as const;

export interface FilesHolder {
  /** This replica holds the agents' files: it commits their readings. Cheap. */
  holds(): boolean;
  /** A watcher of one of the agents' files found it present (true) or not. Never throws. */
  saw(present: boolean, path: string): void;
  /** `listener` runs once, when holds() turns true (never when it already was). Must not throw. */
  onHold(listener: () => void): void;
}

/** The embedded mode (one replica, one home): it always holds its files, as before issue 12. */
export const ALWAYS_HOLDS: FilesHolder = { holds: () => true, saw: () => {}, onHold: () => {} };

/**
 * The rule above for a replica of a shared store. Holds at once when one of the files exists
 * now (so that start-up, which reads the pause file before the agent files, already knows).
 */
export function createFilesHolder(home: string, log: Logger): FilesHolder {
  const listeners: (() => void)[] = [];
  let held = false;

  function hold(path: string, at: "start-up" | "watch"): void {
    if (held) return;
    held = true;
    log.info("agents' files seen here: this replica commits their readings", { path, at });
    for (const listener of listeners.splice(0)) listener();
  }

  for (const relative of AGENTS_FILES) {
    const path = join(home, relative);
    if (existsSync(path)) {
      hold(path, "start-up");
      break;
    }
  }
  if (!held) {
    log.info("no agents' files here: this replica serves the shared readings", { home });
  }

  return {
    holds: () => held,
    saw(present, path) {
      if (present) hold(path, "watch");
    },
    onHold(listener) {
      if (!held) listeners.push(listener);
    },
  };
}
