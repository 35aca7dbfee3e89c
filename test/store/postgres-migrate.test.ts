// The schema's migrations against a real PostgreSQL (test/postgres.ts): in order, once, under
// the advisory lock when two replicas start at the same moment, and a newer schema refused.
// Also the URL's password: redacted in what we print and in Bun's own error messages.
import { afterAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { errorText, openClient, REDACTED, redactText, redactUrl } from "../../src/store/postgres/connect";
import { MIGRATIONS_TABLE, migrate, SchemaTooNewError } from "../../src/store/postgres/migrate";
import { MIGRATIONS } from "../../src/store/postgres/migrations";
import { createTestDatabase, TEST_PASSWORD } from "../postgres";

const db = await createTestDatabase();
afterAll(() => db?.drop());

describe("redactUrl", () => {
  test.each([
    [
      "user and password",
      "postgres://neolight:s3cr%40t@db:5432/neolight?sslmode=require",
      "postgres://neolight:***@db:5432/neolight?sslmode=require",
    ],
    ["no password", "postgres://neolight@db:5432/neolight", "postgres://neolight@db:5432/neolight"],
    [
      "password parameter",
      "postgres://db/neolight?password=hunter22&sslmode=require",
      "postgres://db/neolight?password=***&sslmode=require",
    ],
    ["not a URL", "neolight:hunter22@db", "***@db"],
    ["another scheme", "pg://neolight:hunter22@db:x/y", "***@db:x/y"],
  ])("%s", (_name, url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  test("redactText removes the password in every spelling, and the URL", () => {
    const url = "postgres://neolight:s3cr%40t@db:5432/neolight";
    const text = redactText(`connect ${url} failed for s3cr@t and s3cr%40t`, url);
    expect(text).toBe(
      `connect postgres://neolight:${REDACTED}@db:5432/neolight failed for ${REDACTED} and ${REDACTED}`,
    );
  });
});

test.skipIf(db === null)("a failed connect's error, as we report it, never holds the password", async () => {
  const url = `postgres://root:${TEST_PASSWORD}@127.0.0.1:1/none`;
  const sql = openClient(url, { idleInTransactionMs: 1000 });
  const error = await sql`SELECT 1`.then(
    () => null,
    (err: unknown) => err,
  );
  await sql.close();
  expect(error).not.toBeNull();
  const text = errorText(error, url);
  expect(text).toContain("ERR_POSTGRES_CONNECTION_REFUSED");
  expect(text).not.toContain(TEST_PASSWORD);
  // ? A server message quoting the URL (as some drivers' do) comes out redacted as well.
  expect(errorText(new Error(`could not reach ${url}`), url)).not.toContain(TEST_PASSWORD);
});

describe.skipIf(db === null)("migrate", () => {
  test("two replicas migrating an empty database at the same moment: both succeed, each migration once", async () => {
    const url = db?.url as string;
    const a = new SQL(url, { max: 1 });
    const b = new SQL(url, { max: 1 });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      const last = MIGRATIONS.at(-1)?.version;
      expect(ra.version).toBe(last as number);
      expect(rb.version).toBe(last as number);
      // Exactly one of them applied them all, the other none.
      expect([...ra.applied, ...rb.applied].sort()).toEqual(MIGRATIONS.map((m) => m.version).sort());
      const rows = await a`SELECT version, name FROM ${a(MIGRATIONS_TABLE)} ORDER BY version`;
      expect([...rows]).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      const [head] = await a`SELECT count(*)::int AS n FROM neolight_head`;
      expect(head.n).toBe(1);
      // Idempotent: a third run applies nothing.
      expect(await migrate(a)).toEqual({ applied: [], version: last as number });
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a schema newer than this binary knows is refused, with a typed error", async () => {
    const sql = new SQL(db?.url as string, { max: 1 });
    try {
      await migrate(sql);
      const newer = (MIGRATIONS.at(-1)?.version as number) + 1;
      await sql`INSERT INTO ${sql(MIGRATIONS_TABLE)} (version, name) VALUES (${newer}, 'from the future')`;
      const error = await migrate(sql).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(SchemaTooNewError);
      expect((error as SchemaTooNewError).databaseVersion).toBe(newer);
      expect((error as Error).message).toContain("newer than this binary knows");
      await sql`DELETE FROM ${sql(MIGRATIONS_TABLE)} WHERE version = ${newer}`;
    } finally {
      await sql.close();
    }
  });
});
