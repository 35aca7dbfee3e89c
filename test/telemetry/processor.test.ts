// The processor behind the routes: acceptance order, group commit, a full channel, and a
// failing disk. Through app.handle with the real store on a real temporary directory.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { type DocumentUpdate, type Persistence, UnconfirmedWriteError } from "../../src/store/store";
import { fixture, get, logged, post, servedGuardian, startApp, tempDir, waitFor } from "../helpers";

/** The real JSON-file persistence, recording what each save held. */
function recording(path: string): Persistence & { saves: number } {
  const real = createJsonFilePersistence(path);
  const wrapper = {
    path,
    saves: 0,
    load: () => real.load(),
    keepAside: () => real.keepAside(),
    async save(state: Parameters<Persistence["save"]>[0]) {
      wrapper.saves++;
      await real.save(state);
    },
  };
  return wrapper;
}

describe("ordering", () => {
  test("1,000 updates from 50 concurrent clients are applied in acceptance order; the last accepted wins", async () => {
    using dir = tempDir();
    const persistence = recording(join(dir.path, "state", "meta_metrics.json"));
    await using t = await startApp({ home: dir.path, overrides: { persistence } });
    const applied: number[] = [];
    t.services.processor.onCommit((_state, batch: readonly DocumentUpdate[]) => {
      for (const u of batch) applied.push(u.seq);
    });
    const seqToValue = new Map<number, number>();
    const clients = Array.from({ length: 50 }, async (_, client) => {
      for (let i = 0; i < 20; i++) {
        const value = client * 1000 + i;
        const res = await post(t.app, "/meta/metrics", { ordering_probe: value });
        expect(res.status).toBe(200);
        seqToValue.set(res.body.seq as number, value);
      }
    });
    await Promise.all(clients);

    expect(applied).toHaveLength(1000);
    expect(applied).toEqual([...applied].sort((a, b) => a - b));
    expect(new Set(applied).size).toBe(1000);
    const lastSeq = Math.max(...seqToValue.keys());
    expect((await get(t.app, "/meta/metrics")).body.ordering_probe).toBe(seqToValue.get(lastSeq));
    // Group commit: concurrent updates share durable writes.
    expect(persistence.saves).toBeLessThan(1000);
  });
});

describe("a full channel", () => {
  test("answers 503 with Retry-After at once; everything accepted is applied", async () => {
    using dir = tempDir();
    const real = createJsonFilePersistence(join(dir.path, "state", "meta_metrics.json"));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let saving = false;
    const persistence: Persistence = {
      path: real.path,
      load: () => real.load(),
      keepAside: () => real.keepAside(),
      save: async (s) => {
        saving = true;
        await gate;
        await real.save(s);
      },
    };
    await using t = await startApp({
      home: dir.path,
      env: { NEOLIGHT_QUEUE_CAPACITY: "2" },
      overrides: { persistence },
    });

    // The first is taken by the processor (stuck on the disk), the next two fill the channel.
    const first = post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
    await waitFor(() => saving, "the processor to be stuck on the disk");
    const queued = [post(t.app, "/meta/metrics", { mode: "A" }), post(t.app, "/meta/metrics", { mode: "B" })];
    await waitFor(() => t.services.channel.depth === 2, "two queued updates");

    const refused = await post(t.app, "/meta/metrics", { mode: "REFUSED" });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.body).toEqual({ error: expect.stringContaining("queue full"), code: 503 });
    expect(logged(t.log, "telemetry queue full")).toEqual([
      expect.objectContaining({ level: "WARN", depth: 2, capacity: 2 }),
    ]);

    release();
    expect((await first).status).toBe(200);
    expect((await Promise.all(queued)).map((r) => r.status)).toEqual([200, 200]);
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.mode).toBe("B");
    expect((doc.guardian as { is_paused: boolean }).is_paused).toBe(true);
    expect((await get(t.app, "/status")).body.queue).toMatchObject({ rejected_full: 1, applied: 3, capacity: 2 });
  });
});

describe("a failing disk", () => {
  test("answers 503, serves nothing that is not on disk, and recovers without a restart", async () => {
    using dir = tempDir();
    // ? The document in a directory of its own: the pause file in $NEOLIGHT_HOME/state (issue
    // 11) is not this test's disk, and a watcher finding its directory gone must not race it.
    const state = join(dir.path, "data");
    mkdirSync(state);
    await using t = await startApp({ home: dir.path, env: { METRICS_PATH: join(state, "meta_metrics.json") } });
    const paused = fixture("meta_metrics_paused_post");
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200);

    // Replace the document's directory with a file: every write fails (ENOTDIR), even as root.
    rmSync(state, { recursive: true });
    writeFileSync(state, "not a directory");
    const res = await post(t.app, "/meta/metrics", { guardian: { is_paused: false, drawdown: 0, reason: "x" } });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(res.body).toEqual({ error: expect.stringContaining("not stored"), code: 503 });
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(servedGuardian(paused.guardian));
    const status = (await get(t.app, "/status")).body;
    expect(status.persistence).toMatchObject({ failures: 1, last_error: expect.any(String) });
    expect(logged(t.log, "telemetry batch not persisted")).toHaveLength(1);

    rmSync(state);
    mkdirSync(state);
    const again = await post(t.app, "/meta/metrics", { guardian: { is_paused: false, drawdown: 0, reason: "x" } });
    expect(again.status).toBe(200);
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(
      servedGuardian({ is_paused: false, drawdown: 0, reason: "x" }),
    );
    expect((await get(t.app, "/status")).body.persistence).toMatchObject({ last_error: null, failures: 1 });
  });
});

describe("a write that replaced the file but could not confirm durability", () => {
  test("answers 503 saying so, and memory, disk and a restart agree on the new state", async () => {
    using dir = tempDir();
    const path = join(dir.path, "state", "meta_metrics.json");
    const real = createJsonFilePersistence(path);
    let unconfirmed = false;
    // The real file write, then the directory fsync "fails" (what EMFILE or EIO there does).
    const persistence: Persistence = {
      path,
      load: () => real.load(),
      keepAside: () => real.keepAside(),
      async save(state) {
        await real.save(state);
        if (unconfirmed) throw new UnconfirmedWriteError("directory fsync failed after rename: EIO", null);
      },
    };
    const resumed = { is_paused: false, drawdown: 0.5, reason: "resumed by operator" };
    {
      await using t = await startApp({ home: dir.path, overrides: { persistence } });
      expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"))).status).toBe(200);
      unconfirmed = true;
      const res = await post(t.app, "/meta/metrics", { guardian: resumed });
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: expect.stringContaining("not confirmed durable"), code: 503 });
      expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(servedGuardian(resumed));
      expect(JSON.parse(readFileSync(path, "utf8")).guardian).toEqual(servedGuardian(resumed));
      expect(logged(t.log, "telemetry batch not persisted")).toEqual([expect.objectContaining({ published: true })]);
    }
    await using t = await startApp({ home: dir.path });
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(servedGuardian(resumed));
  });
});
