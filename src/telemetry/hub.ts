// The live-stream hub behind GET /events (Server-Sent Events). The processor hands it
// every committed batch (processor.onCommit, off the request path); the hub turns each
// into one SSE frame, encoded once, and offers it to every subscriber's own bounded
// queue. Nothing here ever waits on a subscriber: a subscriber whose queue is full is
// dropped (its stream ends, the browser reconnects and resumes), so one stalled phone on
// a bad network can never slow the processor, the POSTs, or the other viewers.
//
// Event ids are `<boot>.<sequence>`: the store's version, which grows by one per commit,
// prefixed by an id of this process. A client reconnecting with Last-Event-ID from this
// process gets exactly the events it missed from a ring of recent ones; an id from
// another process (a restart) or older than the ring gets a full snapshot first. With a
// shared store (issue 12) the sequence is the shared one and the prefix the database's
// id, so every replica gives the same ids and a browser moving to another replica resumes.
// ? Types only: the live feature's schemas say what each event's data holds (and OpenAPI
// documents them from there); the hub itself stays plain logic.
import type { LiveEvents, LiveStats, SnapshotEvent, UpdateEvent } from "../modules/live/model";
import { jsonLength, objectJson } from "../store/json-text";
import type { DocumentState, DocumentUpdate } from "../store/store";
import { assignOwn } from "../store/store";

/** Frames one subscriber may fall behind before it is dropped: ~1 min of heavy posting. */
export const SUBSCRIBER_QUEUE = 64;
/** Recent update events kept for Last-Event-ID resume; older ids get a snapshot instead. */
export const RING_EVENTS = 256;
/** ...and at most this many bytes of them: one huge atlas body must not pin 256 copies. */
export const RING_BYTES = 8 * 1024 * 1024;
/** Concurrent subscribers: each holds a socket and a queue. Operators, not the public, watch. */
export const MAX_SUBSCRIBERS = 100;
/**
 * Subscribers one client (an address; all of loopback is one, as for the write rate) may
 * hold at once: one client could otherwise take all MAX_SUBSCRIBERS and lock every other
 * viewer out (issue 15). A fifth of the total: an operator's tabs and a wallboard fit, and
 * at least five clients always get in.
 */
export const MAX_SUBSCRIBERS_PER_CLIENT = 20;
/**
 * A comment line this often on an idle stream: proxies (nginx: 60 s) close connections
 * that stay silent, and a write is how a dead peer is noticed at all.
 */
export const HEARTBEAT_MS = 15_000;
/** What EventSource waits before reconnecting (its default is ~3 s; a restart takes less). */
export const RETRY_MS = 1000;

/** No subscriber can be taken: every slot is in use, or the service is shutting down. */
export class HubUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HubUnavailableError";
  }
}

/** This client already holds MAX_SUBSCRIBERS_PER_CLIENT subscriptions. */
export class ClientSubscriberLimitError extends Error {
  constructor(readonly limit: number) {
    super(`too many live streams from this client (${limit}); close one or retry later`);
    this.name = "ClientSubscriberLimitError";
  }
}

/** One subscriber's stream of SSE frames (UTF-8 bytes, ready to write). */
export interface Subscription {
  readonly id: number;
  /**
   * The next frame, waiting until there is one. Resolves `done` once the subscription is
   * closed, dropped, or the hub is closed; frames still queued at close() are discarded.
   * One reader at a time.
   */
  next(): Promise<IteratorResult<Uint8Array>>;
  /** Ends the subscription and frees its slot. Idempotent; safe from any callback. */
  close(): void;
}

export interface Hub {
  /**
   * Called with each committed state and the batch that made it, in commit order (the
   * processor's onCommit). Never blocks and never throws for a subscriber's sake. With no
   * subscriber no frame is made (one is, from the ring, for a subscriber resuming from before it).
   */
  publish(state: DocumentState, batch: readonly DocumentUpdate[]): void;
  /**
   * A new subscriber. With `lastEventId` of this process still in the ring, its first
   * frames are the events after that id; otherwise a `snapshot` event of the current
   * state. Then every later event, in order, without gaps. Throws HubUnavailableError
   * when MAX_SUBSCRIBERS are connected or after close(), ClientSubscriberLimitError when
   * `client` (a key such as http/auth.ts clientKey gives; default "unknown") already holds
   * MAX_SUBSCRIBERS_PER_CLIENT. The slot is freed when the subscription ends.
   */
  subscribe(lastEventId?: string | null, client?: string): Subscription;
  stats(): LiveStats;
  /** Ends every subscription and stops the heartbeat. Later subscribe() calls throw. */
  close(): void;
}

