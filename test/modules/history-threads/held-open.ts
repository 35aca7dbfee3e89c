// A history thread whose open waits until a gate file exists beside the history file
// (`<path>.open-gate`; 30 s at most): the real one (src/store/history-worker.ts) otherwise,
// as a thread on a machine whose disk or cores are slow to answer would be. (A Worker does
// not see the environment the test sets after the process started: hence a file.)
import { existsSync } from "node:fs";
import "../../../src/store/history-worker";
import type { HistoryRequest } from "../../../src/store/history-thread";

/** How often the gate is looked at, and for how long at most. */
const GATE_POLL_MS = 10;
const GATE_MAX_MS = 30_000;

declare const self: Worker;
const real = self.onmessage as (event: MessageEvent<HistoryRequest>) => void;
self.onmessage = (event: MessageEvent<HistoryRequest>) => {
  const { op, args } = event.data;
  if (op === "open") {
    const gate = `${args.path}.open-gate`;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; !existsSync(gate) && waited < GATE_MAX_MS; waited += GATE_POLL_MS) {
      Atomics.wait(sleeper, 0, 0, GATE_POLL_MS);
    }
  }
  real(event);
};
