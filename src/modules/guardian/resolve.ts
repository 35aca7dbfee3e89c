// "A pause wins" (issue 11, CONTRACT section 6): the served guardian is resolved from its
// three sources (the hive's last report, the pause file, the operator's last action) and the
// time. Pure: no clock, no disk, no store; the store wrapper (service.ts) calls it in every
// commit that touches a source, so what is served, persisted, logged and streamed agree.
import { Value } from "@sinclair/typebox/value";
import type { JsonObject } from "../../store/store";
import type { Guardian, PausedBy, ServedGuardian } from "../meta/model";
import { GuardianSources, type PauseFileContent, type PauseReading } from "./model";

/**
 * Where the sources live: a key of the state file, never served (servedDocument strips it,
 * a POST may not carry it). ? In the same file as the guardian, not in a file of its own:
 * one atomic write holds both, so no crash can leave the served guardian and what it was
 * resolved from disagreeing after a restart.
 */
export const GUARDIAN_SOURCES_KEY = "_guardian_sources";

/** CONTRACT section 3: the guardian before any report. */
export const DEFAULT_GUARDIAN: ServedGuardian = {
  is_paused: false,
  drawdown: 0,
  reason: "Normal operation",
  paused_by: null,
  paused_since: null,
};

/** The pause file's writer when it is our operator route (POST /guardian/pause). */
export const DASHBOARD_WRITER = "dashboard";

/** ISO 8601 UTC to the second, ending in Z: the fixture's and NeoLight's format. */
export function isoSeconds(at: Date | number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** An active pause of the file: who, why, until when. */
interface FilePause {
  paused_by: "pause_file" | "operator";
  reason: string;
  until?: string;
}

/**
 * Whether the pause file pauses at `now`. `paused: true` with no `until`, or one ahead, does.
 * An `until` that has passed does not (the smart trader's rule). ? An `until` that cannot be
 * read as a time keeps the pause: the safe answer. A file that exists but was never readable
 * pauses too: a half-written first reading at start-up may be a pause (the router trades on
 * any "not paused"), and an operator's resume removes it.
 */
export function filePause(reading: PauseReading, now: number): FilePause | null {
  if (reading.state === "absent") return null;
  if (reading.state === "unreadable") {
    return { paused_by: "pause_file", reason: `pause file present but unreadable (${reading.error}): paused` };
  }
  const content: PauseFileContent = reading.content;
  if (content.paused !== true) return null;
  const until = typeof content.until === "string" ? content.until : undefined;
  if (until !== undefined && Date.parse(until) <= now) return null;
  return {
    paused_by: content.by === DASHBOARD_WRITER ? "operator" : "pause_file",
    reason: content.reason,
    ...(until !== undefined ? { until } : {}),
  };
}

/** When the file's pause ends by itself (epoch ms), if it is active and has a readable until. */
export function fileExpiry(reading: PauseReading, now: number): number | null {
  const pause = filePause(reading, now);
  if (pause?.until === undefined) return null;
  const at = Date.parse(pause.until);
  return Number.isFinite(at) ? at : null;
}

/**
 * The `until` of an operator's pause written over an active one (an agent's cooldown, or an
 * earlier operator pause): the later of the two, none when either has none. Replacing the
 * file must never shorten a pause, because the smart trader trades again at the file's
 * `until`. To end a pause sooner, an operator resumes.
 */
export function longerPause(active: FilePause | null, asked: string | undefined): string | undefined {
  if (active === null) return asked;
  if (active.until === undefined || asked === undefined) return undefined;
  return Date.parse(active.until) > Date.parse(asked) ? active.until : asked;
}

/**
 * The served guardian at `now`. The hive's report gives every field (drawdown, its own
 * extras); a pause of the file or of the operator wins over its is_paused and gives its
 * reason and until; the hive's own pause counts unless an operator resumed after it came.
 * `previous`: the guardian served before, for paused_since (a pause that goes on keeps it).
 */
export function resolveGuardian(
  sources: GuardianSources,
  previous: Readonly<JsonObject> | undefined,
  now: number,
): ServedGuardian {
  const hive = sources.hive;
  const {
    paused_by: _by,
    paused_since: _since,
    until: _until,
    ...report
  } = (hive?.report ?? DEFAULT_GUARDIAN) as Guardian & Record<string, unknown>;
  const operator = sources.operator;
  // ? A resume answers "not paused" at once, not after the hive's next snapshot (which will
  // agree: the hive reads the same file). A hive report newer than the resume counts again.
  const resumedSinceHive =
    operator?.last_action === "resume" &&
    operator.at !== null &&
    (hive?.received_at == null || Date.parse(operator.at) >= Date.parse(hive.received_at));
  const file = filePause(sources.pause_file, now);
  let pausedBy: PausedBy = null;
  let reason = report.reason;
  if (file !== null) [pausedBy, reason] = [file.paused_by, file.reason];
  else if (report.is_paused === true && !resumedSinceHive) pausedBy = "hive";
  else if (resumedSinceHive)
    reason = operator.reason ? `resumed by operator: ${operator.reason}` : "resumed by operator";
  const paused = pausedBy !== null;
  const pausedSince =
    paused && previous?.is_paused === true && typeof previous.paused_since === "string"
      ? previous.paused_since
      : paused
        ? isoSeconds(now)
        : null;
  const served: ServedGuardian = {
    ...report,
    is_paused: paused,
    reason,
    paused_by: pausedBy,
    paused_since: pausedSince,
    ...(file?.until !== undefined ? { until: file.until } : {}),
  };
  return served;
}

/**
 * The sources a document holds. A document without them (written before issue 11) or with
 * a broken copy takes its stored guardian as the hive's last report: that is what it was.
 */
export function sourcesOf(doc: Readonly<JsonObject>): GuardianSources {
  const stored = doc[GUARDIAN_SOURCES_KEY];
  // ? Issue 14: TypeBox's interpreted check, not a compiled one. Compiling this schema was
  // 11 ms of start-up (CPU profile: the first sync resolves the pause before the first 200),
  // for a small object checked once a commit, where the interpreted check costs microseconds.
  if (Value.Check(GuardianSources, stored)) return stored;
  const guardian = doc.guardian as Guardian | undefined;
  return {
    hive: guardian === undefined ? null : { report: guardian, received_at: null },
    pause_file: { state: "absent" },
    operator: null,
  };
}

/** The guardian a document serves: its stored one (filled in where written before issue 11), or the default. */
export function servedGuardianOf(doc: Readonly<JsonObject>): ServedGuardian {
  const stored = doc.guardian as (Guardian & Partial<ServedGuardian>) | undefined;
  if (stored === undefined) return DEFAULT_GUARDIAN;
  if (stored.paused_by !== undefined && stored.paused_since !== undefined) return stored as ServedGuardian;
  return { ...stored, paused_by: stored.is_paused ? "hive" : null, paused_since: null };
}

/** What decides a pause: two guardians with these equal serve the router and the page alike. */
export function sameDecision(a: ServedGuardian, b: ServedGuardian): boolean {
  return a.is_paused === b.is_paused && a.paused_by === b.paused_by && a.reason === b.reason && a.until === b.until;
}

/** Two readings of the pause file are the same. */
export function sameReading(a: PauseReading, b: PauseReading): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
