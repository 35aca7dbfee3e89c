// The dashboard page: GET / for browsers (content negotiation in wantsPage), its two
// assets, and the site icon (/favicon.ico). The page's script and stylesheet are bundled
// from src/web/page/ by the macro in bundle.ts, so they live in the binary as strings: no
// files, no CDN, no internet.
// Asset URLs carry a hash of their content, so browsers may keep them forever and a new
// version is never mixed with an old one.
import { Elysia } from "elysia";
import { assetResponse, htmlResponse } from "../http/security";
import { bundlePage } from "./bundle" with { type: "macro" };
import { faviconIco } from "./favicon";

const bundle = bundlePage();

const hash = (text: string) => Bun.hash(text).toString(36);
const SCRIPT_PATH = `/assets/app.${hash(bundle.js)}.js`;
const STYLE_PATH = `/assets/app.${hash(bundle.css)}.css`;
const HTML = bundle.html.replace("%SCRIPT%", SCRIPT_PATH).replace("%STYLE%", STYLE_PATH);

/** The icon's URL is fixed: a day. */
const FAVICON_CACHE = "public, max-age=86400";
/** Hashed URLs never change meaning: a year, immutable. */
const ASSET_CACHE = "public, max-age=31536000, immutable";

/** The q-value `type` gets in an Accept header; 0 when it is not listed. */
function quality(accept: string, type: string): number {
  for (const part of accept.split(",")) {
    const [media, ...params] = part.split(";");
    if (media?.trim().toLowerCase() !== type) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const value = q === undefined ? 1 : Number(q.slice(2));
    return Number.isFinite(value) ? value : 0;
  }
  return 0;
}

/**
 * True when the client prefers the page to JSON: it lists text/html, with a higher
 * q-value than application/json. Browsers send `text/html,...,*\/*;q=0.8`; curl sends
 * `*\/*` and JSON clients `application/json` or nothing, and those get JSON (CONTRACT 4:
 * every body is JSON unless a browser asks for the page). A tie goes to JSON.
 */
export function wantsPage(request: Request): boolean {
  const accept = request.headers.get("accept");
  if (accept === null || !accept.includes("text/html")) return false;
  return quality(accept, "text/html") > quality(accept, "application/json");
}

/**
 * The page, once `checkPage` allowed the request (http/auth.ts: 421 under a Host that is not
 * this service's). `Vary: Accept`: the same URL answers JSON to other clients.
 * ? Checked because a rebound name (issue 15 item 13) would otherwise give the attacker's
 * origin the page itself, with whatever token the operator typed into it.
 */
export function pageResponse(request: Request, checkPage: (request: Request) => void): Response {
  checkPage(request);
  return htmlResponse(HTML, { "cache-control": "no-cache", vary: "Accept" });
}

export function webRoutes() {
  const assets: [path: string, body: string, type: string][] = [
    [SCRIPT_PATH, bundle.js, "text/javascript; charset=utf-8"],
    [STYLE_PATH, bundle.css, "text/css; charset=utf-8"],
  ];
  const app = new Elysia({ name: "web" });
  for (const [path, body, type] of assets) {
    app.get(path, () => assetResponse(body, type, ASSET_CACHE), { detail: { hide: true } });
  }
  // ? Its URL is fixed (browsers ask for it unprompted), so it may change between versions:
  // a day, not a year.
  app.get("/favicon.ico", () => assetResponse(new Blob([faviconIco()]), "image/x-icon", FAVICON_CACHE), {
    detail: { hide: true },
  });
  return app;
}
