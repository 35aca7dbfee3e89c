// The operator's Pause and Resume from the page, in Debian's Chromium against the compiled
// binary (issue 11): Pause clicked, then PAUSED shown (the time from the click is printed:
// the "under 1 s" is a figure, not an assertion) and `state/guardian_pause.json` on
// disk in NeoLight's shape; the banner says by whom and counts down to `until`; Resume
// brings RUNNING back and removes the file; a page opened from another host asks for the
// write token once, says 401 and 403 in words, and keeps the token in sessionStorage only;
// the cooldown file written by an agent shows as PAUSED by it, with its countdown.
// Skips, saying so, without Chromium.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { fixture, tempDir, waitFor } from "../helpers";
import { chromiumAvailable, launchChromium, OTHER_HOST, SLOW, waitBanner } from "./chromium";
import { compiledBinary, type ServiceProcess, spawnService } from "./process";

const available = chromiumAvailable(import.meta.path);

/** The write token of the service the other-host page talks to (16+ characters, as the option asks). */
const TOKEN = "page-test-token-0123456789";
const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

const pauseFile = (home: string) => join(home, "state", "guardian_pause.json");
const facts = (page: Page) =>
  page.$$eval("#g-pause-facts .fact", (els) =>
    els.map((el) => [el.querySelector("dt")?.textContent ?? null, el.querySelector("dd")?.textContent ?? null]),
  );

/** The guardian the execution router reads now. */
async function servedGuardian(url: string): Promise<Record<string, unknown>> {
  const doc = (await (await fetch(`${url}/meta/metrics`)).json()) as { guardian: Record<string, unknown> };
  return doc.guardian;
}

