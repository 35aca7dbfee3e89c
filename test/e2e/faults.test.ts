// Faults that lose nothing, against the real process: a full or read-only state disk (a
// real tiny tmpfs), kill -9 in the middle of a write storm twenty times in a row, an agent
// rewriting its file in place while clients read it under load, and slow clients.
// A corrupt state file on a full disk runs on its own (issue 15). The other four run
// concurrently (bun's test.concurrent), each against its own process: the
// slow-client test mostly waits for Bun's fixed ~10 s header deadline, and the others fit
// inside that wait instead of adding their time (the file takes ~13 s, not ~23 s).
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { RegimeDocument } from "../../src/modules/meta/model";
import { fixture, tempDir, waitFor } from "../helpers";
import { canMount, fill, mountTmpfs } from "../tmpfs";
import { postJson, spawnService } from "./process";

describe("the state disk fails", () => {
  test.concurrent.skipIf(!canMount)(
    "full, then read-only: POSTs answer 503 (never 200), /status and the log say why, recovery needs no restart",
    async () => {
      using home = tempDir();
      const state = join(home.path, "state");
      using disk = mountTmpfs(state);
      const acked: Record<string, unknown>[] = [];
      const ack = async (body: Record<string, unknown>) => {
        const res = await postJson(`${svc.url}/meta/metrics`, body);
        if (res.status === 200) acked.push(body);
        return res;
      };
      // ? History off: a history.db open for writing on this tmpfs makes the kernel refuse
      // the read-only remount ("busy"). History's own disk failures are covered in
      // test/modules/history.test.ts; this test is about the meta-metrics document.
      await using svc = await spawnService({
        home: home.path,
        env: { NEOLIGHT_WRITE_RATE: "0", NEOLIGHT_HISTORY_DAYS: "0" },
      });
      expect((await ack(fixture("meta_metrics_paused_post"))).status).toBe(200);

      // 1. The disk fills up.
      fill(state);
      const full = await Promise.all(Array.from({ length: 20 }, (_, i) => ack({ mode: `FULL_${i}` })));
      expect(full.map((r) => r.status)).toEqual(Array(20).fill(503));
      expect(full[0]?.headers.get("retry-after")).toBe("5");
      expect(((await (full[0] as Response).json()) as { error: string }).error).toMatch(/update not stored: .*ENOSPC/);
      let status = (await (await fetch(`${svc.url}/status`)).json()) as { persistence: Record<string, unknown> };
      expect(status.persistence.last_error).toMatch(/ENOSPC/);
      expect(status.persistence.failures as number).toBeGreaterThan(0);
      // ? The log line reaches us through the child's stdout pipe, which may lag the 503.
      await waitFor(
        () =>
          svc.lines.some((l) => {
            const line = l as { level?: string; message?: string; error?: string };
            return (
              line.level === "ERROR" &&
              line.message === "telemetry batch not persisted" &&
              /ENOSPC/.test(line.error ?? "")
            );
          }),
        "the ERROR line for the unpersisted batch",
      );
      // Nothing of a refused update is served: the router still sees the paused guardian.
      let doc = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, unknown>;
      expect(doc.mode).toBe(fixture("meta_metrics_paused_post").mode);
      expect((doc.guardian as { is_paused: boolean }).is_paused).toBe(true);

      // 2. Space comes back: the next POST succeeds, no restart.
      for (const name of readdirSync(state)) {
        if (name.startsWith("filler-")) unlinkSync(join(state, name));
      }
      expect((await ack({ mode: "RECOVERED" })).status).toBe(200);
      status = (await (await fetch(`${svc.url}/status`)).json()) as { persistence: Record<string, unknown> };
      expect(status.persistence.last_error).toBeNull();

      // 3. The disk turns read-only (an unwritable state directory, which chmod cannot make for root).
      disk.remount("ro");
      const ro = await ack({ mode: "READ_ONLY" });
      expect(ro.status).toBe(503);
      expect(((await ro.json()) as { error: string }).error).toMatch(/EROFS|read-only/);
      disk.remount("rw");
      expect((await ack({ stress_timestamp: "after-ro" })).status).toBe(200);

      // Every update answered 200 is served and on disk, and survives a restart.
      const expected = Object.assign({}, ...acked);
      doc = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, unknown>;
      expect(doc).toMatchObject(expected);
      expect(JSON.parse(readFileSync(join(state, "meta_metrics.json"), "utf8"))).toMatchObject(expected);
      expect(await svc.stop()).toBe(0);
      await using again = await spawnService({ home: home.path });
      expect(await (await fetch(`${again.url}/meta/metrics`)).json()).toMatchObject(expected);
    },
    30_000,
  );
});

