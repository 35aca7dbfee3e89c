// The live stream over real sockets: a client that stops reading is dropped once the
// kernel's buffers and its queue are full, while another client keeps receiving every
// update promptly; a client that hangs up frees its slot.
import { describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { tempDir, waitFor } from "../helpers";
import { postJson, spawnService } from "./process";

type Live = { subscribers: number; dropped: number };
const live = async (url: string) => ((await (await fetch(`${url}/status`)).json()) as { live: Live }).live;

/** A raw connection that asks for /events and then never reads a byte. */
async function stalledClient(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
  socket.pause();
  return socket;
}

describe("GET /events over sockets", () => {
  test("a stalled client is dropped; a reading client gets every update, each promptly", async () => {
    using home = tempDir();
    await using svc = await spawnService({ home: home.path });
    const stalled = await stalledClient(svc.port);
    const controller = new AbortController();
    const res = await fetch(`${svc.url}/events`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const seen = new Map<number, number>(); // n -> ms from sending its POST to its event arriving
    const posted = new Map<number, number>();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += decoder.decode(value, { stream: true });
        const frames = text.split("\n\n");
        text = frames.pop() as string; // an incomplete frame waits for the rest
        for (const frame of frames) {
          const data = frame.split("\n").find((l) => l.startsWith("data: "));
          const n = data === undefined ? undefined : (JSON.parse(data.slice(6)) as { set?: { n?: number } }).set?.n;
          if (n !== undefined && !seen.has(n)) seen.set(n, performance.now() - (posted.get(n) ?? Number.NaN));
        }
      }
    })();
    await waitFor(async () => (await live(svc.url)).subscribers === 2, "both clients to subscribe");

    // 200 KB updates: the stalled client's socket buffers fill after a few MB, then its
    // queue of 64 frames, then it is dropped.
    const blob = "x".repeat(200_000);
    let n = 0;
    while ((await live(svc.url)).dropped === 0 && n < 400) {
      n++;
      posted.set(n, performance.now());
      expect((await postJson(`${svc.url}/meta/metrics`, { blob, n })).status).toBe(200);
    }
    expect(await live(svc.url)).toMatchObject({ dropped: 1, subscribers: 1 });
    expect(svc.lines).toContainEqual(
      expect.objectContaining({ level: "WARN", message: "live subscriber dropped", capacity: 64 }),
    );
    // The reader saw every update, each within a second of its POST being sent.
    await waitFor(() => seen.size === n, "the reading client to receive every update");
    expect(Math.max(...seen.values())).toBeLessThan(1000);

    controller.abort();
    stalled.destroy();
    await reading;
    await waitFor(async () => (await live(svc.url)).subscribers === 0, "the hung-up client's slot to be freed");
    expect(await svc.stop()).toBe(0);
  }, 30_000);
});
