// The agents' files across replicas (issue 12) with the file store: which replica holds
// them (holder.ts), the hidden key of their shared copy (never served, refused in a POST,
// never written in the embedded mode), and two replicas' guardians and agent files over one
// store, as two hosts' would be over the shared one (the PostgreSQL tests run the same over
// a real database: test/store/postgres-files.test.ts).
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryLogger } from "../../src/log/logger";
import { AGENTS_FILES, createFilesHolder } from "../../src/modules/agent-files/holder";
import { AGENT_FILES_KEY } from "../../src/modules/agent-files/model";
import { regimeJson } from "../../src/modules/agent-files/service";
import { GUARDIAN_SOURCES_KEY } from "../../src/modules/guardian/resolve";
import { PAUSE_FILE } from "../../src/modules/guardian/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { openStore } from "../../src/store/store";
import { fixture, fixtureText, get, logged, post, startApp, tempDir, waitFor } from "../helpers";
import { startReplica } from "../replica";

function write(home: string, relative: string, content: string): void {
  mkdirSync(join(home, relative, ".."), { recursive: true });
  writeFileSync(join(home, relative), content);
}

const REGIME = "runtime/market_regime.json";

/** A file store in its own directory (not a NeoLight home: it holds no agent file). */
function fileStore(dir: string) {
  mkdirSync(join(dir, "store"), { recursive: true });
  return openStore({ persistence: createJsonFilePersistence(join(dir, "store", "meta_metrics.json")) });
}

describe("a replica holds the agents' files once it has seen one of them", () => {
  test("none at start-up: not holding; one seen later: holding, said once, for good", () => {
    using home = tempDir();
    const log = createMemoryLogger();
    const holder = createFilesHolder(home.path, log);
    let told = 0;
    holder.onHold(() => told++);
    expect(holder.holds()).toBe(false);
    holder.saw(false, join(home.path, REGIME));
    expect(holder.holds()).toBe(false);
    holder.saw(true, join(home.path, REGIME));
    holder.saw(true, join(home.path, PAUSE_FILE));
    // ? Sticky: the pause file is deleted to clear a cooldown, and that must still be committed.
    holder.saw(false, join(home.path, PAUSE_FILE));
    expect({ holds: holder.holds(), told }).toEqual({ holds: true, told: 1 });
    expect(logged(log, "agents' files seen here: this replica commits their readings")).toEqual([
      expect.objectContaining({ path: join(home.path, REGIME), at: "watch" }),
    ]);
  });

  test.each(AGENTS_FILES.map((relative) => [relative]))("%s present at start-up: holding at once", (relative) => {
    using home = tempDir();
    write(home.path, relative, "{}");
    expect(createFilesHolder(home.path, createMemoryLogger()).holds()).toBe(true);
  });

  test("the agent files' watcher tells the holder", async () => {
    using home = tempDir();
    const base = await fileStore(home.path);
    await using r = await startReplica({ home: home.path, base, shared: true });
    expect(r.holder.holds()).toBe(false);
    write(home.path, REGIME, fixtureText("market_regime"));
    await r.files.regime.refresh();
    expect(r.holder.holds()).toBe(true);
  });
});

describe("the shared copy's key is the service's own", () => {
  test("a POST may not set it: 422, nothing stored", async () => {
    await using t = await startApp();
    const forged = { market_regime: { content: { regime: "BULL", timestamp: "x" }, read_at: null, changed_at: null } };
    const res = await post(t.app, "/meta/metrics", { [AGENT_FILES_KEY]: forged, mode: "LIVE_MODE" });
    expect(res).toMatchObject({ status: 422, body: { code: 422 } });
    expect(t.services.store.current().doc).toEqual({});
    const atlas = await post(t.app, "/atlas/update", { brain: {}, allocations: {}, timestamp: "t" });
    expect(atlas.status).toBe(200);
    expect(Object.hasOwn(t.services.store.current().doc, AGENT_FILES_KEY)).toBe(false);
  });

  test("embedded: the files are served, and no copy is written to the state file", async () => {
    await using t = await startApp();
    write(t.home, REGIME, fixtureText("market_regime"));
    await t.services.files.regime.refresh();
    expect((await post(t.app, "/meta/metrics", { mode: "LIVE_MODE" })).status).toBe(200);
    expect((await get(t.app, "/meta/regime")).body).toEqual(fixture("market_regime"));
    const persisted = JSON.parse(readFileSync(t.config.metricsPath, "utf8")) as Record<string, unknown>;
    expect(persisted.mode).toBe("LIVE_MODE");
    expect(Object.hasOwn(persisted, AGENT_FILES_KEY)).toBe(false);
  });

  test("a stored copy (a shared replica's local copy) is never served, nor used in the embedded mode", async () => {
    using home = tempDir();
    const copy = { market_regime: { content: fixture("market_regime"), read_at: null, changed_at: null } };
    write(home.path, "state/meta_metrics.json", JSON.stringify({ mode: "LIVE_MODE", [AGENT_FILES_KEY]: copy }));
    await using t = await startApp({ home: home.path });
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.mode).toBe("LIVE_MODE");
    expect(Object.hasOwn(doc, AGENT_FILES_KEY)).toBe(false);
    expect((await get(t.app, "/meta/regime")).body).toMatchObject({ regime: "UNKNOWN" });
  });
});

