// PostgreSQL for the tests (issue 12): a private server (initdb + pg_ctl in a temporary
// directory, on a free port) for the fault tests, which must kill -9 it, restart it and make it refuse
// connections without disturbing anyone else. Real servers only, never a mock: a test
// that cannot have one skips with a message (`test.skipIf`), and .ci/run makes sure CI
// has one. A database of its own on the machine's server, and the TCP proxy: test/postgres.ts.
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { waitFor } from "./wait";

/** Where Debian's postgresql-15 package puts initdb, pg_ctl and postgres. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** How long a probe waits for a server to answer before it counts as absent. */
const PROBE_TIMEOUT_S = 2;

/**
 * How long pg_ctl may take to start or stop a server. A restart after kill -9 replays the
 * WAL written since the last checkpoint: a few MB in these tests, well under this on a
 * loaded 2-core machine.
 */
const PG_CTL_TIMEOUT_S = 60;

/** A name no other test file (or earlier run) uses: the database is dropped at the end. */
export function randomDatabaseName(prefix = "neolight_test"): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Runs `fn` with a one-connection client for `url`, closed afterwards whatever happens. */
async function withClient<T>(url: string, fn: (sql: SQL) => Promise<T>): Promise<T> {
  const sql = new SQL({ url, max: 1, connectionTimeout: PROBE_TIMEOUT_S, idleTimeout: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.close({ timeout: 0 });
  }
}

/** Whether a server answers a query at `url`; the reason it does not, otherwise. */
async function probe(url: string): Promise<true | string> {
  try {
    await withClient(url, (sql) => sql`SELECT 1`);
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Whether a private server can be made here: the binaries exist, and (as root) the
 * `postgres` user exists to run them, since initdb refuses to run as root.
 */
export const privatePostgres: boolean = (() => {
  const missing = ["initdb", "pg_ctl", "postgres", "pg_basebackup"].filter((b) => !existsSync(join(PG_BIN, b)));
  if (missing.length > 0) {
    console.warn(`SKIP private PostgreSQL tests: ${missing.join(", ")} missing in ${PG_BIN}; .ci/run installs them`);
    return false;
  }
  if (process.getuid?.() === 0 && postgresUser() === undefined) {
    console.warn("SKIP private PostgreSQL tests: running as root and there is no `postgres` user to run initdb");
    return false;
  }
  return true;
})();

/** A database on some server, dropped (with any connection still open to it) at the end. */
export interface TestDatabase extends AsyncDisposable {
  readonly name: string;
  /** postgres://root@127.0.0.1:<port>/<name>, no password (trust auth). */
  readonly url: string;
}

async function createDatabaseAt(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (sql) => sql.unsafe(`CREATE DATABASE ${quoteIdent(name)}`));
}

async function dropDatabaseAt(adminUrl: string, name: string): Promise<void> {
  // ? WITH (FORCE): a replica a test killed -9 may leave a backend behind for a moment.
  await withClient(adminUrl, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
}

/** A free TCP port on loopback: bound to 0, read, released (the server binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  return uid === undefined || gid === undefined ? undefined : { uid: Number(uid), gid: Number(gid) };
}

/** Runs a PostgreSQL binary (as `postgres` when we are root) and throws its output on failure. */
function run(binary: string, args: string[]): string {
  const cmd = [join(PG_BIN, binary), ...args];
  const asUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const result = Bun.spawnSync(asUser, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const output = `${result.stdout.toString()}${result.stderr.toString()}`;
  if (result.exitCode !== 0)
    throw new Error(`${binary} ${args.join(" ")} failed (exit ${result.exitCode}):\n${output}`);
  return output;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The processes whose parent is `pid` (the postmaster's backends and helpers), from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of new Bun.Glob("[0-9]*").scanSync({ cwd: "/proc", onlyFiles: false })) {
    try {
      // ? stat's second field is "(comm)" and may hold spaces: the ppid is the 2nd field after ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

export interface PrivatePostgres extends AsyncDisposable {
  readonly port: number;
  /** The data directory (PGDATA). */
  readonly dataDir: string;
  /** postgres://root@127.0.0.1:<port>/<db> (default db: postgres). */
  url(db?: string): string;
  /** Creates an empty database `name` (random when omitted) and resolves with its name. */
  createDatabase(name?: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  /** A fresh database dropped at the end of its `await using` scope (skipped if the server is gone). */
  database(prefix?: string): Promise<TestDatabase>;
  /** The postmaster's pid, from postmaster.pid; undefined when it is not running. */
  pid(): number | undefined;
  /**
   * A crash: SIGKILL to the postmaster and every process it started (the server's machine
   * dying, as far as its clients can tell), resolved once none of them is left. Nothing is
   * flushed or checkpointed: a restart must recover from the WAL alone.
   */
  kill9(): Promise<void>;
  /** Starts the server on the same data directory and port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Makes the server refuse connections (a fast shutdown: open sessions end, data is kept). */
  refuse(): Promise<void>;
  /** Accepts connections again after refuse() (or kill9()). */
  accept(): Promise<void>;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  /** Runs one statement on the `postgres` database (a test's ALTER SYSTEM, a check). */
  query(statement: string): Promise<Record<string, unknown>[]>;
}

export interface PrivateStandby extends PrivatePostgres {
  /** The name the primary knows it by (its application_name; synchronous_standby_names). */
  readonly name: string;
  /** Ends recovery: the standby becomes a primary that takes writes. */
  promote(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** Extra postgresql.conf lines (e.g. synchronous_standby_names). */
  config?: string[];
}

/** A temporary directory `postgres` owns (as root): initdb and the server refuse to run as root. */
function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "neolight-pg-"));
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner !== undefined) chownSync(root, owner.uid, owner.gid);
  return root;
}

/** The test block appended to postgresql.conf (later lines win, so a standby's overrides its copy's). */
function appendConf(dataDir: string, root: string, port: number, extra: string[]): void {
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${root}'`,
    // ? Small: several private servers and the machine's own share 2 cores and the RAM.
    "shared_buffers = 16MB",
    "max_connections = 60",
    "fsync = on",
    "synchronous_commit = on",
    "full_page_writes = on",
    "log_min_messages = warning",
    ...extra,
  ];
  writeFileSync(join(dataDir, "postgresql.conf"), `\n# test/postgres-server.ts\n${conf.join("\n")}\n`, {
    flag: "a",
  });
}

/** The handle on a server in `root`/data on `port` (not started). */
function manage(root: string, port: number): PrivatePostgres {
  const dataDir = join(root, "data");
  const logFile = join(root, "server.log");
  const pidFile = join(dataDir, "postmaster.pid");
  const pid = () => {
    try {
      const first = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      return Number.isInteger(first) && first > 0 && alive(first) ? first : undefined;
    } catch {
      return undefined;
    }
  };
  const url = (db = "postgres") => `postgres://root@127.0.0.1:${port}/${db}`;
  const ctl = (args: string[]) => run("pg_ctl", ["-D", dataDir, "-t", String(PG_CTL_TIMEOUT_S), ...args]);
  const start = async () => {
    ctl(["-l", logFile, "-w", "start"]);
    await waitFor(async () => (await probe(url())) === true, "the private PostgreSQL to accept connections", 30_000);
  };
  const stopFast = async () => {
    if (pid() !== undefined) ctl(["-m", "fast", "-w", "stop"]);
  };
  const kill9 = async () => {
    const postmaster = pid();
    if (postmaster === undefined) return;
    const victims = [postmaster, ...childrenOf(postmaster)];
    for (const p of victims) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
    // ? A restart refuses to start while any old process still holds the shared memory.
    await waitFor(() => victims.every((p) => !alive(p)), "the killed PostgreSQL processes to be gone", 10_000);
  };
  const server: PrivatePostgres = {
    port,
    dataDir,
    url,
    async createDatabase(name = randomDatabaseName()) {
      await createDatabaseAt(url(), name);
      return name;
    },
    dropDatabase: (name) => dropDatabaseAt(url(), name),
    async database(prefix) {
      const name = await server.createDatabase(randomDatabaseName(prefix));
      return {
        name,
        url: url(name),
        [Symbol.asyncDispose]: async () => {
          if (pid() !== undefined) await dropDatabaseAt(url(), name).catch(() => undefined);
        },
      };
    },
    pid,
    kill9,
    start,
    refuse: stopFast,
    accept: start,
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    query: (statement) => withClient(url(), (sql) => sql.unsafe(statement) as Promise<Record<string, unknown>[]>),
    async [Symbol.asyncDispose]() {
      try {
        if (pid() !== undefined) ctl(["-m", "immediate", "-w", "stop"]);
      } catch {
        await kill9();
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  return server;
}

async function started<T extends PrivatePostgres>(server: T, root: string): Promise<T> {
  try {
    await server.start();
  } catch (error) {
    const log = server.log();
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${log}`);
  }
  return server;
}

/**
 * Starts a private PostgreSQL 15 in a new temporary directory on a free port, with trust
 * auth for 127.0.0.1 and fsync on (the tests check durability). Check `privatePostgres`
 * first. `await using` stops it and removes the directory.
 */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const root = newRoot();
  const port = await freePort();
  // ? --no-sync only skips initdb's own final flush of the template files; the server
  // runs with fsync on, which is what the kill -9 tests rely on.
  run("initdb", ["-D", join(root, "data"), "-U", "root", "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"]);
  appendConf(join(root, "data"), root, port, options.config ?? []);
  return started(manage(root, port), root);
}

/**
 * A streaming-replication standby of `primary` (a base backup over the replication
 * protocol, which initdb's trust entries allow from 127.0.0.1), on its own directory and
 * port, connected as `name`. It is synchronous once the primary lists `name` in
 * synchronous_standby_names; resolves once it streams from the primary.
 */
export async function startStandby(primary: PrivatePostgres, name = "standby1"): Promise<PrivateStandby> {
  const root = newRoot();
  const port = await freePort();
  const dataDir = join(root, "data");
  run("pg_basebackup", [
    "-D",
    dataDir,
    "-h",
    "127.0.0.1",
    "-p",
    String(primary.port),
    "-U",
    "root",
    "-X",
    "stream",
    "--no-sync",
  ]);
  writeFileSync(join(dataDir, "standby.signal"), "");
  if (process.getuid?.() === 0) {
    const owner = postgresUser();
    if (owner !== undefined) chownSync(join(dataDir, "standby.signal"), owner.uid, owner.gid);
  }
  // ? primary_conninfo here, not with pg_basebackup -R (postgresql.auto.conf): it carries
  // application_name, the name synchronous_standby_names waits for.
  appendConf(dataDir, root, port, [
    `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=root application_name=${name}'`,
    "hot_standby = on",
  ]);
  const server = manage(root, port);
  const standby: PrivateStandby = Object.assign(server, {
    name,
    promote: async () => {
      run("pg_ctl", ["-D", dataDir, "-t", String(PG_CTL_TIMEOUT_S), "-w", "promote"]);
    },
  });
  await started(standby, root);
  await waitFor(
    async () =>
      (
        await primary.query(
          `SELECT 1 FROM pg_stat_replication WHERE application_name = '${name}' AND state = 'streaming'`,
        )
      ).length === 1,
    `standby ${name} to stream from the primary`,
    30_000,
  );
  return standby;
}