describe("a corrupt state file on a full disk (issue 15, item 1)", () => {
  // ? Not concurrent: its process starts while the slow-client test measures how fast the
  // others are answered, and on a loaded machine it made that test's sockets time out first.
  test.skipIf(!canMount)(
    "paused from the first request; a restart before space returns still pauses; the pause is written once it does",
    async () => {
      using home = tempDir();
      const state = join(home.path, "state");
      using _disk = mountTmpfs(state);
      const file = join(state, "meta_metrics.json");
      const truncated = '{"guardian": {"is_paused": false, "drawdown": 0.4, "reason": "Normal oper';
      writeFileSync(file, truncated);
      fill(state);
      const env = { NEOLIGHT_WRITE_RATE: "0", NEOLIGHT_HISTORY_DAYS: "0" };
      const read = async (url: string) => {
        const doc = (await (await fetch(`${url}/meta/metrics`)).json()) as { guardian: { is_paused: unknown } };
        const status = (await (await fetch(`${url}/status`)).json()) as { persistence: Record<string, unknown> };
        return { paused: doc.guardian.is_paused, persistence: status.persistence };
      };
      {
        await using svc = await spawnService({ home: home.path, env });
        const first = await read(svc.url);
        expect(first.paused).toBe(true);
        expect(first.persistence).toMatchObject({ corrupt_moved_to: null, unsaved_keys: ["guardian"] });
        expect(svc.lines).toContainEqual(
          expect.objectContaining({
            level: "ERROR",
            message: "served state not on disk yet, retrying",
            error: expect.stringMatching(/ENOSPC/),
          }),
        );
        expect(readFileSync(file, "utf8")).toBe(truncated);
        expect(await svc.stop()).toBe(0);
      }
      // Space still gone: the restart finds the corrupt file again, not an empty directory.
      await using svc = await spawnService({ home: home.path, env });
      expect((await read(svc.url)).paused).toBe(true);
      for (const name of readdirSync(state)) if (name.startsWith("filler-")) unlinkSync(join(state, name));
      // The retry writes the pause without a restart or a request.
      const healed = await waitFor(async () => {
        const r = await read(svc.url);
        return r.persistence.corrupt_moved_to !== null ? r : null;
      }, "the pause to be written");
      const kept = healed.persistence.corrupt_moved_to as string;
      expect(readFileSync(kept, "utf8")).toBe(truncated);
      expect(healed).toMatchObject({ paused: true, persistence: { unsaved_keys: [] } });
      expect(JSON.parse(readFileSync(file, "utf8")).guardian.is_paused).toBe(true);
      expect(await svc.stop()).toBe(0);
      await using again = await spawnService({ home: home.path, env });
      expect(await read(again.url)).toMatchObject({ paused: true, persistence: { corrupt_found: null } });
    },
    30_000,
  );
});

describe("kill -9 during a write storm, 20 times in a row", () => {
  test.concurrent("after each restart meta_metrics.json parses and holds every update answered 200", async () => {
    using home = tempDir();
    const file = join(home.path, "state", "meta_metrics.json");
    const CLIENTS = 8;
    const acked = new Map<string, number>();
    let next = 1;
    for (let round = 1; round <= 20; round++) {
      {
        await using svc = await spawnService({ home: home.path, env: { NEOLIGHT_WRITE_RATE: "0" } });
        // The restart restored what the last round's file held.
        const doc = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, number>;
        for (const [key, n] of acked)
          expect({ round, key, restored: (doc[key] ?? 0) >= n }).toEqual({ round, key, restored: true });
        let stop = false;
        let ackedThisRound = 0;
        const clients = Array.from({ length: CLIENTS }, async (_, c) => {
          while (!stop) {
            const n = next++;
            try {
              const res = await postJson(`${svc.url}/meta/metrics`, { [`client_${c}`]: n, round });
              if (res.status === 200) {
                if (n > (acked.get(`client_${c}`) ?? 0)) acked.set(`client_${c}`, n);
                ackedThisRound++;
              }
            } catch {
              return; // the process is gone
            }
          }
        });
        // Kill at a different point of the storm each round.
        await waitFor(() => ackedThisRound >= 20 + round * 3, "acknowledged writes");
        svc.proc.kill("SIGKILL");
        await svc.proc.exited;
        stop = true;
        await Promise.all(clients);
      }
      const onDisk = JSON.parse(readFileSync(file, "utf8")) as Record<string, number>;
      for (const [key, n] of acked) {
        // Durable without its 200 having arrived is possible; answered 200 and missing is not.
        expect({ round, key, kept: (onDisk[key] ?? 0) >= n }).toEqual({ round, key, kept: true });
      }
      expect(onDisk.round).toBe(round);
    }
    expect(acked.size).toBe(CLIENTS);
  }, 60_000);
});

/** Bun's header deadline (10 s) plus its 4 s timer tick, plus slack for a loaded machine. */
const HEADER_DEADLINE_MS = 20_000;
/**
 * How long the slow sockets hang on before the server cuts the body tricklers (plus up to
 * Bun's 4 s tick): the 100 probe rounds must fit inside it. At 2 s they did not on a loaded
 * machine (measured: the rounds took 3.7 s beside the kill -9 storm, the cut came at 4.0 s),
 * and the test failed on that race, not on a slow answer. 8 s still ends before the header
 * deadline, which sets the test's length, so it costs no time.
 */
