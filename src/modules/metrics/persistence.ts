// Timing of durable writes for /metrics: a decorator around the store's Persistence, so
// every save (write + fsync + rename + directory fsync) lands in a histogram without the
// store knowing about metrics.
import type { Persistence } from "../../store/store";
import { type Buckets, Histogram } from "./exposition";

/** Seconds. A healthy local disk commits in a few ms; 1 s and more is a disk in trouble. */
export const WRITE_BUCKETS: Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface WriteTiming {
  /** Durations of successful saves, seconds. */
  readonly latency: Histogram;
  /** `persistence` with each successful save() timed; load(), keepAside() and failures pass through untouched. */
  wrap(persistence: Persistence): Persistence;
}

export function createWriteTiming(): WriteTiming {
  const latency = new Histogram(WRITE_BUCKETS);
  return {
    latency,
    wrap: (persistence) => ({
      path: persistence.path,
      load: () => persistence.load(),
      keepAside: () => persistence.keepAside(),
      async save(state) {
        const started = performance.now();
        await persistence.save(state);
        latency.observe((performance.now() - started) / 1000);
      },
    }),
  };
}
