// A connection flood against the real process (issue 15 item 8): idle TCP connections use
// up every file descriptor the process may open, and a paused-guardian POST on a keep-alive
// connection opened before the flood must still be written (200, and on disk). The child
// runs under `prlimit --nofile` so that a few hundred connections are a flood.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fixture, ROOT, tempDir, waitFor } from "../helpers";
import { spawnService } from "./process";

/** The child's descriptor limit, and more idle connections than it can accept. */
const FD_LIMIT = 256;
const FLOOD = 300;

const canLimit = Bun.spawnSync(["sh", "-c", "command -v prlimit"]).exitCode === 0;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** One HTTP/1.1 request on `socket` (kept alive); resolves with the status and body. */
function send(socket: Socket, method: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let raw = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      const end = raw.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = raw.subarray(0, end).toString("latin1");
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (raw.length < end + 4 + length) return;
      socket.off("data", onData);
      resolve({
        status: Number(head.split(" ")[1]),
        body: raw.subarray(end + 4, end + 4 + length).toString("utf8"),
      });
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`,
    );
  });
}

describe("a connection flood", () => {
  test.skipIf(!canLimit)(
    "uses up every descriptor, and a paused-guardian POST on an open connection still commits",
    async () => {
      using home = tempDir();
      await using svc = await spawnService({
        home: home.path,
        cmd: ["prlimit", `--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, join(ROOT, "src", "main.ts")],
        env: { NEOLIGHT_WRITE_RATE: "0" },
      });
      const keepAlive = await open(svc.port);
      const flood: Socket[] = [];
      try {
        // The connection works before the flood.
        expect((await send(keepAlive, "POST", "/meta/metrics", JSON.stringify({ mode: "BEFORE" }))).status).toBe(200);

        for (let i = 0; i < FLOOD; i++) flood.push(await open(svc.port));
        // ? The kernel completes connections into the listen backlog whether or not the
        // process accepts them: the flood is on once the process holds every descriptor.
        const fds = `/proc/${svc.proc.pid}/fd`;
        await waitFor(() => readdirSync(fds).length >= FD_LIMIT, "the process to hold every descriptor", 10_000);

        const paused = fixture("meta_metrics_paused_post");
        const res = await send(keepAlive, "POST", "/meta/metrics", JSON.stringify(paused));
        expect(res).toMatchObject({ status: 200 });
        const saved = JSON.parse(readFileSync(join(home.path, "state", "meta_metrics.json"), "utf8"));
        expect(saved.guardian.is_paused).toBe(true);
        // And again: the spare descriptor was taken back after the first write.
        const again = { ...paused, mode: "FLOODED" };
        expect(await send(keepAlive, "POST", "/meta/metrics", JSON.stringify(again))).toMatchObject({ status: 200 });
        expect(JSON.parse(readFileSync(join(home.path, "state", "meta_metrics.json"), "utf8")).mode).toBe("FLOODED");
        // Still at the limit: the POST did not get through because the flood had passed.
        expect(readdirSync(fds).length).toBeGreaterThanOrEqual(FD_LIMIT);
      } finally {
        keepAlive.destroy();
        for (const socket of flood) socket.destroy();
      }
    },
    30_000,
  );
});
