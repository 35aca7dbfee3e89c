// The guardian's three sources (issue 11): the pause file, the hive's report and the
// operator, resolved so that a pause wins; POST /guardian/pause and /resume; GET /guardian.
import { describe, expect, spyOn, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type GuardianSources, GuardianView, type PauseReading } from "../../src/modules/guardian/model";
import { GUARDIAN_SOURCES_KEY, isoSeconds, resolveGuardian, sourcesOf } from "../../src/modules/guardian/resolve";
import { PAUSE_FILE } from "../../src/modules/guardian/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import type { Persistence } from "../../src/store/store";
import { call, fixture, get, type Json, logged, post, startApp, type TestApp, tempDir, waitFor } from "../helpers";

const HIVE_RUNNING = { is_paused: false, drawdown: 3.2, reason: "Normal operation", extra: 1 };
const HIVE_PAUSED = { is_paused: true, drawdown: 8.7, reason: "Daily drawdown limit exceeded" };
const T0 = Date.parse("2025-11-03T22:00:00Z");
const cooldown = (until?: string): PauseReading => ({
  state: "content",
  content: { paused: true, reason: "Auto rate-limit cooldown (12 hits)", ...(until ? { until } : {}) },
});
const sources = (s: Partial<GuardianSources>): GuardianSources => ({
  hive: { report: HIVE_RUNNING, received_at: "2025-11-03T21:59:00.000Z" },
  pause_file: { state: "absent" },
  operator: null,
  ...s,
});

// Issue 14: the first sync resolves the pause before the first 200, and compiling this
// schema for it was 11 ms of start-up; the interpreted check gives the same answers.
test("sourcesOf: the stored sources when they are whole, else the stored guardian as the hive's; nothing compiled", () => {
  const compile = spyOn(TypeCompiler, "Compile");
  try {
    const stored = sources({ pause_file: cooldown("2025-11-04T00:00:00Z") });
    expect(sourcesOf({ guardian: HIVE_PAUSED, [GUARDIAN_SOURCES_KEY]: stored })).toBe(stored);
    const broken = { ...stored, pause_file: { state: "content", content: { paused: "yes" } } };
    const fallback: GuardianSources = {
      hive: { report: HIVE_PAUSED, received_at: null },
      pause_file: { state: "absent" },
      operator: null,
    };
    expect(sourcesOf({ guardian: HIVE_PAUSED, [GUARDIAN_SOURCES_KEY]: broken })).toEqual(fallback);
    expect(sourcesOf({ guardian: HIVE_PAUSED })).toEqual(fallback);
    expect(compile).toHaveBeenCalledTimes(0);
  } finally {
    compile.mockRestore();
  }
});

