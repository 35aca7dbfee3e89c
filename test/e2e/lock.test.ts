// One instance per state directory (issue 9), with real processes: a second service on
// another port with the same NEOLIGHT_HOME (or the same METRICS_PATH) stops at start-up
// with exit 1 and one ERROR line; kill -9 of the holder frees the lock at once.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, tempDir } from "../helpers";
import { compiledBinary, postJson, type SpawnOptions, spawnRaw, spawnService } from "./process";

/** The refused instance exits 1 and says, in one JSON line, which directory and which pid. */
async function expectRefused(options: SpawnOptions, directory: string, holderPid: number): Promise<void> {
  const proc = spawnRaw(options);
  const code = await proc.exited;
  const lines = (await new Response(proc.stdout).text()).trim().split("\n");
  expect({ code, lines: lines.map((l) => JSON.parse(l)) }).toEqual({
    code: 1,
    lines: [
      {
        timestamp: expect.any(String),
        level: "ERROR",
        message: "state directory in use by another instance",
        directory,
        holder_pid: holderPid,
        lock_file: join(directory, "dashboard.lock"),
      },
    ],
  });
}

describe("the state directory lock", () => {
  test("a second instance on another port with the same NEOLIGHT_HOME exits 1 and touches nothing", async () => {
    using home = tempDir();
    await using first = await spawnService({ home: home.path });
    expect((await postJson(`${first.url}/meta/metrics`, fixture("meta_metrics_paused_post"))).status).toBe(200);
    const file = join(home.path, "state", "meta_metrics.json");
    const before = readFileSync(file, "utf8");
    await expectRefused({ home: home.path }, join(home.path, "state"), first.proc.pid);
    // The refusal is in the shared log file too, for the operator who reads only that.
    expect(readFileSync(join(home.path, "logs", "dashboard_go.log"), "utf8")).toContain(
      `"message":"state directory in use by another instance"`,
    );
    expect(readFileSync(file, "utf8")).toBe(before);
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
  });

  test("two homes sharing one METRICS_PATH are refused as well", async () => {
    using home = tempDir();
    using other = tempDir();
    const metricsPath = join(home.path, "shared", "meta_metrics.json");
    await using first = await spawnService({ home: home.path, env: { METRICS_PATH: metricsPath } });
    await expectRefused(
      { home: other.path, env: { METRICS_PATH: metricsPath } },
      join(home.path, "shared"),
      first.proc.pid,
    );
  });

  test("the same home with another METRICS_PATH is refused on $NEOLIGHT_HOME/state (history.db)", async () => {
    using home = tempDir();
    using elsewhere = tempDir();
    await using first = await spawnService({ home: home.path });
    await expectRefused(
      { home: home.path, env: { METRICS_PATH: join(elsewhere.path, "meta_metrics.json") } },
      join(home.path, "state"),
      first.proc.pid,
    );
  });

  test("after kill -9 of the holder a new instance starts at once, with its state", async () => {
    using home = tempDir();
    {
      await using first = await spawnService({ home: home.path });
      expect((await postJson(`${first.url}/meta/metrics`, fixture("meta_metrics_paused_post"))).status).toBe(200);
      first.proc.kill("SIGKILL");
      await first.proc.exited;
    }
    // No retry, no wait: the kernel released the lock with the process.
    await using second = await spawnService({ home: home.path });
    const doc = (await (await fetch(`${second.url}/meta/metrics`)).json()) as { guardian: { is_paused: boolean } };
    expect(doc.guardian.is_paused).toBe(true);
    expect(readFileSync(join(home.path, "state", "dashboard.lock"), "utf8")).toBe(`${second.proc.pid}\n`);
  });

  test("the compiled binary locks too (flock through bun:ffi works in it)", async () => {
    const bin = await compiledBinary();
    using home = tempDir();
    using cwd = tempDir();
    const options = { home: home.path, cmd: [bin], cwd: cwd.path, env: { PATH: "/nonexistent" } };
    {
      await using first = await spawnService(options);
      await expectRefused(options, join(home.path, "state"), first.proc.pid);
      first.proc.kill("SIGKILL");
      await first.proc.exited;
    }
    await using again = await spawnService(options);
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
  }, 60_000); // the first test to ask builds the binary: seconds on a loaded machine
});
