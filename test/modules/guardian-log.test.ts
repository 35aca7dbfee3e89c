// Guardian transitions in the log (issue 9): one WARN "guardian paused" or INFO "guardian
// resumed" per change of the served guardian.is_paused, with its cause, whoever caused it.
// Through app.handle on a real temporary home, and on the wrapped store for batches.
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clip, createMemoryLogger, MAX_LOGGED_BYTES } from "../../src/log/logger";
import { logGuardianTransitions } from "../../src/modules/guardian/transitions";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { type DocumentUpdate, openStore, type Persistence, UnconfirmedWriteError } from "../../src/store/store";
import { fixture, type Json, logged, post, startApp, tempDir } from "../helpers";

const transitions = (lines: Json[]) =>
  lines.filter((l) => l.message === "guardian paused" || l.message === "guardian resumed");

const paused = fixture("meta_metrics_paused_post") as { guardian: Json };
const running = fixture("meta_metrics_post") as { guardian: Json };

describe("through the routes", () => {
  test("a pause and a resume are logged once each; repeats and other posts log nothing", async () => {
    await using t = await startApp();
    // Not paused before, not paused after: no transition.
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    const pause = await post(t.app, "/meta/metrics", paused);
    await post(t.app, "/meta/metrics", paused); // the same snapshot again
    await post(t.app, "/meta/metrics", fixture("stress_post")); // no guardian in it
    await post(t.app, "/atlas/update", fixture("atlas_update_post"));
    const resume = await post(t.app, "/meta/metrics", running);
    expect(transitions(t.log.lines)).toEqual([
      {
        timestamp: expect.any(String),
        level: "WARN",
        message: "guardian paused",
        reason: "Daily drawdown limit exceeded",
        drawdown: 8.73,
        source: "hive",
        seq: pause.body.seq,
      },
      {
        timestamp: expect.any(String),
        level: "INFO",
        message: "guardian resumed",
        reason: "Normal operation",
        drawdown: 1.84,
        source: "hive",
        seq: resume.body.seq,
        paused_reason: "Daily drawdown limit exceeded",
        paused_for_s: expect.any(Number),
      },
    ]);
  });

  test("a posted reason reaches the log cut like every client string; the served reason is whole", async () => {
    await using t = await startApp();
    const reason = `drawdown ${"x".repeat(20_000)}`;
    const guardian = { ...paused.guardian, reason };
    expect((await post(t.app, "/meta/metrics", { guardian })).status).toBe(200);
    await post(t.app, "/meta/metrics", { guardian: { ...running.guardian, reason: "ok" } });
    const [pauseLine, resumeLine] = transitions(t.log.lines);
    expect(pauseLine?.reason).toBe(clip(reason));
    expect(resumeLine?.paused_reason).toBe(clip(reason));
    expect(Buffer.byteLength(String(pauseLine?.reason))).toBeLessThan(MAX_LOGGED_BYTES + 40);
  });

  test("the fail-safe pause after a corrupt state file is a transition with its own source", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state"));
    writeFileSync(join(dir.path, "state", "meta_metrics.json"), '{"guardian": {"is_paused": tr');
    await using t = await startApp({ home: dir.path });
    await post(t.app, "/meta/metrics", running);
    expect(transitions(t.log.lines)).toEqual([
      expect.objectContaining({
        level: "WARN",
        message: "guardian paused",
        reason: expect.stringContaining("persisted state was corrupt"),
        drawdown: 0,
        source: "corrupt_state",
        seq: 0,
      }),
      expect.objectContaining({
        level: "INFO",
        message: "guardian resumed",
        source: "hive",
        paused_reason: expect.stringContaining("persisted state was corrupt"),
      }),
    ]);
  });

  test("restored paused: no line at start-up; the resume names the restored reason, its duration unknown", async () => {
    using dir = tempDir();
    {
      await using t = await startApp({ home: dir.path });
      await post(t.app, "/meta/metrics", paused);
    }
    await using t = await startApp({ home: dir.path });
    expect(transitions(t.log.lines)).toEqual([]);
    await post(t.app, "/meta/metrics", running);
    expect(logged(t.log, "guardian resumed")).toEqual([
      expect.objectContaining({ paused_reason: "Daily drawdown limit exceeded", paused_for_s: null, source: "hive" }),
    ]);
  });
});

/** A store on a real temporary file, wrapped, with its log. */
async function wrappedStore(dir: string, persistence?: Persistence) {
  const log = createMemoryLogger();
  const real = persistence ?? createJsonFilePersistence(join(dir, "meta_metrics.json"));
  return { log, store: logGuardianTransitions(await openStore({ persistence: real }), log) };
}

const update = (seq: number, set: Json, source: DocumentUpdate["source"] = "hive"): DocumentUpdate => ({
  seq,
  set,
  source,
});

describe("per committed batch", () => {
  test("the served state decides: a pause and its resume in one batch were never served", async () => {
    using dir = tempDir();
    const { log, store } = await wrappedStore(dir.path);
    await store.commit([update(1, { guardian: paused.guardian }), update(2, { guardian: running.guardian })]);
    expect(transitions(log.lines)).toEqual([]);
  });

  test("the cause is the update whose guardian won, not the batch's last update", async () => {
    using dir = tempDir();
    const { log, store } = await wrappedStore(dir.path);
    await store.commit([
      update(1, { stress_last: {} }),
      update(2, { guardian: paused.guardian }),
      update(3, { atlas: {} }, "atlas"),
    ]);
    expect(logged(log, "guardian paused")).toEqual([expect.objectContaining({ source: "hive", seq: 2 })]);
  });

  test("a guardian replaced by one without a literal true is a resume (the router reads it so)", async () => {
    using dir = tempDir();
    const { log, store } = await wrappedStore(dir.path);
    await store.commit([update(1, { guardian: paused.guardian })]);
    await store.commit([update(2, { guardian: { ...paused.guardian, is_paused: "yes" } })]);
    expect(transitions(log.lines).map((l) => l.message)).toEqual(["guardian paused", "guardian resumed"]);
  });

  test("a failed write that changed nothing logs nothing; one that was published is logged", async () => {
    using dir = tempDir();
    let failure: Error | null = new Error("ENOSPC");
    const persistence: Persistence = {
      path: join(dir.path, "meta_metrics.json"),
      load: async () => ({ state: null, corrupt: null }),
      keepAside: async () => join(dir.path, "aside"),
      save: async () => {
        if (failure) throw failure;
      },
    };
    const { log, store } = await wrappedStore(dir.path, persistence);
    await expect(store.commit([update(1, { guardian: paused.guardian })])).rejects.toThrow(/ENOSPC/);
    expect(transitions(log.lines)).toEqual([]);
    failure = new UnconfirmedWriteError("directory fsync failed", null);
    await expect(store.commit([update(2, { guardian: paused.guardian })])).rejects.toThrow(/directory fsync/);
    expect(logged(log, "guardian paused")).toEqual([expect.objectContaining({ seq: 2 })]);
  });
});
