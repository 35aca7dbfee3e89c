// A corrupt or schema-breaking state file at start-up (issue 15, items 1 and 2): the
// guardian is served paused at once, whatever the disk allows; the corrupt file stays at
// its path until a write can replace it, so a restart before then pauses again; and a file
// whose safety keys break the POST schema is corrupt too. Through app.handle, with the real
// JSON-file persistence on a real temporary directory; a failing disk is the real
// persistence with its save failing as a full disk's does (the real full disk, a tmpfs, is
// in test/e2e/faults.test.ts).
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { type Persistence, UNSAVED_RETRY_MS } from "../../src/store/store";
import {
  fixture,
  get,
  type Json,
  logged,
  post,
  servedGuardian,
  startApp,
  strictJson,
  tempDir,
  waitFor,
} from "../helpers";

const TRUNCATED = '{"guardian": {"is_paused": false, "drawdown": 1, "rea';

/** The real persistence of `home`, whose saves fail with ENOSPC while `disk.full`. */
function diskOf(home: string) {
  const real = createJsonFilePersistence(join(home, "state", "meta_metrics.json"));
  const disk = { full: true, saves: 0 };
  const persistence: Persistence = {
    path: real.path,
    load: () => real.load(),
    keepAside: () => real.keepAside(),
    async save(state) {
      disk.saves++;
      if (disk.full) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      await real.save(state);
    },
  };
  return { disk, persistence };
}

function writeState(home: string, text: string): string {
  mkdirSync(join(home, "state"), { recursive: true });
  const path = join(home, "state", "meta_metrics.json");
  writeFileSync(path, text);
  return path;
}

const asides = (home: string) => readdirSync(join(home, "state")).filter((f) => f.includes(".corrupt-"));
const guardianOf = async (t: { app: Parameters<typeof get>[0] }) =>
  (await get(t.app, "/meta/metrics")).body.guardian as Json;
const persistenceOf = async (t: { app: Parameters<typeof get>[0] }) =>
  (await get(t.app, "/status")).body.persistence as Json;

