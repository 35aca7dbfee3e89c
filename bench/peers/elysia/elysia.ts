// "The Elysia peer" (issue 14): hello world in Elysia + @elysiajs/openapi, compiled with
// the service's flags (scripts/build.ts). It is what the framework alone costs: the
// service's idle RSS and start-up are judged against it. A benchmark peer, not a service.
//
// PEER_WORKER=1 adds one idle thread holding an open SQLite database (thread.ts), as the service's
// history writer (issue 16 puts history on its own thread): what that thread alone costs
// the platform, measured apart (bench/levers.ts `elysia-thread=...:PEER_WORKER=1`).
//
// DURABILITY: none. GET /meta/metrics serves the hive fixture precomputed at start-up, as
// the floor does; POSTs read the body and answer 200 without storing anything.
//
// Build (`make bench` does it):
//   bun run scripts/build.ts bench/peers/elysia/elysia-peer bench/peers/elysia/elysia.ts
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
// Embedded at build time, so the compiled binary runs from any directory.
import fixture from "../../../test/fixtures/neolight/meta_metrics_post.json";
import { maybeStartThread } from "./thread";

const port = Number(process.env.NEOLIGHT_DASHBOARD_PORT || 8100);
const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const METRICS = JSON.stringify({ ...fixture, cache_timestamp: now });
const json = { "content-type": "application/json" };

maybeStartThread();

const app = new Elysia()
  .use(openapi())
  .get("/health", () => ({ status: "ok", version: "1.0.0-elysia", timestamp: now }))
  // ? A function, not a Response value, as in the service: a Response value would be
  // served from Bun's native router past Elysia, and then this would be the floor again.
  .get("/meta/metrics", () => new Response(METRICS, { headers: json }))
  .post("/meta/metrics", () => ({ status: "ok", timestamp: now }))
  .listen({ port, hostname: "127.0.0.1", reusePort: false, development: false });

const stop = () => {
  app.server?.stop(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
