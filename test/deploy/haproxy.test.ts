// What ships for load balancing in deploy/haproxy/haproxy.cfg (issue 12): HAProxy accepts the
// file as it is (`haproxy -c`), and a real HAProxy running a copy of it (only the ports and
// the runtime socket's path changed) in front of two real service processes sends requests
// to a replica its /health/ready checks found ready, passes the live stream through as it
// comes, marks a replica killed with -9 down within ~2 s while every GET keeps answering 200
// through the other, and answers in the contract's error shape when no replica is left.
//
// The kill test runs the replicas in the embedded mode, each on a home of its own: what is
// under test is the proxy's routing (test/e2e/ covers replicas sharing one database). Each
// carries a marker key in its document, so an answer says which replica gave it. The
// readiness test runs two replicas on one real PostgreSQL database (test/postgres.ts; skipped
// with a message where no server answers), one of them reaching it through a TCP relay the
// test opens and cuts: out while it cannot reach the database, in once it can, out again,
// with its live streams cut so that browsers move to the ready replica.
//
// HAProxy (/usr/sbin/haproxy, Debian package `haproxy`) comes from apt: .ci/run installs it.
// Without it these tests skip with a message saying so; on the project's machines they run.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { postJson, type ServiceProcess, spawnService } from "../e2e/process";
import { ROOT, tempDir, waitFor } from "../helpers";
import { createTestDatabase } from "../postgres";

const CFG = join(ROOT, "deploy", "haproxy", "haproxy.cfg");
const HAPROXY = Bun.which("haproxy") ?? Bun.which("haproxy", { PATH: "/usr/sbin:/usr/local/sbin" });
if (HAPROXY === null) {
  process.stderr.write(
    "\n!! test/deploy/haproxy.test.ts: SKIPPED: no haproxy binary (apt-get install -y haproxy; .ci/run installs it)\n\n",
  );
}

/**
 * What the shipped file promises (`inter 1s fall 2`): a dead replica is out after its second
 * failed check, ~2 s. The bound leaves room for a check in flight and a loaded 2-core machine.
 */
const MARKED_DOWN_WITHIN_MS = 3_000;
/** The execution router's timeout on GET /meta/metrics (CONTRACT section 2). */
const ROUTER_TIMEOUT_MS = 2_000;

function haproxy(...args: string[]) {
  const r = Bun.spawnSync([HAPROXY as string, ...args]);
  return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}` };
}

/** A free TCP port on loopback (HAProxy cannot listen on port 0 and tell which it got). */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

/** `text` with `from` replaced by `to`, failing when `from` is not there `times` times. */
function replaceExactly(text: string, from: string, to: string, times: number): string {
  expect({ from, found: text.split(from).length - 1 }).toEqual({ from, found: times });
  return text.split(from).join(to);
}

/**
 * The shipped file with only what a test run must change: the replicas' ports (8101, 8102:
 * one line in each backend), the frontend's port, and the runtime socket's path. User, group
 * and chroot stay when the test runs as root (as HAProxy's own unit does); otherwise they
 * cannot be applied and are left out.
 */
function testConfig(shipped: string, ports: { front: number; r1: number; r2: number }, socket: string): string {
  let cfg = replaceExactly(shipped, "127.0.0.1:8101", `127.0.0.1:${ports.r1}`, 2);
  cfg = replaceExactly(cfg, "127.0.0.1:8102", `127.0.0.1:${ports.r2}`, 2);
  cfg = replaceExactly(cfg, "bind :8100\n", `bind :${ports.front}\n`, 1);
  cfg = replaceExactly(cfg, "stats socket /run/haproxy/neolight.sock ", `stats socket ${socket} `, 1);
  if (process.getuid?.() !== 0) cfg = cfg.replace(/^ {4}(user|group|chroot) .*\n/gm, "");
  return cfg;
}

interface Proxy extends AsyncDisposable {
  url: string;
  /** The runtime API's socket. */
  socket: string;
  /** Each server's status in `show stat` (UP, DOWN, ...), by backend/server. */
  status(): Promise<Record<string, string>>;
  output(): string;
}

/** `command` on HAProxy's runtime API (the stats socket): its whole answer. */
async function runtimeApi(socket: string, command: string): Promise<string> {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  let text = "";
  await Bun.connect({
    unix: socket,
    socket: {
      open(s) {
        s.write(`${command}\n`);
      },
      data(_s, chunk) {
        text += chunk.toString();
      },
      close() {
        resolve(text);
      },
      error(_s, err) {
        reject(err);
      },
    },
  });
  return promise;
}

async function startProxy(dir: string, r1: number, r2: number): Promise<Proxy> {
  const socket = join(dir, "haproxy.sock");
  // Another process may take the free port before HAProxy binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    const front = freePort();
    const file = join(dir, "haproxy.cfg");
    writeFileSync(file, testConfig(readFileSync(CFG, "utf8"), { front, r1, r2 }, socket));
    // -db: stay in the foreground, as under systemd's -Ws.
    const proc = Bun.spawn([HAPROXY as string, "-db", "-f", file], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const log = { text: "" };
    // ? Read while it runs: a proxy that fills the pipe with its log would block.
    const drained = Promise.all(
      [proc.stdout, proc.stderr].map(async (s) => {
        for await (const chunk of s) log.text += new TextDecoder().decode(chunk);
      }),
    );
    const status = async () => {
      const rows = (await runtimeApi(socket, "show stat")).split("\n").filter((l) => l !== "" && !l.startsWith("#"));
      // CSV: pxname, svname, ..., status is the 18th field.
      return Object.fromEntries(rows.map((r) => r.split(",")).map((f) => [`${f[0]}/${f[1]}`, f[17] as string]));
    };
    const up = await waitFor(
      async () => {
        if (proc.exitCode !== null) return "exited";
        return (await status().catch(() => null)) !== null && "up";
      },
      "HAProxy's runtime socket",
      20_000,
    );
    if (up === "exited") {
      await drained;
      if (attempt < 3 && log.text.includes("cannot bind socket")) continue;
      throw new Error(`haproxy exited ${proc.exitCode}:\n${log.text}`);
    }
    return {
      url: `http://127.0.0.1:${front}`,
      socket,
      status,
      output: () => log.text,
      async [Symbol.asyncDispose]() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        await proc.exited;
      },
    };
  }
}

