// Slow clients against the real process: connections that trickle their headers or their
// body are closed by the server, and while they hang on, everyone else is served at once.
// Bun measures the body phase with NEOLIGHT_IDLE_TIMEOUT_S (on a 4 s timer tick) and the
// header phase with its own fixed deadline of about 10 s, which no option changes.
import { describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { fixture, tempDir, waitFor } from "../helpers";
import { postJson, spawnService } from "./process";

/** Bun's header deadline (10 s) plus its 4 s timer tick, plus slack for a loaded machine. */
const HEADER_DEADLINE_MS = 20_000;
const IDLE_TIMEOUT_S = 2;
/** The idle timeout plus Bun's timer tick plus slack. */
const BODY_DEADLINE_MS = (IDLE_TIMEOUT_S + 4 + 4) * 1000;

interface Trickler {
  socket: Socket;
  /** Resolves with ms from connect to the server closing the socket. */
  closed: Promise<number>;
  /** Bytes the server sent back (a cut-off trickler gets no answer). */
  received(): string;
  stop(): void;
}

/** Connects and sends `parts` one every `everyMs`, as a slowloris client would. */
function trickle(port: number, parts: string[], everyMs: number): Trickler {
  const started = Date.now();
  const socket = connect(port, "127.0.0.1");
  let received = "";
  let i = 0;
  const timer = setInterval(() => {
    if (i < parts.length && !socket.destroyed) socket.write(parts[i++] as string);
  }, everyMs);
  socket.on("data", (d) => {
    received += d.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) =>
    socket.on("close", () => {
      clearInterval(timer);
      resolve(Date.now() - started);
    }),
  );
  return {
    socket,
    closed,
    received: () => received,
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

describe("slow clients", () => {
  test("tricklers are cut off by the server; other clients' posts complete meanwhile", async () => {
    using home = tempDir();
    await using svc = await spawnService({
      home: home.path,
      env: { NEOLIGHT_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S), NEOLIGHT_WRITE_RATE: "0" },
    });
    const body = JSON.stringify(fixture("meta_metrics_post"));
    const head = `POST /meta/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const headerTricklers = Array.from({ length: 10 }, () =>
      trickle(svc.port, `${head}${"X-Pad: y\r\n".repeat(200)}`.split(""), 200),
    );
    const bodyTricklers = Array.from({ length: 10 }, () => trickle(svc.port, [head, ...body.split("")], 200));
    const idlers = Array.from({ length: 10 }, () => trickle(svc.port, [], 1000));
    const all = [...headerTricklers, ...bodyTricklers, ...idlers];
    try {
      // Everyone else: 200 posts and reads while the 30 slow sockets hang on, each answered fast.
      let slowest = 0;
      for (let i = 0; i < 100; i++) {
        const t0 = performance.now();
        const res = await postJson(`${svc.url}/meta/metrics`, { probe: i });
        expect(res.status).toBe(200);
        const read = await fetch(`${svc.url}/meta/metrics`);
        expect(((await read.json()) as { probe: number }).probe).toBe(i);
        slowest = Math.max(slowest, performance.now() - t0);
      }
      expect(slowest).toBeLessThan(1000);
      expect(all.every((c) => !c.socket.destroyed)).toBe(true);

      const bodyClosed = await Promise.all(bodyTricklers.map((c) => c.closed));
      for (const ms of bodyClosed) expect(ms).toBeLessThan(BODY_DEADLINE_MS);
      for (const c of bodyTricklers) expect(c.received()).toBe("");
      const headersClosed = await Promise.all([...headerTricklers, ...idlers].map((c) => c.closed));
      for (const ms of headersClosed) expect(ms).toBeLessThan(HEADER_DEADLINE_MS);

      // The cut-off bodies were never applied, and are logged as 408, not as server errors.
      const doc = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, unknown>;
      expect(doc.per_agent).toEqual({});
      await waitFor(
        () => svc.lines.filter((l) => (l as { message: string; status?: number }).status === 408).length === 10,
        "ten 408 access lines",
      );
      expect(svc.lines.filter((l) => ((l as { status?: number }).status ?? 0) >= 500)).toEqual([]);
      expect((await postJson(`${svc.url}/meta/metrics`, { after: true })).status).toBe(200);
    } finally {
      for (const c of all) c.stop();
    }
  }, 40_000);
});
