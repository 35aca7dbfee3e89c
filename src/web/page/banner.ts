// What the guardian banner says, as data: the one decision of the page that the operator
// reads as "may the router trade?". Pure (no DOM), so test/web/banner.test.ts checks it
// against real /status answers. The banner says RUNNING only when the served guardian is
// not paused AND its state is known AND fresh; every other case has a state of its own,
// never green (issue 11):
// - DISCONNECTED: the page cannot reach the service (the stream is down and fetches fail);
//   whatever it shows may be old, so the whole page greys.
// - PAUSED: the served guardian is paused (the router will not trade), whoever paused it.
// - UNKNOWN: not paused, but no guardian report since start-up and nothing restored from
//   disk: the served `is_paused: false` is the contract's default, not anyone's report.
// - STALE: not paused, but the hive is stale by /status `staleness` (the service's rule).
import type { PausedBy, ServedGuardian } from "../../modules/meta/model";
import type { Status } from "../../modules/system/model";
import { ago, duration } from "./format";

export type { PausedBy, ServedGuardian };

export type BannerState = "running" | "paused" | "unknown" | "stale" | "disconnected";

/** What the page knows of the hive, from its last /status answer and the stream since. */
export interface HiveView {
  /** The hive's last good report as the service's ISO time; null when none since start-up. */
  lastUpdate: string | null;
  /** Page-clock epoch ms of that report (from `age_s`, so the two clocks may differ); null when none. */
  heardAt: number | null;
  /** /status `staleness` says so, and the hive has not reported since that answer. */
  stale: boolean;
  /** /status `persistence.restored`: the served state at start-up came from disk. */
  restored: boolean;
}

export interface BannerInput {
  guardian: ServedGuardian | undefined;
  /** Null until the first /status answer: nothing is known of freshness yet. */
  hive: HiveView | null;
  /** Page-clock epoch ms the page last heard from the service; null when never. */
  lastHeard: number | null;
  /** The stream is down and the last fetch failed. */
  disconnected: boolean;
  now: number;
}

export interface Banner {
  state: BannerState;
  /** The big word. */
  title: string;
  /** One line under it: why, or what was last known. */
  detail: string;
  /** Short facts of a pause (by, since, until); empty when not paused. */
  pause: { label: string; value: string }[];
}

const BY_LABEL: Record<NonNullable<PausedBy>, string> = {
  hive: "hive (guardian agent)",
  pause_file: "cooldown file",
  operator: "operator",
  store: "fail-safe: shared store unreachable",
};

/** `2025-11-03T18:03:12Z` -> `18:03Z` (the service's UTC time, as logs and agents write it). */
export function utcClock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(11, 16)}Z`;
}

/** Time left until `iso`, to the second: `12 min 05 s`, `3 h 05 min 00 s`, `6 d 23 h`; `ended` once passed. */
export function countdown(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "—";
  const s = Math.ceil((t - now) / 1000);
  if (s <= 0) return "ended";
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h ${two(Math.floor(s / 60) % 60)} min ${two(s % 60)} s`;
  return duration(s);
}

/** The hive as /status saw it, moved onto the page's clock with `fetchedAt`. */
export function hiveView(status: Status, fetchedAt: number): HiveView {
  const hive = status.staleness.find((s) => s.source === "hive");
  const age = hive?.age_s;
  return {
    lastUpdate: hive?.last_update ?? null,
    heardAt: typeof age === "number" ? fetchedAt - age * 1000 : null,
    stale: hive?.stale === true,
    restored: status.persistence.restored,
  };
}

/**
 * The hive reported: `iso` is the service's time of it (the update's `updated_at`), `at`
 * the page's. Known and fresh from then on, until a later /status answer says otherwise.
 */
export function hiveReported(hive: HiveView, iso: string, at: number): HiveView {
  return { ...hive, lastUpdate: iso, heardAt: at, stale: false };
}

function pauseFacts(g: ServedGuardian, now: number): Banner["pause"] {
  const facts: Banner["pause"] = [];
  if (g.paused_by) facts.push({ label: "Paused by", value: BY_LABEL[g.paused_by] ?? g.paused_by });
  if (g.paused_since)
    facts.push({ label: "Since", value: `${utcClock(g.paused_since)} (${ago(g.paused_since, now)})` });
  facts.push({
    label: "Until",
    value: typeof g.until === "string" ? `${utcClock(g.until)} (${countdown(g.until, now)})` : "no end set",
  });
  return facts;
}

export function banner({ guardian: g, hive, lastHeard, disconnected, now }: BannerInput): Banner {
  const known = typeof g?.is_paused === "boolean";
  const last = !known ? "nothing" : g?.is_paused ? "PAUSED" : "RUNNING";
  if (disconnected) {
    return {
      state: "disconnected",
      title: "DISCONNECTED",
      detail: `no answer from the service; last heard ${lastHeard === null ? "never" : `${duration((now - lastHeard) / 1000)} ago`}, last known ${last}`,
      pause: [],
    };
  }
  if (g?.is_paused === true) {
    return { state: "paused", title: "PAUSED", detail: g.reason, pause: pauseFacts(g, now) };
  }
  if (!known || hive === null) {
    return { state: "unknown", title: "UNKNOWN", detail: "waiting for the service's state", pause: [] };
  }
  if (hive.heardAt === null && !hive.restored) {
    return { state: "unknown", title: "UNKNOWN", detail: "no guardian report since the service started", pause: [] };
  }
  if (hive.stale) {
    const when =
      hive.lastUpdate === null || hive.heardAt === null
        ? "restored from disk, no hive report since start-up"
        : `${utcClock(hive.lastUpdate)}, ${duration((now - hive.heardAt) / 1000)} ago`;
    return { state: "stale", title: "STALE", detail: `last known RUNNING, ${when}`, pause: [] };
  }
  return { state: "running", title: "RUNNING", detail: g?.reason ?? "", pause: [] };
}
