// What ships for several replicas on one host in deploy/systemd/neolight-dashboard@.service
// (issue 12): systemd's own checker accepts the template for a port instance and a named one;
// each instance gets its port, its local copy of the document and its log, the shared
// NEOLIGHT_HOME, the shared env file (required: the database password lives only there) and
// the single-instance unit's hardening; it restarts always; and its start-up guard really
// refuses a start without NEOLIGHT_DATABASE_URL, with the service's JSON line.
//
// Which checks ran: `systemd-analyze verify` (Debian's systemd package) when it is there,
// else that test skips with a message; the parse of the keys that matter and the guard,
// run with /bin/sh as systemd would run it, always run. No systemd manager runs here, so the
// unit is not started by systemd itself: two real service processes are started with the
// environment it gives two instances (paths moved into a temporary directory) on one real
// PostgreSQL database (test/postgres.ts; skipped with a message where no server answers).
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compiledBinary, postJson, spawnService } from "../e2e/process";
import { ROOT, tempDir, waitFor } from "../helpers";
import { createTestDatabase } from "../postgres";

const TEMPLATE = join(ROOT, "deploy", "systemd", "neolight-dashboard@.service");
const SINGLE = join(ROOT, "deploy", "neolight-dashboard.service");
const SYSTEMD_ANALYZE = Bun.which("systemd-analyze");
if (SYSTEMD_ANALYZE === null) {
  process.stderr.write(
    "\n!! test/deploy/systemd.test.ts: systemd-analyze verify SKIPPED (no systemd-analyze); the parse checks ran\n\n",
  );
}
/** Where the README installs the binary (the unit's ExecStart). */
const BINARY = "/usr/local/bin/neolight-dashboard";

type Unit = Record<string, Record<string, string[]>>;

/** A unit file's sections and keys (a key given twice keeps both values, in order). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      unit[name] ??= {};
      section = unit[name];
      continue;
    }
    const eq = line.indexOf("=");
    if (section === undefined || eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq);
    section[key] = [...(section[key] ?? []), line.slice(eq + 1)];
  }
  return unit;
}

/**
 * An Exec line as systemd turns it into argv (systemd.service(5), "Command lines"):
 * specifiers first (%i the instance, %% a percent sign), then words split on whitespace,
 * '...' and "..." each wrapping one word, C escapes (\" \' \\ \n) decoded inside quotes
 * too (systemd-analyze verify confirms: 'x\' is unbalanced), and $$ a dollar sign. Only
 * what the shipped lines use: any other specifier or a $VAR systemd would substitute throws.
 */
function execArgv(line: string, instance: string): string[] {
  const expanded = line.replace(/%(.)/g, (_, c: string) => {
    if (c === "%") return "%";
    if (c === "i") return instance;
    throw new Error(`specifier %${c} not handled`);
  });
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  const escapes: Record<string, string> = { '"': '"', "'": "'", "\\": "\\", n: "\n", t: "\t" };
  for (let i = 0; i < expanded.length; i++) {
    const c = expanded[i] as string;
    if (c === "\\") {
      const next = expanded[++i] as string;
      const decoded = escapes[next];
      if (decoded === undefined) throw new Error(`escape \\${next} not handled`);
      word = (word ?? "") + decoded;
    } else if (quote !== null) {
      if (c === quote) quote = null;
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === " ") {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? "") + c;
  }
  if (quote !== null) throw new Error("unbalanced quoting");
  if (word !== null) words.push(word);
  return words.map((w) => {
    if (/\$(?!\$)/.test(w.replaceAll("$$", ""))) throw new Error(`systemd would substitute a variable in ${w}`);
    return w.replaceAll("$$", "$");
  });
}

const unit = parseUnit(readFileSync(TEMPLATE, "utf8"));
const service = unit.Service as Record<string, string[]>;

/** The unit's Environment= lines as a map, %i replaced by `instance`. */
function environment(instance: string): Record<string, string> {
  return Object.fromEntries(
    (service.Environment ?? []).map((e) => {
      const eq = e.indexOf("=");
      return [e.slice(0, eq), e.slice(eq + 1).replaceAll("%i", instance)];
    }),
  );
}

