// The OpenAPI document (/swagger/json) and the interactive UI (/swagger). The UI's script
// and stylesheet are embedded in the binary and served from here: dashboards run on
// servers with no internet, so nothing may come from a CDN.
// The page is ours, not the plugin's: the plugin's page starts the UI from an inline
// <script>, which the Content-Security-Policy (security.ts) forbids. Here the start-up
// code is a file of its own, so the page runs under the same policy as every other.
// The document is @elysiajs/openapi's, built from the routes' schemas, then completed here
// with what no route states itself (issue 9): the answers of the cross-cutting parts (who
// may write or read: auth.ts; body limits: json-body.ts) and the headers they send, one
// error schema referenced by every error answer, the bearer scheme behind the Authorize
// button, and request examples.
import { Elysia } from "elysia";
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { VERSION } from "../config";
import { isSafe, OPEN_READ_PATHS } from "./auth";
import { MAX_BODY_BYTES } from "./json-body";
import { ErrorResponse, jsonResponse } from "./respond";
import { assetResponse, htmlResponse } from "./security";

const ASSETS = "/swagger/assets";
const SPEC_PATH = "/swagger/json";
/** The docs' own paths, hidden from the document they serve but listed by GET /. */
export const DOCS_PATHS: readonly string[] = ["/swagger", SPEC_PATH];
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
// persistAuthorization: a token entered under Authorize survives a reload of the page.
const INIT = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "${SPEC_PATH}", dom_id: "#swagger-ui", validatorUrl: null, persistAuthorization: true });
});
`;

/** A named request example, as OpenAPI's media-type `examples` holds it. */
export interface RequestExample {
  summary: string;
  value: unknown;
}
/** "POST /meta/metrics" -> its examples by name; the first is what "Try it out" starts from. */
export type RequestExamples = Record<string, Record<string, RequestExample>>;

const ERROR_REF = { $ref: "#/components/schemas/Error" };
const BEARER = "bearer";

const RETRY_AFTER = {
  "Retry-After": {
    description: "whole seconds to wait before retrying",
    schema: { type: "integer", minimum: 1 },
  },
};

/**
 * What each error status means wherever it is answered, and whether it carries Retry-After.
 * A route says more in its own description (why its 503 happens, say).
 */
const ERRORS: Record<number, { description: string; retryAfter?: true }> = {
  400: {
    description:
      "Bad request: not a JSON object, a repeated or forbidden key, nesting or size past a limit (NEOLIGHT_MAX_BODY_KEYS), or a bad query. Nothing was changed, except that on POST /meta/metrics a body over the key limit had its guardian, breakers and mode applied when the message says so.",
  },
  401: {
    description:
      "No credentials. Writes need `Authorization: Bearer <token>` when NEOLIGHT_DASHBOARD_TOKEN is set; reads from another host need the read token when NEOLIGHT_DASHBOARD_READ_TOKEN is set.",
  },
  403: {
    description:
      "A wrong token; or, with no write token configured, a write from another host (writes are then accepted from this host only).",
  },
  421: {
    description:
      "The Host header names no host this service answers writes or the page for (DNS rebinding guard): localhost, IP literals, the bind address, this machine's name and NEOLIGHT_ALLOWED_HOSTS are.",
  },
  408: { description: "The body did not arrive whole within NEOLIGHT_IDLE_TIMEOUT_S. Nothing was changed." },
  413: {
    description: `The body is larger than NEOLIGHT_MAX_BODY_MB (${MAX_BODY_BYTES} bytes by default), or would grow the document past its caps. Nothing was changed, except that on POST /meta/metrics its guardian, breakers and mode were applied when the message says so.`,
  },
  415: { description: "The body is a JSON object but not sent as `content-type: application/json`." },
  422: { description: "Valid JSON that breaks the schema; the message names the field. Nothing was changed." },
  429: { description: "Too many writes from this address (NEOLIGHT_WRITE_RATE).", retryAfter: true },
  503: { description: "Temporarily unable to answer; retry after Retry-After.", retryAfter: true },
};
/** Answers of every write (auth.ts: checkWrite). */
const WRITE_STATUSES = [401, 403, 421, 429];
/** The page's path: answered under the Host check of writes (checkPage). */
const PAGE_PATH = "/";
/** Answers of every JSON body read by readJsonObject (json-body.ts). */
const BODY_STATUSES = [400, 408, 413, 415, 422];
/** Answers of a read from another host when a read token is configured (auth.ts: checkRead). */
const READ_STATUSES = [401, 403];

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown; examples?: Record<string, RequestExample> }> };
  responses?: Record<string, { description?: string; headers?: unknown; content?: unknown }>;
  security?: Record<string, string[]>[];
}

function errorAnswer(status: number, routeSaid?: string) {
  const known = ERRORS[status];
  // ? The plugin copies the schema's own description ("The one error shape ...") into each
  // answer; a description the route wrote itself is kept.
  const own = routeSaid !== undefined && routeSaid !== ErrorResponse.description ? routeSaid : undefined;
  return {
    description: own ?? known?.description ?? "Error",
    ...(known?.retryAfter ? { headers: RETRY_AFTER } : {}),
    content: { "application/json": { schema: ERROR_REF } },
  };
}

/** Completes one operation of the plugin's document in place (see the file header). */
function completeOperation(path: string, method: string, op: Operation, examples: RequestExamples): void {
  const responses = op.responses ?? {};
  op.responses = responses;
  const statuses = new Set(Object.keys(responses).map(Number));
  const write = !isSafe(method.toUpperCase());
  const json = op.requestBody?.content?.["application/json"];
  if (write) for (const s of WRITE_STATUSES) statuses.add(s);
  if (json !== undefined) for (const s of BODY_STATUSES) statuses.add(s);
  if (!write && !OPEN_READ_PATHS.has(path)) for (const s of READ_STATUSES) statuses.add(s);
  // ? GET / serves the page to browsers, and the page is guarded like a write (auth.ts checkPage).
  if (path === PAGE_PATH && method === "get") statuses.add(421);
  for (const status of [...statuses].sort((a, b) => a - b)) {
    if (status < 400) continue;
    responses[status] = errorAnswer(status, responses[status]?.description);
  }
  // Keys in status order, as readers expect.
  op.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));
  // ? Writes take the write token; reads from another host the read token (or the write
  // token). `{}` is the other alternative: no credentials, which is what works from this
  // host when no token is configured, and for /health always.
  op.security = OPEN_READ_PATHS.has(path) ? [] : [{ [BEARER]: [] }, {}];
  const named = examples[`${method.toUpperCase()} ${path}`];
  if (json !== undefined && named !== undefined) json.examples = named;
}

/** The plugin's paths with every operation completed, plus the parts shared by all. */
export function completeDocument(paths: Record<string, Record<string, Operation>>, examples: RequestExamples) {
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (HTTP_METHODS.includes(method)) completeOperation(path, method, op, examples);
    }
  }
  return {
    openapi: "3.1.2",
    info: {
      title: "NeoLight Dashboard",
      version: VERSION,
      description:
        "Telemetry in from NeoLight's agents, safety-critical state out to the governor and the execution router. Every error is `{error, code}` (the Error schema). A wrong method on a known path is 405 with `Allow`; an unknown path 404.",
    },
    tags: [
      { name: "telemetry", description: "The meta-metrics document and its writers" },
      { name: "agents", description: "Files written by NeoLight's agents" },
      { name: "risk", description: "The Rust risk engine" },
      { name: "service", description: "The service itself" },
    ],
    paths,
    components: {
      schemas: { Error: ErrorResponse },
      securitySchemes: {
        [BEARER]: {
          type: "http",
          scheme: "bearer",
          description:
            "The write token (NEOLIGHT_DASHBOARD_TOKEN) for writes; the read token (NEOLIGHT_DASHBOARD_READ_TOKEN) or the write token for reads from another host. Not needed when none is configured, or, for reads, from this host.",
        },
      },
    },
  };
}

/** The docs: the document (`examples` added to the request bodies they name) and the UI. */
export function openapiDocs(examples: RequestExamples = {}) {
  const docs = new Elysia({ name: "openapi" });
  let json: string | undefined;
  return (
    docs
      // ? Built on the first request, when every route exists (createApp has returned).
      .get(
        SPEC_PATH,
        async () => {
          if (json === undefined) {
            // ? The plugin is imported here, on the first request for the document: its module
            // took ~1 ms of every start-up (issue 14, timing marks), for a page few ever open.
            const { toOpenAPISchema } = await import("@elysiajs/openapi");
            json ??= JSON.stringify(
              completeDocument(toOpenAPISchema(docs).paths as Record<string, Record<string, Operation>>, examples),
            );
          }
          return jsonResponse(json);
        },
        { detail: { hide: true } },
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
