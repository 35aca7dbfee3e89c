// Debian's Chromium for the page tests (browser*.test.ts): where it is, whether it is there
// (a file skips, saying so, when it is not), how to launch it, and the waits the guardian
// tests share. Chromium comes from apt (`.ci/run` installs it when missing).
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Building the binary and starting a browser take seconds on the 2-core machine. */
export const SLOW = 60_000;

/**
 * Another name for this machine, as a phone on the LAN would use: a page opened through it
 * is not on the trading host by its own address bar, though the service sees loopback.
 */
export const OTHER_HOST = "dashboard.test";

/** Whether Chromium is there; when not, one line on stderr says which test file skips and why. */
export function chromiumAvailable(testFile: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  process.stderr.write(
    `\n!! test/e2e/${basename(testFile)} SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)\n\n`,
  );
  return false;
}

/** Headless Chromium; OTHER_HOST resolves to this machine. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`],
  });
}

/** Waits for the guardian banner to show `state` (its data-state: running, paused, stale, unknown, disconnected). */
export const waitBanner = (page: Page, state: string, timeout = 10_000) =>
  page.waitForSelector(`#guardian[data-state="${state}"]`, { timeout });
