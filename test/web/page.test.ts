// The dashboard page through app.handle: who gets HTML and who gets JSON at GET /, the
// page's assets (served from memory, no CDN, no inline script), and the page's number
// formatting.
import { describe, expect, test } from "bun:test";
import { ago, amount, duration, money, moneyShort, ratioPct, signClass } from "../../src/web/page/format";
import { startApp } from "../helpers";

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

describe("GET / content negotiation", () => {
  test.each([
    ["a browser", BROWSER_ACCEPT, "html"],
    ["curl (*/*)", "*/*", "json"],
    ["no Accept header", null, "json"],
    ["a JSON client", "application/json", "json"],
    ["a client listing JSON first and HTML equal (a tie goes to JSON)", "application/json, text/html", "json"],
    ["a client preferring JSON", "text/html;q=0.5, application/json", "json"],
    ["a client preferring HTML over JSON", "text/html, application/json;q=0.9", "html"],
    ["text/html with q=0", "text/html;q=0, */*", "json"],
  ])("%s gets %s", async (_name, accept, expected) => {
    await using t = await startApp();
    const res = await t.app.handle(new Request("http://localhost/", { headers: accept === null ? {} : { accept } }));
    expect(res.status).toBe(200);
    const type = res.headers.get("content-type") ?? "";
    if (expected === "html") {
      expect(type).toBe("text/html; charset=utf-8");
      expect(res.headers.get("vary")).toBe("Accept");
      expect(await res.text()).toStartWith("<!doctype html>");
    } else {
      expect(type).toStartWith("application/json");
      expect(await res.json()).toMatchObject({ service: "neolight-dashboard", status: "running" });
    }
  });
});

describe("the page", () => {
  test("its script and stylesheet are served by the service itself, hashed and cacheable", async () => {
    await using t = await startApp();
    const html = await (
      await t.app.handle(new Request("http://localhost/", { headers: { accept: BROWSER_ACCEPT } }))
    ).text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs).toEqual([
      "data:,",
      expect.stringMatching(/^\/assets\/app\.[0-9a-z]+\.css$/),
      expect.stringMatching(/^\/assets\/app\.[0-9a-z]+\.js$/),
    ]);
    for (const ref of refs.slice(1)) {
      const res = await t.app.handle(new Request(`http://localhost${ref}`));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith(ref.endsWith(".js") ? "text/javascript" : "text/css");
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const body = await res.text();
      // Nothing is fetched from outside: no absolute URLs to other hosts, no @import.
      expect(body).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i);
      expect(body).not.toContain("@import");
    }
  });

  test("no inline script or style: a CSP without 'unsafe-inline' will not break it", async () => {
    await using t = await startApp();
    const html = await (
      await t.app.handle(new Request("http://localhost/", { headers: { accept: BROWSER_ACCEPT } }))
    ).text();
    for (const [, attrs, body] of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(attrs).toContain("src=");
      expect(body).toBe("");
    }
    expect(html).not.toContain("<style");
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/\sstyle=/i);
  });

  test("the script holds uPlot and the page code (bundled, not fetched)", async () => {
    await using t = await startApp();
    const html = await (
      await t.app.handle(new Request("http://localhost/", { headers: { accept: BROWSER_ACCEPT } }))
    ).text();
    const js = await (
      await t.app.handle(new Request(`http://localhost${html.match(/src="([^"]+\.js)"/)?.[1]}`))
    ).text();
    expect(js).toContain("/events");
    expect(js).toContain("/meta/history");
    expect(js).toContain("u-legend"); // uPlot
    expect(js.length).toBeLessThan(200_000);
  });

  // Issue 9: /favicon.ico was a 404, which browsers log on every page they open.
  test("/favicon.ico is a 16x16 ICO, cacheable for a day", async () => {
    await using t = await startApp();
    const res = await t.app.handle(new Request("http://localhost/favicon.ico"));
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect({
      status: res.status,
      type: res.headers.get("content-type"),
      cache: res.headers.get("cache-control"),
      header: [...bytes.slice(0, 8)],
      bits: bytes[12],
      length: bytes.length,
    }).toEqual({
      status: 200,
      type: "image/x-icon",
      cache: "public, max-age=86400",
      // reserved, type 1 (icon), 1 image, 16 x 16
      header: [0, 0, 1, 0, 1, 0, 16, 16],
      bits: 32,
      length: 6 + 16 + 40 + 16 * 16 * 4 + 16 * 4,
    });
  });

  test("asset paths are hidden from the endpoint list and the OpenAPI document", async () => {
    await using t = await startApp();
    const info = (await (await t.app.handle(new Request("http://localhost/"))).json()) as { endpoints: string[] };
    expect(info.endpoints.filter((e) => e.includes("/assets/"))).toEqual([]);
  });
});

describe("page formatting", () => {
  test.each([
    [412.37, "+$412.37"],
    [-57.12, "-$57.12"],
    [0, "$0.00"],
    [1934.25, "+$1,934.25"],
    [-1890.2, "-$1,890.20"],
    [null, "—"],
    [Number.NaN, "—"],
  ])("money(%p) is %p", (value, text) => {
    expect(money(value)).toBe(text);
  });

  test.each([
    [1250.48, "$1,250.48"],
    [-3, "-$3.00"],
    [0, "$0.00"],
    [undefined, "—"],
  ])("amount(%p) is %p (no sign for a size)", (value, text) => {
    expect(amount(value)).toBe(text);
  });

  test.each([
    [0.574, 1, "57.4%"],
    [0.4, 0, "40%"],
    [undefined, 1, "—"],
  ])("ratioPct(%p, %p) is %p", (value, digits, text) => {
    expect(ratioPct(value, digits)).toBe(text);
  });

  test.each([
    [2500, "$2.5k"],
    [-500, "-$500"],
    [1_200_000, "$1.2M"],
    [0, "$0"],
  ])("moneyShort(%p) is %p", (value, text) => {
    expect(moneyShort(value)).toBe(text);
  });

  test("signs colour figures; durations and ages read naturally", () => {
    expect([signClass(1), signClass(-1), signClass(0), signClass("x")]).toEqual(["pos", "neg", "zero", "zero"]);
    expect([duration(45), duration(720), duration(3 * 3600 + 300), duration(52 * 3600)]).toEqual([
      "45 s",
      "12 min",
      "3 h 5 min",
      "2 d 4 h",
    ]);
    const now = Date.parse("2025-11-03T22:00:12Z");
    expect(ago("2025-11-03T22:00:00Z", now)).toBe("12 s ago");
    expect(ago(null, now)).toBe("—");
  });
});