describe("resolveGuardian: a pause wins", () => {
  test.each([
    [
      "the file pauses a running hive, keeping its other fields",
      sources({ pause_file: cooldown() }),
      {
        ...HIVE_RUNNING,
        is_paused: true,
        reason: "Auto rate-limit cooldown (12 hits)",
        paused_by: "pause_file",
        paused_since: "2025-11-03T22:00:00Z",
      },
    ],
    [
      "an until ahead is served with the pause",
      sources({ pause_file: cooldown("2025-11-03T22:30:00Z") }),
      expect.objectContaining({ is_paused: true, paused_by: "pause_file", until: "2025-11-03T22:30:00Z" }),
    ],
    [
      "an until that has passed is no pause",
      sources({ pause_file: cooldown("2025-11-03T21:30:00Z") }),
      { ...HIVE_RUNNING, paused_by: null, paused_since: null },
    ],
    [
      "paused: false is no pause",
      sources({ pause_file: { state: "content", content: { paused: false, reason: "cleared" } } }),
      { ...HIVE_RUNNING, paused_by: null, paused_since: null },
    ],
    [
      "a file written by the dashboard is the operator's pause",
      sources({ pause_file: { state: "content", content: { paused: true, reason: "ops", by: "dashboard" } } }),
      expect.objectContaining({ is_paused: true, paused_by: "operator", reason: "ops" }),
    ],
    [
      "a file present but never readable pauses (the safe answer)",
      sources({ pause_file: { state: "unreadable", error: "file is empty" } }),
      expect.objectContaining({
        is_paused: true,
        paused_by: "pause_file",
        reason: expect.stringContaining("unreadable"),
      }),
    ],
    [
      "the hive's own pause is served when no file pauses",
      sources({ hive: { report: HIVE_PAUSED, received_at: "2025-11-03T21:59:00.000Z" } }),
      { ...HIVE_PAUSED, paused_by: "hive", paused_since: "2025-11-03T22:00:00Z" },
    ],
    [
      "an operator resume after the hive's pause report is not paused",
      sources({
        hive: { report: HIVE_PAUSED, received_at: "2025-11-03T21:59:00.000Z" },
        operator: { last_action: "resume", at: "2025-11-03T21:59:30Z", reason: "checked", client: "127.0.0.1" },
      }),
      { ...HIVE_PAUSED, is_paused: false, reason: "resumed by operator: checked", paused_by: null, paused_since: null },
    ],
    [
      "a hive pause reported after the resume counts again",
      sources({
        hive: { report: HIVE_PAUSED, received_at: "2025-11-03T21:59:40.000Z" },
        operator: { last_action: "resume", at: "2025-11-03T21:59:30Z", reason: null, client: null },
      }),
      expect.objectContaining({ is_paused: true, paused_by: "hive" }),
    ],
    [
      "no report at all: the contract's default",
      sources({ hive: null }),
      { is_paused: false, drawdown: 0, reason: "Normal operation", paused_by: null, paused_since: null },
    ],
  ])("%s", (_name, input, expected) => {
    expect(resolveGuardian(input, undefined, T0)).toEqual(expected);
  });

  test("a pause that goes on keeps its paused_since", () => {
    const first = resolveGuardian(sources({ pause_file: cooldown() }), undefined, T0);
    const later = resolveGuardian(sources({ hive: { report: HIVE_PAUSED, received_at: null } }), first, T0 + 60_000);
    expect(later).toMatchObject({ paused_by: "hive", paused_since: "2025-11-03T22:00:00Z" });
  });
});

const pausePath = (t: TestApp) => join(t.home, PAUSE_FILE);
const guardianOf = async (t: TestApp) => (await get(t.app, "/meta/metrics")).body.guardian as Json;
/** Writes the pause file in place, as agent self-heal does (not atomically). */
const writeInPlace = (t: TestApp, body: unknown) =>
  writeFileSync(pausePath(t), typeof body === "string" ? body : JSON.stringify(body));
const waitServed = (t: TestApp, paused: boolean) =>
  waitFor(async () => ((await guardianOf(t)).is_paused === paused ? guardianOf(t) : null), `is_paused ${paused}`);

