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
// Durations: write routes stamp their start when their body is parsed (markStart, called by
// write-route.ts for every writeRoute and timedRead), so their line carries `ms` = parse +
// queue + durable write, the latency agents see. Reads answered from memory carry none:
// their handler time is a microsecond and says nothing.
// Each request is also counted for GET /metrics (issue 6): RequestStats.record, ~12 ns
// (bench/metrics/record.ts), by route template, method and status; timed ones also by duration.
// Refusals (4xx) carry the client's address, and are sampled per client (issue 15 item 9: a
// flood of 404s filled the disk): only they look the address up, so answered requests pay
// nothing for it.
import type { Server } from "bun";
import { Elysia } from "elysia";
import type { Logger } from "../log/logger";
import { type ClientAddress, clientKey } from "./auth";

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

/**
 * Counts answered requests (what /metrics' RequestStats offers; declared here so http/ knows
 * no feature module). Called once per request; must not throw.
 */
export interface RequestCounter {
  /** `route`: the matched route template, undefined when none matched; `ms` when timed (markStart). */
  record(route: string | undefined, method: string, status: number, ms: number | undefined): void;
}

/** Writes the access line and the /metrics count of one answered request. */
export type AccessWriter = (
  request: Request,
  path: string,
  route: string | undefined,
  status: number,
  ms: number | undefined,
) => void;

export interface AccessLog {
  /** The global hook that logs every request a handler answered. */
  plugin: Elysia;
  /** The same, for the error handler (404s, refusals, failures). */
  write: AccessWriter;
}

// `route` is the matched route template, set as a literal by Elysia's compiled handler: the
// /metrics label that a client cannot multiply with random URLs (issue 6).
// ? The server is taken from onStart, as in auth.ts: naming `server` in a hook makes Elysia
// define a getter on every request's context.
export function accessLog(log: Logger, requests: RequestCounter | undefined, clientAddress: ClientAddress): AccessLog {
  let server: Server<unknown> | null = null;
  const write: AccessWriter = (request, path, route, status, ms) => {
    if (status >= 400 && status < 500) {
      const address = clientAddress(request, server);
      if (log.admit("request", clientKey(address))) log.access(request.method, path, status, ms, address);
    } else {
      log.access(request.method, path, status, ms);
    }
    requests?.record(route, request.method, status, ms);
  };
  const plugin = new Elysia({ name: "access-log" })
    .onStart((app) => {
      server = (app.server as Server<unknown> | null) ?? null;
    })
    .onAfterHandle({ as: "global" }, ({ request, path, route, set, responseValue }) => {
      const status =
        responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
      write(request, path, route, status, elapsedMs(request));
    });
  return { plugin: plugin as unknown as Elysia, write };
}
