// The live-stream hub: fan-out, a slow subscriber dropped without holding anyone up,
// Last-Event-ID resume without gaps, snapshots when resuming is impossible, heartbeats.
import { describe, expect, test } from "bun:test";
import type { SnapshotEvent } from "../../src/modules/live/model";
import type { DocumentState } from "../../src/store/store";
import {
  ClientSubscriberLimitError,
  createHub,
  type Hub,
  type HubOptions,
  MAX_SUBSCRIBERS,
  MAX_SUBSCRIBERS_PER_CLIENT,
  RING_EVENTS,
  type Subscription,
} from "../../src/telemetry/hub";
import { waitFor } from "../helpers";

const decoder = new TextDecoder();

interface Frame {
  id?: string;
  event?: string;
  data?: Record<string, unknown>;
  comment?: string;
  retry?: number;
}

/** Parses one SSE frame as the browser would. */
function parse(bytes: Uint8Array): Frame {
  const f: Frame = {};
  for (const line of decoder.decode(bytes).trimEnd().split("\n")) {
    if (line.startsWith(":")) f.comment = line.slice(1).trim();
    else if (line.startsWith("id: ")) f.id = line.slice(4);
    else if (line.startsWith("event: ")) f.event = line.slice(7);
    else if (line.startsWith("data: ")) f.data = JSON.parse(line.slice(6));
    else if (line.startsWith("retry: ")) f.retry = Number(line.slice(7));
  }
  return f;
}

/** A next() that drain() stopped waiting for: the frame it gets belongs to the next drain. */
const pending = new WeakMap<Subscription, Promise<IteratorResult<Uint8Array>>>();

/** Every frame already queued for `sub` (never waits for a new one). */
async function drain(sub: Subscription): Promise<Frame[]> {
  const out: Frame[] = [];
  for (;;) {
    const waiting = pending.get(sub) ?? sub.next();
    pending.set(sub, waiting);
    const next = await Promise.race([waiting, Bun.sleep(0).then(() => null)]);
    if (next === null) return out;
    pending.delete(sub);
    if (next.done) return out;
    out.push(parse(next.value));
  }
}

function state(version: number, doc: Record<string, unknown> = {}): DocumentState {
  return { doc, version, lastSeq: version, updatedAt: `2025-11-03T22:00:${String(version % 60).padStart(2, "0")}Z` };
}

function hub(options: Partial<HubOptions> = {}): Hub & Disposable {
  // A stand-in document: the hub passes it through without looking at it.
  const render = (s: DocumentState) => ({ ...s.doc }) as SnapshotEvent["doc"];
  const h = createHub({ initial: state(0), render, boot: "b1", ...options });
  return Object.assign(h, { [Symbol.dispose]: () => h.close() });
}

/** Publishes versions from..to, each setting {n: version}. */
function publish(h: Hub, from: number, to: number): void {
  for (let v = from; v <= to; v++) h.publish(state(v, { n: v }), [{ seq: v, set: { n: v }, source: "hive" }]);
}

