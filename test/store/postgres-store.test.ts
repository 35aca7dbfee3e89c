// The PostgreSQL document store against a real server (test/postgres.ts): two stores on one
// database are two replicas. Outages are real sockets: a TCP proxy in front of the server
// refuses or swallows the traffic. Nothing here waits for time: every wait is a condition.
import { afterEach, describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { SQL } from "bun";
import { createMemoryLogger, type MemoryLogger } from "../../src/log/logger";
import { GUARDIAN_SOURCES_KEY } from "../../src/modules/guardian/resolve";
import { resolvingStore } from "../../src/modules/guardian/service";
import { pauseAfterCorruption, restoreDocument } from "../../src/modules/meta/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import { PersistenceStatus } from "../../src/store/model";
import { migrate } from "../../src/store/postgres/migrate";
import { openPostgresStore, type PostgresStoreOptions } from "../../src/store/postgres/store";
import { type SharedStore, StoreStatus } from "../../src/store/shared";
import { type DocumentState, type DocumentUpdate, type JsonObject, PersistenceError } from "../../src/store/store";
import { tempDir, waitFor } from "../helpers";
import { createTestDatabase, startTcpProxy, type TcpProxy, TEST_PASSWORD, type TestDatabase } from "../postgres";

const available = await createTestDatabase();
await available?.drop();
const skip = available === null;

/** Undone after each test, last first: stores, then the proxies and databases they used. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function proxy(): Promise<TcpProxy> {
  const started = await startTcpProxy();
  cleanups.push(async () => await started[Symbol.asyncDispose]());
  return started;
}

/** A fresh database for one test (dropped after it). */
async function database(): Promise<TestDatabase> {
  const db = (await createTestDatabase()) as TestDatabase;
  cleanups.push(() => db.drop());
  return db;
}

interface Opened {
  store: SharedStore;
  log: MemoryLogger;
  external: { state: DocumentState; batch: readonly DocumentUpdate[] }[];
}

async function open(url: string, options: Partial<PostgresStoreOptions> = {}): Promise<Opened> {
  const log = createMemoryLogger();
  const store = await openPostgresStore({ url, log, ...options });
  cleanups.push(() => store.close());
  const external: Opened["external"] = [];
  store.onExternal((state, batch) => external.push({ state, batch }));
  return { store, log, external };
}

let nextSeq = 1;
function update(set: JsonObject, source: DocumentUpdate["source"] = "hive"): DocumentUpdate {
  return { seq: nextSeq++, set, source };
}

/** Nothing this process printed, showed or threw names the password. */
function expectNoPassword(...things: unknown[]): void {
  for (const thing of things) expect(JSON.stringify(thing)).not.toContain(TEST_PASSWORD);
}

async function rows(url: string): Promise<Record<string, { value: unknown; seq: number }>> {
  const sql = new SQL(url, { max: 1 });
  try {
    const found: Record<string, { value: unknown; seq: number }> = {};
    for (const row of await sql`SELECT key, value, seq FROM neolight_document`) {
      found[row.key] = { value: row.value, seq: Number(row.seq) };
    }
    return found;
  } finally {
    await sql.close();
  }
}

describe.skipIf(skip)("two replicas on one database", () => {
  test("a commit on A is served by B and told to B's onExternal, in order, as source replica", async () => {
    const db = await database();
    const a = await open(db.url);
    const b = await open(db.url);
    const state = await a.store.commit([update({ per_agent: { x: 1 } }), update({ mode: "PAPER_TRADING_MODE" })]);
    expect(state.lastSeq).toBe(2);
    await waitFor(() => b.store.current().lastSeq === 2, "B caught up");
    expect(b.store.current().doc).toEqual({ per_agent: { x: 1 }, mode: "PAPER_TRADING_MODE" });
    expect(b.store.current().updatedAt).toBe(state.updatedAt);
    await waitFor(() => b.external.length > 0, "B's onExternal");
    expect(b.external.flatMap((e) => e.batch)).toEqual([
      { seq: 1, set: { per_agent: { x: 1 } }, source: "replica" },
      { seq: 2, set: { mode: "PAPER_TRADING_MODE" }, source: "replica" },
    ]);
    expect(b.store.storeStatus()).toMatchObject({ kind: "postgres", reachable: true, ready: true, seq: 2 });
    // The shapes /status serves.
    expect(Value.Check(StoreStatus, b.store.storeStatus())).toBe(true);
    expect(Value.Check(PersistenceStatus, a.store.status())).toBe(true);
    expect(a.store.status()).toMatchObject({ writes: 1, failures: 0, path: expect.stringContaining(":***@") });
    expectNoPassword(a.log.lines, b.log.lines, a.store.status(), b.store.storeStatus());
  });

  test("the merge rule across replicas: A's guardian and B's stress_last are both kept", async () => {
    const db = await database();
    const a = await open(db.url);
    const b = await open(db.url);
    const guardian = { is_paused: true, drawdown: 0.07, reason: "drawdown" };
    await a.store.commit([update({ guardian })]);
    // ? B commits without waiting to have caught up: its commit reads A's rows under the lock.
    await b.store.commit([update({ stress_last: { ok: true }, stress_timestamp: "t" })]);
    const both = { guardian, stress_last: { ok: true }, stress_timestamp: "t" };
    expect(b.store.current().doc).toEqual(both);
    await waitFor(() => a.store.current().lastSeq === 2, "A caught up");
    expect(a.store.current().doc).toEqual(both);
    expect(await rows(db.url)).toEqual({
      guardian: { value: guardian, seq: 1 },
      stress_last: { value: { ok: true }, seq: 2 },
      stress_timestamp: { value: "t", seq: 2 },
    });
  });

  test("sequences are consecutive and shared: update i of n is lastSeq - n + 1 + i; a row keeps the seq that last wrote it", async () => {
    const db = await database();
    const a = await open(db.url);
    const b = await open(db.url);
    const first = await a.store.commit([update({ k: 1 }), update({ k: 2, j: 1 }), update({ i: 1 })]);
    expect(first.lastSeq).toBe(3);
    const second = await b.store.commit([update({ k: 3 }), update({ h: 1 })]);
    expect(second.lastSeq).toBe(5);
    expect(await rows(db.url)).toEqual({
      k: { value: 3, seq: 4 },
      j: { value: 1, seq: 2 },
      i: { value: 1, seq: 3 },
      h: { value: 1, seq: 5 },
    });
    const third = await a.store.commit([update({ g: 1 })]);
    expect(third.lastSeq).toBe(6);
    await waitFor(() => b.store.current().lastSeq === 6, "B at the head");
    expect(b.store.current().doc).toEqual(a.store.current().doc);
  });

  test("two replicas opening an empty database at the same moment both become ready", async () => {
    const db = await database();
    const [a, b] = await Promise.all([open(db.url), open(db.url)]);
    expect(a.store.storeStatus().ready).toBe(true);
    expect(b.store.storeStatus().ready).toBe(true);
    const applied = [...a.log.lines, ...b.log.lines].filter((l) => l.message === "database migration applied");
    expect(applied.map((l) => l.version).sort()).toEqual([1, 2]);
  });
});

describe.skipIf(skip)("the merge base is the database's, under the head lock", () => {
  test("B's hive report keeps A's operator pause B had not caught up (the guardian's safety)", async () => {
    const db = await database();
    const a = resolvingStore(await open(db.url).then((o) => o.store));
    // ? B follows nothing: A's pause reaches it only through its own commit's catch-up.
    const opened = await open(db.url, { follow: false });
    const b = resolvingStore(opened.store);
    const at = new Date().toISOString();
    const content = { paused: true, reason: "operator says stop", by: "dashboard" };
    await a.commit([
      update(
        {
          guardian: { is_paused: true, drawdown: 0, reason: "operator says stop" },
          [GUARDIAN_SOURCES_KEY]: {
            pause_file: { state: "content", content },
            operator: { last_action: "pause", at, reason: "operator says stop", client: "127.0.0.1" },
          },
        },
        "operator",
      ),
    ]);
    expect(opened.store.current().lastSeq).toBe(0);
    const bases: JsonObject[] = [];
    const state = await b.commit(
      [update({ guardian: { is_paused: false, drawdown: 0.01, reason: "Normal operation" } }, "hive")],
      (base, updates) => {
        bases.push(base as JsonObject);
        return updates;
      },
    );
    expect(bases[0]?.[GUARDIAN_SOURCES_KEY]).toMatchObject({ pause_file: { state: "content", content } });
    expect(state.doc.guardian).toMatchObject({ is_paused: true, paused_by: "operator", drawdown: 0.01 });
    const stored = await rows(db.url);
    expect(stored.guardian?.value).toMatchObject({ is_paused: true, paused_by: "operator" });
    expect(stored[GUARDIAN_SOURCES_KEY]?.value).toMatchObject({ pause_file: { state: "content", content } });
    // A's change was told to B's listeners before B's own commit.
    expect(opened.external.flatMap((e) => e.batch.map((u) => [u.seq, u.source]))).toEqual([[1, "replica"]]);
    expect(state.lastSeq).toBe(2);
  });
});

describe.skipIf(skip)("bounded commits", () => {
  test("a head row locked by another connection: PersistenceError within the timeout, memory unchanged", async () => {
    const db = await database();
    const a = await open(db.url, { commitTimeoutMs: 300 });
    await a.store.commit([update({ before: 1 })]);
    const before = a.store.current();
    const holder = new SQL(db.url, { max: 1 });
    cleanups.push(() => holder.close());
    const conn = await holder.reserve();
    await conn.unsafe("BEGIN");
    await conn.unsafe("SELECT seq FROM neolight_head FOR UPDATE");
    const started = performance.now();
    const error = await a.store.commit([update({ after: 1 })]).catch((err: unknown) => err);
    const took = performance.now() - started;
    expect(error).toBeInstanceOf(PersistenceError);
    expect((error as PersistenceError).published).toBe(false);
    expect(took).toBeLessThan(2000);
    expect(a.store.current()).toBe(before);
    expect(a.store.status()).toMatchObject({ failures: 1, writes: 1 });
    expectNoPassword((error as Error).message, a.store.status(), a.log.lines);
    await conn.unsafe("ROLLBACK");
    conn.release();
    // A commit that timed out counts as the database unreachable: commits fail fast (a queue
    // of writes must not each wait a timeout) until the head check answers again.
    await waitFor(() => a.store.storeStatus().reachable, "the head check to find the database again");
    const after = await a.store.commit([update({ after: 2 })]);
    expect(after.doc).toEqual({ before: 1, after: 2 });
    expect(after.lastSeq).toBe(2);
  });

  test("a black-holed network: the client-side timer rejects the commit and discards the connection", async () => {
    const db = await database();
    const net = await proxy();
    const a = await open(net.urlOf(db), { commitTimeoutMs: 400, staleMs: 0 });
    await a.store.commit([update({ before: 1 })]);
    const before = a.store.current();
    net.set("blackhole");
    const started = performance.now();
    const error = await a.store.commit([update({ lost: 1 })]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PersistenceError);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(a.store.current()).toBe(before);
    net.set("pass");
    const after = await waitFor(
      () => a.store.commit([update({ after: 1 })]).catch(() => null),
      "a commit once the network is back",
    );
    expect(after.doc).toEqual({ before: 1, after: 1 });
  });
});

describe.skipIf(skip)("connections dropped", () => {
  test("every connection cut at once (a server restart): the next commit succeeds and LISTEN is back", async () => {
    const db = await database();
    const net = await proxy();
    // ? No head check within the test: B can only learn of A's commit by NOTIFY.
    const b = await open(net.urlOf(db), { staleMs: 0, checkMs: 600_000 });
    const a = await open(db.url);
    await b.store.commit([update({ x: 1 })]);
    net.set("refuse");
    net.set("pass");
    const state = await b.store.commit([update({ x: 2 })]);
    expect(state.doc).toEqual({ x: 2 });
    await a.store.commit([update({ y: 1 })]);
    await waitFor(() => b.store.current().doc.y === 1, "B told of A's commit by NOTIFY");
    expect(b.store.storeStatus()).toMatchObject({ reachable: true, ready: true, seq: 3 });
  });
});

describe.skipIf(skip)("database unreachable", () => {
  test("at start-up (a refused port): the local copy is served, marked, not ready; commits refused; then the database is loaded", async () => {
    const db = await database();
    const net = await proxy();
    using dir = tempDir();
    const path = `${dir.path}/meta_metrics.json`;
    // What this host last held, from a previous run.
    await createJsonFilePersistence(path).save({
      doc: { mode: "LIVE_MODE", from: "copy" },
      updatedAt: "2025-01-01T00:00:00.000Z",
    });
    const writer = await open(db.url);
    await writer.store.commit([update({ mode: "PAPER_TRADING_MODE", from: "database" })]);
    net.set("refuse");
    const startedAt = Date.now();
    const a = await open(net.urlOf(db), { localCopy: createJsonFilePersistence(path), staleMs: 0 });
    expect(a.store.current().doc).toEqual({ mode: "LIVE_MODE", from: "copy" });
    const status = a.store.storeStatus();
    expect(status).toMatchObject({ served_from: "local_copy", ready: false, reachable: false, seq: 0 });
    expect(Date.parse(status.unreachable_since as string)).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(Date.parse(status.unreachable_since as string)).toBeLessThanOrEqual(Date.now());
    expect(await a.store.commit([update({ x: 1 })]).catch((err: unknown) => err)).toBeInstanceOf(PersistenceError);
    expectNoPassword(a.log.lines, a.store.storeStatus(), a.store.status());
    expect(a.log.lines.some((l) => l.message === "database unreachable at start-up, serving the local copy")).toBe(
      true,
    );
    net.set("pass");
    await waitFor(() => a.store.storeStatus().ready, "ready once the database answers");
    expect(a.store.current().doc).toEqual({ mode: "PAPER_TRADING_MODE", from: "database" });
    expect(a.store.storeStatus()).toMatchObject({ served_from: "store", seq: 1, unreachable_since: null });
    expect(a.external.at(-1)?.state.doc).toEqual({ mode: "PAPER_TRADING_MODE", from: "database" });
  });

  test("at start-up with no local copy: an empty document, not ready, and the fail-safe after staleMs", async () => {
    const net = await proxy();
    net.set("refuse");
    const db = await database();
    const log = createMemoryLogger();
    const a = await open(net.urlOf(db), { staleMs: 200, failSafe: pauseAfterCorruption(log) });
    expect(a.store.current().doc).toEqual({});
    expect(a.store.storeStatus()).toMatchObject({ ready: false, served_from: "local_copy", fail_safe: false });
    await waitFor(() => a.store.storeStatus().fail_safe, "the fail-safe");
    expect(a.store.current().doc.guardian).toMatchObject({ is_paused: true });
  });

  test("an outage longer than staleMs pauses the served guardian, never in the database; the first catch-up lifts it", async () => {
    const db = await database();
    const net = await proxy();
    const log = createMemoryLogger();
    const a = await open(net.urlOf(db), { staleMs: 300, failSafe: pauseAfterCorruption(log), checkMs: 50 });
    const guardian = { is_paused: false, drawdown: 0, reason: "Normal operation" };
    await a.store.commit([update({ guardian })]);
    net.set("refuse");
    await waitFor(() => a.store.storeStatus().fail_safe, "the fail-safe");
    expect(a.store.storeStatus()).toMatchObject({ reachable: false, ready: false, fail_safe: true });
    expect(a.store.current().doc.guardian).toMatchObject({ is_paused: true });
    expect(a.external.at(-1)?.batch[0]?.source).toBe("store_unreachable");
    expect((await rows(db.url)).guardian?.value).toEqual(guardian);
    net.set("pass");
    await waitFor(() => !a.store.storeStatus().fail_safe, "the fail-safe lifted");
    expect(a.store.current().doc.guardian).toEqual(guardian);
    expect(a.store.storeStatus()).toMatchObject({ reachable: true, ready: true, unreachable_since: null });
    expect(a.external.at(-1)?.batch.at(-1)).toMatchObject({ source: "store_unreachable", set: { guardian } });
    expectNoPassword(a.log.lines, log.lines);
  });
});

describe.skipIf(skip)("restore", () => {
  test("a corrupt guardian row pauses at once, like a corrupt state file, and the pause is written for every replica", async () => {
    const db = await database();
    const sql = new SQL(db.url, { max: 1 });
    await migrate(sql);
    await sql`INSERT INTO neolight_document (key, value, seq) VALUES ('guardian', ${{ drawdown: 9 }}::json, 1), ('mode', ${'"LIVE_MODE"'}::text::json, 1)`;
    await sql`UPDATE neolight_head SET seq = 1`;
    await sql.close();
    const log = createMemoryLogger();
    const a = await open(db.url, { restore: restoreDocument(log), failSafe: pauseAfterCorruption(log) });
    expect(a.store.current().doc.guardian).toMatchObject({ is_paused: true });
    expect(a.store.current().doc.mode).toBe("LIVE_MODE");
    expect(a.store.status().corrupt_found).toContain("schema");
    expect(a.log.lines.some((l) => l.message === "persisted state corrupt")).toBe(true);
    // Written at start-up: a replica opened now loads the pause itself, with no problem of its own.
    expect(a.store.status().unsaved_keys).toEqual([]);
    const b = await open(db.url, { restore: restoreDocument(log), failSafe: pauseAfterCorruption(log) });
    expect(b.store.current().doc.guardian).toMatchObject({ is_paused: true });
    expect(b.store.status().corrupt_found).toBeNull();
  });
});

describe.skipIf(skip)("the fail-safe report after a corrupt row", () => {
  test("stands in for the hive only until a replica commits the hive's report: it is not put back over it", async () => {
    const db = await database();
    const sql = new SQL(db.url, { max: 1 });
    await migrate(sql);
    await sql`INSERT INTO neolight_document (key, value, seq) VALUES ('guardian', ${{ drawdown: 9 }}::json, 1)`;
    await sql`UPDATE neolight_head SET seq = 1`;
    await sql.close();
    const log = createMemoryLogger();
    const restore = { restore: restoreDocument(log), failSafe: pauseAfterCorruption(log) };
    const a = resolvingStore((await open(db.url, { ...restore, follow: false })).store);
    expect(a.current().doc.guardian).toMatchObject({ is_paused: true });
    const b = resolvingStore((await open(db.url, restore)).store);
    await b.commit([update({ guardian: { is_paused: false, drawdown: 0.02, reason: "Normal operation" } }, "hive")]);
    // A, behind, applies a pause file that went away: resolved over the database's sources.
    const state = await a.commit([
      update({ guardian: {}, [GUARDIAN_SOURCES_KEY]: { pause_file: { state: "absent" } } }, "pause_file"),
    ]);
    expect(state.doc.guardian).toMatchObject({ is_paused: false, drawdown: 0.02 });
  });
});

describe.skipIf(skip)("the local copy", () => {
  test("is written after commits and catch-ups, coalesced, and once more on close", async () => {
    const db = await database();
    using dir = tempDir();
    const path = `${dir.path}/meta_metrics.json`;
    const b = await open(db.url, { localCopy: createJsonFilePersistence(path), localCopyMs: 50 });
    const a = await open(db.url);
    for (let i = 0; i < 20; i++) await a.store.commit([update({ n: i })]);
    await waitFor(async () => {
      const text = await Bun.file(path)
        .text()
        .catch(() => "");
      return text.includes('"n": 19') || text.includes('"n":19');
    }, "the copy holding B's caught-up document");
    await b.store.close();
    const saved = JSON.parse(await Bun.file(path).text()) as JsonObject;
    expect(saved.n).toBe(19);
  });

  test("that cannot be written is one WARN, and never fails a commit", async () => {
    const db = await database();
    using dir = tempDir();
    // ? A path under a regular file: every save fails (ENOTDIR), whoever runs the test.
    await Bun.write(`${dir.path}/file`, "x");
    const a = await open(db.url, {
      localCopy: createJsonFilePersistence(`${dir.path}/file/meta_metrics.json`),
      localCopyMs: 10,
    });
    for (let i = 0; i < 5; i++) {
      await a.store.commit([update({ n: i })]);
      await waitFor(() => a.log.lines.some((l) => l.message === "local copy not written"), "the WARN");
    }
    expect(a.store.current().doc).toEqual({ n: 4 });
    expect(a.log.lines.filter((l) => l.message === "local copy not written")).toHaveLength(1);
    expect(a.store.status()).toMatchObject({ writes: 5, failures: 0 });
  });
});
