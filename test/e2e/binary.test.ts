// The compiled binary, as a sysadmin runs it: from an unrelated working directory, with a
// temporary NEOLIGHT_HOME, no Bun on PATH and no node_modules beside it.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../src/config";
import { served as asServed, fixture, ROOT, tempDir } from "../helpers";
import { compiledBinary, postJson, spawnService } from "./process";

/** A PATH without Bun: the binary must not need it. */
const NO_BUN_PATH = "/nonexistent";

describe("the compiled binary", () => {
  test("serves the hive fixture from any directory and persists it on SIGTERM", async () => {
    const bin = await compiledBinary();
    using home = tempDir();
    using cwd = tempDir();
    const hive = fixture("meta_metrics_post");
    await using svc = await spawnService({ home: home.path, cmd: [bin], cwd: cwd.path, env: { PATH: NO_BUN_PATH } });
    expect((await postJson(`${svc.url}/meta/metrics`, hive)).status).toBe(200);
    const served = (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Record<string, unknown>;
    expect(served).toEqual(asServed({ ...hive, cache_timestamp: expect.any(String) }));
    // The embedded API docs assets are in the binary too.
    const js = await fetch(`${svc.url}/swagger/assets/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);

    expect(await svc.stop("SIGTERM")).toBe(0);
    const { _guardian_sources: sources, ...persisted } = JSON.parse(
      readFileSync(join(home.path, "state", "meta_metrics.json"), "utf8"),
    );
    expect(persisted).toEqual(served);
    // What the served guardian was resolved from (issue 11), kept beside it, never served.
    expect(sources).toMatchObject({ hive: { report: hive.guardian }, pause_file: { state: "absent" } });
  });

  test("records history on its own thread, from any directory; SIGTERM writes the last samples", async () => {
    const bin = await compiledBinary();
    using home = tempDir();
    using cwd = tempDir();
    const start = () => spawnService({ home: home.path, cmd: [bin], cwd: cwd.path, env: { PATH: NO_BUN_PATH } });
    {
      await using svc = await start();
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_paused_post"))).status).toBe(200);
      // At once, before the recorder's one-second timer: shutdown must write it.
      expect(await svc.stop("SIGTERM")).toBe(0);
      // The thread started and closed cleanly: no WARN or ERROR about history.
      const lines = svc.lines as { level: string; message: string }[];
      expect(lines.filter((l) => l.message.includes("history") && l.level !== "INFO")).toEqual([]);
    }
    await using svc = await start();
    const res = await fetch(`${svc.url}/meta/history?range=1h&kinds=guardian`);
    expect(res.status).toBe(200);
    const { series } = (await res.json()) as { series: { field: string; v: number[] }[] };
    expect(series.map((s) => [s.field, s.v])).toEqual([
      ["drawdown", [8.73]],
      ["is_paused", [1]],
    ]);
    const status = (await (await fetch(`${svc.url}/status`)).json()) as { history: Record<string, unknown> };
    expect(status.history).toMatchObject({ enabled: true, failures: 0, disabled_reason: null });
  });

  test("--help lists every option and its variable; --version prints the version", async () => {
    const bin = await compiledBinary();
    const help = spawnSync(bin, ["--help"], { encoding: "utf8", env: { PATH: NO_BUN_PATH } });
    expect(help.status).toBe(0);
    for (const word of ["--port", "NEOLIGHT_DASHBOARD_PORT", "--home", "NEOLIGHT_HOME", "METRICS_PATH", "LOG_PATH"]) {
      expect(help.stdout).toContain(word);
    }
    // Issue 9: the version alone did not say which build runs. No git on PATH here, and an
    // unrelated directory: the commit was written into the binary when it was built.
    const version = spawnSync(bin, ["--version"], { encoding: "utf8", env: { PATH: NO_BUN_PATH }, cwd: "/" });
    expect({ status: version.status, out: version.stdout }).toEqual({
      status: 0,
      out: expect.stringMatching(versionLine(headCommit())),
    });
  });

  test("flags override the environment", async () => {
    const bin = await compiledBinary();
    using home = tempDir();
    using other = tempDir();
    await using svc = await spawnService({
      home: other.path,
      cmd: [bin],
      args: ["--home", home.path],
      env: { PATH: NO_BUN_PATH },
    });
    expect((await postJson(`${svc.url}/meta/metrics`, { mode: "LIVE_MODE" })).status).toBe(200);
    expect(await svc.stop()).toBe(0);
    expect(JSON.parse(readFileSync(join(home.path, "state", "meta_metrics.json"), "utf8")).mode).toBe("LIVE_MODE");
  });
});

/** The checkout's commit, as `git rev-parse --short=12 HEAD` says. */
function headCommit(): string {
  const head = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  expect(head.status).toBe(0);
  return head.stdout.trim();
}

/** What --version prints for `commit` (with "-dirty" when the checkout had changes). */
const versionLine = (commit: string) =>
  new RegExp(
    `^neolight-dashboard ${VERSION.replaceAll(".", "\\.")} \\(commit ${commit}(-dirty)?, bun ${Bun.version.replaceAll(".", "\\.")}\\)\n$`,
  );

describe("--version from source", () => {
  test("names the checkout's commit and the Bun version", () => {
    const res = spawnSync(process.execPath, [join(ROOT, "src", "main.ts"), "--version"], { encoding: "utf8" });
    expect({ status: res.status, out: res.stdout }).toEqual({
      status: 0,
      out: expect.stringMatching(versionLine(headCommit())),
    });
  });

  test("without git it says the commit is unknown, and still answers", () => {
    const res = spawnSync(process.execPath, [join(ROOT, "src", "main.ts"), "--version"], {
      encoding: "utf8",
      env: { PATH: NO_BUN_PATH },
    });
    expect({ status: res.status, out: res.stdout }).toEqual({
      status: 0,
      out: expect.stringMatching(versionLine("unknown")),
    });
  });
});

describe("the systemd unit", () => {
  const analyze = spawnSync("sh", ["-c", "command -v systemd-analyze"]).status === 0;
  test.skipIf(!analyze)("passes systemd-analyze verify (skipped where systemd-analyze is missing)", async () => {
    const bin = await compiledBinary();
    using dir = tempDir();
    const unit = readFileSync(join(ROOT, "deploy", "neolight-dashboard.service"), "utf8").replace(
      "ExecStart=/usr/local/bin/neolight-dashboard",
      `ExecStart=${bin}`,
    );
    const path = join(dir.path, "neolight-dashboard.service");
    writeFileSync(path, unit);
    const res = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
    expect({ status: res.status, problems: res.stderr.trim() }).toEqual({ status: 0, problems: "" });
  });
});
