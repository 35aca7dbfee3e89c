// Files that are not what they should be (issue 15 items 5 and 11, and the symlinked state
// file): FIFOs, symlinks and parse errors, against the real process with real files.
import { describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, fixtureText, tempDir, waitFor } from "../helpers";
import { postJson, spawnRaw, spawnService } from "./process";

function mkfifo(path: string): void {
  expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
}

describe("FIFOs at file paths", () => {
  test("agent files and risk_state.json as FIFOs: it listens, POSTs work, a valid file is picked up, SIGTERM exits 0", async () => {
    using home = tempDir();
    for (const dir of ["state", "runtime"]) mkdirSync(join(home.path, dir), { recursive: true });
    const regime = join(home.path, "runtime", "market_regime.json");
    mkfifo(regime);
    mkfifo(join(home.path, "runtime", "capital_governor_allocations.json"));
    mkfifo(join(home.path, "state", "risk_state.json"));
    await using svc = await spawnService({ home: home.path, env: { NEOLIGHT_SOURCE_POLL_MS: "50" } });
    for (let i = 0; i < 5; i++) {
      expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_paused_post"))).status).toBe(200);
    }
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      sources: { files: Record<string, unknown>[] };
    };
    expect(status.sources.files.find((f) => f.name === "market_regime")).toMatchObject({
      serving: "none",
      last_error: expect.stringMatching(/FIFO, not a regular file/),
    });
    // A valid file replaces the FIFO: the watcher recovers.
    writeFileSync(`${regime}.new`, fixtureText("market_regime"));
    renameSync(`${regime}.new`, regime);
    await waitFor(
      async () =>
        JSON.stringify(await (await fetch(`${svc.url}/meta/regime`)).json()) ===
        JSON.stringify(fixture("market_regime")),
      "the valid regime file to be served",
    );
    expect(await svc.stop()).toBe(0);
  }, 30_000);
});

describe("the state file is not a regular file", () => {
  test.each([
    ["a FIFO", (file: string) => mkfifo(file), /is a FIFO, not a regular file/],
    [
      "a symlink",
      (file: string) => {
        writeFileSync(`${file}.real`, "{}");
        symlinkSync(`${file}.real`, file);
      },
      /is a symlink/,
    ],
    ["a dangling symlink", (file: string) => symlinkSync(`${file}.gone`, file), /is a symlink/],
  ] as const)(
    "%s: exit 1 with one ERROR line, no hang",
    async (_what, make, error) => {
      using home = tempDir();
      mkdirSync(join(home.path, "state"));
      make(join(home.path, "state", "meta_metrics.json"));
      const proc = spawnRaw({ home: home.path });
      expect(await proc.exited).toBe(1);
      const lines = (await new Response(proc.stdout).text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const errors = lines.filter((l) => l.level === "ERROR");
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(errors[0])).toMatch(error);
    },
    30_000,
  );
});

describe("parse errors quote no content (item 11)", () => {
  test("a token file linked outside NEOLIGHT_HOME is refused; a bad file's error quotes nothing", async () => {
    using home = tempDir();
    using outside = tempDir();
    mkdirSync(join(home.path, "runtime"), { recursive: true });
    mkdirSync(join(home.path, "state"), { recursive: true });
    writeFileSync(join(outside.path, "token"), '{"regime":"SECRET-TOKEN-1","confidence":1}');
    symlinkSync(join(outside.path, "token"), join(home.path, "runtime", "market_regime.json"));
    writeFileSync(join(home.path, "state", "performance_attribution.json"), "hunter2secret");
    await using svc = await spawnService({ home: home.path, env: { NEOLIGHT_SOURCE_POLL_MS: "50" } });
    const text = await (await fetch(`${svc.url}/status`)).text();
    const files = (JSON.parse(text) as { sources: { files: Record<string, unknown>[] } }).sources.files;
    expect(files.find((f) => f.name === "market_regime")?.last_error).toMatch(/outside NEOLIGHT_HOME/);
    expect(files.find((f) => f.name === "performance_attribution")?.last_error).toMatch(/^not valid JSON/);
    expect(text).not.toMatch(/SECRET-TOKEN|hunter2/);
    expect(JSON.stringify(await (await fetch(`${svc.url}/meta/regime`)).json())).not.toMatch(/SECRET/);
    expect(svc.output().stdout).not.toMatch(/SECRET-TOKEN|hunter2/);
    expect(await svc.stop()).toBe(0);
  }, 30_000);
});
