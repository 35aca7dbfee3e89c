// A history thread whose queries of 7 points never finish in time: the real one
// (src/store/history-worker.ts), except that such a query first blocks its thread for 30 s,
// as a huge range on a slow disk would.
import "../../../src/store/history-worker";
import type { HistoryRequest } from "../../../src/store/history-thread";

declare const self: Worker;
const real = self.onmessage as (event: MessageEvent<HistoryRequest>) => void;
self.onmessage = (event: MessageEvent<HistoryRequest>) => {
  const { op, args } = event.data;
  if (op === "answer" && "points" in args && args.points === 7) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30_000);
  }
  real(event);
};
