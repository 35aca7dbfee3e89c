// /metrics and /status: the staleness of every NeoLight source. The pushed sources (hive,
// stress, atlas) are dated by the processor's commits, the agent files by their last good
// version, the risk engine by its last good answer.
import type { Config } from "../../config";
import type { Logger } from "../../log/logger";
import type { Processor } from "../../telemetry/processor";
import type { AgentFiles, WatchedFile } from "../agent-files/service";
import type { RiskClient } from "../risk/service";
import { type ExpositionWriter, epochMs } from "./exposition";
import { type SourceWatch, type StalenessMonitor, startStalenessMonitor } from "./staleness";

export interface SourcesDeps {
  config: Config;
  log: Logger;
  processor: Processor;
  files: AgentFiles;
  /** The guardian's pause file (issue 11). */
  pauseFile: WatchedFile;
  risk: RiskClient;
  /** Epoch ms of start-up (staleness of sources never heard from counts from here). */
  startedAt: number;
  now: () => number;
}

/** Starts watching every source; the monitor's close() stops it. */
export function watchSources({
  config,
  log,
  processor,
  files,
  pauseFile,
  risk,
  startedAt,
  now,
}: SourcesDeps): StalenessMonitor {
  // Pushed sources: the processor says which keys each committed update carried.
  const pushed = { hive: null as number | null, stress: null as number | null, atlas: null as number | null };
  processor.onCommit((_state, batch) => {
    const at = now();
    for (const { set, source } of batch) {
      // ? By source: a pause file change or an operator action carries `guardian` too.
      if (source === "hive" && (Object.hasOwn(set, "per_agent") || Object.hasOwn(set, "guardian"))) pushed.hive = at;
      if (Object.hasOwn(set, "stress_last")) pushed.stress = at;
      if (Object.hasOwn(set, "atlas")) pushed.atlas = at;
    }
  });
  const fileWatch = (file: WatchedFile, intervalS: number): SourceWatch => ({
    name: file.state().name,
    intervalS,
    lastUpdate: () => epochMs(file.state().last_good_change),
  });
  const sources: SourceWatch[] = [
    { name: "hive", intervalS: config.staleHiveS, lastUpdate: () => pushed.hive },
    { name: "stress", intervalS: config.staleStressS, lastUpdate: () => pushed.stress },
    { name: "atlas", intervalS: config.staleAtlasS, lastUpdate: () => pushed.atlas },
    fileWatch(files.performance, config.staleFilesS),
    fileWatch(files.regime, config.staleFilesS),
    fileWatch(files.governor, config.staleFilesS),
    // ? The override is the governor's fallback copy (CONTRACT section 1): its silence is normal.
    fileWatch(files.override, 0),
    // ? Written only to pause (a cooldown, an operator): its silence is the normal case.
    fileWatch(pauseFile, 0),
    { name: "risk_engine", intervalS: config.staleRiskS, lastUpdate: () => risk.lastGood()?.at ?? null },
  ];
  return startStalenessMonitor({ sources, log, startedAt, now });
}

/** The staleness families, one series per source. */
export function writeSources(w: ExpositionWriter, monitor: StalenessMonitor): void {
  const entries = monitor.entries();
  w.family(
    "neolight_source_last_update_timestamp_seconds",
    "gauge",
    "Time of the source's last good update, seconds since the epoch (absent until one since start-up)",
  );
  for (const e of entries) {
    const at = epochMs(e.last_update);
    if (at !== null) w.sample(at / 1000, { source: e.source });
  }
  w.family("neolight_source_expected_interval_seconds", "gauge", "How often the source should report; 0: not watched");
  for (const e of entries) w.sample(e.expected_interval_s, { source: e.source });
  w.family("neolight_source_stale", "gauge", "1 while the source has been silent for more than twice its interval");
  for (const e of entries) w.sample(e.stale ? 1 : 0, { source: e.source });
}
