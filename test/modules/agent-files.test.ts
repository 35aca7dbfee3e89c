// Agent-written files (CONTRACT section 1): written in place, so a read can see an empty,
// truncated or half-written file. Clients must only ever see whole documents.
import { describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, fixtureText, get, logged, startApp, strictJson, type TestApp, waitFor } from "../helpers";

function write(t: TestApp, relative: string, content: string): void {
  mkdirSync(join(t.home, relative, ".."), { recursive: true });
  writeFileSync(join(t.home, relative), content);
}

describe("defaults when the files do not exist", () => {
  test("GET /meta/performance", async () => {
    await using t = await startApp();
    expect(await get(t.app, "/meta/performance")).toMatchObject({
      status: 200,
      body: { decisions: [], last_update: null },
    });
  });

  test("GET /meta/regime", async () => {
    await using t = await startApp();
    const res = await get(t.app, "/meta/regime");
    expect(res.body).toEqual({ regime: "UNKNOWN", timestamp: expect.stringMatching(/Z$/) });
  });

  test("GET /governor/allocations", async () => {
    await using t = await startApp();
    const res = await get(t.app, "/governor/allocations");
    expect(res.body).toEqual({ allocations: {}, timestamp: expect.stringMatching(/Z$/) });
    expect(res.headers.get("x-neolight-source")).toBe("default");
  });
});

describe("files present at start-up are served as written", () => {
  test.each([
    ["/meta/performance", "state/performance_attribution.json", "performance_attribution"],
    ["/meta/regime", "runtime/market_regime.json", "market_regime"],
    ["/governor/allocations", "runtime/capital_governor_allocations.json", "capital_governor_allocations"],
  ])("%s", async (route, relative, name) => {
    await using t = await startApp();
    write(t, relative, fixtureText(name));
    await t.services.files
      .all()
      .find((f) => f.state().path.endsWith(relative))
      ?.refresh();
    expect((await get(t.app, route)).body).toEqual(fixture(name));
  });
});

describe("allocations fall back to the override copy", () => {
  test("governor file, else override, else empty", async () => {
    await using t = await startApp();
    write(t, "runtime/allocations_override.json", fixtureText("allocations_override"));
    await t.services.files.ready();
    let res = await get(t.app, "/governor/allocations");
    expect(res.body).toEqual(fixture("allocations_override"));
    expect(res.headers.get("x-neolight-source")).toBe("allocations_override");

    write(t, "runtime/capital_governor_allocations.json", fixtureText("capital_governor_allocations"));
    await t.services.files.ready();
    res = await get(t.app, "/governor/allocations");
    expect(res.body).toEqual(fixture("capital_governor_allocations"));
    expect(res.headers.get("x-neolight-source")).toBe("capital_governor_allocations");
  });
});

describe("an agent rewriting its file in place", () => {
  test("missing, whole, empty, truncated mid-write, invalid, whole again", async () => {
    await using t = await startApp();
    const relative = "runtime/market_regime.json";
    const file = t.services.files.regime;
    const first = fixture("market_regime");
    const second = { ...first, regime: "BEAR", description: "Bear market" };

    write(t, relative, JSON.stringify(first));
    await file.refresh();
    expect((await get(t.app, "/meta/regime")).body).toEqual(first);

    const text = JSON.stringify(second, null, 2);
    for (const [what, content] of [
      ["empty", ""],
      ["truncated mid-write", text.slice(0, text.length / 2)],
      ["whitespace only", "   \n"],
      ["valid JSON but not a regime document", '{"regime": 7}'],
    ] as const) {
      write(t, relative, content);
      await file.refresh();
      const res = await get(t.app, "/meta/regime");
      expect({ what, status: res.status, body: res.body }).toEqual({ what, status: 200, body: first });
    }
    // One WARN for the whole bad stretch, not one per bad read.
    expect(logged(t.log, "agent file unreadable, serving last good copy")).toEqual([
      expect.objectContaining({ level: "WARN", source: "market_regime", error: "file is empty" }),
    ]);
    expect(file.state()).toMatchObject({ serving: "last_good", parse_errors: 4, present: true });

    write(t, relative, text);
    await file.refresh();
    expect((await get(t.app, "/meta/regime")).body).toEqual(second);
    expect(file.state()).toMatchObject({ serving: "file", last_error: null });
    expect(logged(t.log, "agent file readable again")).toHaveLength(1);
  });

  test("a change is picked up without anyone asking (watch and poll)", async () => {
    await using t = await startApp();
    write(t, "state/performance_attribution.json", fixtureText("performance_attribution"));
    await waitFor(
      async () => ((await get(t.app, "/meta/performance")).body.decisions as unknown[]).length === 5,
      "the file to be picked up",
    );
  });

  test("a file deleted after being served falls back to the default", async () => {
    await using t = await startApp();
    write(t, "runtime/market_regime.json", fixtureText("market_regime"));
    await t.services.files.regime.refresh();
    rmSync(join(t.home, "runtime/market_regime.json"));
    await t.services.files.regime.refresh();
    expect((await get(t.app, "/meta/regime")).body.regime).toBe("UNKNOWN");
    expect(logged(t.log, "agent file removed")).toHaveLength(1);
  });

  test("/status reports each file's state", async () => {
    await using t = await startApp();
    write(t, "runtime/market_regime.json", "{");
    await t.services.files.regime.refresh();
    const files = (await get(t.app, "/status")).body.sources as { files: Record<string, unknown>[] };
    expect(files.files.find((f) => f.name === "market_regime")).toMatchObject({
      present: true,
      serving: "none",
      parse_errors: 1,
      last_error: expect.stringContaining("not valid JSON"),
    });
  });
});

