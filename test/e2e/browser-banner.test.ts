// The guardian banner tells the truth, in Debian's Chromium against the compiled binary
// (issue 11): UNKNOWN (grey) before any guardian report, RUNNING (green) after the hive's
// snapshot, STALE (amber, "last known RUNNING, 18:03Z, 12 s ago") once the hive is silent
// past its interval, RUNNING again when it reports, and DISCONNECTED (the whole page grey,
// with how long since it last heard the service) after the service is killed. The hive's
// interval is the service's own option, shortened (NEOLIGHT_STALE_HIVE_S), so nothing waits
// minutes. The Pause dialog fits a 375 px phone. Skips, saying so, without Chromium.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { fixture, tempDir } from "../helpers";
import { chromiumAvailable, launchChromium, OTHER_HOST, SLOW, waitBanner } from "./chromium";
import { compiledBinary, postJson, type ServiceProcess, spawnService } from "./process";

// ? The functions given to $eval run in the browser; the test project has no DOM types.
declare const getComputedStyle: (el: unknown) => { color: string; opacity: string; filter: string };

const available = chromiumAvailable(import.meta.path);

/**
 * The hive's expected interval for this service, s: stale after twice it. Long enough that
 * RUNNING is seen before it goes (the page reads /status every 5 s), short enough not to wait.
 */
const HIVE_S = 2;
/** The page reads /status every 5 s: STALE shows within that of the service deciding it. */
const STALE_WAIT_MS = 20_000;
/** The style.css colours the banner states are told apart by. */
const GREEN = "rgb(63, 185, 80)";
const GREY = "rgb(139, 148, 158)";
const AMBER = "rgb(210, 153, 34)";

/** A phone's viewport, as the "a phone can do all of it" means it. */
const PHONE = { width: 375, height: 667 };

/** Whether all of `selector` is inside the phone's viewport (no scrolling needed to reach it). */
async function inView(page: Page, selector: string): Promise<boolean> {
  const box = await page.locator(selector).boundingBox();
  return (
    box !== null && box.x >= 0 && box.y >= 0 && box.x + box.width <= PHONE.width && box.y + box.height <= PHONE.height
  );
}

const stateOf = (page: Page) => page.getAttribute("#guardian", "data-state");
const colourOf = (page: Page) => page.$eval("#g-state", (el) => getComputedStyle(el).color);