/** One of this host's IPv4 addresses that is not loopback, or null when it has none. */
function externalAddress(): string | null {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  return all.find((a) => a.family === "IPv4" && !a.internal)?.address ?? null;
}

/** A replica process whose document carries `replica: <name>`, so an answer says who gave it. */
async function startReplica(home: string, name: string): Promise<ServiceProcess> {
  const service = await spawnService({ home, env: { NEOLIGHT_WRITE_RATE: "0" } });
  expect((await postJson(`${service.url}/meta/metrics`, { replica: name })).status).toBe(200);
  return service;
}

/** Who answered a GET /meta/metrics through the proxy, with its status. */
async function whoAnswers(url: string): Promise<{ status: number; replica: unknown }> {
  const res = await fetch(`${url}/meta/metrics`);
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, replica: body.replica };
}

/** The database of the readiness test; null without haproxy or without a PostgreSQL server. */
const db = HAPROXY === null ? null : await createTestDatabase();
afterAll(() => db?.drop());

/** A TCP relay on `port` to PostgreSQL at `target`, which the test can open and cut. */
function pgRelay(port: number, target: URL) {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return {
    open: () => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve)),
    /** Refuses new connections and breaks the open ones: the database is gone for the replica. */
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** Total sessions HAProxy sent to each server so far (`show stat` stot), by backend/server. */
async function sessions(socket: string): Promise<Record<string, number>> {
  const rows = (await runtimeApi(socket, "show stat")).split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  return Object.fromEntries(rows.map((r) => r.split(",")).map((f) => [`${f[0]}/${f[1]}`, Number(f[7])]));
}

