// Response headers that keep a browser safe: the Content-Security-Policy and friends on
// every HTML page (htmlResponse), and CORS for the origins an operator lists (off by default).
// Why a CSP without inline script: the page shows strings the agents posted (reasons,
// agent names); if one ever reached the DOM as markup, no script of its own could run.
import { Elysia } from "elysia";
import { errorResponse } from "./errors";

/** The policy of every HTML response: nothing but this origin, no inline script, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Headers every HTML response carries. Routes serving HTML may spread these themselves. */
export const HTML_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // ? For browsers that predate frame-ancestors.
  "x-frame-options": "DENY",
});

/** A text/html 200 with the security headers. */
export function htmlResponse(html: string | Blob, headers: Record<string, string> = {}): Response {
  return new Response(html, {
    headers: { "content-type": "text/html; charset=utf-8", ...HTML_SECURITY_HEADERS, ...headers },
  });
}

/** A script, stylesheet or other static asset: its type, its caching, and nosniff. */
export function assetResponse(body: string | Blob, contentType: string, cacheControl: string): Response {
  return new Response(body, {
    headers: {
      "content-type": contentType,
      "cache-control": cacheControl,
      "x-content-type-options": HTML_SECURITY_HEADERS["x-content-type-options"] as string,
    },
  });
}

/** How long a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for exactly `origins` (none: no hooks at all, CORS off): preflight answered for them
 * only, Allow-Origin echoed only to them, never a wildcard, never credentials (the token
 * travels in Authorization, which the page sets itself). The hooks cost ~5 % CPU per request
 * (measured), so they exist only when an operator lists origins.
 *
 * ? The HTML headers are not added by a hook here for the same reason: a global afterHandle
 * checking every answer's content type cost 5 % on GET /meta/metrics. Pages answer with
 * htmlResponse instead, and test/http/security.test.ts fetches every GET route as a browser
 * would and fails on any text/html answer without the headers.
 */
export function cors(origins: readonly string[]) {
  const allowed = new Set(origins);
  const plugin = new Elysia({ name: "cors" });
  if (allowed.size === 0) return plugin;

  const corsHeaders = (origin: string) => ({ "access-control-allow-origin": origin, vary: "Origin" });
  return plugin
    .onAfterHandle({ as: "global" }, ({ request, responseValue, set }) => {
      const origin = request.headers.get("origin");
      if (origin === null || !allowed.has(origin)) return;
      if (responseValue instanceof Response) {
        for (const [k, v] of Object.entries(corsHeaders(origin))) responseValue.headers.set(k, v);
      } else Object.assign(set.headers, corsHeaders(origin));
    })
    .onError({ as: "global" }, ({ request, set }) => {
      // Error answers too, so a page can read {error, code}. Returns nothing: app.ts's
      // onError builds the body and these headers are merged into it.
      const origin = request.headers.get("origin");
      if (origin !== null && allowed.has(origin)) Object.assign(set.headers, corsHeaders(origin));
    })
    .options(
      "/*",
      ({ request }) => {
        const origin = request.headers.get("origin");
        if (origin === null || !allowed.has(origin)) {
          return errorResponse(403, "origin not allowed");
        }
        return new Response(null, {
          status: 204,
          headers: {
            ...corsHeaders(origin),
            "access-control-allow-methods": "GET, HEAD, POST",
            "access-control-allow-headers": "authorization, content-type",
            "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
          },
        });
      },
      { detail: { hide: true } },
    );
}
