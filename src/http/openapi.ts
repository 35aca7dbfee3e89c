// The OpenAPI document (/swagger/json) and the interactive UI (/swagger). The UI's script
// and stylesheet are embedded in the binary and served from here: dashboards run on
// servers with no internet, so nothing may come from a CDN.
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { VERSION } from "../config";

const ASSETS = "/swagger/assets";
/** Assets never change within a version; let browsers keep them for a day. */
const ASSET_CACHE = "public, max-age=86400";

export function openapiDocs() {
  return new Elysia({ name: "openapi" })
    .use(
      openapi({
        path: "/swagger",
        specPath: "/swagger/json",
        provider: "swagger-ui",
        swagger: { cdn: `${ASSETS}/swagger-ui-bundle.js`, theme: `${ASSETS}/swagger-ui.css` },
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
    .get(
      `${ASSETS}/swagger-ui-bundle.js`,
      () =>
        new Response(Bun.file(bundlePath), {
          headers: { "content-type": "text/javascript", "cache-control": ASSET_CACHE },
        }),
      { detail: { hide: true } },
    )
    .get(
      `${ASSETS}/swagger-ui.css`,
      () => new Response(Bun.file(cssPath), { headers: { "content-type": "text/css", "cache-control": ASSET_CACHE } }),
      { detail: { hide: true } },
    );
}
