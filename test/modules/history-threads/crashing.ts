// A history thread that dies: the real one (src/store/history-worker.ts) until it is asked
// to record or answer a query, then the thread exits as a crash would end it.
import "../../../src/store/history-worker";
import type { HistoryRequest } from "../../../src/store/history-thread";

declare const self: Worker;
const real = self.onmessage as (event: MessageEvent<HistoryRequest>) => void;
self.onmessage = (event: MessageEvent<HistoryRequest>) => {
  if (event.data.op === "record" || event.data.op === "answer") process.exit(70);
  real(event);
};
