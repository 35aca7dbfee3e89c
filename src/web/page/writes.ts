// The operator's writes from the page (POST /guardian/pause and /guardian/resume), as data:
// who must send the write token, the request each control sends, and every refusal in words.
// Pure (no DOM), so test/web/writes.test.ts checks it without a browser.
//
// The service accepts writes without a token from its own host only (http/auth.ts); a page
// opened from another host must send `Authorization: Bearer <token>`. The token is kept in
// sessionStorage only (controls.ts): it dies with the tab, and no other tab or later visit
// finds it on disk.

/** The durations the pause dialog offers; null: until an operator resumes (no `minutes`). */
export const PAUSE_MINUTES = [15, 60, 240, null] as const;
export type PauseMinutes = (typeof PAUSE_MINUTES)[number];

/** The service's limit on a pause reason (POST /guardian/pause `reason`, 1..500 characters). */
export const REASON_MAX = 500;

/** The hostnames of this host: a page opened through one of them may write without a token. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** Whether a page at `hostname` (location.hostname) is on the trading host itself. */
export function onTradingHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

export interface WriteRequest {
  path: "/guardian/pause" | "/guardian/resume";
  body: { reason: string; minutes?: number } | { reason?: string };
}

export function pauseRequest(reason: string, minutes: PauseMinutes): WriteRequest {
  return { path: "/guardian/pause", body: minutes === null ? { reason } : { reason, minutes } };
}

export function resumeRequest(reason: string): WriteRequest {
  return { path: "/guardian/resume", body: reason === "" ? {} : { reason } };
}

/** The headers of a write: JSON only (the service refuses anything else), the token when there is one. */
export function writeHeaders(token: string | null): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (token !== null && token !== "") headers.authorization = `Bearer ${token}`;
  return headers;
}

export interface Refusal {
  /** What the operator reads. */
  message: string;
  /** The write token is what is missing or wrong: show its field. */
  needsToken: boolean;
}

/**
 * A refused write in words. `status` 0 means no answer at all; `error` is the answer's own
 * words (CONTRACT section 4's `{error, code}`), shown where it says what to fix.
 */
export function refusal(status: number, error: string | null, retryAfter: string | null, sentToken: boolean): Refusal {
  const wait =
    retryAfter !== null && /^\d+$/.test(retryAfter) ? ` Try again in ${retryAfter} s.` : " Try again shortly.";
  switch (status) {
    case 0:
      return {
        message: "No answer from the service: not confirmed; check the banner once it is back.",
        needsToken: false,
      };
    case 401:
      return { message: "Token needed: this service requires the write token; enter it.", needsToken: true };
    case 403:
      return sentToken
        ? {
            message: "Not allowed: the service refused this write token; check it and enter it again.",
            needsToken: true,
          }
        : {
            message: "Not allowed: this page is not on the trading host; enter the write token.",
            needsToken: true,
          };
    case 429:
      return { message: `Too many writes from this address: refused, nothing changed.${wait}`, needsToken: false };
    case 503:
      return {
        message: `Not confirmed: the service is busy or could not write to its disk (${error ?? "no reason given"}); check the banner.${wait}`,
        needsToken: false,
      };
    default:
      return { message: `Refused (${status}): ${error ?? "no reason given"}.`, needsToken: false };
  }
}
