// The OpenAPI document (/swagger/json) and the interactive UI (/swagger). The UI's script
// and stylesheet are embedded in the binary and served from here: dashboards run on
// servers with no internet, so nothing may come from a CDN.
// The page is ours, not the plugin's: the plugin's page starts the UI from an inline
// <script>, which the Content-Security-Policy (security.ts) forbids. Here the start-up
// code is a file of its own, so the page runs under the same policy as every other.
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { VERSION } from "../config";
import { assetResponse, htmlResponse } from "./security";

const ASSETS = "/swagger/assets";
/** The docs' own paths, hidden from the document they serve but listed by GET /. */
export const DOCS_PATHS: readonly string[] = ["/swagger", "/swagger/json"];
/** Assets never change within a version; let browsers keep them for a day. */
const ASSET_CACHE = "public, max-age=86400";

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NeoLight Dashboard API</title>
<link rel="stylesheet" href="${ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${ASSETS}/swagger-ui-bundle.js"></script>
<script src="${ASSETS}/swagger-init.js"></script>
</body>
</html>
`;

// ? validatorUrl null: the UI would otherwise send the document to validator.swagger.io.
const INIT = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/swagger/json", dom_id: "#swagger-ui", validatorUrl: null });
});
`;

export function openapiDocs() {
  return (
    new Elysia({ name: "openapi" })
      .use(
        openapi({
          path: "/swagger",
          specPath: "/swagger/json",
          // The page is served below; the plugin only serves the document.
          provider: null,
          documentation: {
            info: {
              title: "NeoLight Dashboard",
              version: VERSION,
              description:
                "Telemetry in from NeoLight's agents, safety-critical state out to the governor and the execution router. Errors are always {error, code}.",
            },
            tags: [
              { name: "telemetry", description: "The meta-metrics document and its writers" },
              { name: "agents", description: "Files written by NeoLight's agents" },
              { name: "risk", description: "The Rust risk engine" },
              { name: "service", description: "The service itself" },
            ],
          },
        }),
      )
      // ? Handlers are functions, not Response values: Elysia serves a Response value from
      // Bun's native router, past every hook (and past the read token).
      .get("/swagger", () => htmlResponse(PAGE), { detail: { hide: true } })
      .get(`${ASSETS}/swagger-init.js`, () => assetResponse(INIT, "text/javascript", ASSET_CACHE), {
        detail: { hide: true },
      })
      .get(
        `${ASSETS}/swagger-ui-bundle.js`,
        () => assetResponse(Bun.file(bundlePath), "text/javascript", ASSET_CACHE),
        {
          detail: { hide: true },
        },
      )
      .get(`${ASSETS}/swagger-ui.css`, () => assetResponse(Bun.file(cssPath), "text/css", ASSET_CACHE), {
        detail: { hide: true },
      })
  );
}