describe.skipIf(SYSTEMD_ANALYZE === null)("systemd-analyze verify", () => {
  // ? As test/e2e/binary.test.ts does for the single unit: ExecStart pointed at the binary
  // built from this tree, since verify checks that the command exists and the README's
  // /usr/local/bin is not where a build machine has it. Nothing else is changed.
  test.each(["8101", "blue"])("instance %s: exit 0, no diagnostic", async (instance) => {
    const bin = await compiledBinary();
    using dir = tempDir("neolight-systemd-");
    const text = readFileSync(TEMPLATE, "utf8");
    expect(text.split("\n").filter((l) => l === `ExecStart=${BINARY}`)).toHaveLength(1);
    // ? The template's own name, so that systemd loads it for the instance asked for.
    writeFileSync(
      join(dir.path, "neolight-dashboard@.service"),
      text.replace(`ExecStart=${BINARY}`, `ExecStart=${bin}`),
    );
    const r = Bun.spawnSync([
      SYSTEMD_ANALYZE as string,
      "verify",
      join(dir.path, `neolight-dashboard@${instance}.service`),
    ]);
    expect({ code: r.exitCode, problems: `${r.stdout.toString()}${r.stderr.toString()}`.trim() }).toEqual({
      code: 0,
      problems: "",
    });
  });
});

describe("the keys that matter", () => {
  test("per instance: the port, the local copy and the log; shared: NEOLIGHT_HOME", () => {
    // The allocator's settings are the next test's.
    const { MIMALLOC_PURGE_DELAY, MIMALLOC_PURGE_HOLES, ...service } = environment("8101");
    expect(service).toEqual({
      NEOLIGHT_HOME: "/var/lib/neolight",
      NEOLIGHT_DASHBOARD_PORT: "8101",
      NEOLIGHT_DASHBOARD_HOST: "127.0.0.1",
      METRICS_PATH: "/var/lib/neolight/replicas/8101/meta_metrics.json",
      LOG_PATH: "/var/lib/neolight/logs/dashboard_go-8101.log",
    });
    // Two instances never share a state directory (its lock) or a log file.
    const [a, b] = [environment("8101"), environment("8102")];
    expect(a.METRICS_PATH).not.toBe(b.METRICS_PATH);
    expect(a.LOG_PATH).not.toBe(b.LOG_PATH);
    // The same home as the single-instance unit: the agents' files are where they were.
    expect(parseUnit(readFileSync(SINGLE, "utf8")).Service?.Environment).toContain("NEOLIGHT_HOME=/var/lib/neolight");
  });

  test("Bun's allocator settings: the same in both units", () => {
    // ? Issue 16: what README "Many agents" and bench/scale.ts's row "as the systemd units
    // run it" measured; a template that lost them would run several replicas at half the
    // durable snapshots/s of one at 3,000 agents.
    const allocator = (text: string) => text.split("\n").filter((l) => l.startsWith("Environment=MIMALLOC_"));
    const [template, single] = [readFileSync(TEMPLATE, "utf8"), readFileSync(SINGLE, "utf8")];
    expect(allocator(template)).toEqual([
      "Environment=MIMALLOC_PURGE_DELAY=1000",
      "Environment=MIMALLOC_PURGE_HOLES=0",
    ]);
    expect(allocator(single)).toEqual(allocator(template));
  });

  test("the shared env file is required; a per-instance one is optional and read after it", () => {
    expect(service.EnvironmentFile).toEqual(["/etc/neolight/dashboard.env", "-/etc/neolight/dashboard-%i.env"]);
  });

  test("no credential in the unit: no database URL, no password, no token", () => {
    const text = readFileSync(TEMPLATE, "utf8");
    const settings = text.split("\n").filter((l) => !l.trimStart().startsWith("#"));
    expect(settings.filter((l) => /postgres(ql)?:\/\/|PASSWORD|TOKEN=|DATABASE_URL=/i.test(l))).toEqual([]);
  });

  test("restarts always, without giving up", () => {
    expect({
      Restart: service.Restart,
      RestartSec: service.RestartSec,
      RestartPreventExitStatus: service.RestartPreventExitStatus,
      StartLimitIntervalSec: unit.Unit?.StartLimitIntervalSec,
    }).toEqual({
      Restart: ["always"],
      RestartSec: ["2"],
      RestartPreventExitStatus: undefined,
      StartLimitIntervalSec: ["0"],
    });
  });

  test("the single-instance unit's user, stop and hardening, key for key", () => {
    const single = parseUnit(readFileSync(SINGLE, "utf8")).Service as Record<string, string[]>;
    // What the template sets differently on purpose, each tested above.
    const own = new Set(["Environment", "EnvironmentFile", "ExecStartPre", "Restart", "RestartPreventExitStatus"]);
    const pick = (s: Record<string, string[]>) => Object.fromEntries(Object.entries(s).filter(([k]) => !own.has(k)));
    expect(pick(service)).toEqual(pick(single));
    expect(unit.Unit?.Conflicts).toEqual(["neolight-dashboard.service"]);
  });
});

