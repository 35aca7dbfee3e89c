// The page's guardian writes (src/web/page/writes.ts): who must send the write token, what
// each control sends, and every refusal in words (issue 11).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  onTradingHost,
  PAUSE_MINUTES,
  pauseRequest,
  refusal,
  resumeRequest,
  writeHeaders,
} from "../../src/web/page/writes";
import { ROOT } from "../helpers";

describe("the page's guardian writes", () => {
  test.each([
    ["localhost", true],
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["[::1]", true],
    ["LOCALHOST", true],
    ["trading-box.lan", false],
    ["192.168.1.20", false],
    ["localhost.example.com", false],
  ])("a page at %s is on the trading host: %p", (host, expected) => {
    expect(onTradingHost(host)).toBe(expected);
  });

  test("the dialog's durations are 15 min, 1 h, 4 h and until resumed (no minutes)", () => {
    const html = readFileSync(join(ROOT, "src", "web", "page", "index.html"), "utf8");
    const values = [...html.matchAll(/name="g-minutes" value="(\d*)"/g)].map((m) => m[1]);
    expect(values).toEqual(PAUSE_MINUTES.map((m) => (m === null ? "" : String(m))));
    expect(pauseRequest("manual check", 15)).toEqual({
      path: "/guardian/pause",
      body: { reason: "manual check", minutes: 15 },
    });
    expect(pauseRequest("manual check", null)).toEqual({ path: "/guardian/pause", body: { reason: "manual check" } });
    expect(resumeRequest("")).toEqual({ path: "/guardian/resume", body: {} });
    expect(resumeRequest("checked")).toEqual({ path: "/guardian/resume", body: { reason: "checked" } });
  });

  test("JSON only, and the token only when there is one", () => {
    expect(writeHeaders(null)).toEqual({ "content-type": "application/json", accept: "application/json" });
    expect(writeHeaders("s3cret-token-0123456789").authorization).toBe("Bearer s3cret-token-0123456789");
    expect(writeHeaders("").authorization).toBeUndefined();
  });

  test("401, 403, 429 and 503 in words; the token field where the token is what is missing", () => {
    expect(refusal(401, "write token required", null, false)).toEqual({
      message: "Token needed: this service requires the write token; enter it.",
      needsToken: true,
    });
    expect(refusal(403, "writes from this host only", null, false)).toEqual({
      message: "Not allowed: this page is not on the trading host; enter the write token.",
      needsToken: true,
    });
    expect(refusal(403, "wrong token", null, true)).toEqual({
      message: "Not allowed: the service refused this write token; check it and enter it again.",
      needsToken: true,
    });
    expect(refusal(429, "too many writes", "3", false)).toEqual({
      message: "Too many writes from this address: refused, nothing changed. Try again in 3 s.",
      needsToken: false,
    });
    expect(refusal(503, "telemetry queue full", "1", false)).toEqual({
      message:
        "Not confirmed: the service is busy or could not write to its disk (telemetry queue full); check the banner. Try again in 1 s.",
      needsToken: false,
    });
    expect(refusal(422, "reason: expected 1 to 500 characters", null, false).message).toBe(
      "Refused (422): reason: expected 1 to 500 characters.",
    );
    expect(refusal(0, null, null, false).message).toBe(
      "No answer from the service: not confirmed; check the banner once it is back.",
    );
  });
});
