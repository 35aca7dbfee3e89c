// Applying the schema (migrations.ts) at start-up: in version order, each in one
// transaction, under one advisory lock so that replicas starting at the same moment apply
// each exactly once (the second waits, then finds it applied). A database migrated by a
// newer binary is refused: this one would misread what it does not know.
import type { SQL } from "bun";
import type { Logger } from "../../log/logger";
import { MIGRATIONS, type Migration } from "./migrations";

/** Where applied versions are recorded. */
export const MIGRATIONS_TABLE = "neolight_schema_migrations";
/**
 * The advisory lock's key, pg_advisory_lock(int4, int4): "NEOL" in ASCII, then 1 for "schema
 * migrations". ? Fixed, never derived from a name at run time: every binary of every
 * version must take the very same lock.
 */
export const MIGRATION_LOCK_KEY: readonly [number, number] = [0x4e454f4c, 1];
/**
 * Longest a migration run may take, waiting for the lock included, ms. ? Another replica
 * migrating holds the lock for milliseconds (the schema is small); one that hangs (its host
 * cut off mid-migration) must not hang this start-up for ever: the server ends our wait,
 * and start-up fails with the reason, to be retried.
 */
export const MIGRATION_TIMEOUT_MS = 30_000;

/** The database holds migrations this binary does not know: an older binary must not run on it. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly databaseVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `the database schema is version ${databaseVersion}, newer than this binary knows (${knownVersion}): upgrade this binary`,
    );
    this.name = "SchemaTooNewError";
  }
}

export interface MigrateOptions {
  log?: Logger;
  /** Default: MIGRATIONS. */
  migrations?: readonly Migration[];
  /** Default: MIGRATION_TIMEOUT_MS. */
  timeoutMs?: number;
}

export interface MigrateResult {
  /** Versions this call applied, in order (empty when the schema was current). */
  applied: number[];
  /** The schema's version afterwards. */
  version: number;
}

/**
 * Brings the database's schema to the last of `migrations`. Idempotent; safe to run from
 * several processes at once (they serialise on MIGRATION_LOCK_KEY). Rejects with
 * SchemaTooNewError when the database is ahead, and with the server's error when a
 * migration fails (that migration is rolled back, the earlier ones stay).
 */
export async function migrate(sql: SQL, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = [...(options.migrations ?? MIGRATIONS)].sort((a, b) => a.version - b.version);
  const known = migrations.at(-1)?.version ?? 0;
  const timeoutMs = options.timeoutMs ?? MIGRATION_TIMEOUT_MS;
  const conn = await sql.reserve({ signal: AbortSignal.timeout(timeoutMs) });
  try {
    // ? A session setting on a connection that is closed below, never returned to the pool.
    await conn.unsafe(`SET statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    await conn`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY[0]}::int4, ${MIGRATION_LOCK_KEY[1]}::int4)`;
    await conn.unsafe(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    const rows: { version: number }[] = await conn`SELECT version FROM ${conn(MIGRATIONS_TABLE)}`;
    const done = new Set(rows.map((row) => Number(row.version)));
    const newest = Math.max(0, ...done);
    if (newest > known) throw new SchemaTooNewError(newest, known);
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      const started = performance.now();
      await conn.begin(async (tx) => {
        await tx.unsafe(migration.sql);
        await tx`INSERT INTO ${tx(MIGRATIONS_TABLE)} (version, name) VALUES (${migration.version}, ${migration.name})`;
      });
      applied.push(migration.version);
      options.log?.info("database migration applied", {
        version: migration.version,
        name: migration.name,
        ms: Math.round(performance.now() - started),
      });
    }
    await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY[0]}::int4, ${MIGRATION_LOCK_KEY[1]}::int4)`;
    return { applied, version: Math.max(newest, ...applied) };
  } finally {
    // ? Closed, not released: the session's lock and statement_timeout go with it, on every path.
    await conn.close().catch(() => {});
  }
}
