// The client of NeoLight's Rust risk engine (risk_engine_rust, CONTRACT section 2: its
// GET /risk/state) behind our GET /risk/status (section 4). It serves the engine's last good
// answer with its age and never invents a number. When the engine is unreachable it serves
// the engine's own persisted state, state/risk_state.json (section 1), if that is not older
// than the last good answer: the engine writes that file on every evaluation, so it can be
// newer than what we last fetched. The engine rewrites it in place (Rust's fs::write), so
// it is read like the agent files, through their last-good-copy reader. Before a good
// answer from either, there is nothing to serve and the route answers 503.

import { join } from "node:path";
import { UnavailableError } from "../../http/errors";
import type { Logger } from "../../log/logger";
import { validator, type WatchedFile, watchJsonFile } from "../agent-files/service";
import { RISK_UNITS, type RiskSource, RiskState, type RiskStatus } from "./model";

/** Answers younger than this are served without asking the engine again. */
export const RISK_REFRESH_MS = 1000;
/** Retry-After when there is nothing to serve yet. */
const NEVER_REACHED_RETRY_AFTER_S = 5;
/** CONTRACT section 2: the engine's state route. */
export const RISK_STATE_ROUTE = "/risk/state";
/** CONTRACT section 1: the engine's persisted state, relative to NEOLIGHT_HOME. */
export const RISK_STATE_FILE = join("state", "risk_state.json");

/** What is served: a state of the engine, where it was read and when (epoch ms; a file's mtime). */
export interface ServedRisk {
  state: Readonly<RiskState>;
  from: "engine" | "file";
  at: number;
}

export interface RiskClient {
  /**
   * The engine's state: asks the engine when the last attempt is older than RISK_REFRESH_MS
   * (concurrent callers share one request), then serves what served() gives. Rejects with
   * UnavailableError (503) when neither the engine nor its file ever gave a good state.
   */
  status(): Promise<RiskStatus>;
  /**
   * Asks the engine now, however recent the last attempt (shares a request in flight), and
   * after a failure re-reads the state file. Resolves once both are taken in; never rejects.
   * The background probe uses it, and tests instead of waiting for RISK_REFRESH_MS.
   */
  refresh(): Promise<void>;
  /** Figures for /status `sources.risk_engine`: a fresh copy each call. */
  state(): RiskSource;
  /**
   * The last good answer of the engine itself (shared: do not mutate) and when it came, epoch
   * ms; null before any. Never asks the engine. Only this feeds the staleness of
   * `risk_engine`: the file says what the engine once computed, not that it is alive.
   */
  lastGood(): { risk: Readonly<RiskState>; at: number } | null;
  /**
   * What status() serves, without asking the engine: its latest answer while it is
   * reachable; otherwise the newer (by the engine's own last_update) of its last good answer
   * and its file, the file on a tie; null when there is neither.
   */
  served(): ServedRisk | null;
  /** Stops watching the state file and the background probe. Idempotent. */
  close(): void;
}

export interface RiskClientOptions {
  /** Base URL of the engine (NEOLIGHT_RISK_URL). */
  url: string;
  timeoutMs: number;
  /** NEOLIGHT_HOME: the state file is RISK_STATE_FILE under it. */
  home: string;
  /** Poll interval of the state file (NEOLIGHT_SOURCE_POLL_MS); it is also watched. */
  pollMs: number;
  log: Logger;
  /**
   * Asks the engine in the background this often, and once at start (NEOLIGHT_STALE_RISK_S).
   * The engine only answers when asked: without the probe the staleness of `risk_engine`
   * would measure how often someone opened /risk/status, not whether the engine is up.
   * Default: 0, no probe.
   */
  probeMs?: number;
  /** Epoch ms. Default: Date.now; tests move a clock of their own instead of sleeping. */
  now?: () => number;
}

const checkState = validator(RiskState);
const iso = (ms: number) => new Date(ms).toISOString();
const engineMs = (state: Readonly<RiskState>) => Number(state.last_update) * 1000;
const isTimeout = (err: unknown) => err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");

