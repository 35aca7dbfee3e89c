// The agents' files and the pause file across replicas (issue 12) over a real PostgreSQL:
// two replicas in this process, each with its own NEOLIGHT_HOME (the agents' host's, and
// another host's with no files), each with its own shared store on one database. Each test
// has a fresh database, dropped afterwards; with no server the tests skip and say so.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryLogger } from "../../src/log/logger";
import { AGENT_FILES_KEY, type SharedAgentFiles } from "../../src/modules/agent-files/model";
import { regimeJson } from "../../src/modules/agent-files/service";
import { PAUSE_FILE } from "../../src/modules/guardian/service";
import { pauseAfterCorruption, pauseWhileUnreachable, restoreDocument } from "../../src/modules/meta/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { openPostgresStore } from "../../src/store/postgres/store";
import { fixture, fixtureText, logged, tempDir, waitFor } from "../helpers";
import { createTestDatabase, serverAnswers, type TestDatabase } from "../postgres";
import { type Replica, startReplica } from "../replica";

// ? With no server, createTestDatabase says so on stderr (once) and the describe skips.
const noServer = !(await serverAnswers());

const REGIME = "runtime/market_regime.json";
const OPERATOR = { address: "10.0.0.2", userAgent: "curl/8" };

function write(home: string, relative: string, content: string): void {
  mkdirSync(join(home, relative, ".."), { recursive: true });
  writeFileSync(join(home, relative), content);
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A fresh database, dropped after the test. */
async function database(): Promise<TestDatabase> {
  const db = (await createTestDatabase()) as TestDatabase;
  cleanup.push(() => db.drop());
  return db;
}

/** A replica of `db` on `home` (a NeoLight home: the agents' host's, or one without their files). */
async function replica(db: TestDatabase, home: string): Promise<Replica> {
  const log = createMemoryLogger();
  mkdirSync(join(home, "state"), { recursive: true });
  const base = await openPostgresStore({
    url: db.url,
    log,
    restore: restoreDocument(log),
    failSafe: pauseWhileUnreachable(log),
    corruptFailSafe: pauseAfterCorruption(log),
    staleMs: 30_000,
    commitTimeoutMs: 2000,
    localCopy: createJsonFilePersistence(join(home, "state", "meta_metrics.json")),
  });
  const r = await startReplica({ home, base, shared: true, external: (l) => base.onExternal(l) });
  const dispose = r[Symbol.asyncDispose].bind(r);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= Promise.resolve(dispose());
    return closing;
  };
  cleanup.push(close);
  return Object.assign(r, { [Symbol.asyncDispose]: close });
}

/** A NeoLight home removed after the test. */
function home(): string {
  const dir = tempDir();
  cleanup.push(() => dir[Symbol.dispose]());
  return dir.path;
}