describe("the pause file is a source", () => {
  test("a file pause wins over a hive post saying running, keeps its drawdown, and is logged", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    writeInPlace(t, fixture("guardian_pause"));
    // The fixture's until (2025) has passed: no pause, as the smart trader reads it.
    await waitFor(() => t.services.guardian.view().sources.pause_file.present, "the file seen");
    expect((await guardianOf(t)).is_paused).toBe(false);

    writeInPlace(t, { paused: true, reason: "Auto rate-limit cooldown (3 hits)" });
    const paused = await waitServed(t, true);
    expect(paused).toEqual({
      is_paused: true,
      drawdown: 1.84,
      reason: "Auto rate-limit cooldown (3 hits)",
      paused_by: "pause_file",
      paused_since: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect(logged(t.log, "guardian paused")).toEqual([
      expect.objectContaining({ source: "pause_file", reason: "Auto rate-limit cooldown (3 hits)", drawdown: 1.84 }),
    ]);

    const running = { ...(fixture("meta_metrics_post").guardian as Json), drawdown: 4.5 };
    expect((await post(t.app, "/meta/metrics", { guardian: running })).status).toBe(200);
    expect(await guardianOf(t)).toEqual({ ...paused, drawdown: 4.5 });

    rmSync(pausePath(t));
    expect(await waitServed(t, false)).toEqual({ ...running, paused_by: null, paused_since: null });
    expect(logged(t.log, "guardian resumed")).toEqual([expect.objectContaining({ source: "pause_file" })]);
  });

  test("a torn write keeps the last good reading; a torn first reading is a pause", async () => {
    await using t = await startApp();
    writeInPlace(t, { paused: true, reason: "cooldown" });
    await waitServed(t, true);
    writeInPlace(t, '{"paused": fal');
    await waitFor(() => t.services.guardian.view().sources.pause_file.error, "the torn version seen");
    expect(await guardianOf(t)).toMatchObject({ is_paused: true, reason: "cooldown" });
    writeInPlace(t, { paused: false, reason: "cleared" });
    await waitServed(t, false);

    await using torn = await startApp({ home: mkdirOf(t.home, "torn") });
    writeFileSync(pausePath(torn), '{"paused": tr');
    await waitServed(torn, true);
    expect(await guardianOf(torn)).toMatchObject({
      paused_by: "pause_file",
      reason: expect.stringContaining("unreadable"),
    });
  });

  test("an until that passes re-resolves by itself, and the file is left in place", async () => {
    await using t = await startApp();
    const until = new Date(Date.now() + 3000).toISOString().replace(/\.\d{3}Z$/, "Z");
    writeInPlace(t, { paused: true, reason: "cooldown", until });
    expect(await waitServed(t, true)).toMatchObject({ paused_by: "pause_file", until });
    const resumed = await waitServed(t, false);
    expect(resumed.until).toBeUndefined();
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(until));
    expect(existsSync(pausePath(t))).toBe(true);
  });

  test("after a restart the file, changed while down, is applied before the first request", async () => {
    let home: string;
    {
      await using t = await startApp();
      home = mkdirOf(t.home, "restart");
      await using first = await startApp({ home });
      expect((await post(first.app, "/meta/metrics", { guardian: HIVE_RUNNING })).status).toBe(200);
      writeInPlace(first, { paused: true, reason: "cooldown" });
      await waitServed(first, true);
      await first.services.close();
      rmSync(pausePath(first));
      await using second = await startApp({ home });
      // No wait: startApp resolves when the services are ready, as main.ts listens then.
      expect(await guardianOf(second)).toEqual({ ...HIVE_RUNNING, paused_by: null, paused_since: null });
      await second.services.close();
      writeInPlace(second, { paused: true, reason: "written while down" });
      await using third = await startApp({ home });
      expect(await guardianOf(third)).toMatchObject({ is_paused: true, reason: "written while down", drawdown: 3.2 });
      // The sources are never served.
      expect(Object.keys((await get(third.app, "/meta/metrics")).body)).not.toContain("_guardian_sources");
    }
  });

  test("a change the disk cannot take yet is retried, logged once, and applied when it can", async () => {
    using dir = tempDir();
    mkdirSync(join(dir.path, "state"), { recursive: true });
    const real = createJsonFilePersistence(join(dir.path, "state", "meta_metrics.json"));
    let full = false;
    const persistence: Persistence = {
      ...real,
      load: () => real.load(),
      keepAside: () => real.keepAside(),
      save: (state) => (full ? Promise.reject(new Error("ENOSPC: no space left on device")) : real.save(state)),
    };
    await using t = await startApp({ home: dir.path, overrides: { persistence } });
    full = true;
    writeInPlace(t, { paused: true, reason: "cooldown" });
    await waitFor(() => logged(t.log, "guardian pause file not applied yet, retrying").length > 0, "the failure");
    // Nothing is served that is not on disk; the router learns of it once it is.
    expect((await guardianOf(t)).is_paused).toBe(false);
    await waitFor(() => logged(t.log, "telemetry batch not persisted").length >= 2, "a retry");
    full = false;
    expect(await waitServed(t, true)).toMatchObject({ paused_by: "pause_file", reason: "cooldown" });
    expect(logged(t.log, "guardian pause file not applied yet, retrying")).toHaveLength(1);
    expect(logged(t.log, "guardian pause file applied")).toEqual([
      expect.objectContaining({ attempts: expect.any(Number) }),
    ]);
  });

  test("/status lists the pause file with the agent files and in staleness", async () => {
    await using t = await startApp();
    writeInPlace(t, { paused: true, reason: "cooldown" });
    await waitServed(t, true);
    const status = (await get(t.app, "/status")).body as {
      sources: { files: { name: string; present: boolean }[] };
      staleness: { source: string; last_update: string | null }[];
    };
    expect(status.sources.files).toContainEqual(expect.objectContaining({ name: "guardian_pause", present: true }));
    expect(status.staleness).toContainEqual(
      expect.objectContaining({ source: "guardian_pause", last_update: expect.any(String), stale: false }),
    );
    // The file's update carries `guardian` too, but the hive has not spoken.
    expect(status.staleness).toContainEqual(expect.objectContaining({ source: "hive", last_update: null }));
  });
});

