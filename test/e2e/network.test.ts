// Who may write, over real sockets: a real non-loopback client in a network namespace the
// test creates (and deletes) itself, the read token on every route of a listening server,
// and token files read at start-up. Traffic never leaves this machine: the only non-loopback
// addresses are on a veth pair between two namespaces that exist only during the test.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { discardBody, fixture, startApp, tempDir } from "../helpers";
import { expectConfigExit, spawnRaw, spawnService } from "./process";

/** The probes every client may read without a token (load balancers, liveness checks). */
const PROBES = ["/health", "/health/ready"];

const TOKEN = "e2e-write-token-0123456789abcdef";

function sh(args: string[]): { ok: boolean; out: string } {
  const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

/**
 * Two fresh namespaces joined by a veth pair: `server` at SERVER_IP, `client` at CLIENT_IP,
 * both with loopback up. Deleted (with the pair) at the end of the `using` scope.
 */
const SUBNET = `10.213.${process.pid % 250}`;
const SERVER_IP = `${SUBNET}.1`;
const CLIENT_IP = `${SUBNET}.2`;

function namespaces(): Disposable & { server: string; client: string } {
  const server = `nl-srv-${process.pid}`;
  const client = `nl-cli-${process.pid}`;
  const run = (args: string[]) => {
    const r = sh(args);
    if (!r.ok) throw new Error(`${args.join(" ")}: ${r.out}`);
  };
  const dispose = () => {
    sh(["ip", "netns", "del", server]);
    sh(["ip", "netns", "del", client]);
  };
  try {
    run(["ip", "netns", "add", server]);
    run(["ip", "netns", "add", client]);
    // Created directly inside the namespaces: the host's own network is never touched.
    run(["ip", "link", "add", "nlv-s", "netns", server, "type", "veth", "peer", "name", "nlv-c", "netns", client]);
    for (const [ns, dev, ip] of [
      [server, "nlv-s", SERVER_IP],
      [client, "nlv-c", CLIENT_IP],
    ] as const) {
      run(["ip", "-n", ns, "addr", "add", `${ip}/30`, "dev", dev]);
      run(["ip", "-n", ns, "link", "set", dev, "up"]);
      run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
  } catch (err) {
    dispose();
    throw err;
  }
  return { server, client, [Symbol.dispose]: dispose };
}

const netnsProblem = (() => {
  if (!sh(["ip", "-V"]).ok) return "the ip command is missing";
  try {
    using _ns = namespaces();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
})();
if (netnsProblem) console.warn(`SKIP network-namespace test: ${netnsProblem} (needs root with CAP_NET_ADMIN)`);

/** One HTTP request made from inside namespace `ns`: [status, body]. */
async function fetchFrom(
  ns: string,
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
) {
  const script = `const r = await fetch(${JSON.stringify(url)}, ${JSON.stringify(init)}); console.log(JSON.stringify([r.status, await r.text()]));`;
  const proc = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, "-e", script], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  if ((await proc.exited) !== 0) throw new Error(`fetch from ${ns} failed: ${err}`);
  const [status, body] = JSON.parse(out) as [number, string];
  return { status, body: JSON.parse(body) as Record<string, unknown> };
}

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

/** The service from source inside network namespace `ns`, listening on every address there. */
function spawnInNamespace(ns: string, home: string, env: Record<string, string> = {}) {
  return spawnService({
    home,
    cmd: ["ip", "netns", "exec", ns, process.execPath, join(import.meta.dir, "..", "..", "src", "main.ts")],
    env: { NEOLIGHT_DASHBOARD_HOST: "0.0.0.0", ...env },
  });
}

describe("a real non-loopback client", () => {
  test.skipIf(netnsProblem !== null)(
    "no token: its writes are refused (403) while loopback writes and its reads work; with a token it may write",
    async () => {
      using ns = namespaces();
      {
        using home = tempDir();
        await using svc = await spawnInNamespace(ns.server, home.path);
        const remote = `http://${SERVER_IP}:${svc.port}`;
        const refused = await fetchFrom(ns.client, `${remote}/meta/metrics`, post({ mode: "FROM_AFAR" }));
        expect(refused).toEqual({
          status: 403,
          body: {
            error: "writes are accepted only from this host (no NEOLIGHT_DASHBOARD_TOKEN is configured)",
            code: 403,
          },
        });
        // The same service, from its own host: accepted.
        const local = await fetchFrom(
          ns.server,
          `http://127.0.0.1:${svc.port}/meta/metrics`,
          post(fixture("stress_post")),
        );
        expect(local.status).toBe(200);
        // Reads stay open to the network (no read token): the refused write changed nothing.
        const read = await fetchFrom(ns.client, `${remote}/meta/metrics`);
        expect(read.status).toBe(200);
        expect(read.body.mode).toBe("TEST_MODE");
        expect(read.body.stress_timestamp).toBe(fixture("stress_post").stress_timestamp);
        expect(svc.lines).toContainEqual(
          expect.objectContaining({ level: "WARN", message: "request refused", address: CLIENT_IP, status: 403 }),
        );
      }
      {
        using home = tempDir();
        await using svc = await spawnInNamespace(ns.server, home.path, { NEOLIGHT_DASHBOARD_TOKEN: TOKEN });
        const url = `http://${SERVER_IP}:${svc.port}/meta/metrics`;
        expect((await fetchFrom(ns.client, url, post({ mode: "X" }))).status).toBe(401);
        expect((await fetchFrom(ns.client, url, post({ mode: "X" }, { authorization: "Bearer wrong" }))).status).toBe(
          403,
        );
        expect(
          (await fetchFrom(ns.client, url, post({ mode: "X" }, { authorization: `Bearer ${TOKEN}` }))).status,
        ).toBe(200);
      }
    },
    30_000,
  );
});

describe("the read token on a listening server", () => {
  test("every GET route but the probes (/health, /health/ready) refuses a remote client without it, native static routes included", async () => {
    await using t = await startApp({
      env: { NEOLIGHT_DASHBOARD_READ_TOKEN: "read-token-0123456789abcdef" },
      overrides: { clientAddress: () => "10.1.2.3" },
    });
    t.app.listen({ port: 0, hostname: "127.0.0.1" });
    try {
      const base = `http://127.0.0.1:${t.app.server?.port}`;
      const paths = t.app.routes.filter((r) => r.method === "GET" && !r.path.includes("*")).map((r) => r.path);
      expect(paths.length).toBeGreaterThan(10);
      for (const path of paths) {
        const res = await fetch(`${base}${path}`);
        await discardBody(res);
        expect({ path, status: res.status }).toEqual({ path, status: PROBES.includes(path) ? 200 : 401 });
        const ok = await fetch(`${base}${path}`, { headers: { authorization: "Bearer read-token-0123456789abcdef" } });
        await discardBody(ok);
        expect({ path, refused: [401, 403].includes(ok.status) }).toEqual({ path, refused: false });
      }
    } finally {
      await t.app.server?.stop(true);
    }
  });
});

describe("token files", () => {
  test.each([
    ["an empty token file", "", /is empty/],
    ["a missing token file", null, /cannot be read/],
    ["a short token in the file", "abc\n", /at least 16/],
  ])("%s: exit 2 with one ERROR line", async (_name, content, message) => {
    using home = tempDir();
    const file = join(home.path, "token");
    if (content !== null) writeFileSync(file, content);
    const proc = spawnRaw({ home: home.path, env: { NEOLIGHT_DASHBOARD_TOKEN_FILE: file } });
    await expectConfigExit(proc, "NEOLIGHT_DASHBOARD_TOKEN_FILE", message);
  });

  test("a token file is read once at start-up: writes need that token, no loopback WARN", async () => {
    using home = tempDir();
    const file = join(home.path, "token");
    writeFileSync(file, `${TOKEN}\n`);
    await using svc = await spawnService({ home: home.path, env: { NEOLIGHT_DASHBOARD_TOKEN_FILE: file } });
    writeFileSync(file, "changed-later-0123456789abcdef");
    const url = `${svc.url}/meta/metrics`;
    const res = (headers: Record<string, string>) => fetch(url, post({ mode: "X" }, headers));
    expect((await res({})).status).toBe(401);
    expect((await res({ authorization: "Bearer changed-later-0123456789abcdef" })).status).toBe(403);
    expect((await res({ authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect(svc.lines).toContainEqual(expect.objectContaining({ message: "service started", writes: "token" }));
    expect(svc.lines.filter((l) => (l as { message: string }).message.startsWith("no write token"))).toEqual([]);
  });
});