describe.skipIf(HAPROXY === null)("deploy/haproxy/haproxy.cfg (Debian package haproxy; .ci/run installs it)", () => {
  test("haproxy -c: valid, without a warning", () => {
    const r = haproxy("-c", "-f", CFG);
    expect(r).toEqual({ code: 0, output: expect.stringContaining("Configuration file is valid") });
    expect(r.output).not.toContain("WARNING");
  });

  test("both backends check /health/ready every second, out after 2 failures, back after 2 successes", () => {
    const cfg = readFileSync(CFG, "utf8");
    expect(cfg).toContain("http-check send meth GET uri /health/ready");
    expect(cfg).toContain("default-server check inter 1s fall 2 rise 2 ");
    // The write backend has no checks of its own: it follows the read backend's.
    expect([...cfg.matchAll(/^ {4}server (\S+) \S+ track neolight_read\/(\S+)$/gm)].map((m) => [m[1], m[2]])).toEqual([
      ["r8101", "r8101"],
      ["r8102", "r8102"],
    ]);
    // A write is only retried when it never reached a replica.
    const write = cfg.slice(cfg.search(/^backend neolight_write$/m));
    expect(write.match(/^ {4}retry-on .*$/m)?.[0]).toBe("    retry-on conn-failure");
  });

  test("a replica killed -9 is out within ~2 s and every GET answers 200 through the other", async () => {
    using dir = tempDir("neolight-haproxy-");
    using homeA = tempDir("neolight-replica-a-");
    using homeB = tempDir("neolight-replica-b-");
    await using a = await startReplica(homeA.path, "A");
    await using b = await startReplica(homeB.path, "B");
    await using proxy = await startProxy(dir.path, a.port, b.port);
    await waitFor(
      async () => {
        const s = await proxy.status();
        return s["neolight_read/r8101"] === "UP" && s["neolight_read/r8102"] === "UP" && s;
      },
      "both replicas UP in HAProxy",
      10_000,
    );
    const statusOf = async () => {
      const s = await proxy.status();
      return { r1: s["neolight_read/r8101"], w1: s["neolight_write/r8101"], r2: s["neolight_read/r8102"] };
    };
    expect(await statusOf()).toEqual({ r1: "UP", w1: "UP", r2: "UP" });

    // While both are ready, reads and writes go to the first (`balance first`).
    expect(await whoAnswers(proxy.url)).toEqual({ status: 200, replica: "A" });
    const write = await postJson(`${proxy.url}/meta/metrics`, { through: "proxy" });
    expect(write.status).toBe(200);
    expect(((await (await fetch(`${a.url}/meta/metrics`)).json()) as Record<string, unknown>).through).toBe("proxy");

    // A write from another address than loopback is the proxy's to refuse: every writer
    // reaches the replicas from the proxy's host. This host's own address stands for
    // another host (it is not in from_this_host); reads from it pass.
    const external = externalAddress();
    if (external === null)
      process.stderr.write("haproxy: no non-loopback IPv4 address: the remote-write check skipped\n");
    else {
      const remote = proxy.url.replace("127.0.0.1", external);
      const refused = await postJson(`${remote}/meta/metrics`, { from: "remote" });
      expect({ status: refused.status, body: await refused.json() }).toEqual({
        status: 403,
        body: { error: expect.stringContaining("only from its host"), code: 403 },
      });
      expect(await whoAnswers(remote)).toEqual({ status: 200, replica: "A" });
    }

    // The live stream passes through as it comes: a post's update arrives while it is open.
    const stream = await fetch(`${proxy.url}/events`);
    expect(stream.status).toBe(200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    let seen = "";
    const readUntil = (needle: string) =>
      waitFor(
        async () => {
          const { value } = await reader.read();
          seen += new TextDecoder().decode(value);
          return seen.includes(needle);
        },
        `the stream to carry ${needle}`,
        5_000,
        0,
      );
    await readUntil("event: snapshot");
    expect((await postJson(`${proxy.url}/meta/metrics`, { live: "through-proxy" })).status).toBe(200);
    await readUntil("through-proxy");
    await reader.cancel();

    // A reader asking in a loop, as the router does before every trade.
    const answers: { status: number; replica: unknown; ms: number }[] = [];
    let reading = true;
    const reads = (async () => {
      while (reading) {
        const started = performance.now();
        const answer = await whoAnswers(proxy.url).catch((err: unknown) => ({ status: 0, replica: String(err) }));
        answers.push({ ...answer, ms: performance.now() - started });
      }
    })();
    await waitFor(() => answers.length >= 20, "reads through the proxy");

    const killedAt = performance.now();
    a.proc.kill("SIGKILL");
    await a.proc.exited;
    const down = await waitFor(
      async () => ((await statusOf()).r1?.startsWith("DOWN") ? await statusOf() : null),
      "HAProxy to mark the killed replica DOWN",
      10_000,
    );
    const downAfterMs = performance.now() - killedAt;
    const readsAtDown = answers.length;
    // The write backend follows the read backend's checks.
    expect(down).toEqual({ r1: "DOWN", w1: "DOWN", r2: "UP" });
    await waitFor(() => answers.length >= readsAtDown + 20, "reads after the replica is out");
    reading = false;
    await reads;

    process.stderr.write(
      `haproxy: killed replica DOWN after ${Math.round(downAfterMs)} ms; ${answers.length} reads, slowest ${Math.round(Math.max(...answers.map((r) => r.ms)))} ms\n`,
    );
    expect(downAfterMs).toBeLessThan(MARKED_DOWN_WITHIN_MS);
    // Every read answered 200 within the router's deadline, also those in flight at the kill
    // and before the replica was out.
    expect(answers.filter((r) => r.status !== 200 || r.ms >= ROUTER_TIMEOUT_MS)).toEqual([]);
    // After it was out, the other replica answered them all.
    expect(new Set(answers.slice(readsAtDown).map((r) => r.replica))).toEqual(new Set(["B"]));
    // Writes too: the proxy sends them to the replica left.
    expect((await postJson(`${proxy.url}/meta/metrics`, { after: "kill" })).status).toBe(200);
    expect(((await (await fetch(`${b.url}/meta/metrics`)).json()) as Record<string, unknown>).after).toBe("kill");

    // No replica left: HAProxy's own answer, in the contract's error shape.
    b.proc.kill("SIGKILL");
    await b.proc.exited;
    await waitFor(async () => (await statusOf()).r2?.startsWith("DOWN"), "the second replica DOWN", 10_000);
    const none = await fetch(`${proxy.url}/meta/metrics`);
    expect({
      status: none.status,
      type: none.headers.get("content-type"),
      retryAfter: none.headers.get("retry-after"),
      body: await none.json(),
    }).toEqual({
      status: 503,
      type: "application/json",
      retryAfter: "1",
      body: { error: expect.stringContaining("no replica is ready"), code: 503 },
    });
  }, 60_000);

  test.skipIf(db === null)(
    "a replica that cannot reach PostgreSQL gets nothing, is back once it can, and its live streams are cut when it goes",
    async () => {
      const database = db as NonNullable<typeof db>;
      using dir = tempDir("neolight-haproxy-");
      using homeA = tempDir("neolight-replica-a-");
      using homeB = tempDir("neolight-replica-b-");
      // A reaches the database only through the relay, closed for now: it starts on its
      // (empty) local copy, not ready. B reaches it directly.
      const relayPort = freePort();
      const relay = pgRelay(relayPort, new URL(database.url));
      const viaRelay = new URL(database.url);
      viaRelay.port = String(relayPort);
      const env = (url: string) => ({ NEOLIGHT_DATABASE_URL: url, NEOLIGHT_WRITE_RATE: "0" });
      await using a = await spawnService({ home: homeA.path, env: env(viaRelay.toString()) });
      await using b = await spawnService({ home: homeB.path, env: env(database.url) });
      expect((await fetch(`${a.url}/health/ready`)).status).toBe(503);
      expect((await fetch(`${b.url}/health/ready`)).status).toBe(200);
      await using proxy = await startProxy(dir.path, a.port, b.port);
      const state = async () => {
        const s = await proxy.status();
        return `${s["neolight_read/r8101"]} ${s["neolight_read/r8102"]}`;
      };
      await waitFor(async () => (await state()) === "DOWN UP", "A DOWN (not ready) and B UP", 10_000);

      // Everything goes to B: A, first in the list, is not ready.
      const before = await sessions(proxy.socket);
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${proxy.url}/meta/metrics`);
        expect({ status: res.status, stale: res.headers.get("x-neolight-store-stale-s") }).toEqual({
          status: 200,
          stale: null,
        });
        await res.arrayBuffer();
      }
      expect((await postJson(`${proxy.url}/meta/metrics`, { written: "while A was out" })).status).toBe(200);
      const after = await sessions(proxy.socket);
      expect(after["neolight_read/r8101"]).toBe(before["neolight_read/r8101"]);
      expect(after["neolight_write/r8101"]).toBe(before["neolight_write/r8101"]);

      // A reaches the database: ready, UP after two good checks, and first again. It serves
      // what was written through B.
      await relay.open();
      await waitFor(async () => (await state()) === "UP UP", "A UP once it reaches the database", 15_000);
      const inA = (await sessions(proxy.socket))["neolight_read/r8101"] as number;
      const doc = (await (await fetch(`${proxy.url}/meta/metrics`)).json()) as Record<string, unknown>;
      expect(doc.written).toBe("while A was out");
      expect((await sessions(proxy.socket))["neolight_read/r8101"]).toBe(inA + 1);

      // A live stream through the proxy is A's. A loses the database: it goes out, and the
      // proxy cuts its stream (on-marked-down shutdown-sessions), so the browser reconnects
      // to B instead of reading a replica that no longer hears the others.
      const stream = await fetch(`${proxy.url}/events`);
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("retry:");
      expect((await sessions(proxy.socket))["neolight_read/r8101"]).toBe(inA + 2);
      await relay.cut();
      await waitFor(async () => (await state()) === "DOWN UP", "A DOWN once it cannot reach the database", 15_000);
      // Cut: the stream ends, or (HAProxy resets it) the read fails with ECONNRESET.
      const ended = await waitFor(
        () =>
          reader.read().then(
            ({ done }) => (done ? "ended" : null),
            (err: unknown) => ((err as { code?: string }).code === "ECONNRESET" ? "reset" : Promise.reject(err)),
          ),
        "A's live stream to be cut",
        5_000,
        0,
      );
      expect(["ended", "reset"]).toContain(ended);
      const res = await fetch(`${proxy.url}/meta/metrics`);
      expect({ status: res.status, stale: res.headers.get("x-neolight-store-stale-s") }).toEqual({
        status: 200,
        stale: null,
      });
    },
    60_000,
  );
});
