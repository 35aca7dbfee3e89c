// The client of the Rust risk engine (CONTRACT section 4, GET /risk/status). It serves the
// engine's last good answer with its age and never invents a number: before the first
// good answer there is nothing to serve, and the route answers 503.

import { UnavailableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import type { RiskStatus } from "./model";

/** Answers younger than this are served without asking the engine again. */
export const RISK_REFRESH_MS = 1000;
/** Retry-After when the engine was never reached. */
const NEVER_REACHED_RETRY_AFTER_S = 5;

export interface RiskSourceState {
  url: string;
  reachable: boolean;
  last_good_at: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  failures: number;
}

export interface RiskClient {
  /**
   * The engine's state: asks the engine when the last attempt is older than
   * RISK_REFRESH_MS (concurrent callers share one request), then serves the last good
   * answer. Rejects with UnavailableError (503) when no answer was ever good.
   */
  status(): Promise<RiskStatus>;
  state(): RiskSourceState;
  /** The last good answer (shared: do not mutate) and when it came, epoch ms; null before any. Never asks the engine. */
  lastGood(): { risk: Readonly<Record<string, unknown>>; at: number } | null;
}

export function createRiskClient({ url, timeoutMs, log }: { url: string; timeoutMs: number; log: Logger }): RiskClient {
  const endpoint = `${url}/risk/status`;
  let good: { risk: Record<string, unknown>; at: number } | null = null;
  let lastAttempt = 0;
  let inflight: Promise<void> | null = null;
  const figures: RiskSourceState = {
    url: endpoint,
    reachable: false,
    last_good_at: null,
    last_attempt_at: null,
    last_error: null,
    failures: 0,
  };

  async function ask(): Promise<void> {
    lastAttempt = Date.now();
    figures.last_attempt_at = new Date(lastAttempt).toISOString();
    try {
      const res = await fetch(endpoint, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { accept: "application/json" },
      });
      if (!res.ok) throw new Error(`engine answered HTTP ${res.status}`);
      const body: unknown = await res.json();
      if (typeof body !== "object" || body === null || Array.isArray(body))
        throw new Error("engine answer is not a JSON object");
      good = { risk: body as Record<string, unknown>, at: Date.now() };
      figures.last_good_at = new Date(good.at).toISOString();
      if (!figures.reachable && figures.failures > 0) log.info("risk engine reachable again", { url: endpoint });
      figures.reachable = true;
      figures.last_error = null;
    } catch (err) {
      const message =
        err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")
          ? `no answer within ${timeoutMs} ms`
          : (err as Error).message;
      figures.failures++;
      figures.last_error = message;
      if (figures.reachable || figures.failures === 1)
        log.warn("risk engine unreachable", { url: endpoint, error: message });
      figures.reachable = false;
    }
  }

  return {
    async status() {
      if (Date.now() - lastAttempt >= RISK_REFRESH_MS) {
        inflight ??= ask().finally(() => {
          inflight = null;
        });
      }
      if (inflight) await inflight;
      if (good === null) {
        throw new UnavailableError(
          `risk engine never reached at ${endpoint}: ${figures.last_error ?? "no answer yet"}`,
          NEVER_REACHED_RETRY_AFTER_S,
        );
      }
      return {
        risk: good.risk,
        fetched_at: new Date(good.at).toISOString(),
        age_seconds: Math.round((Date.now() - good.at) / 10) / 100,
        stale: !figures.reachable,
        last_error: figures.last_error,
        source: endpoint,
      };
    },
    state: () => ({ ...figures }),
    lastGood: () => good,
  };
}
