// The PostgreSQL of the tests: the machine's server (127.0.0.1:5432, trust auth, user root;
// NEOLIGHT_TEST_PG_URL to use another), one database with a random name per caller, dropped
// afterwards. Where no server answers, createTestDatabase says so once and gives null, and
// the test file skips its tests with test.skipIf: never a silent pass.
import { SQL } from "bun";

/** The maintenance database of the test server (where databases are created and dropped). */
export const ADMIN_URL = process.env.NEOLIGHT_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/postgres";
/**
 * Every test URL carries this password: trust auth ignores it, and any test that logs,
 * shows or throws something about the database can check it never appears.
 */
export const TEST_PASSWORD = "pw-never-shown-7f3a";
/** Seconds to wait for the server before taking it as absent. */
const PROBE_TIMEOUT_S = 3;

export interface TestDatabase {
  /** postgres://root:TEST_PASSWORD@host:port/<random name> */
  readonly url: string;
  readonly name: string;
  /** A client of the admin database (for a holder of locks, a look at pg_stat_activity). */
  readonly admin: SQL;
  /** Drops the database, ending its connections first. Idempotent. */
  drop(): Promise<void>;
}

let warned = false;

/** A fresh, empty database, or null (with one message on stderr) when no server answers. */
export async function createTestDatabase(): Promise<TestDatabase | null> {
  const admin = new SQL(ADMIN_URL, { max: 2, connectionTimeout: PROBE_TIMEOUT_S });
  const name = `neolight_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } catch (err) {
    await admin.close().catch(() => {});
    if (!warned) {
      warned = true;
      console.warn(`PostgreSQL tests skipped: no server at ${ADMIN_URL} (${(err as Error).message})`);
    }
    return null;
  }
  const url = new URL(ADMIN_URL);
  url.password = TEST_PASSWORD;
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    admin,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}
