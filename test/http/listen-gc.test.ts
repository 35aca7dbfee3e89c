// Elysia's collections during listen are coalesced into one, run after the window
// (src/http/listen-gc.ts): against a recording stand-in for Bun.gc, and against the real
// app listening on a real socket, which shows that this Elysia still asks (or the lever
// would be dead code).
import { afterEach, describe, expect, test } from "bun:test";
import { coalesceCollections } from "../../src/http/listen-gc";
import { startApp, waitFor } from "../helpers";

type Gc = typeof Bun.gc;
const bun = Bun as { gc: Gc };
const realGc = bun.gc;

/** Puts a stand-in for Bun.gc that records its calls; afterEach puts Bun's back. */
function recordingGc(): (boolean | undefined)[] {
  const calls: (boolean | undefined)[] = [];
  bun.gc = (force?: boolean) => {
    calls.push(force);
  };
  return calls;
}

// Bun's own back after every test, a failed one too (each passing test waits for its
// window's end, so no timer is left to put a stand-in back later).
afterEach(() => {
  bun.gc = realGc;
});

describe("coalesceCollections", () => {
  test("calls in the window do not collect; one collection runs at its end, forced if any asked, then Bun.gc is the one before", async () => {
    const calls = recordingGc();
    const standIn = bun.gc;
    const window = coalesceCollections(30);
    Bun.gc(false);
    Bun.gc(true);
    Bun.gc(false);
    expect(calls).toEqual([]);
    expect(window.asked).toBe(3);
    await waitFor(() => window.ended, "the window to end");
    expect(calls).toEqual([true]);
    expect(bun.gc).toBe(standIn);
  });

  test("with nothing asked, nothing is collected at the end", async () => {
    const calls = recordingGc();
    const window = coalesceCollections(10);
    await waitFor(() => window.ended, "the window to end");
    expect(calls).toEqual([]);
  });

  test("a second window while one is open is refused", async () => {
    recordingGc();
    const window = coalesceCollections(10);
    expect(() => coalesceCollections(10)).toThrow("a window is already open");
    await waitFor(() => window.ended, "the window to end");
    // Once ended, a new window may open.
    const again = coalesceCollections(10);
    await waitFor(() => again.ended, "the second window to end");
  });

  test("Elysia's listen asks for collections, and they wait for the window's end", async () => {
    await using t = await startApp();
    const calls = recordingGc();
    const window = coalesceCollections(200);
    const server = t.app.listen({ port: 0, hostname: "127.0.0.1", reusePort: false, development: false });
    try {
      const res = await fetch(`http://127.0.0.1:${server.server?.port}/health`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(window.asked).toBeGreaterThan(0);
      expect(calls).toEqual([]);
      await waitFor(() => window.ended, "the window to end");
      expect(calls).toEqual([false]);
    } finally {
      await t.app.stop(true);
    }
  });
});
