// "The floor": the fastest raw Bun.serve can answer the NeoLight dashboard's
// hot routes. A benchmark peer, not a service. Every body is precomputed once
// at start-up and served as-is; nothing is merged, logged or written.
//
// DURABILITY: none. POSTs read the body and answer 200 without parsing,
// merging or persisting anything, and GET /meta/metrics always serves the same
// start-up snapshot. Its 200 promises nothing; it only measures HTTP overhead.
//
// Build (the service's compile flags, so the comparison is fair; `make bench` does it):
//   bun run scripts/build.ts bench/peers/floor/floor-peer bench/peers/floor/floor.ts
import { isUtf8 } from "node:buffer";
import { readFileSync } from "node:fs";
// Embedded at build time, so the compiled binary runs from any directory.
import embedded from "../../../test/fixtures/neolight/meta_metrics_post.json";

const port = Number(process.env.NEOLIGHT_DASHBOARD_PORT || 8100);
// Optional override, read once at start-up; the default is the embedded copy of
// ../../../test/fixtures/neolight/meta_metrics_post.json (relative to this file).
const fixturePath = process.env.FLOOR_METRICS_FIXTURE;
const fixture: Record<string, unknown> = fixturePath ? JSON.parse(readFileSync(fixturePath, "utf8")) : embedded;

const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const json = { "content-type": "application/json" };

const METRICS = JSON.stringify({ ...fixture, cache_timestamp: now });
const HEALTH = JSON.stringify({
  status: "ok",
  uptime: "0h0m",
  version: "1.0.0-floor",
  timestamp: now,
});
const POST_OK = JSON.stringify({ status: "ok", timestamp: now });
const NOT_FOUND = JSON.stringify({ error: "Not Found", code: 404 });
const NOT_UTF8 = JSON.stringify({ error: "request body is not valid UTF-8", code: 400 });

// ? FLOOR_HANDLER=1 answers GET /meta/metrics from a JavaScript function (a new Response of
// the same precomputed text per request) instead of Bun's native static Response: the least
// a server can do that logs or counts each request. Its rate over the static one's is what
// running any JavaScript per request costs on this platform (issue 14's GET goal).
const metricsGet =
  process.env.FLOOR_HANDLER === "1"
    ? () => new Response(METRICS, { headers: json })
    : new Response(METRICS, { headers: json });

// ? FLOOR_PARSE=1 makes a POST do the least a JSON endpoint must: read the body, check that
// it is UTF-8, decode and parse it (then drop it). How that grows with the body is the
// platform's share of a snapshot's cost as the agents grow (bench/scale.ts, issue 16).
const parse = process.env.FLOOR_PARSE === "1";
const post = async (req: Request) => {
  if (parse) {
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (!isUtf8(bytes)) return new Response(NOT_UTF8, { status: 400, headers: json });
    JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } else await req.text();
  return new Response(POST_OK, { headers: json });
};

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  development: false,
  routes: {
    "/health": { GET: new Response(HEALTH, { headers: json }) },
    "/meta/metrics": {
      GET: metricsGet,
      POST: post,
    },
    "/atlas/update": { POST: post },
  },
  fetch: () => new Response(NOT_FOUND, { status: 404, headers: json }),
});

const stop = () => {
  server.stop(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
