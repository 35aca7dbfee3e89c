// The PostgreSQL test harness (test/postgres-server.ts) proves what the fault tests rely
// on: a committed row survives a real kill -9 of the whole server and a restart on the
// same data directory and port; refuse() really refuses and accept() brings the data back;
// disposal leaves nothing running and nothing on disk.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { SQL } from "bun";
import { createTestDatabase, serverAnswers, type TestDatabase } from "./postgres";
import { privatePostgres, startPrivatePostgres, startStandby } from "./postgres-server";
import { waitFor } from "./wait";

/** A client that gives up quickly, so "refused" is an error within the test, not a hang. */
const client = (url: string) => new SQL({ url, max: 1, connectionTimeout: 2, idleTimeout: 1 });

describe("private PostgreSQL", () => {
  test.skipIf(!privatePostgres)(
    "a committed row survives kill -9 and a restart; refuse() refuses, accept() serves the data again",
    async () => {
      let dataDir: string;
      let postmaster: number | undefined;
      {
        await using pg = await startPrivatePostgres();
        dataDir = pg.dataDir;
        await using db = await pg.database();
        {
          const sql = client(db.url);
          await sql`CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)`;
          await sql`INSERT INTO t VALUES (1, 'committed')`;
          await sql.close();
        }
        postmaster = pg.pid();
        expect(postmaster).toBeNumber();
        await pg.kill9();
        expect(pg.pid()).toBeUndefined();
        // Nothing listens any more: a connection is refused, not queued.
        {
          const sql = client(db.url);
          await expect(sql`SELECT 1`).rejects.toThrow();
          await sql.close({ timeout: 0 });
        }
        await pg.start();
        expect(pg.pid()).not.toBe(postmaster);
        {
          const sql = client(db.url);
          expect(await sql`SELECT id, v FROM t`).toEqual([{ id: 1, v: "committed" }]);
          await sql.close();
        }
        // The crash was a crash: the server says it recovered from the WAL.
        expect(pg.log()).toMatch(/database system was interrupted|not properly shut down/);

        await pg.refuse();
        {
          const sql = client(db.url);
          await expect(sql`SELECT 1`).rejects.toThrow();
          await sql.close({ timeout: 0 });
        }
        await pg.accept();
        {
          const sql = client(db.url);
          expect(await sql`SELECT v FROM t`).toEqual([{ v: "committed" }]);
          await sql.close();
        }
      }
      expect(existsSync(dataDir)).toBe(false);
    },
    60_000,
  );
});

describe("private primary and synchronous standby", () => {
  test.skipIf(!privatePostgres)(
    "a commit acknowledged by a primary with a synchronous standby survives the primary's kill -9 and a promotion",
    async () => {
      await using primary = await startPrivatePostgres();
      await using standby = await startStandby(primary);
      await primary.query(`ALTER SYSTEM SET synchronous_standby_names = '${standby.name}'`);
      await primary.query("SELECT pg_reload_conf()");
      await waitFor(
        async () =>
          (
            await primary.query(`SELECT sync_state FROM pg_stat_replication WHERE application_name = '${standby.name}'`)
          )[0]?.sync_state === "sync",
        "the standby to be synchronous",
      );
      await using db = await primary.database();
      {
        const sql = client(db.url);
        await sql`CREATE TABLE t (id int PRIMARY KEY)`;
        await sql`INSERT INTO t SELECT generate_series(1, 100)`;
        await sql.close();
      }
      await primary.kill9();
      await standby.promote();
      const sql = client(standby.url(db.name));
      // Every acknowledged row is on the promoted standby, and it takes writes.
      expect(await sql`SELECT count(*)::int AS n FROM t`).toEqual([{ n: 100 }]);
      await sql`INSERT INTO t VALUES (101)`;
      await sql.close();
    },
    60_000,
  );
});

const machinePostgres = await serverAnswers();

describe("the machine's PostgreSQL", () => {
  test.skipIf(!machinePostgres)("a test database of its own, dropped at the end", async () => {
    const admin = client("postgres://root@127.0.0.1:5432/postgres");
    let name: string;
    {
      await using db = (await createTestDatabase()) as TestDatabase;
      name = db.name;
      const sql = client(db.url);
      expect(await sql`SELECT current_database() AS db`).toEqual([{ db: name }]);
      await sql.close();
    }
    expect(await admin`SELECT count(*)::int AS n FROM pg_database WHERE datname = ${name}`).toEqual([{ n: 0 }]);
    await admin.close();
  });
});