describe("an agent file beyond the body limits (issue 15 item 10)", () => {
  test("400 KB of nested arrays is refused by its shape; the last good copy is served", async () => {
    await using t = await startApp();
    const file = t.services.files.regime;
    write(t, "runtime/market_regime.json", fixtureText("market_regime"));
    await file.refresh();
    write(t, "runtime/market_regime.json", `${"[".repeat(200_000)}${"]".repeat(200_000)}`);
    await file.refresh();
    expect(file.state()).toMatchObject({ serving: "last_good", last_error: "nested deeper than 32 levels" });
    expect((await get(t.app, "/meta/regime")).body).toEqual(fixture("market_regime"));
  });
});

describe("an agent file with a lone surrogate (issue 15 item 12)", () => {
  test("is refused as a bad file: the last good copy is served, and the answer is strict JSON", async () => {
    await using t = await startApp();
    const file = t.services.files.performance;
    const good = fixture("performance_attribution");
    write(t, "state/performance_attribution.json", JSON.stringify(good));
    await file.refresh();
    // What Python's json.dumps writes for a str holding a lone surrogate (ensure_ascii).
    write(t, "state/performance_attribution.json", JSON.stringify(good).replace("{", '{"note\\ud800":"x",'));
    await file.refresh();
    expect(file.state()).toMatchObject({
      serving: "last_good",
      last_error: "holds a lone UTF-16 surrogate, which strict JSON parsers refuse",
    });
    const res = await t.app.handle(new Request("http://localhost/meta/performance"));
    expect(strictJson(await res.text())).toEqual(good);
  });
});

describe("an unchanged file is not read again (issue 15 item 10)", () => {
  const REGIME = "runtime/market_regime.json";
  const LONG_AGO = new Date("2026-01-01T00:00:00Z");
  const reads = (t: TestApp) => logged(t.log, "agent file read").filter((l) => l.source === "market_regime").length;
  /** A version written long enough ago (mtime) to be trusted unchanged (SETTLED_MS). */
  const settle = (t: TestApp, when = LONG_AGO) => utimesSync(join(t.home, REGIME), when, when);
  const refreshes = async (t: TestApp, n: number) => {
    for (let i = 0; i < n; i++) await t.services.files.regime.refresh();
  };

  test("a bad file is read once across many polls; same size with the mtime set back, or a rename, is read again", async () => {
    await using t = await startApp();
    const good = fixtureText("market_regime");
    const bad = `${good.slice(0, -2)}  `; // same size, not JSON
    write(t, REGIME, bad);
    settle(t);
    await refreshes(t, 10);
    expect(reads(t)).toBe(1);
    expect(t.services.files.regime.state()).toMatchObject({ serving: "none", parse_errors: 1 });

    // Same size, same mtime (set back to the same instant): ctime still tells.
    write(t, REGIME, good);
    settle(t);
    await refreshes(t, 5);
    expect(reads(t)).toBe(2);
    expect(t.services.files.regime.state()).toMatchObject({ serving: "file" });

    // Same size, same mtime, a new inode (written beside it and renamed over).
    writeFileSync(join(t.home, `${REGIME}.tmp`), bad);
    utimesSync(join(t.home, `${REGIME}.tmp`), LONG_AGO, LONG_AGO);
    renameSync(join(t.home, `${REGIME}.tmp`), join(t.home, REGIME));
    await refreshes(t, 5);
    expect(reads(t)).toBe(3);
    expect(t.services.files.regime.state()).toMatchObject({ serving: "last_good", parse_errors: 2 });
    expect((await get(t.app, "/meta/regime")).body).toEqual(fixture("market_regime"));
  });

  test("a version written just now is read at every look until it has settled (a same-size rewrite in its tick is seen)", async () => {
    await using t = await startApp();
    write(t, REGIME, fixtureText("market_regime"));
    // mtime in the future stands for "now" however slow this machine is: never settled.
    settle(t, new Date(Date.now() + 3_600_000));
    // Each refresh reads (polls may add reads of their own: at least, not exactly).
    const before = reads(t);
    await refreshes(t, 3);
    expect(reads(t) - before).toBeGreaterThanOrEqual(3);
    settle(t);
    await refreshes(t, 1);
    const settled = reads(t);
    await refreshes(t, 5);
    expect(reads(t)).toBe(settled);
  });
});
