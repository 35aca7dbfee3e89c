// The history database's own thread: the main-thread side of a Bun Worker that owns one
// bun:sqlite connection to history.db (src/store/history-worker.ts is the other side).
//
// ? Why a thread: bun:sqlite is synchronous, and the service has one main thread. A 30-day
// chart at 300 agents took seconds of it, and every request waited behind it, the
// execution router's GET /meta/metrics included (its timeout is 2 s, after which it trades
// as if not paused; issue 16). The recorder's writes cost too (11 ms per snapshot at 30
// agents). With WAL, one thread writing and another reading proceed side by side.
import type { AnswerFacts, HistoryPoint, HistorySize, HistoryStore, RangeQuery } from "./history";

/**
 * Where the worker's code lives, relative to src/. scripts/build.ts lists it as a second
 * entry point of `bun build --compile` with `--root src`, which stores it in the binary
 * as /$bunfs/root/<this, .js>.
 */
export const WORKER_ENTRY = "store/history-worker.ts";

/** The entry to start: the embedded copy in the compiled binary, else the source file. */
export function workerEntry(): string {
  // ? In a compiled binary import.meta.url still names the source file (which need not
  // exist where the binary runs), and Bun.main is /$bunfs/root/<binary name>.
  if (Bun.main.startsWith("/$bunfs/")) return `/$bunfs/root/${WORKER_ENTRY.replace(/\.ts$/, ".js")}`;
  return new URL("./history-worker.ts", import.meta.url).href;
}

/** An answer, ready to send: UTF-8 JSON (a HistoryAnswer), and the same gzipped. Never modified once made. */
export interface HistoryBody {
  json: Uint8Array;
  gzip: Uint8Array;
}

/** What the thread can be asked, and what it answers to each. */
export interface HistoryOps {
  /** Opens (or creates) the file; an error with `corrupt` when SQLite says it is not a healthy database. */
  open: { args: { path: string; maxSeries: number }; result: { series: number } };
  record: {
    args: { points: readonly HistoryPoint[] };
    result: ReturnType<HistoryStore["record"]> & { series: number; size: HistorySize };
  };
  /**
   * The answer of GET /meta/history, serialised, encoded and gzipped on the thread and
   * transferred, not copied: JSON.stringify of 1,000 series of 300 points takes tens of
   * ms, and sending its 7 MB more, which every GET /meta/metrics would wait for.
   */
  answer: { args: RangeQuery & AnswerFacts; result: HistoryBody };
  prune: { args: { before: number; limit: number }; result: number };
  /**
   * HistoryStore.pruneOldest (the size cap): the rows deleted, and the size after. With
   * `freedBytes` the store keeps its files and reuses the space (PostgreSQL): `size` does
   * not fall, and `freedBytes` estimates what the rows took.
   */
  shrink: { args: { limit: number }; result: { rows: number; size: HistorySize; freedBytes?: number } };
  /** Moves the corrupt or outdated file aside and opens a fresh one: where it went. */
  recover: {
    args: { path: string; maxSeries: number; reason: "corrupt" | "outdated" };
    result: { movedTo: string; series: number };
  };
  /** Closes the file (a WAL checkpoint); the thread then exits. */
  close: { args: Record<string, never>; result: null };
}
export type HistoryOp = keyof HistoryOps;

export type HistoryRequest = { [K in HistoryOp]: { id: number; op: K; args: HistoryOps[K]["args"] } }[HistoryOp];

/**
 * A `record` call's points as they cross to the thread: columns, not objects (packPoints).
 * ? Issue 16: the structured clone of a flush's point objects (45,000 for one snapshot of
 * 3,000 agents and strategies) took 33-59 ms of the main thread, 8 % of it under a flood of
 * snapshots; packed it takes 3-11 ms, and the columns are handed over, not copied.
 */
export interface PackedPoints {
  /** Each kind, subject, field and label of the points, once. */
  strings: string[];
  /** Per point, four indexes into `strings`: kind, subject, field, label (-1: no label). */
  refs: Int32Array;
  ts: Float64Array;
  /** The value; 0 where it is null (VALUE_NULL). */
  values: Float64Array;
  /** Per point: VALUE_NULL, PEAK. */
  flags: Uint8Array;
}
const VALUE_NULL = 1;
const PEAK = 2;

/** A request as it is posted: a `record`'s points packed. */
export type PostedRequest =
  | Exclude<HistoryRequest, { op: "record" }>
  | { id: number; op: "record"; args: { packed: PackedPoints } };

/** `points` as PackedPoints, and the buffers to transfer with them. */
export function packPoints(points: readonly HistoryPoint[]): { packed: PackedPoints; transfer: ArrayBuffer[] } {
  const strings: string[] = [];
  const index = new Map<string, number>();
  const ref = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  const n = points.length;
  const packed: PackedPoints = {
    strings,
    refs: new Int32Array(n * 4),
    ts: new Float64Array(n),
    values: new Float64Array(n),
    flags: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    const p = points[i] as HistoryPoint;
    packed.refs[i * 4] = ref(p.kind);
    packed.refs[i * 4 + 1] = ref(p.subject);
    packed.refs[i * 4 + 2] = ref(p.field);
    packed.refs[i * 4 + 3] = p.label === undefined || p.label === null ? -1 : ref(p.label);
    packed.ts[i] = p.ts;
    packed.values[i] = p.value ?? 0;
    packed.flags[i] = (p.value === null ? VALUE_NULL : 0) | (p.peak ? PEAK : 0);
  }
  const { refs, ts, values, flags } = packed;
  return { packed, transfer: [refs.buffer, ts.buffer, values.buffer, flags.buffer] as ArrayBuffer[] };
}

