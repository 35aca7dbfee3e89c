// Schemas of what the HTTP layer reports in /status `security`: the access rules and the
// write rate limiter. Plain TypeBox (auth.ts needs Bun and Elysia; the page reads these).
import { Type as t } from "@sinclair/typebox";

export const RateLimitStats = t.Object(
  {
    rate: t.Number({ description: "sustained writes per second per address; 0 when the limiter is off" }),
    burst: t.Number({ description: "writes an address may send at once" }),
    buckets: t.Integer({ description: "addresses tracked now" }),
    max_buckets: t.Integer(),
    limited: t.Integer({ description: "writes answered 429 since start-up" }),
    evicted_busy: t.Integer({ description: "buckets dropped while still refilling because max_buckets was reached" }),
  },
  { description: "the write rate limiter" },
);
export type RateLimitStats = typeof RateLimitStats.static;

export const AccessStats = t.Object({
  writes: t.Union([t.Literal("token"), t.Literal("loopback")], {
    description: "token: writes need the token; loopback: writes only from this host",
  }),
  reads: t.Union([t.Literal("token"), t.Literal("open")], {
    description: "token: non-loopback reads need the read token; open: anyone may read",
  }),
  unauthorized: t.Integer({ description: "requests answered 401 since start-up" }),
  forbidden: t.Integer({ description: "requests answered 403 since start-up" }),
  misdirected: t.Integer({
    description: "writes and page loads answered 421 since start-up: a Host header naming another host (DNS rebinding)",
  }),
  rate_limit: RateLimitStats,
});
export type AccessStats = typeof AccessStats.static;