describe.skipIf(noServer)("two replicas on one database: the holder's files are served by the other", () => {
  test("the regime file on the holder is served by the other, with the holder's read time", async () => {
    const db = await database();
    const agents = home();
    write(agents, REGIME, fixtureText("market_regime"));
    const holder = await replica(db, agents);
    const other = await replica(db, home());
    expect({ holder: holder.holder.holds(), other: other.holder.holds() }).toEqual({ holder: true, other: false });
    await waitFor(() => other.files.regime.json() !== null, "the other serves the holder's regime");
    expect(JSON.parse(regimeJson(other.files))).toEqual(fixture("market_regime"));
    // ? The dates of the read the holder committed (it re-reads a file until its mtime is
    // settled, and commits an identical content again only once its mtime moved a minute).
    const shares = holder.submitted.filter((s) => Object.hasOwn(s.set, AGENT_FILES_KEY));
    const committed = (shares.at(-1)?.set[AGENT_FILES_KEY] as SharedAgentFiles | undefined)?.market_regime;
    expect(other.files.regime.state()).toMatchObject({
      serving: "shared",
      present: false,
      last_good_read: committed?.read_at,
      last_good_change: holder.files.regime.state().last_good_change,
    });
    expect(committed?.read_at).toEqual(expect.stringMatching(/Z$/));

    const bear = { ...fixture("market_regime"), regime: "BEAR" };
    write(agents, REGIME, JSON.stringify(bear));
    await waitFor(() => (other.files.regime.value() as { regime?: string })?.regime === "BEAR", "the rewrite");
    // A replica started later has it from its first load.
    const late = await replica(db, home());
    expect(JSON.parse(regimeJson(late.files))).toEqual(bear);
    expect(other.submitted.length + late.submitted.length).toBe(0);
  });

  test("the pause file on the holder: the other serves paused, and resumed once it is removed", async () => {
    const db = await database();
    const agents = home();
    const holder = await replica(db, agents);
    const other = await replica(db, home());
    write(agents, PAUSE_FILE, JSON.stringify({ paused: true, reason: "Auto rate-limit cooldown (12 hits)" }));
    await waitFor(() => other.guardian.view().guardian.is_paused, "the other serves the holder's pause");
    expect(other.guardian.view()).toMatchObject({
      guardian: { is_paused: true, paused_by: "pause_file", reason: "Auto rate-limit cooldown (12 hits)" },
      sources: { pause_file: { held_here: false, present: true, active: true } },
    });
    expect(holder.holder.holds()).toBe(true);
    rmSync(join(agents, PAUSE_FILE));
    await waitFor(() => !other.guardian.view().guardian.is_paused, "the other serves the removal");
  });

  test("a replica with no file never resumes a pause: not while running, not when it (re)starts alone", async () => {
    const db = await database();
    const agents = home();
    write(agents, PAUSE_FILE, JSON.stringify({ paused: true, reason: "held by the agents' host" }));
    const holder = await replica(db, agents);
    expect(holder.guardian.view().guardian.is_paused).toBe(true);
    await holder[Symbol.asyncDispose]();

    const elsewhere = home();
    const first = await replica(db, elsewhere);
    // ? ready() read its (absent) file and synced: whatever it would commit is committed.
    await first.guardian.ready();
    expect(first.guardian.view().guardian).toMatchObject({ is_paused: true, reason: "held by the agents' host" });
    expect(first.submitted).toEqual([]);
    await first[Symbol.asyncDispose]();
    const again = await replica(db, elsewhere);
    expect(again.guardian.view().guardian.is_paused).toBe(true);
    expect(again.submitted).toEqual([]);
  });

  test("an operator pause on the other pauses both at once, and the holder writes the file; a resume removes it", async () => {
    const db = await database();
    const agents = home();
    write(agents, REGIME, fixtureText("market_regime"));
    const holder = await replica(db, agents);
    const other = await replica(db, home());
    const served = await other.guardian.pause({ reason: "checking fills", minutes: 60 }, OPERATOR);
    expect(served).toMatchObject({ is_paused: true, paused_by: "operator", reason: "checking fills" });
    const path = join(agents, PAUSE_FILE);
    await waitFor(
      () => logged(holder.log, "guardian pause file written for an operator action on another replica").length > 0,
      "the holder writes the pause file",
    );
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file).toEqual({
      paused: true,
      reason: "checking fills",
      until: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
      by: "dashboard",
    });
    expect(logged(holder.log, "guardian pause file written for an operator action on another replica")).toEqual([
      expect.objectContaining({ action: "pause", client: "10.0.0.2" }),
    ]);
    await waitFor(() => holder.guardian.view().sources.pause_file.content !== null, "the holder reads it back");
    expect(holder.guardian.view().guardian).toMatchObject({ is_paused: true, paused_by: "operator" });
    expect(existsSync(join(other.home, PAUSE_FILE))).toBe(false);

    const resumed = await other.guardian.resume({ reason: "fills reconciled" }, OPERATOR);
    expect(resumed).toMatchObject({ is_paused: false });
    await waitFor(() => !existsSync(path), "the holder removes the pause file");
    await waitFor(() => !holder.guardian.view().sources.pause_file.present, "the holder reads it gone");
    expect(holder.guardian.view().guardian.is_paused).toBe(false);
    expect(other.guardian.view().guardian.is_paused).toBe(false);
  });

  test("a pause right after a resume on the other is written too (the holder's removal is older than it)", async () => {
    const db = await database();
    const agents = home();
    write(agents, REGIME, fixtureText("market_regime"));
    const holder = await replica(db, agents);
    const other = await replica(db, home());
    const path = join(agents, PAUSE_FILE);
    for (const reason of ["first", "second", "third"]) {
      await other.guardian.pause({ reason }, OPERATOR);
      await waitFor(() => holder.guardian.view().sources.pause_file.content?.reason === reason, `${reason} written`);
      await other.guardian.resume({}, OPERATOR);
      // ? Paused again as soon as the file is gone, before the holder's watcher has seen it go.
      await waitFor(() => !existsSync(path), `${reason} removed`, 10_000, 1);
    }
    await other.guardian.pause({ reason: "last" }, OPERATOR);
    await waitFor(() => holder.guardian.view().sources.pause_file.content?.reason === "last", "last written");
    expect(JSON.parse(readFileSync(path, "utf8"))).toMatchObject({ paused: true, reason: "last", by: "dashboard" });
  });

  test("a holder that starts after an operator pause made elsewhere writes the file (a pause wins)", async () => {
    const db = await database();
    const other = await replica(db, home());
    await other.guardian.pause({ reason: "while the agents' host was down" }, OPERATOR);
    const agents = home();
    write(agents, REGIME, fixtureText("market_regime"));
    const holder = await replica(db, agents);
    await waitFor(
      () => logged(holder.log, "guardian pause file written for an operator action on another replica").length > 0,
      "the holder writes the pause file",
    );
    expect(JSON.parse(readFileSync(join(agents, PAUSE_FILE), "utf8"))).toMatchObject({
      paused: true,
      reason: "while the agents' host was down",
      by: "dashboard",
    });
    expect(holder.guardian.view().guardian.is_paused).toBe(true);
    expect(other.guardian.view().guardian.is_paused).toBe(true);
  });
});