const IDLE_TIMEOUT_S = 8;
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
  test.concurrent("tricklers are cut off by the server; other clients' posts complete meanwhile", async () => {
    using home = tempDir();
    await using svc = await spawnService({
      home: home.path,
      env: { NEOLIGHT_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S), NEOLIGHT_WRITE_RATE: "0" },
    });
    const body = JSON.stringify(fixture("meta_metrics_post"));
    const head = `POST /meta/metrics HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
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
      // Within the execution router's 2 s timeout, even beside the kill -9 storm.
      expect(slowest).toBeLessThan(2000);
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

/** The rewriting agent runs at least this long (the test's length on an idle machine). */
const MIN_RUN_MS = 3000;
/** What the service logs when it meets a half-written agent file. */
const UNREADABLE = "agent file unreadable, serving last good copy";

describe("an agent rewriting its file in place", () => {
  test.concurrent("readers under load never get a 5xx or a partial document", async () => {
    using home = tempDir();
    const runtime = join(home.path, "runtime");
    mkdirSync(runtime, { recursive: true });
    const regimeFile = join(runtime, "market_regime.json");
    const versions = [
      { ...fixture("market_regime"), regime: "BULL", description: "A".repeat(20_000) },
      { ...fixture("market_regime"), regime: "BEAR", description: "B".repeat(30_000) },
    ];
    writeFileSync(regimeFile, JSON.stringify(versions[0]));
    await using svc = await spawnService({ home: home.path, env: { NEOLIGHT_SOURCE_POLL_MS: "20" } });

    // The agent: truncate, write half, pause, write the rest; again and again, in place,
    // until the stop file appears. One byte on stdout per rewrite tells the test how many.
    const stopFile = join(home.path, "stop-writing");
    const writer = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const fs = require("node:fs");
         const docs = ${JSON.stringify(versions.map((v) => JSON.stringify(v)))};
         let n = 0;
         while (!fs.existsSync(${JSON.stringify(stopFile)})) {
           const text = docs[n++ % 2];
           const fd = fs.openSync(${JSON.stringify(regimeFile)}, "w");
           fs.writeSync(fd, text.slice(0, text.length >> 1));
           Bun.sleepSync(2);
           fs.writeSync(fd, text.slice(text.length >> 1));
           fs.closeSync(fd);
           fs.writeSync(1, ".");
           Bun.sleepSync(3);
         }`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    let rewrites = 0;
    const counting = (async () => {
      for await (const chunk of writer.stdout) rewrites += chunk.length;
    })();

    const check = TypeCompiler.Compile(RegimeDocument);
    const seen = new Map<string, number>();
    const problems: string[] = [];
    let reads = 0;
    let done = false;
    const readers = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!done) {
          const res = await fetch(`${svc.url}/meta/regime`);
          const text = await res.text();
          reads++;
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            problems.push(`${res.status}: not JSON (${text.length} bytes)`);
            continue;
          }
          if (res.status !== 200) problems.push(`status ${res.status}`);
          else if (!check.Check(body)) problems.push(`invalid: ${text.slice(0, 80)}`);
          else if (!versions.some((v) => JSON.stringify(v) === JSON.stringify(body))) problems.push("not a version");
          const regime = (body as { regime: string }).regime;
          seen.set(regime, (seen.get(regime) ?? 0) + 1);
        }
      }),
    );
    // ? At least MIN_RUN_MS of it, as much as an idle machine gives, and then until it has
    // seen what the assertions below need: a fixed duration failed on a loaded machine,
    // where 3 s held fewer reads and rewrites, not worse ones.
    const started = Date.now();
    try {
      await waitFor(
        () =>
          Date.now() - started >= MIN_RUN_MS &&
          reads > 500 &&
          rewrites > 100 &&
          seen.has("BULL") &&
          seen.has("BEAR") &&
          svc.output().stdout.includes(UNREADABLE),
        "enough reads, rewrites and half-written files met",
        20_000,
      );
    } finally {
      writeFileSync(stopFile, "");
      done = true;
      await readers;
    }
    await counting;
    expect(await writer.exited).toBe(0);
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(500);
    expect(rewrites).toBeGreaterThan(100);
    // Both versions were served: the service kept picking up the rewrites. And it did meet
    // half-written files (else this test proved nothing): it said so and served the last good.
    expect([...seen.keys()].sort()).toEqual(["BEAR", "BULL"]);
    expect(svc.lines).toContainEqual(expect.objectContaining({ level: "WARN", message: UNREADABLE }));
    expect(svc.lines.filter((l) => ((l as { status?: number }).status ?? 0) >= 500)).toEqual([]);
    rmSync(regimeFile);
  }, 30_000);
});