describe("the start-up guard (ExecStartPre), run with /bin/sh as systemd runs it", () => {
  const guard = () => {
    expect(service.ExecStartPre).toHaveLength(1);
    return execArgv((service.ExecStartPre as string[])[0] as string, "8101");
  };

  test("without NEOLIGHT_DATABASE_URL: exit 2 and one JSON line, the service's configuration error", () => {
    const r = Bun.spawnSync(guard(), { env: { PATH: "/usr/bin:/bin" } });
    const lines = r.stdout.toString().trim().split("\n");
    expect({ code: r.exitCode, lines: lines.length }).toEqual({ code: 2, lines: 1 });
    expect(JSON.parse(lines[0] as string)).toEqual({
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      level: "ERROR",
      message: "invalid configuration",
      variable: "NEOLIGHT_DATABASE_URL",
      error: expect.stringContaining("/etc/neolight/dashboard.env"),
    });
  });

  test("with it: exit 0, silent, and the URL never on the command line", () => {
    const url = "postgres://neolight:s3cret-password@db:5432/neolight?sslmode=require";
    const argv = guard();
    expect(argv.join(" ")).not.toContain("s3cret");
    const r = Bun.spawnSync(argv, { env: { PATH: "/usr/bin:/bin", NEOLIGHT_DATABASE_URL: url } });
    expect({ code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() }).toEqual({
      code: 0,
      out: "",
      err: "",
    });
  });
});

/** A free TCP port on loopback: an instance's name is its port. */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

const db = await createTestDatabase();
afterAll(() => db?.drop());

describe.skipIf(db === null)("two instances as the unit starts them, on one PostgreSQL database", () => {
  test("both start on the shared home, each with its own copy and log, and serve each other's writes", async () => {
    using root = tempDir("neolight-systemd-home-");
    /** The unit's environment for `instance`, /var/lib/neolight moved into the temporary root. */
    const envOf = (instance: string) => ({
      ...Object.fromEntries(
        Object.entries(environment(instance)).map(([k, v]) => [k, v.replace("/var/lib/neolight", root.path)]),
      ),
      // What /etc/neolight/dashboard.env gives every instance.
      NEOLIGHT_DATABASE_URL: (db as NonNullable<typeof db>).url,
    });
    const [portA, portB] = [String(freePort()), String(freePort())];
    await using a = await spawnService({ home: root.path, env: envOf(portA) });
    await using b = await spawnService({ home: root.path, env: envOf(portB) });
    expect([String(a.port), String(b.port)]).toEqual([portA, portB]);
    expect((await fetch(`${a.url}/health/ready`)).status).toBe(200);
    expect((await fetch(`${b.url}/health/ready`)).status).toBe(200);

    expect((await postJson(`${a.url}/meta/metrics`, { written: "on A" })).status).toBe(200);
    await waitFor(
      async () => ((await (await fetch(`${b.url}/meta/metrics`)).json()) as Record<string, unknown>).written === "on A",
      "B to serve A's write",
    );
    // Each instance logs to its own file, its own port in its start line.
    for (const [port, instance] of [
      [a.port, portA],
      [b.port, portB],
    ] as const) {
      const log = readFileSync(join(root.path, "logs", `dashboard_go-${instance}.log`), "utf8");
      const started = log
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.message === "service started");
      expect(started).toMatchObject({ port, home: root.path, store: "postgres" });
    }
  });
});
