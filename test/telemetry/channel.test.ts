// The bounded channel: FIFO batches, a hard bound, and close semantics.
import { describe, expect, test } from "bun:test";
import { ChannelClosedError, createChannel } from "../../src/telemetry/channel";

describe("channel", () => {
  test("yields everything waiting as one batch, oldest first", async () => {
    const ch = createChannel<number>(10);
    for (const n of [1, 2, 3]) expect(ch.trySend(n)).toBe(true);
    const it = ch[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: [1, 2, 3] });
    expect(ch.depth).toBe(0);
  });

  test("refuses the item past capacity without blocking, and accepts again once drained", async () => {
    const ch = createChannel<number>(2);
    expect([ch.trySend(1), ch.trySend(2), ch.trySend(3)]).toEqual([true, true, false]);
    expect(ch.depth).toBe(2);
    const it = ch[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual([1, 2]);
    expect(ch.trySend(4)).toBe(true);
  });

  test("a waiting consumer wakes on send", async () => {
    const ch = createChannel<string>(4);
    const it = ch[Symbol.asyncIterator]();
    const next = it.next();
    ch.trySend("a");
    expect(await next).toEqual({ done: false, value: ["a"] });
  });

  test("after close: sends throw, queued items are still delivered, then the iterator ends", async () => {
    const ch = createChannel<number>(4);
    ch.trySend(1);
    ch.close();
    expect(() => ch.trySend(2)).toThrow(ChannelClosedError);
    const seen: number[][] = [];
    for await (const batch of ch) seen.push(batch);
    expect(seen).toEqual([[1]]);
  });

  test("close wakes a consumer waiting on an empty channel", async () => {
    const ch = createChannel<number>(4);
    const it = ch[Symbol.asyncIterator]();
    const next = it.next();
    ch.close();
    expect(await next).toEqual({ done: true, value: undefined });
  });

  test("only one consumer", () => {
    const ch = createChannel<number>(1);
    ch[Symbol.asyncIterator]();
    expect(() => ch[Symbol.asyncIterator]()).toThrow(/consumer/);
  });

  test.each([0, -1, 1.5])("capacity %p is refused", (capacity) => {
    expect(() => createChannel(capacity)).toThrow(RangeError);
  });
});
