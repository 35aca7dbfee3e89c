// The JSON-file store: durable saves, restore on restart, and a corrupt file kept aside
// (never overwritten or deleted). Real files in a real temporary directory. The fail-safe
// pause on a failing disk and schema-breaking files: corrupt-state.test.ts.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { openStore } from "../../src/store/store";
import { fixture, get, logged, post, served, servedGuardian, startApp, tempDir } from "../helpers";

describe("JSON-file persistence", () => {
  test("a missing file is empty state", async () => {
    using dir = tempDir();
    const p = createJsonFilePersistence(join(dir.path, "m.json"));
    expect(await p.load()).toEqual({ state: null, corrupt: null });
  });

  test("temp files left by crashed runs are removed at load", async () => {
    using dir = tempDir();
    const path = join(dir.path, "m.json");
    writeFileSync(join(dir.path, ".m.json.tmp-123456"), '{"half": ');
    writeFileSync(path, '{"mode": "LIVE_MODE"}');
    const loaded = await createJsonFilePersistence(path).load();
    expect(loaded.state?.doc).toEqual({ mode: "LIVE_MODE" });
    expect(readdirSync(dir.path)).toEqual(["m.json"]);
  });

  test("save then load gives the same document and commit time; no temp file is left", async () => {
    using dir = tempDir();
    const path = join(dir.path, "m.json");
    const p = createJsonFilePersistence(path);
    const doc = { ...fixture("meta_metrics_post"), __proto__: { polluted: true } };
    await p.save({ doc, updatedAt: "2025-11-03T22:00:00.000Z" });
    expect(readdirSync(dir.path)).toEqual(["m.json"]);
    const loaded = await p.load();
    expect(loaded.state?.updatedAt).toBe("2025-11-03T22:00:00.000Z");
    expect(loaded.state?.doc).toEqual(JSON.parse(JSON.stringify(doc)));
  });

  test.each([
    ["truncated JSON", '{"guardian": {"is_pa', /^not valid JSON \(20 bytes\)$/],
    ["an empty file", "", /^not valid JSON \(0 bytes\)$/],
    ["a JSON array", "[1,2,3]", /^not a JSON object \(7 bytes\)$/],
  ])(
    "%s is reported corrupt (never quoted), left in place, and keepAside keeps a copy",
    async (_name, content, why) => {
      using dir = tempDir();
      const path = join(dir.path, "m.json");
      writeFileSync(path, content);
      const p = createJsonFilePersistence(path);
      const loaded = await p.load();
      expect(loaded).toEqual({ state: null, corrupt: expect.stringMatching(why) });
      // Still there: a restart before the first write must find it again (issue 15).
      expect(readFileSync(path, "utf8")).toBe(content);
      const aside = await p.keepAside();
      expect(aside).toStartWith(`${path}.corrupt-`);
      expect(readFileSync(aside, "utf8")).toBe(content);
      expect(readFileSync(path, "utf8")).toBe(content);
      // The next save replaces the path; the kept copy stays.
      await p.save({ doc: { mode: "X" }, updatedAt: null });
      expect(readFileSync(aside, "utf8")).toBe(content);
      expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ mode: "X", cache_timestamp: null });
    },
  );

  test("a file that cannot be read for another reason stops start-up instead of hiding the guardian", async () => {
    using dir = tempDir();
    // A directory where the file should be: EISDIR, not corruption.
    const path = join(dir.path, "m.json");
    mkdirSync(path);
    await expect(createJsonFilePersistence(path).load()).rejects.toThrow();
  });
});

describe("the store", () => {
  test("a failed save publishes nothing", async () => {
    const store = await openStore({
      persistence: {
        path: "/nowhere",
        load: async () => ({ state: { doc: { mode: "TEST_MODE" }, updatedAt: null }, corrupt: null }),
        keepAside: async () => "/nowhere.corrupt",
        save: async () => {
          throw new Error("ENOSPC: no space left on device");
        },
      },
    });
    await expect(store.commit([{ seq: 1, set: { mode: "LIVE_MODE" }, source: "hive" }])).rejects.toThrow(/ENOSPC/);
    expect(store.current()).toMatchObject({ doc: { mode: "TEST_MODE" }, version: 0 });
    expect(store.status()).toMatchObject({
      failures: 1,
      last_error: expect.stringContaining("ENOSPC"),
      restored: true,
    });
  });

  test("a posted __proto__ key stays plain data and never reaches the prototype", async () => {
    using dir = tempDir();
    const store = await openStore({
      persistence: createJsonFilePersistence(join(dir.path, "m.json")),
    });
    const set = JSON.parse('{"__proto__": {"is_paused": true}, "mode": "X"}') as Record<string, unknown>;
    const state = await store.commit([{ seq: 1, set, source: "hive" }]);
    expect(Object.getPrototypeOf(state.doc)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).is_paused).toBeUndefined();
    expect(JSON.parse(JSON.stringify(state.doc))).toEqual(
      JSON.parse('{"__proto__": {"is_paused": true}, "mode": "X"}'),
    );
  });
});

describe("restart in process", () => {
  test("the persisted document wins over the default, with its cache_timestamp", async () => {
    using dir = tempDir();
    let acked: string;
    {
      await using t = await startApp({ home: dir.path });
      await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
      acked = (await post(t.app, "/meta/metrics", fixture("stress_post"))).body.timestamp as string;
    }
    await using t = await startApp({ home: dir.path });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc).toEqual(
      served({ ...fixture("meta_metrics_paused_post"), ...fixture("stress_post"), cache_timestamp: acked }),
    );
    expect((await get(t.app, "/status")).body.persistence).toMatchObject({ restored: true, corrupt_moved_to: null });
  });

  test("a corrupt file at start-up: the default document with the guardian paused until it reports", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state"));
    writeFileSync(join(dir.path, "state", "meta_metrics.json"), '{"guardian": {"is_paused": tr');
    await using t = await startApp({ home: dir.path });
    const doc = (await get(t.app, "/meta/metrics")).body;
    // The last guardian state is unknown: a wrong "not paused" would let the router trade.
    expect(doc).toMatchObject({
      per_agent: {},
      mode: "TEST_MODE",
      guardian: { is_paused: true, drawdown: 0, reason: expect.stringContaining("persisted state was corrupt") },
    });
    expect(logged(t.log, "persisted state corrupt")).toEqual([
      expect.objectContaining({ level: "ERROR", problem: "not valid JSON (29 bytes)" }),
    ]);
    expect(logged(t.log, "persisted state corrupt, moved aside")).toEqual([
      expect.objectContaining({ level: "WARN", moved_to: expect.stringContaining(".corrupt-") }),
    ]);
    expect(logged(t.log, "guardian paused until it reports: persisted state was corrupt")).toHaveLength(1);
    const aside = readdirSync(join(dir.path, "state")).filter((f) => f.includes(".corrupt-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir.path, "state", aside[0] as string), "utf8")).toBe('{"guardian": {"is_paused": tr');
    expect((await get(t.app, "/status")).body.persistence).toMatchObject({
      corrupt_moved_to: expect.stringContaining(".corrupt-"),
    });
    // The hive's next snapshot replaces the fail-safe pause with the real state.
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(
      servedGuardian(fixture("meta_metrics_post").guardian),
    );
  });

  test("a missing file (first start) keeps the contract's default: not paused", async () => {
    await using t = await startApp();
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual({
      is_paused: false,
      drawdown: 0,
      reason: "Normal operation",
      paused_by: null,
      paused_since: null,
    });
  });
});