function mkdirOf(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(join(dir, "state"), { recursive: true });
  return dir;
}

const viewCheck = TypeCompiler.Compile(GuardianView);

describe("an operator can pause and resume", () => {
  const ua = { "user-agent": "Mozilla/5.0 (operator's phone)" };

  test("POST /guardian/pause writes the file in NeoLight's shape and answers the served pause", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    const before = Date.now();
    const res = await post(t.app, "/guardian/pause", { reason: "investigating fills", minutes: 60 }, ua);
    expect(res.status).toBe(200);
    const file = JSON.parse(readFileSync(pausePath(t), "utf8")) as Json;
    expect(file).toEqual({
      paused: true,
      reason: "investigating fills",
      until: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      by: "dashboard",
    });
    const until = Date.parse(file.until as string);
    expect(until).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 3_600_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3_600_000);
    const served = {
      is_paused: true,
      drawdown: 1.84,
      reason: "investigating fills",
      paused_by: "operator",
      paused_since: expect.any(String),
      until: file.until,
    };
    expect(res.body).toEqual(served);
    expect(await guardianOf(t)).toEqual(res.body);
    expect(logged(t.log, "guardian paused by operator")).toEqual([
      expect.objectContaining({
        level: "WARN",
        reason: "investigating fills",
        minutes: 60,
        until: file.until,
        address: "127.0.0.1",
        user_agent: "Mozilla/5.0 (operator's phone)",
      }),
    ]);
    expect(logged(t.log, "guardian paused")).toEqual([expect.objectContaining({ source: "operator" })]);

    const view = (await get(t.app, "/guardian")).body;
    expect(viewCheck.Check(view)).toBe(true);
    expect(view).toEqual({
      guardian: res.body,
      sources: {
        hive: {
          report: fixture("meta_metrics_post").guardian,
          received_at: expect.any(String),
          age_s: expect.any(Number),
        },
        pause_file: { path: pausePath(t), held_here: true, present: true, active: true, content: file, error: null },
        operator: {
          last_action: "pause",
          at: expect.stringMatching(/Z$/),
          reason: "investigating fills",
          client: "127.0.0.1",
        },
      },
    });
    const metrics = await (await t.app.handle(new Request("http://localhost/metrics"))).text();
    expect(metrics).toContain('neolight_guardian_operator_actions_total{action="pause",outcome="ok"} 1');
    expect(metrics).toContain('neolight_guardian_operator_actions_total{action="resume",outcome="ok"} 0');
  });

  test("without minutes the file has no until, as the smart trader expects", async () => {
    await using t = await startApp();
    const res = await post(t.app, "/guardian/pause", { reason: "exchange maintenance" });
    expect(res.status).toBe(200);
    expect(Object.keys(JSON.parse(readFileSync(pausePath(t), "utf8")))).toEqual([
      "paused",
      "reason",
      "updated_at",
      "by",
    ]);
    expect(res.body.until).toBeUndefined();
  });

  test.each([
    ["a 15 min pause over a 2 h cooldown keeps the cooldown's until", 2 * 3600, 15, "cooldown"],
    ["a 15 min pause over a cooldown with no until keeps no until", null, 15, "cooldown"],
    ["a 4 h pause over a 15 min cooldown takes its own until", 15 * 60, 240, "asked"],
  ] as const)("an operator pause never shortens an active one: %s", async (_name, cooldownS, minutes, expected) => {
    await using t = await startApp();
    const cooldownUntil = cooldownS === null ? undefined : isoSeconds(Date.now() + cooldownS * 1000);
    writeInPlace(t, {
      paused: true,
      reason: "Auto rate-limit cooldown (12 hits)",
      ...(cooldownUntil ? { until: cooldownUntil } : {}),
    });
    await waitFor(async () => (await guardianOf(t)).paused_by === "pause_file", "the cooldown served");
    const before = Date.now();
    const res = await post(t.app, "/guardian/pause", { reason: "ops", minutes });
    expect(res.status).toBe(200);
    const file = JSON.parse(readFileSync(pausePath(t), "utf8")) as Json;
    expect(file.until).toBe(res.body.until);
    if (expected === "asked") {
      expect(Date.parse(file.until as string)).toBeGreaterThanOrEqual(
        Math.floor(before / 1000) * 1000 + minutes * 60_000,
      );
    } else {
      expect(file.until).toBe(cooldownUntil);
    }
    expect(logged(t.log, "guardian paused by operator")).toEqual([
      expect.objectContaining(expected === "asked" ? { minutes } : { minutes, kept_until_of_file: true }),
    ]);
  });

  test("POST /guardian/resume removes the file and is not paused at once, even over a hive pause", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", { guardian: HIVE_PAUSED })).status).toBe(200);
    expect((await post(t.app, "/guardian/pause", { reason: "ops" })).status).toBe(200);
    const res = await post(t.app, "/guardian/resume", { reason: "fills reconciled" }, ua);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      ...HIVE_PAUSED,
      is_paused: false,
      reason: "resumed by operator: fills reconciled",
      paused_by: null,
      paused_since: null,
    });
    expect(existsSync(pausePath(t))).toBe(false);
    expect(await guardianOf(t)).toEqual(res.body);
    expect(logged(t.log, "guardian resumed by operator")).toEqual([
      expect.objectContaining({
        level: "WARN",
        reason: "fills reconciled",
        address: "127.0.0.1",
        user_agent: ua["user-agent"],
      }),
    ]);
    expect(logged(t.log, "guardian resumed")).toEqual([expect.objectContaining({ source: "operator" })]);
    // The hive's next snapshot counts again.
    expect((await post(t.app, "/meta/metrics", { guardian: HIVE_PAUSED })).status).toBe(200);
    expect(await guardianOf(t)).toMatchObject({ is_paused: true, paused_by: "hive" });
  });

  test("an operator pause and the hive's resumed state survive a restart", async () => {
    await using t = await startApp();
    const home = mkdirOf(t.home, "restart");
    {
      await using first = await startApp({ home });
      expect((await post(first.app, "/guardian/pause", { reason: "ops" })).status).toBe(200);
    }
    {
      await using second = await startApp({ home });
      expect(await guardianOf(second)).toMatchObject({ is_paused: true, paused_by: "operator", reason: "ops" });
      expect((await post(second.app, "/meta/metrics", { guardian: HIVE_PAUSED })).status).toBe(200);
      expect((await post(second.app, "/guardian/resume", {})).status).toBe(200);
    }
    await using third = await startApp({ home });
    expect(await guardianOf(third)).toMatchObject({ is_paused: false, reason: "resumed by operator" });
  });

  test.each([
    ["no reason", "/guardian/pause", {}, 422],
    ["an empty reason", "/guardian/pause", { reason: "" }, 422],
    ["a reason over 500 characters", "/guardian/pause", { reason: "x".repeat(501) }, 422],
    ["minutes 0", "/guardian/pause", { reason: "r", minutes: 0 }, 422],
    ["minutes beyond a week", "/guardian/pause", { reason: "r", minutes: 10_081 }, 422],
    ["fractional minutes", "/guardian/pause", { reason: "r", minutes: 1.5 }, 422],
    ["a reason that is not a string", "/guardian/resume", { reason: 5 }, 422],
    ["a body that is not an object", "/guardian/resume", [], 400],
  ])("%s: a 4xx in the error shape, and nothing changes", async (_name, path, body, status) => {
    await using t = await startApp();
    const res = await post(t.app, path, body);
    expect(res).toMatchObject({ status, body: { error: expect.any(String), code: status } });
    expect(existsSync(pausePath(t))).toBe(false);
    expect(await guardianOf(t)).toMatchObject({ is_paused: false, paused_by: null });
  });

  test("a cross-site form post (text/plain, no preflight) cannot resume trading", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/guardian/pause", { reason: "ops" })).status).toBe(200);
    const res = await call(t.app, "POST", "/guardian/resume", '{"reason":"csrf"}', {
      "content-type": "text/plain",
      origin: "https://evil.example",
    });
    expect(res).toMatchObject({ status: 415, body: { code: 415 } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(existsSync(pausePath(t))).toBe(true);
    expect(await guardianOf(t)).toMatchObject({ is_paused: true });
  });

  test("the write rules apply: another host without a token is refused; with a token it needs it", async () => {
    await using remote = await startApp({ overrides: { clientAddress: () => "10.0.0.5" } });
    expect((await post(remote.app, "/guardian/pause", { reason: "r" })).status).toBe(403);
    await using tokened = await startApp({ env: { NEOLIGHT_DASHBOARD_TOKEN: "a-token-of-16-chars-or-more" } });
    expect((await post(tokened.app, "/guardian/resume", {})).status).toBe(401);
    const ok = await post(
      tokened.app,
      "/guardian/pause",
      { reason: "r" },
      { authorization: "Bearer a-token-of-16-chars-or-more" },
    );
    expect(ok.status).toBe(200);
    await using limited = await startApp({ env: { NEOLIGHT_WRITE_RATE: "1", NEOLIGHT_WRITE_BURST: "1" } });
    expect((await post(limited.app, "/guardian/pause", { reason: "r" })).status).toBe(200);
    expect((await post(limited.app, "/guardian/resume", {})).status).toBe(429);
  });

  test("a pause file that cannot be written is a 503 and changes nothing", async () => {
    await using t = await startApp();
    // The temp file's name taken by a directory: the open fails before anything is renamed.
    mkdirSync(join(t.home, "state", `.guardian_pause.json.tmp-${process.pid}`));
    const res = await post(t.app, "/guardian/pause", { reason: "ops" });
    expect(res).toMatchObject({
      status: 503,
      body: { code: 503, error: expect.stringContaining("nothing was changed") },
    });
    expect(res.headers.get("retry-after")).toBe("5");
    expect(existsSync(pausePath(t))).toBe(false);
    expect(await guardianOf(t)).toMatchObject({ is_paused: false });
    expect(logged(t.log, "guardian operator action failed")).toEqual([expect.objectContaining({ action: "pause" })]);
    const metrics = await (await t.app.handle(new Request("http://localhost/metrics"))).text();
    expect(metrics).toContain('neolight_guardian_operator_actions_total{action="pause",outcome="failed"} 1');
  });

  test("a POST may not set the guardian's sources", async () => {
    await using t = await startApp();
    writeInPlace(t, { paused: true, reason: "cooldown" });
    await waitServed(t, true);
    const res = await post(t.app, "/meta/metrics", { _guardian_sources: { pause_file: { state: "absent" } } });
    expect(res).toMatchObject({ status: 422, body: { code: 422 } });
    expect(await guardianOf(t)).toMatchObject({ is_paused: true });
  });
});