export function createRiskClient({
  url,
  timeoutMs,
  home,
  pollMs,
  log,
  probeMs = 0,
  now = Date.now,
}: RiskClientOptions): RiskClient {
  const endpoint = `${url}${RISK_STATE_ROUTE}`;
  const stateFile: WatchedFile = watchJsonFile({
    name: "risk_state",
    path: join(home, RISK_STATE_FILE),
    validate: checkState,
    pollMs,
    log,
    home,
  });
  // ? Read at once, not at the first poll: an engine that is down at our start-up still has
  // its state served as soon as the first /risk/status asks.
  void stateFile.refresh();
  let good: { risk: RiskState; at: number } | null = null;
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | null = null;
  const figures: Pick<RiskSource, "reachable" | "last_good_at" | "last_attempt_at" | "last_error" | "failures"> = {
    reachable: false,
    last_good_at: null,
    last_attempt_at: null,
    last_error: null,
    failures: 0,
  };

  async function fetchState(): Promise<RiskState> {
    const res = await fetch(endpoint, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: "application/json" },
    });
    if (!res.ok) throw new Error(`engine answered HTTP ${res.status}`);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      if (isTimeout(err)) throw err;
      throw new Error(`engine answer is not JSON: ${(err as Error).message}`);
    }
    const problem = checkState(body);
    // ? A malformed answer is not a good one: serving it would show numbers the engine did
    // not mean, and counting it would hide a broken engine behind a fresh "last update".
    if (problem !== null) throw new Error(`engine answer does not match its state schema: ${problem}`);
    return body as RiskState;
  }

  async function ask(): Promise<void> {
    lastAttempt = now();
    figures.last_attempt_at = iso(lastAttempt);
    try {
      const risk = await fetchState();
      good = { risk, at: now() };
      figures.last_good_at = iso(good.at);
      if (!figures.reachable && figures.failures > 0) log.info("risk engine reachable again", { url: endpoint });
      figures.reachable = true;
      figures.last_error = null;
    } catch (err) {
      const message = isTimeout(err) ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      const wasReachable = figures.reachable;
      figures.failures++;
      figures.last_error = message;
      figures.reachable = false;
      // The file is what is served now: take in its latest version before anyone reads it.
      await stateFile.refresh();
      if (wasReachable || figures.failures === 1) {
        log.warn("risk engine unreachable", { url: endpoint, error: message, serving: served()?.from ?? "none" });
      }
    }
  }

  function refresh(): Promise<void> {
    inflight ??= ask().finally(() => {
      inflight = null;
    });
    return inflight;
  }

  function fromFile(): ServedRisk | null {
    const value = stateFile.value();
    const mtime = stateFile.state().last_good_change;
    if (value === undefined || mtime === null) return null;
    // The reader only keeps a version that passed checkState.
    return { state: value as RiskState, from: "file", at: Date.parse(mtime) };
  }

  function served(): ServedRisk | null {
    const engine: ServedRisk | null = good && { state: good.risk, from: "engine", at: good.at };
    if (figures.reachable) return engine;
    const file = fromFile();
    if (file === null) return engine;
    if (engine === null) return file;
    return engineMs(file.state) >= engineMs(engine.state) ? file : engine;
  }

  const secondsSince = (ms: number) => Math.round((now() - ms) / 10) / 100;

  let probe: ReturnType<typeof setInterval> | undefined;
  if (probeMs > 0) {
    void refresh();
    probe = setInterval(() => void refresh(), probeMs);
    probe.unref?.();
  }

  return {
    async status() {
      if (now() - lastAttempt >= RISK_REFRESH_MS) void refresh();
      if (inflight) await inflight;
      const s = served();
      if (s === null) {
        throw new UnavailableError(
          `risk engine never reached with a good answer at ${endpoint} (${figures.last_error ?? "no answer yet"}), and ${stateFile.state().path} holds no good state`,
          NEVER_REACHED_RETRY_AFTER_S,
        );
      }
      const fromEngine = s.from === "engine";
      return {
        risk: s.state,
        units: RISK_UNITS,
        served_from: s.from,
        fetched_at: fromEngine ? iso(s.at) : null,
        age_seconds: fromEngine ? secondsSince(s.at) : null,
        file_modified_at: fromEngine ? null : iso(s.at),
        file_age_seconds: fromEngine ? null : secondsSince(s.at),
        engine_updated_at: iso(engineMs(s.state)),
        engine_age_seconds: secondsSince(engineMs(s.state)),
        stale: !figures.reachable,
        last_error: figures.last_error,
        source: endpoint,
        state_file: stateFile.state().path,
      };
    },
    refresh,
    state: () => ({ url: endpoint, ...figures, serving: served()?.from ?? "none", state_file: stateFile.state() }),
    lastGood: () => good,
    served,
    close() {
      clearInterval(probe);
      probe = undefined;
      stateFile.close();
    },
  };
}
