// The access log: one JSON line per request (CONTRACT section 5: nothing on stdout or in
// the log file is plain text). Client input (method, path) only travels inside JSON
// strings, so it cannot break a line.
//
// Cost matters here: GET /meta/metrics is asked before every trade and must stay within
// 0.9x of raw Bun.serve (issue 3). Measured on the 2-core bench machine:
// - a hook that takes Elysia's whole context (`(ctx) => ...`) makes every request build
//   all of it: -30 %. Hooks here and in app.ts destructure only what they use.
// - onRequest / onTransform / onAfterResponse add a stage (and a macrotask) per request:
//   -15 to -30 %. So the line is written in onAfterHandle (and by the error handler).
// - a generic log.info line is 1.3 us; log.access builds the same JSON by hand in 0.2 us.
// Durations: write routes stamp their start when their body is parsed (markStart), so
// their line carries `ms` = parse + queue + durable write, the latency agents see. Reads
// answered from memory carry none: their handler time is a microsecond and says nothing.
// Each request is also counted for GET /metrics (issue 6): RequestStats.record, ~12 ns
// (bench/metrics/record.ts), by route template, method and status; timed ones also by duration.
import { Elysia } from "elysia";
import type { Logger } from "../log/logger";
import type { RequestStats } from "../modules/metrics/requests";

const started = new WeakMap<Request, number>();

/** Marks the start of a request whose duration the access log should carry. */
export function markStart(request: Request): void {
  started.set(request, performance.now());
}

/** Milliseconds since markStart(request), to the microsecond; undefined if never marked. */
export function elapsedMs(request: Request): number | undefined {
  const t0 = started.get(request);
  return t0 === undefined ? undefined : Math.round((performance.now() - t0) * 1000) / 1000;
}

// `route` is the matched route template, set as a literal by Elysia's compiled handler: the
// /metrics label that a client cannot multiply with random URLs (issue 6).
export function accessLog(log: Logger, requests?: RequestStats) {
  return new Elysia({ name: "access-log" }).onAfterHandle(
    { as: "global" },
    ({ request, path, route, set, responseValue }) => {
      const status =
        responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
      const ms = elapsedMs(request);
      log.access(request.method, path, status, ms);
      requests?.record(route, request.method, status, ms);
    },
  );
}
