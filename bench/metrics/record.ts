// Cost of RequestStats.record, the only per-request work issue 6 adds (besides Elysia
// setting the route template on the context): ns per call, untimed read and timed write.
//   bun bench/metrics/record.ts
import { createRequestStats } from "../../src/modules/metrics/requests";

const N = 5_000_000;
const stats = createRequestStats();
const cases: [string, () => void][] = [
  ["GET /meta/metrics 200, untimed", () => stats.record("/meta/metrics", "GET", 200, undefined)],
  ["POST /meta/metrics 200, timed", () => stats.record("/meta/metrics", "POST", 200, 1.234)],
  ["GET unmatched 404", () => stats.record(undefined, "GET", 404, undefined)],
];
for (const [name, fn] of cases) {
  for (let i = 0; i < 100_000; i++) fn(); // warm-up (JIT)
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < N; i++) fn();
  const ns = (Bun.nanoseconds() - t0) / N;
  console.log(`${name.padEnd(32)} ${ns.toFixed(1)} ns/call`);
}
