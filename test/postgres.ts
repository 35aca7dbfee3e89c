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

export interface TestDatabase extends AsyncDisposable {
  /** postgres://root:TEST_PASSWORD@host:port/<random name> */
  readonly url: string;
  readonly name: string;
  /** A client of the admin database (for a holder of locks, a look at pg_stat_activity). */
  readonly admin: SQL;
  /** Drops the database, ending its connections first. Idempotent; also its asyncDispose. */
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
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.close();
  };
  return { url: url.toString(), name, admin, drop, [Symbol.asyncDispose]: drop };
}

/** Whether the test server answers (for `describe.skipIf`, asked once at a file's load); it says why not, once. */
export async function serverAnswers(): Promise<boolean> {
  const db = await createTestDatabase();
  await db?.drop();
  return db !== null;
}

/** What a TcpProxy does with traffic: pass it, refuse connections (closed port), or swallow it (a black-holed network). */
export type ProxyMode = "pass" | "refuse" | "blackhole";

export interface TcpProxy extends AsyncDisposable {
  /** The proxy's port on 127.0.0.1 (fixed for its life: the store's URL names it). */
  readonly port: number;
  /** URL of `db` through the proxy. */
  urlOf(db: TestDatabase): string;
  /**
   * pass: forward both ways; refuse: close every connection and stop listening (the port
   * refuses); blackhole: keep the connections and accept new ones, but forward nothing
   * either way, as a network that drops every packet.
   */
  set(mode: ProxyMode): void;
  /**
   * Sends new connections to `port` and cuts the open ones, as a failover of HAProxy or a
   * floating IP does (a promoted standby); traffic passes again.
   */
  retarget(port: number): void;
}

interface Pipe {
  client: import("bun").Socket<Pipe>;
  upstream: import("bun").Socket<undefined> | null;
  /** Bytes from the client not yet passed upstream (still connecting, or backpressure). */
  toUpstream: Uint8Array[];
  toClient: Uint8Array[];
  closed: boolean;
}

/** Writes what the socket takes now and keeps the rest for its drain. */
function pushTo(socket: { write(data: Uint8Array): number }, queue: Uint8Array[]): void {
  while (queue.length > 0) {
    const chunk = queue[0] as Uint8Array;
    const written = socket.write(chunk);
    if (written < chunk.length) {
      queue[0] = chunk.subarray(Math.max(0, written));
      return;
    }
    queue.shift();
  }
}

/**
 * A real TCP proxy (Bun.listen / Bun.connect) in front of the test server (or a private one,
 * test/postgres-server.ts: `upstream` its port), to cut the store off from its database and
 * give it back without touching the server others use: the outage tests' faults are real
 * sockets refused or left unanswered. A connection whose upstream cannot be reached is
 * closed at once, as a load balancer with no healthy backend does.
 */
export async function startTcpProxy(firstUpstream = Number(new URL(ADMIN_URL).port || 5432)): Promise<TcpProxy> {
  let upstreamPort = firstUpstream;
  const hostname = new URL(ADMIN_URL).hostname;
  let mode: ProxyMode = "pass";
  const pipes = new Set<Pipe>();
  let listener: import("bun").TCPSocketListener<Pipe> | null = null;

  function close(pipe: Pipe): void {
    if (pipe.closed) return;
    pipe.closed = true;
    pipes.delete(pipe);
    pipe.client.end();
    pipe.upstream?.end();
  }

  function listen(port: number): import("bun").TCPSocketListener<Pipe> {
    return Bun.listen<Pipe>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(client) {
          const pipe: Pipe = { client, upstream: null, toUpstream: [], toClient: [], closed: false };
          client.data = pipe;
          pipes.add(pipe);
          void Bun.connect({
            hostname,
            port: upstreamPort,
            socket: {
              data(_socket, chunk) {
                if (mode !== "pass") return;
                pipe.toClient.push(new Uint8Array(chunk));
                pushTo(pipe.client, pipe.toClient);
              },
              drain(socket) {
                pushTo(socket, pipe.toUpstream);
              },
              close: () => close(pipe),
              error: () => close(pipe),
            },
          }).then(
            (upstream) => {
              if (pipe.closed) return void upstream.end();
              pipe.upstream = upstream;
              if (mode === "pass") pushTo(upstream, pipe.toUpstream);
            },
            () => close(pipe),
          );
        },
        data(client, chunk) {
          const pipe = client.data;
          if (mode !== "pass") return;
          pipe.toUpstream.push(new Uint8Array(chunk));
          if (pipe.upstream !== null) pushTo(pipe.upstream, pipe.toUpstream);
        },
        drain(client) {
          pushTo(client, client.data.toClient);
        },
        close: (client) => close(client.data),
        error: (client) => close(client.data),
      },
    });
  }

  listener = listen(0);
  const port = listener.port;
  return {
    port,
    urlOf(db) {
      const url = new URL(db.url);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    set(next) {
      if (next === mode) return;
      const previous = mode;
      mode = next;
      if (next === "refuse") {
        listener?.stop(true);
        listener = null;
        for (const pipe of [...pipes]) close(pipe);
      } else if (previous === "refuse") {
        listener = listen(port);
      } else if (previous === "blackhole") {
        // ? Their streams lost bytes: no protocol survives that, as no real connection would.
        for (const pipe of [...pipes]) close(pipe);
      }
      if (next === "blackhole") {
        for (const pipe of pipes) {
          pipe.toUpstream.length = 0;
          pipe.toClient.length = 0;
        }
      }
    },
    retarget(next) {
      upstreamPort = next;
      if (mode === "refuse") listener = listen(port);
      mode = "pass";
      for (const pipe of [...pipes]) close(pipe);
    },
    async [Symbol.asyncDispose]() {
      listener?.stop(true);
      listener = null;
      for (const pipe of [...pipes]) close(pipe);
    },
  };
}