/** The points packPoints packed (a missing label as null, a missing peak as false: the store reads them so). */
export function unpackPoints({ strings, refs, ts, values, flags }: PackedPoints): HistoryPoint[] {
  const points: HistoryPoint[] = new Array(ts.length);
  for (let i = 0; i < ts.length; i++) {
    const label = refs[i * 4 + 3] as number;
    const flag = flags[i] as number;
    points[i] = {
      kind: strings[refs[i * 4] as number] as string,
      subject: strings[refs[i * 4 + 1] as number] as string,
      field: strings[refs[i * 4 + 2] as number] as string,
      ts: ts[i] as number,
      value: flag & VALUE_NULL ? null : (values[i] as number),
      label: label < 0 ? null : (strings[label] as string),
      peak: (flag & PEAK) !== 0,
    };
  }
  return points;
}
export type HistoryReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; corrupt: boolean; outdated: boolean } };

/**
 * The thread's answer was an error; `corrupt` when SQLite said the file is not a healthy
 * database, `outdated` when it holds an older layout (both: move it aside).
 */
export class HistoryThreadError extends Error {
  constructor(
    message: string,
    readonly corrupt = false,
    readonly outdated = false,
  ) {
    super(message);
    this.name = "HistoryThreadError";
  }
}

/** The thread did not answer within the call's timeout (it was stopped). */
export class HistoryTimeoutError extends HistoryThreadError {
  constructor(op: string, ms: number) {
    super(`history ${op} did not finish within ${ms} ms`);
    this.name = "HistoryTimeoutError";
  }
}

export interface HistoryThread {
  /**
   * Sends one request; the thread answers them one at a time, in order. Rejects with
   * HistoryThreadError when the thread answers an error or stops (crash, terminate), and
   * with HistoryTimeoutError after `timeoutMs`: then the thread, stuck behind that call,
   * is stopped and every other pending call rejected too. Never throws synchronously.
   */
  call<K extends HistoryOp>(op: K, args: HistoryOps[K]["args"], timeoutMs?: number): Promise<HistoryOps[K]["result"]>;
  /** False once the thread stopped, for whatever reason; a stopped thread answers nothing. */
  readonly alive: boolean;
  /** Stops the thread at once; pending calls reject. Idempotent. */
  terminate(): void;
}

/** Starts a thread running `entry` (default: workerEntry()). `onStop` hears of an unexpected stop. */
export function spawnHistoryThread(options: { entry?: string; onStop?: (reason: string) => void } = {}): HistoryThread {
  const worker = new Worker(options.entry ?? workerEntry());
  const pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer?: ReturnType<typeof setTimeout> }
  >();
  let nextId = 1;
  let alive = true;
  let stopping = false;

  function stop(reason: string, expected: boolean): void {
    if (!alive) return;
    alive = false;
    worker.terminate();
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HistoryThreadError(`history thread stopped: ${reason}`));
    }
    pending.clear();
    worker.unref();
    if (!expected) options.onStop?.(reason);
  }

  /**
   * ? An idle thread must not keep the process alive (shutdown closes it explicitly, and a
   * test that forgets to must still end), but one that owes an answer must: otherwise a
   * start-up awaiting its first answer, with nothing else holding the event loop yet (a
   * METRICS_PATH outside $NEOLIGHT_HOME/state, so no watched directory), ends the process
   * with exit 0 before the answer comes.
   */
  function holdWhilePending(): void {
    if (pending.size > 0) worker.ref();
    else worker.unref();
  }

  worker.onmessage = (event: MessageEvent<HistoryReply>) => {
    const reply = event.data;
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    holdWhilePending();
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new HistoryThreadError(reply.error.message, reply.error.corrupt, reply.error.outdated));
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    stop(event.message || "uncaught error", false);
  };
  worker.addEventListener("close", () => stop("exited", stopping));
  worker.unref();

  return {
    call(op, args, timeoutMs) {
      if (!alive) return Promise.reject(new HistoryThreadError("history thread stopped: not running"));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const entry: {
          resolve: (v: unknown) => void;
          reject: (e: Error) => void;
          timer?: ReturnType<typeof setTimeout>;
        } = { resolve: resolve as (v: unknown) => void, reject };
        if (timeoutMs !== undefined) {
          entry.timer = setTimeout(() => {
            pending.delete(id);
            holdWhilePending();
            reject(new HistoryTimeoutError(op, timeoutMs));
            stop(`${op} timed out`, false);
          }, timeoutMs);
        }
        pending.set(id, entry);
        holdWhilePending();
        if (op === "close") stopping = true;
        if (op === "record") {
          const { packed, transfer } = packPoints((args as HistoryOps["record"]["args"]).points);
          worker.postMessage({ id, op, args: { packed } } satisfies PostedRequest, transfer);
        } else worker.postMessage({ id, op, args } as PostedRequest);
      });
    },
    get alive() {
      return alive;
    },
    terminate() {
      stopping = true;
      stop("terminated", true);
    },
  };
}
