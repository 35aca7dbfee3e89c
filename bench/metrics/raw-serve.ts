// The floor for start-up and memory: a raw Bun.serve answering /health, compiled the same
// way as the service (`bun run scripts/build.ts <outfile> bench/metrics/raw-serve.ts`).
// bench/metrics/cost.ts compares against it.
const port = Number(process.env.NEOLIGHT_DASHBOARD_PORT ?? 8100);
Bun.serve({
  port,
  hostname: "127.0.0.1",
  fetch: () => new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } }),
});
