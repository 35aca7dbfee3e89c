// The history thread itself: a Bun Worker that owns one bun:sqlite connection to
// history.db and answers the requests of src/store/history-thread.ts one at a time.
// Nothing here runs on the service's main thread, so nothing here can hold up a request.
// A second entry point of the compiled binary (scripts/build.ts).

import { setPriority } from "node:os";
import { answerJson, type HistoryStore } from "./history";
import { isCorruption, moveAside, OutdatedHistoryError, openSqliteHistory } from "./history-sqlite";
import {
  type HistoryBody,
  type HistoryOps,
  type HistoryReply,
  type PostedRequest,
  unpackPoints,
} from "./history-thread";

declare const self: Worker;

/**
 * The history threads run at this nice value (Linux: setpriority on the calling thread
 * sets that thread's alone): on a busy machine the scheduler prefers the main thread,
 * which answers the router, over a chart. Raising one's own nice needs no privilege.
 */
const THREAD_NICE = 10;
try {
  setPriority(0, THREAD_NICE);
} catch {
  // ? Elsewhere than Linux this may apply to the whole process or fail: charts at normal priority.
}

let store: HistoryStore | null = null;

function opened(): HistoryStore {
  if (store === null) throw new Error("history file not open");
  return store;
}

type Handlers = { [K in keyof HistoryOps]: (args: HistoryOps[K]["args"]) => HistoryOps[K]["result"] };

const handlers: Handlers = {
  open({ path, maxSeries }) {
    store?.close();
    store = null;
    store = openSqliteHistory(path, maxSeries);
    return { series: store.seriesCount() };
  },
  record({ points }) {
    const s = opened();
    return { ...s.record(points), series: s.seriesCount(), size: s.size() };
  },
  answer({ retentionDays, recordedThrough, ...q }) {
    const json = answerJson(q, opened().query(q), { retentionDays, recordedThrough });
    return { json, gzip: Bun.gzipSync(json) };
  },
  prune({ before, limit }) {
    return opened().prune(before, limit);
  },
  shrink({ limit }) {
    const s = opened();
    return { rows: s.pruneOldest(limit), size: s.size() };
  },
  recover({ path, maxSeries, reason }) {
    store?.close();
    store = null;
    const movedTo = moveAside(path, reason);
    store = openSqliteHistory(path, maxSeries);
    return { movedTo, series: store.seriesCount() };
  },
  close() {
    store?.close();
    store = null;
    return null;
  },
};

self.onmessage = (event: MessageEvent<PostedRequest>) => {
  const { id, op } = event.data;
  let reply: HistoryReply;
  try {
    const args = event.data.op === "record" ? { points: unpackPoints(event.data.args.packed) } : event.data.args;
    // ? The request type pairs each op with its args; TypeScript cannot follow that pairing
    // through an indexed call, hence the cast.
    const result = (handlers[op] as (a: unknown) => unknown)(args);
    reply = { id, ok: true, result };
  } catch (err) {
    reply = {
      id,
      ok: false,
      error: {
        message: (err as Error).message,
        corrupt: isCorruption(err),
        outdated: err instanceof OutdatedHistoryError,
      },
    };
  }
  // ? An answer's bytes are handed over, not copied: the main thread gets them for free.
  const transfer = reply.ok && op === "answer" ? Object.values(reply.result as HistoryBody).map((b) => b.buffer) : [];
  postMessage(reply, transfer);
  if (op === "close") process.exit(0);
};
