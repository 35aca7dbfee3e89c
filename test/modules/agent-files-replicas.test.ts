// The agents' files across replicas through the wired services (issue 12): two apps started
// by startServices on one PostgreSQL database, one with the agents' home, one with a home
// of its own, answering through app.handle as their HTTP clients see them. Skips, saying
// so, without a server.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AGENT_FILES_KEY } from "../../src/modules/agent-files/model";
import { PAUSE_FILE } from "../../src/modules/guardian/service";
import { fixture, fixtureText, get, logged, post, startApp, type TestApp, tempDir, waitFor } from "../helpers";
import { createTestDatabase, serverAnswers, type TestDatabase } from "../postgres";

// ? With no server, createTestDatabase says so on stderr (once) and the describe skips.
const noServer = !(await serverAnswers());

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function replicaOf(db: TestDatabase, home: string): Promise<TestApp> {
  const t = await startApp({ home, env: { NEOLIGHT_DATABASE_URL: db.url } });
  cleanup.push(async () => await t[Symbol.asyncDispose]());
  return t;
}

function write(home: string, relative: string, content: string): void {
  mkdirSync(join(home, relative, ".."), { recursive: true });
  writeFileSync(join(home, relative), content);
}

describe.skipIf(noServer)("two wired replicas on one database", () => {
  test("the other serves the holder's files and pause; the copy's key is never served; its operator pause reaches the file", async () => {
    const db = (await createTestDatabase()) as TestDatabase;
    cleanup.push(() => db.drop());
    const agents = tempDir();
    const elsewhere = tempDir();
    cleanup.push(() => agents[Symbol.dispose]());
    cleanup.push(() => elsewhere[Symbol.dispose]());
    write(agents.path, "runtime/market_regime.json", fixtureText("market_regime"));
    write(agents.path, "runtime/capital_governor_allocations.json", fixtureText("capital_governor_allocations"));
    const a = await replicaOf(db, agents.path);
    const b = await replicaOf(db, elsewhere.path);

    // ? A shares what it has read so far, at most once a second: its first commit may hold
    // the regime and not yet the allocations (CI saw that). Both are waited for.
    await waitFor(
      async () =>
        (await get(b.app, "/meta/regime")).body.regime === "HIGH_VOL" &&
        (await get(b.app, "/governor/allocations")).body.source === "capital_governor",
      "B serves the regime and the allocations",
    );
    expect((await get(b.app, "/meta/regime")).body).toEqual(fixture("market_regime"));
    const allocations = await get(b.app, "/governor/allocations");
    expect(allocations.body).toEqual(fixture("capital_governor_allocations"));
    expect(allocations.headers.get("x-neolight-source")).toBe("capital_governor_allocations");
    expect((await get(b.app, "/meta/performance")).body).toEqual({ decisions: [], last_update: null });
    const status = (await get(b.app, "/status")).body as { sources: { files: { name: string; serving: string }[] } };
    expect(status.sources.files.find((f) => f.name === "market_regime")?.serving).toBe("shared");
    for (const t of [a, b])
      expect(Object.hasOwn((await get(t.app, "/meta/metrics")).body, AGENT_FILES_KEY)).toBe(false);
    expect((await post(b.app, "/meta/metrics", { [AGENT_FILES_KEY]: {} })).status).toBe(422);

    const paused = await post(b.app, "/guardian/pause", { reason: "checking fills" });
    expect(paused).toMatchObject({ status: 200, body: { is_paused: true, paused_by: "operator" } });
    // ? Within the 200 ms for a write on one replica to be served by the other.
    await waitFor(
      async () => ((await get(a.app, "/meta/metrics")).body.guardian as { is_paused: boolean }).is_paused,
      "A serves the pause",
      200,
    );
    await waitFor(
      () => logged(a.log, "guardian pause file written for an operator action on another replica").length > 0,
      "A writes the pause file",
    );
    expect(JSON.parse(readFileSync(join(agents.path, PAUSE_FILE), "utf8"))).toMatchObject({
      paused: true,
      reason: "checking fills",
      by: "dashboard",
    });
    expect(existsSync(join(elsewhere.path, PAUSE_FILE))).toBe(false);
    expect((await post(b.app, "/guardian/resume", {})).body).toMatchObject({ is_paused: false });
    await waitFor(() => !existsSync(join(agents.path, PAUSE_FILE)), "A removes the pause file");
  });
});