describe("a corrupt state file on a disk that cannot be written (item 1)", () => {
  test("paused from the first request, retried every UNSAVED_RETRY_MS, the file left in place until a write succeeds", async () => {
    using dir = tempDir();
    const path = writeState(dir.path, TRUNCATED);
    const { disk, persistence } = diskOf(dir.path);
    {
      await using t = await startApp({ home: dir.path, overrides: { persistence } });
      // The first request already sees the pause, though nothing could be written.
      expect(await guardianOf(t)).toEqual(
        servedGuardian({
          is_paused: true,
          drawdown: 0,
          reason: expect.stringContaining("persisted state was corrupt (not valid JSON"),
        }),
      );
      expect(await persistenceOf(t)).toMatchObject({
        corrupt_found: expect.stringMatching(/^not valid JSON/),
        corrupt_moved_to: null,
        unsaved_keys: ["guardian"],
        unsaved_retry_ms: UNSAVED_RETRY_MS,
        last_error: expect.stringContaining("ENOSPC"),
      });
      expect(logged(t.log, "served state not on disk yet, retrying")).toEqual([
        expect.objectContaining({ level: "ERROR", keys: ["guardian"], retry_ms: UNSAVED_RETRY_MS, attempts: 1 }),
      ]);
      // It keeps trying (one ERROR line a minute, not one per attempt), and the file stays.
      await waitFor(() => disk.saves >= 3, "retries");
      expect(logged(t.log, "served state not on disk yet, retrying")).toHaveLength(1);
      expect(readFileSync(path, "utf8")).toBe(TRUNCATED);
      // A post that cannot be written changes nothing: still paused.
      expect((await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" })).status).toBe(503);
      expect((await guardianOf(t)).is_paused).toBe(true);
    }
    // A restart before the disk heals finds the corrupt file again: paused again.
    {
      const again = diskOf(dir.path);
      await using t = await startApp({ home: dir.path, overrides: { persistence: again.persistence } });
      expect((await guardianOf(t)).is_paused).toBe(true);
      expect(readFileSync(path, "utf8")).toBe(TRUNCATED);

      // The disk heals: the retry writes the pause and only now is the file replaced.
      again.disk.full = false;
      const status = await waitFor(async () => {
        const p = await persistenceOf(t);
        return p.corrupt_moved_to !== null ? p : null;
      }, "the retry to write the pause");
      expect(status).toMatchObject({ unsaved_keys: [], last_error: null });
      expect(readFileSync(status.corrupt_moved_to as string, "utf8")).toBe(TRUNCATED);
      expect(JSON.parse(readFileSync(path, "utf8")).guardian).toEqual(await guardianOf(t));
      expect(logged(t.log, "persisted state corrupt, moved aside")).toHaveLength(1);
      expect(logged(t.log, "unsaved state written")).toEqual([expect.objectContaining({ keys: ["guardian"] })]);
    }
    // From now on the file is the pause: a plain restart is paused, and nothing more is kept aside.
    await using t = await startApp({ home: dir.path });
    expect((await guardianOf(t)).is_paused).toBe(true);
    expect(await persistenceOf(t)).toMatchObject({ corrupt_found: null, unsaved_keys: [] });
    // Each run that found the corrupt file kept a name for it; every one holds it unchanged.
    const kept = asides(dir.path);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.map((f) => readFileSync(join(dir.path, "state", f), "utf8"))).toEqual(kept.map(() => TRUNCATED));
  });

  test.each([
    ["the hive's snapshot", fixture("meta_metrics_post"), fixture("meta_metrics_post").guardian as Json],
    ["a stress-runner post (no guardian)", fixture("stress_post"), undefined as Json | undefined],
  ])(
    "once the disk heals, %s writes the pause or replaces it, and keeps the corrupt file",
    async (_name, body, guardian) => {
      using dir = tempDir();
      const path = writeState(dir.path, TRUNCATED);
      const { disk, persistence } = diskOf(dir.path);
      await using t = await startApp({ home: dir.path, overrides: { persistence } });
      const paused = await guardianOf(t);
      disk.full = false;
      expect((await post(t.app, "/meta/metrics", body)).status).toBe(200);
      // A guardian in the body supersedes the pause; without one the pause is what got written.
      const expected = guardian === undefined ? paused : servedGuardian(guardian);
      expect(await guardianOf(t)).toEqual(expected);
      expect(JSON.parse(readFileSync(path, "utf8")).guardian).toEqual(expected);
      const status = await persistenceOf(t);
      // ? Read before toMatchObject: bun's asymmetric matchers replace the fields they matched.
      const kept = status.corrupt_moved_to as string;
      expect(readFileSync(kept, "utf8")).toBe(TRUNCATED);
      expect(status).toMatchObject({ unsaved_keys: [], corrupt_moved_to: expect.stringContaining(".corrupt-") });
    },
  );

  test("the commit listeners see the pause as the state before the first commit", async () => {
    using dir = tempDir();
    writeState(dir.path, TRUNCATED);
    const { disk, persistence } = diskOf(dir.path);
    await using t = await startApp({ home: dir.path, overrides: { persistence } });
    expect((t.services.store.current().doc.guardian as Json).is_paused).toBe(true);
    const seen: unknown[] = [];
    t.services.processor.onCommit((state) => seen.push((state.doc.guardian as Json).is_paused));
    disk.full = false;
    expect((await post(t.app, "/meta/metrics", fixture("stress_post"))).status).toBe(200);
    expect(seen).toEqual([true]);
  });
});

// The Go original's file, or a hand edit: it parses, but the router would read "not paused"
// (is_paused missing, null, a string).
const BROKEN_GUARDIANS: [string, string, RegExp][] = [
  ["a guardian without is_paused", '{"guardian": {"drawdown": 9, "reason": "dd"}}', /guardian\/is_paused/],
  ["guardian: null", '{"guardian": null}', /guardian: Expected object/],
  ["guardian: {}", '{"guardian": {}}', /guardian\/is_paused/],
  [
    'is_paused: "true"',
    '{"guardian": {"is_paused": "true", "drawdown": 1, "reason": "x"}}',
    /guardian\/is_paused: Expected boolean/,
  ],
  [
    "an unknown breaker state",
    '{"breakers": {"quote_state": "BROKEN", "trade_state": "CLOSED"}, "guardian": {"is_paused": false, "drawdown": 0, "reason": "ok"}}',
    /breakers\/quote_state/,
  ],
  ["mode: 42", '{"mode": 42}', /mode: Expected string/],
];

describe("a state file that parses but breaks a safety key's schema (item 2)", () => {
  test.each(BROKEN_GUARDIANS)("%s: corrupt, paused, the rest kept, the file kept aside", async (_name, text, why) => {
    using dir = tempDir();
    const perAgent = fixture("meta_metrics_post").per_agent;
    const content = `${text.slice(0, -1)}, "per_agent": ${JSON.stringify(perAgent)}}`;
    const path = writeState(dir.path, content);
    await using t = await startApp({ home: dir.path });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.guardian).toEqual(
      servedGuardian({
        is_paused: true,
        drawdown: 0,
        reason: expect.stringContaining("persisted state was corrupt (schema: "),
      }),
    );
    // The sections that are valid are still served; a broken safety key falls back to the default.
    expect(doc.per_agent).toEqual(perAgent);
    expect(doc.breakers).toEqual({ quote_state: "CLOSED", trade_state: "CLOSED" });
    expect(typeof doc.mode).toBe("string");
    const status = await persistenceOf(t);
    expect(status).toMatchObject({ restored: true, corrupt_found: expect.stringMatching(why), unsaved_keys: [] });
    expect(readFileSync(status.corrupt_moved_to as string, "utf8")).toBe(content);
    expect(JSON.parse(readFileSync(path, "utf8")).guardian).toEqual(doc.guardian);
    expect(logged(t.log, "persisted state corrupt")).toEqual([
      expect.objectContaining({ level: "ERROR", problem: expect.stringMatching(why) }),
    ]);
  });

  test("a figure that breaks its schema is served as null, not paused, the file not corrupt (item 3's rule)", async () => {
    using dir = tempDir();
    const hive = fixture("meta_metrics_post");
    const agent = Object.keys(hive.per_agent as Json)[0] as string;
    const content = JSON.stringify({
      ...hive,
      per_agent: { [agent]: { ...(hive.per_agent as Record<string, Json>)[agent], sharpe_30d: "high", pnl_1d: null } },
      summary: { total_agents: -1, total_strategies: 2 },
    });
    writeState(dir.path, content);
    await using t = await startApp({ home: dir.path });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.guardian).toEqual(servedGuardian(hive.guardian));
    expect((doc.per_agent as Record<string, Json>)[agent]).toMatchObject({ sharpe_30d: null, pnl_1d: null });
    expect(doc.summary).toEqual({ total_agents: null, total_strategies: 2 });
    expect(await persistenceOf(t)).toMatchObject({ corrupt_found: null, corrupt_moved_to: null });
    expect(asides(dir.path)).toEqual([]);
    expect(logged(t.log, "persisted values stored as null")).toEqual([
      expect.objectContaining({
        level: "WARN",
        paths: expect.arrayContaining([
          `per_agent/${agent}/sharpe_30d`,
          `per_agent/${agent}/pnl_1d`,
          "summary/total_agents",
        ]),
      }),
    ]);
  });
});

describe("a state file holding a lone surrogate (a hand edit; issue 15 item 12)", () => {
  test("is served with U+FFFD in its place, as strict JSON, with one WARN naming where; not corrupt", async () => {
    using dir = tempDir();
    const hive = fixture("meta_metrics_post");
    // What JSON.stringify (and Python's json.dumps) write for a lone surrogate.
    const content = JSON.stringify({ ...hive, stress_last: { "run\ud800": 1, note: "x\udc00" } });
    writeState(dir.path, content);
    await using t = await startApp({ home: dir.path });
    const res = await t.app.handle(new Request("http://localhost/meta/metrics"));
    const doc = strictJson(await res.text()) as Json;
    expect(doc.guardian).toEqual(servedGuardian(hive.guardian));
    expect(doc.stress_last).toEqual({ "run\ufffd": 1, note: "x\ufffd" });
    expect(await persistenceOf(t)).toMatchObject({ corrupt_found: null, corrupt_moved_to: null });
    expect(logged(t.log, "persisted lone surrogates replaced by U+FFFD")).toEqual([
      expect.objectContaining({ level: "WARN", paths: ["stress_last/run\ufffd", "stress_last/note"], more: 0 }),
    ]);
  });
});
