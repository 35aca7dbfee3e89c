// The guardian's pause against the real compiled binary (issue 11): the pause file written in
// place as agent self-heal does, then torn, then expiring; an operator's pause and resume;
// a restart while paused. Each change is read back as the execution router reads it.
import { expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, type Json, tempDir, waitFor } from "../helpers";
import { compiledBinary, postJson, type ServiceProcess, spawnService } from "./process";

const guardian = async (svc: ServiceProcess) =>
  ((await (await fetch(`${svc.url}/meta/metrics`)).json()) as { guardian: Json }).guardian;
const served = (svc: ServiceProcess, paused: boolean) =>
  waitFor(async () => {
    const g = await guardian(svc);
    return g.is_paused === paused ? g : null;
  }, `is_paused ${paused}`);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

test("the pause file, an operator, and a restart, through the compiled binary", async () => {
  using home = tempDir();
  const binary = await compiledBinary();
  const pauseFile = join(home.path, "state", "guardian_pause.json");
  const logLines = () =>
    readFileSync(join(home.path, "logs", "dashboard_go.log"), "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Json);
  {
    await using svc = await spawnService({ home: home.path, cmd: [binary] });
    expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_post"))).status).toBe(200);

    // Self-heal's cooldown, written in place (not atomically), then torn mid-rewrite.
    const until = iso(Date.now() + 5000);
    writeFileSync(pauseFile, JSON.stringify({ ...fixture("guardian_pause"), until }));
    expect(await served(svc, true)).toMatchObject({
      paused_by: "pause_file",
      reason: "Auto rate-limit cooldown (12 hits)",
      until,
      drawdown: 1.84,
    });
    writeFileSync(pauseFile, '{"paused": true, "rea');
    await waitFor(
      () => logLines().some((l) => l.message === "agent file unreadable, serving last good copy"),
      "the torn version read",
    );
    expect(await guardian(svc)).toMatchObject({ is_paused: true, until });
    writeFileSync(pauseFile, JSON.stringify({ ...fixture("guardian_pause"), until }));
    // The until passes: no pause, and the file is left for the smart trader to delete.
    expect(await served(svc, false)).toMatchObject({ paused_by: null, reason: "Normal operation" });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(until));
    expect(existsSync(pauseFile)).toBe(true);

    // An operator pauses and resumes; then pauses again for the restart.
    const pause = await postJson(`${svc.url}/guardian/pause`, { reason: "ops check", minutes: 15 });
    expect(pause.status).toBe(200);
    expect(await pause.json()).toMatchObject({ is_paused: true, paused_by: "operator" });
    expect(JSON.parse(readFileSync(pauseFile, "utf8"))).toMatchObject({ paused: true, by: "dashboard" });
    const resume = await postJson(`${svc.url}/guardian/resume`, { reason: "done" });
    expect(await resume.json()).toMatchObject({ is_paused: false, reason: "resumed by operator: done" });
    expect(existsSync(pauseFile)).toBe(false);
    expect((await postJson(`${svc.url}/guardian/pause`, { reason: "overnight" })).status).toBe(200);
    expect(await svc.stop()).toBe(0);
  }
  {
    await using svc = await spawnService({ home: home.path, cmd: [binary] });
    // The first request after the restart already sees the pause.
    expect(await guardian(svc)).toMatchObject({ is_paused: true, paused_by: "operator", reason: "overnight" });
    const view = (await (await fetch(`${svc.url}/guardian`)).json()) as { sources: { operator: Json } };
    expect(view.sources.operator).toMatchObject({ last_action: "pause", reason: "overnight", client: "127.0.0.1" });
    expect(await svc.stop()).toBe(0);
  }
  const audit = logLines().filter((l) => String(l.message).startsWith("guardian"));
  expect(audit.map((l) => [l.message, l.source ?? null])).toEqual([
    ["guardian paused", "pause_file"],
    ["guardian resumed", "pause_file"],
    ["guardian paused", "operator"],
    ["guardian paused by operator", null],
    ["guardian resumed", "operator"],
    ["guardian resumed by operator", null],
    ["guardian paused", "operator"],
    ["guardian paused by operator", null],
  ]);
}, 120_000);