describe("hub", () => {
  test("a new subscriber gets retry, then a snapshot of the latest state", async () => {
    using h = hub();
    publish(h, 1, 3);
    const sub = h.subscribe();
    expect(await drain(sub)).toEqual([
      { retry: 1000 },
      {
        id: "b1.3",
        event: "snapshot",
        data: { version: 3, updated_at: "2025-11-03T22:00:03Z", doc: { n: 3 } },
      },
    ]);
  });

  test("fan-out: every subscriber gets every update, in order, the batch's keys merged", async () => {
    using h = hub();
    const subs = [h.subscribe(), h.subscribe(), h.subscribe()];
    for (const s of subs) await drain(s);
    // The committed values are streamed (what a commit resolved, issue 11), not the posted ones.
    h.publish(state(1, { a: 1, b: 2 }), [
      { seq: 1, set: { a: 1, b: 1 }, source: "hive" },
      { seq: 2, set: { b: 2 }, source: "hive" },
    ]);
    publish(h, 2, 3);
    for (const s of subs) {
      expect(await drain(s)).toEqual([
        { id: "b1.1", event: "update", data: { version: 1, updated_at: "2025-11-03T22:00:01Z", set: { a: 1, b: 2 } } },
        { id: "b1.2", event: "update", data: { version: 2, updated_at: "2025-11-03T22:00:02Z", set: { n: 2 } } },
        { id: "b1.3", event: "update", data: { version: 3, updated_at: "2025-11-03T22:00:03Z", set: { n: 3 } } },
      ]);
    }
    expect(h.stats()).toMatchObject({ subscribers: 3, events: 3, dropped: 0 });
  });

  test("a subscriber that stops reading is dropped; the others get everything and publish never waits", async () => {
    const drops: unknown[] = [];
    using h = hub({ queueCapacity: 8, onDrop: (d) => drops.push(d) });
    const slow = h.subscribe();
    const fast = h.subscribe();
    const received: Frame[] = [];
    const reading = (async () => {
      for (;;) {
        const next = await fast.next();
        if (next.done) return;
        received.push(parse(next.value));
      }
    })();
    const started = performance.now();
    for (let v = 1; v <= 100; v++) {
      publish(h, v, v);
      await Bun.sleep(0); // let the fast reader run, as a socket would
    }
    const elapsed = performance.now() - started;
    // The slow one was let go as soon as its queue was full: once, with its figures.
    expect(drops).toEqual([{ subscriber: slow.id, queued: 8, capacity: 8 }]);
    expect(h.stats()).toMatchObject({ subscribers: 1, dropped: 1 });
    // Its stream ends (the browser reconnects and resumes).
    expect(await slow.next()).toEqual({ done: true, value: undefined });
    fast.close();
    await reading;
    const versions = received.filter((f) => f.event === "update").map((f) => f.data?.version);
    expect(versions).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(elapsed).toBeLessThan(1000);
  });

  test("Last-Event-ID of this process resumes with exactly the missed events", async () => {
    using h = hub();
    publish(h, 1, 10);
    const sub = h.subscribe("b1.7");
    const frames = await drain(sub);
    expect(frames.map((f) => [f.event, f.id])).toEqual([
      [undefined, undefined], // retry
      ["update", "b1.8"],
      ["update", "b1.9"],
      ["update", "b1.10"],
    ]);
    publish(h, 11, 11);
    expect((await drain(sub)).map((f) => f.id)).toEqual(["b1.11"]);
    expect(h.stats()).toMatchObject({ resumed: 1, snapshots_sent: 0 });
  });

  test("an up-to-date Last-Event-ID gets nothing until the next event", async () => {
    using h = hub();
    publish(h, 1, 4);
    const sub = h.subscribe("b1.4");
    expect(await drain(sub)).toEqual([{ retry: 1000 }]);
  });

  test.each([
    ["another process's id (a restart)", "b0.3"],
    ["an id older than the ring", "b1.1"],
    ["an id from the future", "b1.999999"],
    ["garbage", "not-an-id"],
    ["an empty id", ""],
  ])("%s gets a snapshot", async (_name, id) => {
    using h = hub();
    publish(h, 1, RING_EVENTS + 5);
    const frames = await drain(h.subscribe(id));
    expect(frames.map((f) => f.event)).toEqual([undefined, "snapshot"]);
    expect(frames[1]?.data?.version).toBe(RING_EVENTS + 5);
  });

  test("more missed events than a subscriber's queue holds: a snapshot instead of a replay", async () => {
    using h = hub({ queueCapacity: 8 });
    publish(h, 1, 20);
    const frames = await drain(h.subscribe("b1.2"));
    expect(frames.map((f) => f.event)).toEqual([undefined, "snapshot"]);
  });

  // Issue 12: with a shared store the ids are the database's id and the shared sequence,
  // which moves by the batch's size; the local version counts published states.
  describe("shared sequence", () => {
    const shared = (version: number, lastSeq: number, doc: Record<string, unknown> = { n: lastSeq }) => ({
      ...state(version, doc),
      lastSeq,
    });
    const sharedHub = () => hub({ boot: "c9", sequence: (s) => s.lastSeq, initial: shared(0, 100) });
    const set = (n: number) => [{ seq: n, set: { n }, source: "hive" as const }];

    test("ids and data carry the shared sequence; a resume from any seq the ring covers is exact", async () => {
      using h = sharedHub();
      h.publish(shared(1, 105), set(105));
      h.publish(shared(2, 108), set(108));
      h.publish(shared(3, 109), set(109));
      // Another replica's viewer at 105 (an id this hub also published): the rest, nothing twice.
      const frames = await drain(h.subscribe("c9.105"));
      expect(frames.map((f) => [f.event, f.id, f.data?.version])).toEqual([
        [undefined, undefined, undefined],
        ["update", "c9.108", 108],
        ["update", "c9.109", 109],
      ]);
      // 106 was never an event here (this replica caught 106..108 up as one): from inside the
      // first entry's span, the entries after it, as the ring holds every event after 105.
      expect((await drain(h.subscribe("c9.106"))).map((f) => f.id)).toEqual([undefined, "c9.108", "c9.109"]);
      expect(h.stats().last_event_id).toBe("c9.109");
    });

    test("an id before the ring's first span, or of another database, gets a snapshot", async () => {
      using h = sharedHub();
      h.publish(shared(1, 105), set(105));
      expect((await drain(h.subscribe("c9.99"))).map((f) => f.event)).toEqual([undefined, "snapshot"]);
      expect((await drain(h.subscribe("c8.105"))).map((f) => f.event)).toEqual([undefined, "snapshot"]);
    });

    test("the document changing without a new sequence (the fail-safe pause) re-sends the whole document, and no earlier id resumes past it", async () => {
      using h = sharedHub();
      h.publish(shared(1, 105), set(105));
      const viewer = h.subscribe("c9.105");
      expect(await drain(viewer)).toEqual([{ retry: 1000 }]);
      const paused = shared(2, 105, { n: 105, guardian: { is_paused: true } });
      h.publish(paused, []);
      const frames = await drain(viewer);
      expect(frames.map((f) => [f.event, f.id])).toEqual([["snapshot", "c9.105"]]);
      expect(frames[0]?.data?.doc).toEqual({ n: 105, guardian: { is_paused: true } });
      // A viewer that reconnects with the id it had before the pause gets the paused document.
      const back = await drain(h.subscribe("c9.105"));
      expect(back.map((f) => f.event)).toEqual([undefined, "snapshot"]);
      expect(back[1]?.data?.doc).toEqual({ n: 105, guardian: { is_paused: true } });
      // The same state published again changes nothing.
      h.publish(paused, []);
      expect(await drain(viewer)).toEqual([]);
      // Updates after it resume as usual.
      h.publish(shared(3, 106, { n: 106, guardian: { is_paused: true } }), set(106));
      expect((await drain(viewer)).map((f) => f.id)).toEqual(["c9.106"]);
      expect((await drain(h.subscribe("c9.105"))).map((f) => f.event)).toEqual([undefined, "snapshot"]);
    });
  });

  test("an idle subscriber gets heartbeat comments", async () => {
    using h = hub({ heartbeatMs: 20 });
    const sub = h.subscribe();
    await drain(sub);
    const next = await sub.next();
    expect(next.done).toBe(false);
    expect(parse(next.value as Uint8Array)).toEqual({ comment: "heartbeat" });
  });

  test("a stalled subscriber is dropped by heartbeats alone, even with no events", async () => {
    let dropped = 0;
    using h = hub({ heartbeatMs: 5, queueCapacity: 4, onDrop: () => dropped++ });
    h.subscribe();
    await waitFor(() => dropped > 0, "the heartbeats to fill the stalled queue");
    expect(dropped).toBe(1);
    expect(h.stats().subscribers).toBe(0);
  });

  test(`at most ${MAX_SUBSCRIBERS} subscribers; a closed one frees its slot`, () => {
    using h = hub();
    const subs = Array.from({ length: MAX_SUBSCRIBERS }, (_, i) => h.subscribe(null, `10.0.0.${i}`));
    expect(() => h.subscribe(null, "10.0.1.1")).toThrow(/too many live subscribers/);
    subs[0]?.close();
    expect(() => h.subscribe(null, "10.0.1.1")).not.toThrow();
  });

  // Issue 15: one client could hold all MAX_SUBSCRIBERS slots and lock every viewer out.
  test(`one client holds at most ${MAX_SUBSCRIBERS_PER_CLIENT}; others still get in; a closed one frees the client's slot`, () => {
    const refusals: unknown[] = [];
    using h = hub({ onClientLimit: (info) => refusals.push(info) });
    const flooder = Array.from({ length: MAX_SUBSCRIBERS_PER_CLIENT }, () => h.subscribe(null, "loopback"));
    expect(() => h.subscribe(null, "loopback")).toThrow(ClientSubscriberLimitError);
    expect(() => h.subscribe(null, "10.0.0.7")).not.toThrow();
    expect(refusals).toEqual([
      { client: "loopback", held: MAX_SUBSCRIBERS_PER_CLIENT, limit: MAX_SUBSCRIBERS_PER_CLIENT },
    ]);
    expect(h.stats()).toMatchObject({
      subscribers: MAX_SUBSCRIBERS_PER_CLIENT + 1,
      clients: 2,
      max_subscribers_per_client: MAX_SUBSCRIBERS_PER_CLIENT,
      refused_client_limit: 1,
    });
    flooder[0]?.close();
    flooder[0]?.close(); // idempotent: frees one slot, not two
    expect(() => h.subscribe(null, "loopback")).not.toThrow();
    expect(() => h.subscribe(null, "loopback")).toThrow(ClientSubscriberLimitError);
  });

  test("close() ends every stream and refuses new subscribers", async () => {
    const h = hub();
    const sub = h.subscribe();
    await drain(sub);
    const waiting = sub.next();
    h.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(() => h.subscribe()).toThrow(/shutting down/);
  });
});