export interface HubOptions {
  /** The state before the first publish (the store's state at start-up). */
  initial: DocumentState;
  /** The document as GET /meta/metrics serves it (with defaults), for snapshot events. */
  render(state: DocumentState): SnapshotEvent["doc"];
  /** Called once per subscription refused for its client's limit (the hub has no logger of its own). */
  onClientLimit?(info: { client: string; held: number; limit: number }): void;
  /** Called once per dropped subscriber (the hub has no logger of its own). */
  onDrop?(info: { subscriber: number; queued: number; capacity: number }): void;
  /** Keys of the document never streamed (the guardian's sources, issue 11). Default: none. */
  hiddenKeys?: readonly string[];
  /** Default: SUBSCRIBER_QUEUE. */
  queueCapacity?: number;
  /** Default: HEARTBEAT_MS. */
  heartbeatMs?: number;
  /** Distinguishes this process's event ids from a previous one's. Default: start time, base 36. */
  boot?: string;
  /**
   * A state's place in the order of events: its id and its data's `version`. Default: the
   * store's version. A shared store passes its shared sequence (DocumentState.lastSeq).
   */
  sequence?: (state: DocumentState) => number;
}

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");
const RETRY = encoder.encode(`retry: ${RETRY_MS}\n\n`);

interface RingEntry {
  version: number;
  /** The sequence of the event before it: the ring holds the one after `after`. */
  after: number;
  /** The frame's size, or its estimate (jsonLength) while it is not made. */
  bytes: number;
  /** The frame, made at the first call (at once when someone listens). */
  frame(): Uint8Array;
}

/**
 * One SSE frame of `data`, whose `documentKey` holds document values: their text is the one
 * the file and the GET use (json-text.ts), made once per value, not once per frame.
 */