async function postHive(url: string, token?: string): Promise<void> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/meta/metrics`, {
    method: "POST",
    headers,
    body: JSON.stringify(fixture("meta_metrics_post")),
  });
  expect(res.status).toBe(200);
}

/** Opens the dialog with `button`, writes `reason`, picks `minutes` ("" = until resumed) when pausing. */
async function fillDialog(page: Page, button: "#g-pause" | "#g-resume", reason: string, minutes?: string) {
  await page.click(button);
  await page.waitForSelector("#g-dialog[open]");
  await page.fill("#g-reason-input", reason);
  if (minutes !== undefined) await page.check(`input[name="g-minutes"][value="${minutes}"]`);
}

describe.skipIf(!available)("Pause and Resume from the page in Chromium (compiled binary)", () => {
  const work = tempDir("neolight-pause-");
  const home = join(work.path, "home");
  const tokenHome = join(work.path, "token-home");
  let browser: Browser;
  let svc: ServiceProcess;
  let tokenSvc: ServiceProcess;
  let page: Page;

  beforeAll(async () => {
    const binary = await compiledBinary();
    for (const h of [home, tokenHome]) mkdirSync(join(h, "state"), { recursive: true });
    svc = await spawnService({ home, cmd: [binary], cwd: home });
    tokenSvc = await spawnService({
      home: tokenHome,
      cmd: [binary],
      cwd: tokenHome,
      // The page opened from another host name: an operator names it (DNS rebinding, issue 15).
      env: { NEOLIGHT_DASHBOARD_TOKEN: TOKEN, NEOLIGHT_ALLOWED_HOSTS: OTHER_HOST },
    });
    await postHive(svc.url);
    await postHive(tokenSvc.url, TOKEN);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(svc.url);
    await waitBanner(page, "running");
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    await tokenSvc?.stop();
    work[Symbol.dispose]();
  });

  test(
    "Pause for 1 h: PAUSED shown, the pause file on disk in NeoLight's shape, by the operator with a countdown",
    async () => {
      await fillDialog(page, "#g-pause", "manual check from the page", "60");
      const clicked = performance.now();
      const before = Date.now();
      await page.click("#g-submit");
      await waitBanner(page, "paused");
      const shownMs = performance.now() - clicked;
      process.stderr.write(`\n   PAUSED shown ${shownMs.toFixed(0)} ms after the click (issue 11 goal: < 1000 ms)\n`);
      expect(await page.isVisible("#g-dialog")).toBe(false);
      expect(await page.textContent("#g-state")).toBe("PAUSED");
      expect(await page.textContent("#g-reason")).toBe("manual check from the page");

      const file = JSON.parse(readFileSync(pauseFile(home), "utf8"));
      expect(file).toEqual({
        paused: true,
        reason: "manual check from the page",
        until: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
        by: "dashboard",
      });
      const untilMs = Date.parse(file.until) - before;
      expect(untilMs).toBeGreaterThan(59 * 60_000);
      expect(untilMs).toBeLessThanOrEqual(61 * 60_000);

      const served = await servedGuardian(svc.url);
      expect(served).toMatchObject({ is_paused: true, paused_by: "operator", until: expect.any(String) });
      expect(await facts(page)).toEqual([
        ["Paused by", "operator"],
        ["Since", expect.stringMatching(/^\d\d:\d\dZ \(\d+ s ago\)$/)],
        ["Until", expect.stringMatching(/^\d\d:\d\dZ \((59 min \d\d s|1 h 00 min 00 s)\)$/)],
      ]);
      // The countdown runs on by itself.
      const until = (await facts(page))[2]?.[1] as string;
      await page.locator("#g-pause-facts .fact:nth-child(3) dd", { hasNotText: until }).waitFor();
      expect(await page.isVisible("#g-resume")).toBe(true);
      expect(await page.isVisible("#g-pause")).toBe(false);
    },
    SLOW,
  );

  test(
    "Resume: RUNNING again at once, the pause file removed",
    async () => {
      await fillDialog(page, "#g-resume", "");
      expect(await page.isVisible("#g-durations")).toBe(false);
      await page.click("#g-submit");
      await waitBanner(page, "running");
      expect(existsSync(pauseFile(home))).toBe(false);
      const served = await servedGuardian(svc.url);
      expect(served.is_paused).toBe(false);
      expect(await page.isVisible("#g-pause-facts")).toBe(false);
    },
    SLOW,
  );

  test(
    "Pause until resumed: no minutes sent, no until served, the banner says it has no end",
    async () => {
      await fillDialog(page, "#g-pause", "until I say so", "");
      await page.click("#g-submit");
      await waitBanner(page, "paused");
      const served = await servedGuardian(svc.url);
      expect(served.is_paused).toBe(true);
      expect(served.until).toBeUndefined();
      expect((await facts(page)).at(-1)).toEqual(["Until", "no end set"]);
      await fillDialog(page, "#g-resume", "done");
      await page.click("#g-submit");
      await waitBanner(page, "running");
    },
    SLOW,
  );

  test(
    "the cooldown file written as agent self-heal does: PAUSED by the cooldown file with its countdown; removed: RUNNING",
    async () => {
      const until = new Date(Date.now() + 30 * 60_000).toISOString().replace(/\.\d+Z$/, "Z");
      const cooldown = { ...fixture("guardian_pause"), until, updated_at: new Date().toISOString() };
      writeFileSync(pauseFile(home), JSON.stringify(cooldown, null, 2));
      await waitBanner(page, "paused");
      expect(await page.textContent("#g-reason")).toBe("Auto rate-limit cooldown (12 hits)");
      expect(await facts(page)).toEqual([
        ["Paused by", "cooldown file"],
        ["Since", expect.stringMatching(/^\d\d:\d\dZ \(\d+ s ago\)$/)],
        ["Until", expect.stringMatching(/^\d\d:\d\dZ \((29|30) min \d\d s\)$/)],
      ]);
      unlinkSync(pauseFile(home));
      await waitBanner(page, "running");
    },
    SLOW,
  );

  test(
    "from another host: the token asked once, 401 and 403 in words, kept in sessionStorage only",
    async () => {
      const other = await browser.newPage();
      await other.goto(`http://${OTHER_HOST}:${tokenSvc.port}/`);
      await waitBanner(other, "running");
      await fillDialog(other, "#g-pause", "from my phone", "15");
      expect(await other.isVisible("#g-token")).toBe(true);
      // No token: 401.
      await other.click("#g-submit");
      await other
        .locator("#g-dialog-error", { hasText: "Token needed: this service requires the write token; enter it." })
        .waitFor();
      // A wrong one: 403, and nothing changed.
      await other.fill("#g-token", "not-the-token-at-all");
      await other.click("#g-submit");
      await other
        .locator("#g-dialog-error", {
          hasText: "Not allowed: the service refused this write token; check it and enter it again.",
        })
        .waitFor();
      expect(existsSync(pauseFile(tokenHome))).toBe(false);
      expect(await other.getAttribute("#guardian", "data-state")).toBe("running");
      // The right one: paused, and the token kept for this tab only.
      await other.fill("#g-token", TOKEN);
      await other.click("#g-submit");
      await waitBanner(other, "paused");
      await waitFor(() => existsSync(pauseFile(tokenHome)), "the pause file");
      expect(await other.evaluate("sessionStorage.getItem('neolight.writeToken')")).toBe(TOKEN);
      expect(await other.evaluate("localStorage.length")).toBe(0);
      // Asked once: Resume sends the kept token without asking.
      await fillDialog(other, "#g-resume", "back to normal");
      expect(await other.isVisible("#g-token")).toBe(false);
      await other.click("#g-submit");
      await waitBanner(other, "running");
      expect(existsSync(pauseFile(tokenHome))).toBe(false);
      await other.close();
    },
    SLOW,
  );
});
