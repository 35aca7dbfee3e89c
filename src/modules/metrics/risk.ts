// /metrics: the risk engine's figures, what GET /risk/status serves (its answer, else its
// file), never an invented number. One family per field, its unit in its name and help.
import { RiskState } from "../risk/model";
import type { RiskClient } from "../risk/service";
import type { ExpositionWriter } from "./exposition";

/** The risk engine's numeric fields (CONTRACT section 2) and their families: the unit in the name. */
const RISK_FAMILIES = [
  ["total_exposure", "neolight_risk_total_exposure_ratio"],
  ["active_positions", "neolight_risk_active_positions"],
  ["var", "neolight_risk_var"],
  ["cvar", "neolight_risk_cvar"],
  ["drawdown", "neolight_risk_drawdown_percent"],
] as const;

export function writeRisk(w: ExpositionWriter, risk: RiskClient): void {
  w.family("neolight_risk_engine_up", "gauge", "1 when the latest request to the risk engine succeeded").sample(
    risk.state().reachable ? 1 : 0,
  );
  const served = risk.served();
  if (served === null) return;
  w.family(
    "neolight_risk_state_from_file",
    "gauge",
    "1 while the risk figures come from the engine's state/risk_state.json (the engine is unreachable)",
  ).sample(served.from === "file" ? 1 : 0);
  for (const [field, name] of RISK_FAMILIES) {
    const value = served.state[field];
    if (typeof value === "number" && Number.isFinite(value))
      w.family(name, "gauge", `Risk engine: ${RiskState.properties[field].description}`).sample(value);
  }
  w.family(
    "neolight_risk_last_update_timestamp_seconds",
    "gauge",
    "When the risk engine last computed its state (its last_update), seconds since the epoch",
  ).sample(Number(served.state.last_update));
}