describe.skipIf(!available)("the guardian banner in Chromium (compiled binary)", () => {
  const work = tempDir("neolight-banner-");
  const home = join(work.path, "home");
  let browser: Browser;
  let svc: ServiceProcess;
  let desktop: Page;

  beforeAll(async () => {
    const binary = await compiledBinary();
    mkdirSync(join(home, "state"), { recursive: true });
    svc = await spawnService({
      home,
      cmd: [binary],
      cwd: home,
      env: {
        NEOLIGHT_STALE_HIVE_S: String(HIVE_S),
        // The page opened from another host name: an operator names it (DNS rebinding, issue 15).
        NEOLIGHT_ALLOWED_HOSTS: OTHER_HOST,
      },
    });
    browser = await launchChromium();
    desktop = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    work[Symbol.dispose]();
  });

  test(
    "before any guardian report (nothing restored): UNKNOWN in grey, though the served default says not paused",
    async () => {
      await desktop.goto(svc.url);
      // The words say the page has read /status, not just that it has not yet.
      await desktop.locator("#g-reason", { hasText: "no guardian report since the service started" }).waitFor();
      expect(await stateOf(desktop)).toBe("unknown");
      expect(await desktop.textContent("#g-state")).toBe("UNKNOWN");
      expect(await colourOf(desktop)).toBe(GREY);
      // A stress run is not a guardian report.
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("stress_post"))).status).toBe(200);
      await desktop.locator("#stress .badge", { hasText: "PASSED" }).waitFor();
      expect(await stateOf(desktop)).toBe("unknown");
      // Pausing is offered whatever is known; resuming only when paused.
      expect(await desktop.isVisible("#g-pause")).toBe(true);
      expect(await desktop.isVisible("#g-resume")).toBe(false);
    },
    SLOW,
  );

  test(
    "the hive's snapshot: RUNNING in green; silent past its interval: STALE in amber with the last known state; reports again: RUNNING",
    async () => {
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_post"))).status).toBe(200);
      await waitBanner(desktop, "running");
      expect(await desktop.textContent("#g-state")).toBe("RUNNING");
      expect(await colourOf(desktop)).toBe(GREEN);

      await waitBanner(desktop, "stale", STALE_WAIT_MS);
      expect(await desktop.textContent("#g-state")).toBe("STALE");
      expect(await desktop.textContent("#g-reason")).toMatch(/^last known RUNNING, \d\d:\d\dZ, \d+ s ago$/);
      expect(await colourOf(desktop)).toBe(AMBER);
      // The Service card says the same of the hive, and lists every source with its interval.
      await desktop.waitForSelector('#service li[data-source="hive"].source-stale');
      const rows = await desktop.$$eval("#service li.source", (lis) =>
        lis.map((li) => [li.getAttribute("data-source"), li.lastElementChild?.textContent ?? null]),
      );
      const status = (await (await fetch(`${svc.url}/status`)).json()) as { staleness: { source: string }[] };
      expect(rows.map((r) => r[0])).toEqual(status.staleness.map((x) => x.source));
      expect(rows.find((r) => r[0] === "hive")?.[1]).toMatch(/^\d+ s ago · every 2 s$/);

      expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_post"))).status).toBe(200);
      await waitBanner(desktop, "running");
      expect(await colourOf(desktop)).toBe(GREEN);
    },
    SLOW,
  );

  test(
    "a 375 px phone: the Pause control is reachable and its dialog fits, every choice in view",
    async () => {
      const phone = await browser.newPage({ viewport: PHONE, isMobile: true, hasTouch: true });
      await phone.goto(svc.url);
      await phone.locator("#g-reason", { hasText: /./ }).waitFor();
      const button = await phone.locator("#g-pause").boundingBox();
      expect(button).not.toBeNull();
      expect(button?.height).toBeGreaterThanOrEqual(44);
      expect((button?.x ?? -1) + (button?.width ?? 0)).toBeLessThanOrEqual(PHONE.width);
      await phone.tap("#g-pause");
      await phone.waitForSelector("#g-dialog[open]");
      for (const selector of [
        "#g-dialog",
        "#g-reason-input",
        'input[name="g-minutes"][value="15"]',
        'input[name="g-minutes"][value=""]',
        "#g-submit",
        "#g-cancel",
      ]) {
        expect({ selector, inView: await inView(phone, selector) }).toEqual({ selector, inView: true });
      }
      // On the trading host no token is asked for.
      expect(await phone.isVisible("#g-token")).toBe(false);
      // A pause without a reason is not sent.
      await phone.tap("#g-submit");
      expect(await phone.textContent("#g-dialog-error")).toBe("A reason is required to pause.");
      await phone.tap("#g-cancel");
      await phone.waitForSelector("#g-dialog:not([open])", { state: "attached" });
      expect(await stateOf(phone)).not.toBe("paused");
      await phone.close();
    },
    SLOW,
  );

  test(
    "a phone opened from another host asks for the write token, and the dialog still fits",
    async () => {
      const page = await browser.newPage({ viewport: PHONE, isMobile: true, hasTouch: true });
      await page.goto(`http://${OTHER_HOST}:${svc.port}/`);
      await page.tap("#g-pause");
      await page.waitForSelector("#g-token", { state: "visible" });
      for (const selector of ["#g-dialog", "#g-token", "#g-submit"]) {
        expect({ selector, inView: await inView(page, selector) }).toEqual({ selector, inView: true });
      }
      await page.close();
    },
    SLOW,
  );

  test(
    "the service killed: DISCONNECTED, the whole page grey, and how long since it last heard the service",
    async () => {
      await svc.stop("SIGKILL");
      await waitBanner(desktop, "disconnected");
      expect(await desktop.textContent("#g-state")).toBe("DISCONNECTED");
      expect(await desktop.textContent("#g-reason")).toMatch(
        /^no answer from the service; last heard \d+ s ago, last known RUNNING$/,
      );
      expect(await colourOf(desktop)).toBe(GREY);
      expect(await desktop.getAttribute("html", "data-connection")).toBe("lost");
      // Every card (the grid holding the Service card, for one) is greyed out.
      const cards = await desktop.$eval("main > .grid", (el) => getComputedStyle(el));
      expect(Number(cards.opacity)).toBeLessThan(1);
      expect(cards.filter).toBe("grayscale(1)");
      // The age counts on by itself.
      await desktop.locator("#g-reason", { hasText: /last heard ([2-9]|\d\d+) s ago/ }).waitFor();
    },
    SLOW,
  );
});
