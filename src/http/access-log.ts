// The access log: one JSON line per request (CONTRACT section 5: nothing on stdout or in
// the log file is plain text). Client input (path, user agent) only travels inside JSON
// strings, so it cannot break a line.
import { Elysia } from "elysia";
import type { Logger } from "../log/logger";

export function accessLog(log: Logger) {
  return new Elysia({ name: "access-log" })
    .decorate("startedAt", 0)
    .onRequest((ctx) => {
      ctx.startedAt = performance.now();
    })
    .onAfterResponse({ as: "global" }, ({ request, path, set, startedAt, responseValue }) => {
      const status =
        responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
      log.info("request", {
        method: request.method,
        path,
        status,
        ms: Math.round((performance.now() - startedAt) * 1000) / 1000,
      });
    });
}
