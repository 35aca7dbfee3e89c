// The service as a real process: graceful restart, crash with kill -9, configuration
// errors, and the log file. Real sockets on port 0, real signals, real files.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, tempDir, waitFor } from "../helpers";
import { expectConfigExit, postJson, spawnRaw, spawnService } from "./process";

describe("restart", () => {
  test("post, SIGTERM (exit 0), restart: the same document", async () => {
    using home = tempDir();
    let before: unknown;
    {
      await using svc = await spawnService({ home: home.path });
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_paused_post"))).status).toBe(200);
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("stress_post"))).status).toBe(200);
      expect((await postJson(`${svc.url}/atlas/update`, fixture("atlas_update_post"))).status).toBe(200);
      before = await (await fetch(`${svc.url}/meta/metrics`)).json();
      expect(await svc.stop("SIGTERM")).toBe(0);
      expect(svc.lines.map((l) => (l as { message: string }).message)).toContain("service stopped");
    }
    await using svc = await spawnService({ home: home.path });
    expect(await (await fetch(`${svc.url}/meta/metrics`)).json()).toEqual(before);
    expect((before as { guardian: { is_paused: boolean } }).guardian.is_paused).toBe(true);
    expect(await svc.stop("SIGINT")).toBe(0);
  });

  test("crash: every update answered 200 before kill -9 is there after restart", async () => {
    using home = tempDir();
    const acked = new Map<string, number>();
    {
      await using svc = await spawnService({ home: home.path });
      let stop = false;
      // Eight clients, each counting up under its own key while the process is killed.
      const clients = Array.from({ length: 8 }, async (_, c) => {
        for (let n = 1; !stop; n++) {
          try {
            const res = await postJson(`${svc.url}/meta/metrics`, { [`client_${c}`]: n });
            if (res.status === 200) acked.set(`client_${c}`, n);
          } catch {
            return; // connection refused or reset: the process is gone
          }
        }
      });
      // Kill once a good number of updates were acknowledged.
      await waitFor(() => [...acked.values()].reduce((a, b) => a + b, 0) >= 200, "200 acknowledged updates");
      svc.proc.kill("SIGKILL");
      await svc.proc.exited;
      stop = true;
      await Promise.all(clients);
    }
    const file = JSON.parse(readFileSync(join(home.path, "state", "meta_metrics.json"), "utf8"));
    await using svc = await spawnService({ home: home.path });
    const doc = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, number>;
    expect(acked.size).toBe(8);
    for (const [key, n] of acked) {
      // An update may be durable without its 200 having arrived, never the other way.
      expect({ key, restored: (doc[key] ?? 0) >= n }).toEqual({ key, restored: true });
      expect(doc[key]).toBe(file[key]);
    }
  });
});

describe("configuration errors stop start-up with exit 2 and one ERROR line", () => {
  test.each([
    ["port abc", { NEOLIGHT_DASHBOARD_PORT: "abc" }, "NEOLIGHT_DASHBOARD_PORT", []],
    // Issue 9: the flag was blamed on the variable.
    ["--port abc", {}, "--port", ["--port", "abc"]],
    ["an unwritable log path", { LOG_PATH: "/proc/neolight/dashboard.log" }, "LOG_PATH", []],
    ["a metrics path under a file", { METRICS_PATH: "FILE/state/m.json" }, "METRICS_PATH", []],
  ])("%s", async (_name, env, variable, args) => {
    using home = tempDir();
    writeFileSync(join(home.path, "FILE"), "x");
    const resolved = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v.replace("FILE", join(home.path, "FILE"))]),
    );
    const proc = spawnRaw({ home: home.path, env: resolved, args });
    await expectConfigExit(proc, variable, new RegExp(variable));
  });
});

describe("other start-up failures exit 1, so systemd restarts the service", () => {
  test("a port in use: exit 1 with a 'cannot listen' ERROR in the log file", async () => {
    using home = tempDir();
    await using first = await spawnService({ home: home.path });
    using other = tempDir();
    const proc = spawnRaw({ home: other.path, env: { NEOLIGHT_DASHBOARD_PORT: String(first.port) } });
    expect(await proc.exited).toBe(1);
    const log = readFileSync(join(other.path, "logs", "dashboard_go.log"), "utf8")
      .trim()
      .split("\n");
    expect(JSON.parse(log.at(-1) as string)).toMatchObject({
      level: "ERROR",
      message: "cannot listen",
      port: first.port,
    });
    // Issue 9: the line carried the error's (minified, in the binary) stack. One clean line:
    // where, and why in words.
    const errors = (await new Response(proc.stdout).text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === "ERROR");
    expect(errors).toEqual([
      {
        timestamp: expect.any(String),
        level: "ERROR",
        message: "cannot listen",
        host: "127.0.0.1",
        port: first.port,
        code: "EADDRINUSE",
        reason: "address already in use: another process listens on this port",
      },
    ]);
  });
});

describe("the log file", () => {
  test("every line is a JSON object with timestamp, level and message, access log included", async () => {
    using home = tempDir();
    {
      await using svc = await spawnService({ home: home.path });
      await fetch(`${svc.url}/health`);
      await fetch(`${svc.url}/nope`);
      await fetch(`${svc.url}/meta/metrics`, {
        method: "POST",
        body: "{not json",
        headers: { "content-type": "application/json" },
      });
      await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_post"));
      await fetch(`${svc.url}/risk/status`);
      expect(await svc.stop()).toBe(0);
      // stdout carries the same lines: nothing there is plain text either.
      for (const line of svc.output().stdout.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    }
    const lines = readFileSync(join(home.path, "logs", "dashboard_go.log"), "utf8")
      .trimEnd()
      .split("\n");
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of parsed) {
      // A copy: bun's toMatchObject writes the asymmetric matchers into what it checks.
      expect(structuredClone(line)).toMatchObject({
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
        level: expect.stringMatching(/^(DEBUG|INFO|WARN|ERROR)$/),
        message: expect.any(String),
      });
    }
    const messages = parsed.map((l) => l.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        "service started",
        "request",
        "Telemetry processed",
        "risk engine unreachable",
        "service stopped",
      ]),
    );
    expect(parsed.find((l) => l.message === "Telemetry processed")).toMatchObject({ agents: 3 });
    expect(parsed.filter((l) => l.message === "request").map((l) => l.status)).toEqual([200, 404, 400, 200, 503]);
  });
});

describe("signals", () => {
  test("SIGHUP reopens the log file (logrotate) and the service keeps serving", async () => {
    using home = tempDir();
    await using svc = await spawnService({ home: home.path });
    const log = join(home.path, "logs", "dashboard_go.log");
    renameSync(log, `${log}.1`);
    svc.proc.kill("SIGHUP");
    await waitFor(() => existsSync(log), "a new log file");
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
    expect(await svc.stop()).toBe(0);
    expect(readFileSync(log, "utf8")).toContain('"message":"service stopped"');
  });
});