describe("two replicas over one store: the holder shares, the other serves", () => {
  async function pair() {
    const a = tempDir();
    const b = tempDir();
    const base = await fileStore(a.path);
    const holder = await startReplica({ home: a.path, base, shared: true });
    const other = await startReplica({ home: b.path, base, shared: true, join: holder });
    return {
      holder,
      other,
      async [Symbol.asyncDispose]() {
        await other[Symbol.asyncDispose]();
        await holder[Symbol.asyncDispose]();
        a[Symbol.dispose]();
        b[Symbol.dispose]();
      },
    };
  }

  test("the regime file on the holder is served by the other, with the holder's dates; its removal too", async () => {
    await using p = await pair();
    write(p.holder.home, REGIME, fixtureText("market_regime"));
    utimesSync(join(p.holder.home, REGIME), new Date("2025-11-03T21:00:00Z"), new Date("2025-11-03T21:00:00Z"));
    await waitFor(() => p.other.files.regime.json() !== null, "the other serves the regime");
    expect(JSON.parse(regimeJson(p.other.files))).toEqual(fixture("market_regime"));
    expect(p.other.files.regime.state()).toMatchObject({
      present: false,
      serving: "shared",
      last_good_change: "2025-11-03T21:00:00.000Z",
      last_good_read: p.holder.files.regime.state().last_good_read,
    });
    expect(p.other.holder.holds()).toBe(false);
    expect(p.other.submitted).toEqual([]);

    rmSync(join(p.holder.home, REGIME));
    await waitFor(() => p.other.files.regime.json() === null, "the other serves the default again");
    expect(JSON.parse(regimeJson(p.other.files))).toMatchObject({ regime: "UNKNOWN" });
    expect(p.other.files.regime.state().serving).toBe("none");
  });

  test("a local copy wins over the shared one", async () => {
    await using p = await pair();
    write(p.holder.home, REGIME, fixtureText("market_regime"));
    await waitFor(() => p.other.files.regime.json() !== null, "shared");
    const own = { ...fixture("market_regime"), regime: "BEAR" };
    write(p.other.home, REGIME, JSON.stringify(own));
    await p.other.files.regime.refresh();
    expect(JSON.parse(regimeJson(p.other.files))).toEqual(own);
    expect(p.other.files.regime.state().serving).toBe("file");
  });

  test("commits are coalesced: a burst of rewrites is at most one a second, an identical rewrite none", async () => {
    await using p = await pair();
    const shares = () => p.holder.submitted.filter((s) => Object.hasOwn(s.set, AGENT_FILES_KEY));
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      write(p.holder.home, REGIME, JSON.stringify({ ...fixture("market_regime"), confidence: i / 100 }));
      await p.holder.files.regime.refresh();
    }
    await waitFor(
      () => (p.other.files.regime.value() as { confidence?: number } | undefined)?.confidence === 0.19,
      "the last rewrite shared",
    );
    const elapsedS = (Date.now() - started) / 1000;
    expect(shares().length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    const before = shares().length;
    // The same content again, its mtime moved by less than SHARED_DATES_REFRESH_MS.
    write(p.holder.home, REGIME, JSON.stringify({ ...fixture("market_regime"), confidence: 0.19 }));
    await p.holder.files.regime.refresh();
    write(p.holder.home, "runtime/allocations_override.json", fixtureText("allocations_override"));
    await p.holder.files.override.refresh();
    await waitFor(() => p.other.files.override.json() !== null, "the override shared");
    // ? One commit for the override; the identical regime rewrite added none of its own.
    expect(shares().length).toBe(before + 1);
  });

  test("a pause file on the holder pauses the other; the other, with no file, never resumes it", async () => {
    await using p = await pair();
    write(p.holder.home, PAUSE_FILE, JSON.stringify({ paused: true, reason: "Auto rate-limit cooldown" }));
    await p.holder.guardian.file.refresh();
    await waitFor(() => p.other.guardian.view().guardian.is_paused, "the other serves paused");
    // ? Its own file is absent: checked and synced again, it must commit nothing.
    await p.other.guardian.ready();
    expect(p.other.guardian.view()).toMatchObject({
      guardian: { is_paused: true, paused_by: "pause_file", reason: "Auto rate-limit cooldown" },
      sources: { pause_file: { held_here: false, present: true, active: true } },
    });
    expect(p.other.submitted).toEqual([]);
    expect(p.other.holder.holds()).toBe(false);

    rmSync(join(p.holder.home, PAUSE_FILE));
    await waitFor(() => !p.other.guardian.view().guardian.is_paused, "the holder's removal resumes everyone");
  });

  test("an operator pause on the other commits at once and writes no file there", async () => {
    await using p = await pair();
    const served = await p.other.guardian.pause(
      { reason: "investigating", minutes: 30 },
      { address: "10.0.0.2", userAgent: null },
    );
    expect(served).toMatchObject({ is_paused: true, paused_by: "operator", reason: "investigating" });
    expect(p.holder.guardian.view().guardian).toMatchObject({ is_paused: true, paused_by: "operator" });
    expect(p.other.guardian.file.state().present).toBe(false);
    expect(p.other.holder.holds()).toBe(false);
    expect(logged(p.other.log, "guardian paused by operator")).toEqual([
      expect.objectContaining({ file_written_by_holder: true }),
    ]);
    const resumed = await p.other.guardian.resume({}, { address: "10.0.0.2", userAgent: null });
    expect(resumed).toMatchObject({ is_paused: false });
  });

  // ? One file store has one processor: the other's commit reaches the holder as its own, not
  // as another replica's (the PostgreSQL tests have the store tell it). A sync of the holder
  // (what that notification triggers) stands in for it here.
  test("the holder writes another replica's operator pause into its file, once; a later file of an agent wins", async () => {
    await using p = await pair();
    write(p.holder.home, REGIME, fixtureText("market_regime"));
    await p.holder.files.regime.refresh();
    expect(p.holder.holder.holds()).toBe(true);
    await p.other.guardian.pause({ reason: "investigating", minutes: 30 }, { address: "10.0.0.2", userAgent: null });
    await p.holder.guardian.ready();
    const path = join(p.holder.home, PAUSE_FILE);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
      paused: true,
      reason: "investigating",
      until: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
      by: "dashboard",
    });
    expect(p.holder.guardian.view().sources.pause_file).toMatchObject({ held_here: true, present: true, active: true });
    // ? Read back, the file agrees with the store: the holder commits no reading of its own.
    expect(p.holder.submitted.filter((s) => Object.hasOwn(s.set, GUARDIAN_SOURCES_KEY))).toEqual([]);

    // An agent's cooldown over it, its mtime behind the operator's action (a skewed clock).
    const cooldown = { paused: true, reason: "Auto rate-limit cooldown (3 hits)" };
    write(p.holder.home, PAUSE_FILE, JSON.stringify(cooldown));
    utimesSync(path, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    await p.holder.guardian.file.refresh();
    await waitFor(() => p.other.guardian.view().guardian.reason === cooldown.reason, "the agent's file committed");
    await p.holder.guardian.ready();
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(cooldown);
    expect(logged(p.holder.log, "guardian pause file written for an operator action on another replica")).toHaveLength(
      1,
    );
  });

  test("the holder removes its file for another replica's operator resume", async () => {
    await using p = await pair();
    write(p.holder.home, PAUSE_FILE, JSON.stringify({ paused: true, reason: "Auto rate-limit cooldown" }));
    utimesSync(join(p.holder.home, PAUSE_FILE), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await p.holder.guardian.file.refresh();
    await waitFor(() => p.other.guardian.view().guardian.is_paused, "paused");
    const resumed = await p.other.guardian.resume(
      { reason: "cooldown not needed" },
      { address: "10.0.0.2", userAgent: null },
    );
    expect(resumed).toMatchObject({ is_paused: false, reason: "resumed by operator: cooldown not needed" });
    await p.holder.guardian.ready();
    expect(existsSync(join(p.holder.home, PAUSE_FILE))).toBe(false);
    expect(p.holder.guardian.view().guardian.is_paused).toBe(false);
  });
});