function frame<E extends keyof LiveEvents>(
  id: string,
  event: E,
  data: LiveEvents[E],
  documentKey: keyof LiveEvents[E] & string,
): Uint8Array {
  const { [documentKey]: values, ...rest } = data;
  const head = JSON.stringify(rest);
  const json = `${head.slice(0, -1)}${head.length > 2 ? "," : ""}${JSON.stringify(documentKey)}:${objectJson(values as Record<string, unknown>)}}`;
  // JSON text never holds a raw line break, so `data:` is always one line.
  return encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`);
}

export function createHub(options: HubOptions): Hub {
  const capacity = options.queueCapacity ?? SUBSCRIBER_QUEUE;
  const boot = options.boot ?? Date.now().toString(36);
  const hidden = new Set(options.hiddenKeys ?? []);
  const sequence = options.sequence ?? ((state: DocumentState) => state.version);
  let latest = options.initial;
  const ring: RingEntry[] = [];
  let ringBytes = 0;
  let snapshot: { state: DocumentState; frame: Uint8Array } | undefined;
  /**
   * Ids below this cannot be resumed from: the document changed without a new sequence (a
   * shared store's fail-safe pause laid over or lifted), so an id of that sequence no longer
   * names what its holder has.
   */
  let resumeFloor = 0;
  let nextId = 1;
  let closed = false;
  const figures = { dropped: 0, events: 0, snapshots_sent: 0, resumed: 0, refused_client_limit: 0 };
  /** Subscriptions held per client; a client holding none has no entry. */
  const perClient = new Map<string, number>();

  interface Sub extends Subscription {
    push(frame: Uint8Array): void;
  }
  const subs = new Set<Sub>();

  const idOf = (version: number) => `${boot}.${version}`;

  function snapshotFrame(): Uint8Array {
    if (snapshot?.state !== latest) {
      snapshot = {
        state: latest,
        frame: frame(
          idOf(sequence(latest)),
          "snapshot",
          {
            version: sequence(latest),
            updated_at: latest.updatedAt,
            doc: options.render(latest),
          },
          "doc",
        ),
      };
    }
    return snapshot.frame;
  }

  /** The ring entries after `lastEventId`, or null when it cannot be resumed from. */
  function missedSince(lastEventId: string | null | undefined): RingEntry[] | null {
    if (!lastEventId) return null;
    const dot = lastEventId.lastIndexOf(".");
    if (dot < 0 || lastEventId.slice(0, dot) !== boot) return null;
    const version = Number(lastEventId.slice(dot + 1));
    if (!Number.isInteger(version) || version > sequence(latest) || version < resumeFloor) return null;
    if (version === sequence(latest)) return [];
    const first = ring[0];
    // ? The ring must hold the very next event, else something in between is lost.
    if (first === undefined || first.after > version) return null;
    const missed = ring.filter((e) => e.version > version);
    return missed.length < capacity ? missed : null;
  }

  function createSub(client: string): Sub {
    const id = nextId++;
    let queue: Uint8Array[] = [];
    let done = false;
    let wake: ((r: IteratorResult<Uint8Array>) => void) | undefined;

    const end = () => {
      if (done) return;
      done = true;
      queue = [];
      subs.delete(sub);
      const held = (perClient.get(client) ?? 1) - 1;
      if (held === 0) perClient.delete(client);
      else perClient.set(client, held);
      const w = wake;
      wake = undefined;
      w?.({ done: true, value: undefined });
    };
    const sub: Sub = {
      id,
      push(f) {
        if (done) return;
        if (wake) {
          const w = wake;
          wake = undefined;
          w({ done: false, value: f });
          return;
        }
        if (queue.length >= capacity) {
          figures.dropped++;
          const queued = queue.length;
          end();
          options.onDrop?.({ subscriber: id, queued, capacity });
          return;
        }
        queue.push(f);
      },
      next() {
        if (queue.length > 0) return Promise.resolve({ done: false, value: queue.shift() as Uint8Array });
        if (done) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => {
          wake = resolve;
        });
      },
      close: end,
    };
    return sub;
  }

  const heartbeat = setInterval(() => {
    // ? Every subscriber gets one, busy or not: a subscriber that stopped reading keeps
    // collecting them until its queue is full and it is dropped, so a peer that vanished
    // without closing its socket is let go within capacity x heartbeat even when idle.
    for (const sub of subs) sub.push(HEARTBEAT);
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref?.();

  return {
    publish(state, batch) {
      if (closed || sequence(state) < sequence(latest) || state === latest) return;
      if (sequence(state) === sequence(latest)) {
        // ? Same sequence, another document: the fail-safe pause of a shared store that
        // cannot be reached (or its end). It is no event of the store's: every viewer gets
        // the whole document again, and no id of before resumes past it.
        if (state.doc === latest.doc) return;
        latest = state;
        ring.length = 0;
        ringBytes = 0;
        resumeFloor = sequence(state) + 1;
        const whole = snapshotFrame();
        for (const sub of subs) sub.push(whole);
        figures.snapshots_sent += subs.size;
        return;
      }
      const after = sequence(latest);
      latest = state;
      figures.events++;
      const set: UpdateEvent["set"] = {};
      // ? The committed values, not the posted ones: a commit may resolve a key (the served
      // guardian, where a pause of another source wins over the hive's report, issue 11).
      for (const update of batch) {
        for (const key of Object.keys(update.set)) {
          if (!hidden.has(key)) assignOwn(set, { [key]: state.doc[key] });
        }
      }
      const data = { version: sequence(state), updated_at: state.updatedAt, set };
      let made: Uint8Array | undefined;
      const make = () => {
        made ??= frame(idOf(data.version), "update", data, "set");
        return made;
      };
      // ? Nobody listens: the frame is not made (issue 16: one per commit, for no one), only
      // kept to be made should a viewer resume from before it; its size is estimated from
      // its values' texts, which the file's write has made already.
      const entry: RingEntry = { version: data.version, after, bytes: 0, frame: make };
      entry.bytes = subs.size === 0 ? jsonLength(set) : make().byteLength;
      ring.push(entry);
      ringBytes += entry.bytes;
      while (ring.length > RING_EVENTS || (ringBytes > RING_BYTES && ring.length > 1)) {
        ringBytes -= (ring.shift() as RingEntry).bytes;
      }
      if (made !== undefined) for (const sub of subs) sub.push(made);
    },
    subscribe(lastEventId, client = "unknown") {
      if (closed) throw new HubUnavailableError("service is shutting down; retry later");
      const held = perClient.get(client) ?? 0;
      if (held >= MAX_SUBSCRIBERS_PER_CLIENT) {
        figures.refused_client_limit++;
        options.onClientLimit?.({ client, held, limit: MAX_SUBSCRIBERS_PER_CLIENT });
        throw new ClientSubscriberLimitError(MAX_SUBSCRIBERS_PER_CLIENT);
      }
      if (subs.size >= MAX_SUBSCRIBERS) {
        throw new HubUnavailableError(`too many live subscribers (${MAX_SUBSCRIBERS}); retry later`);
      }
      const sub = createSub(client);
      perClient.set(client, held + 1);
      sub.push(RETRY);
      const missed = missedSince(lastEventId);
      if (missed === null) {
        figures.snapshots_sent++;
        sub.push(snapshotFrame());
      } else {
        figures.resumed++;
        for (const e of missed) sub.push(e.frame());
      }
      subs.add(sub);
      return sub;
    },
    stats: () => ({
      subscribers: subs.size,
      max_subscribers: MAX_SUBSCRIBERS,
      max_subscribers_per_client: MAX_SUBSCRIBERS_PER_CLIENT,
      clients: perClient.size,
      queue_capacity: capacity,
      ...figures,
      last_event_id: idOf(sequence(latest)),
    }),
    close() {
      closed = true;
      clearInterval(heartbeat);
      for (const sub of [...subs]) sub.close();
    },
  };
}
