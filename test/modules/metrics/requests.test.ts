// The per-request counters: bounded labels whatever the client sends.
import { describe, expect, test } from "bun:test";
import { createRequestStats, MAX_ROUTES, UNMATCHED_ROUTE } from "../../../src/modules/metrics/requests";

describe("request stats", () => {
  test("counts by route, method and status; only timed requests reach the histogram", () => {
    const s = createRequestStats();
    s.record("/meta/metrics", "GET", 200, undefined);
    s.record("/meta/metrics", "GET", 200, undefined);
    s.record("/meta/metrics", "POST", 422, 0.5);
    s.record(undefined, "GET", 404, undefined);
    expect(s.counts()).toEqual([
      { route: UNMATCHED_ROUTE, method: "GET", status: 404, count: 1 },
      { route: "/meta/metrics", method: "GET", status: 200, count: 2 },
      { route: "/meta/metrics", method: "POST", status: 422, count: 1 },
    ]);
    expect(s.latencies().map(([route, h]) => ({ route, count: h.count, sum: h.sum }))).toEqual([
      { route: "/meta/metrics", count: 1, sum: 0.0005 },
    ]);
  });

  test("unknown methods count as OTHER, including names of Object.prototype members", () => {
    const s = createRequestStats();
    for (const m of ["PROPFIND", "constructor", "__proto__", "toString"]) s.record("/x", m, 405, undefined);
    expect(s.counts()).toEqual([{ route: "/x", method: "OTHER", status: 405, count: 4 }]);
  });

  test("more route templates than MAX_ROUTES (a bug feeding raw paths) fold into one label", () => {
    const s = createRequestStats();
    for (let i = 0; i < MAX_ROUTES + 50; i++) s.record(`/r/${i}`, "GET", 200, undefined);
    const routes = new Set(s.counts().map((c) => c.route));
    expect(routes.size).toBe(MAX_ROUTES);
    expect(s.counts().find((c) => c.route === UNMATCHED_ROUTE)?.count).toBe(51);
  });
});
