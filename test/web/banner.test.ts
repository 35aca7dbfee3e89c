// The guardian banner's decision (src/web/page/banner.ts) from real answers of the service
// (issue 11): RUNNING only when the guardian is known and fresh; UNKNOWN before any report
// with nothing restored, STALE by /status staleness, DISCONNECTED when the page lost the
// service, and a pause with who, since when and until when.
import { describe, expect, test } from "bun:test";
import type { Status } from "../../src/modules/system/model";
import {
  banner,
  countdown,
  type HiveView,
  hiveReported,
  hiveView,
  type ServedGuardian,
  utcClock,
} from "../../src/web/page/banner";
import { fixture, get, post, startApp, type TestApp, tempDir, waitFor } from "../helpers";

/** What the page would show now: the served guardian and /status, read as the page reads them. */
async function shown(t: TestApp, extra: Partial<Parameters<typeof banner>[0]> = {}) {
  const doc = (await get(t.app, "/meta/metrics")).body as { guardian: ServedGuardian };
  const status = (await get(t.app, "/status")).body as unknown as Status;
  const now = Date.now();
  return banner({
    guardian: doc.guardian,
    hive: hiveView(status, now),
    lastHeard: now,
    disconnected: false,
    now,
    ...extra,
  });
}

const staleHive = async (t: TestApp) =>
  waitFor(async () => {
    const s = (await get(t.app, "/status")).body as unknown as Status;
    return s.staleness.find((x) => x.source === "hive")?.stale;
  }, "the hive to be stale");

describe("the guardian banner", () => {
  test("before any report, with nothing restored: UNKNOWN, not RUNNING (the served default is nobody's report)", async () => {
    await using t = await startApp();
    const b = await shown(t);
    expect(b).toEqual({
      state: "unknown",
      title: "UNKNOWN",
      detail: "no guardian report since the service started",
      pause: [],
    });
    // Before the first /status answer the page knows nothing of freshness either.
    expect((await shown(t, { hive: null })).state).toBe("unknown");
  });

  test("after the hive's snapshot: RUNNING with its reason", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    expect(await shown(t)).toEqual({ state: "running", title: "RUNNING", detail: "Normal operation", pause: [] });
  });

  test("a stress runner's post is not a guardian report: still UNKNOWN", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", fixture("stress_post"))).status).toBe(200);
    expect((await shown(t)).state).toBe("unknown");
  });

  test("the hive silent past the staleness rule: STALE, last known RUNNING with its time and age", async () => {
    await using t = await startApp({ env: { NEOLIGHT_STALE_HIVE_S: "0.1" } });
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    await staleHive(t);
    const b = await shown(t);
    expect(b.state).toBe("stale");
    expect(b.title).toBe("STALE");
    expect(b.detail).toMatch(/^last known RUNNING, \d\d:\d\dZ, \d+ s ago$/);
    const status = (await get(t.app, "/status")).body as unknown as Status;
    const hive = hiveView(status, Date.now());
    expect(b.detail).toContain(utcClock(hive.lastUpdate as string));
    // The hive reports again (the stream carried its keys): RUNNING at once, before /status says so.
    const fresh = hiveReported(hive, new Date().toISOString(), Date.now());
    expect((await shown(t, { hive: fresh })).state).toBe("running");
  });

  test("restored from disk: known (RUNNING); once the hive stays silent, STALE says it was restored", async () => {
    using dir = tempDir();
    {
      await using first = await startApp({ home: dir.path });
      expect((await post(first.app, "/meta/metrics", fixture("meta_metrics_post"))).status).toBe(200);
    }
    {
      await using t = await startApp({ home: dir.path });
      expect((await shown(t)).state).toBe("running");
    }
    await using t = await startApp({ home: dir.path, env: { NEOLIGHT_STALE_HIVE_S: "0.1" } });
    await staleHive(t);
    expect(await shown(t)).toMatchObject({
      state: "stale",
      detail: "last known RUNNING, restored from disk, no hive report since start-up",
    });
  });

  test("paused by the hive: PAUSED with its reason, whatever the staleness", async () => {
    await using t = await startApp({ env: { NEOLIGHT_STALE_HIVE_S: "0.1" } });
    expect((await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"))).status).toBe(200);
    await staleHive(t);
    const b = await shown(t);
    expect(b).toMatchObject({ state: "paused", title: "PAUSED", detail: "Daily drawdown limit exceeded" });
    expect(b.pause.at(-1)).toEqual({ label: "Until", value: "no end set" });
  });

  test("a pause says by whom, since when, and until when as a countdown", () => {
    const now = Date.parse("2025-11-03T22:00:00Z");
    const guardian: ServedGuardian = {
      is_paused: true,
      drawdown: 1.2,
      reason: "Auto rate-limit cooldown (12 hits)",
      paused_by: "pause_file",
      paused_since: "2025-11-03T21:48:00Z",
      until: "2025-11-03T22:30:00Z",
    };
    const b = banner({ guardian, hive: null, lastHeard: now, disconnected: false, now });
    expect(b.pause).toEqual([
      { label: "Paused by", value: "cooldown file" },
      { label: "Since", value: "21:48Z (12 min ago)" },
      { label: "Until", value: "22:30Z (30 min 00 s)" },
    ]);
    expect(banner({ guardian, hive: null, lastHeard: now, disconnected: false, now: now + 1000 }).pause[2]?.value).toBe(
      "22:30Z (29 min 59 s)",
    );
    const { until: _, ...noEnd } = guardian;
    const byOperator = { ...noEnd, paused_by: "operator" as const };
    expect(banner({ guardian: byOperator, hive: null, lastHeard: now, disconnected: false, now }).pause).toEqual([
      { label: "Paused by", value: "operator" },
      { label: "Since", value: "21:48Z (12 min ago)" },
      { label: "Until", value: "no end set" },
    ]);
  });

  test("the service out of reach: DISCONNECTED, with how long since the page last heard it, even when paused", () => {
    const now = Date.parse("2025-11-03T22:00:00Z");
    const hive: HiveView = { lastUpdate: "2025-11-03T21:59:00Z", heardAt: now - 60_000, stale: false, restored: false };
    const guardian: ServedGuardian = {
      is_paused: false,
      drawdown: 0,
      reason: "Normal operation",
      paused_by: null,
      paused_since: null,
    };
    expect(banner({ guardian, hive, lastHeard: now - 42_000, disconnected: true, now })).toEqual({
      state: "disconnected",
      title: "DISCONNECTED",
      detail: "no answer from the service; last heard 42 s ago, last known RUNNING",
      pause: [],
    });
    const paused = { ...guardian, is_paused: true, paused_by: "hive" as const, paused_since: "2025-11-03T21:00:00Z" };
    expect(banner({ guardian: paused, hive, lastHeard: null, disconnected: true, now }).detail).toBe(
      "no answer from the service; last heard never, last known PAUSED",
    );
    // Connected again: what it knows.
    expect(banner({ guardian, hive, lastHeard: now, disconnected: false, now }).state).toBe("running");
  });

  test("times: the service's UTC clock and the countdown", () => {
    expect(utcClock("2025-11-03T18:03:59Z")).toBe("18:03Z");
    expect(utcClock("2025-11-03T20:03:59+02:00")).toBe("18:03Z");
    const now = Date.parse("2025-11-03T18:00:00Z");
    expect(countdown("2025-11-03T18:00:05Z", now)).toBe("0 min 05 s");
    expect(countdown("2025-11-03T22:05:00Z", now)).toBe("4 h 05 min 00 s");
    expect(countdown("2025-11-10T18:00:00Z", now)).toBe("7 d");
    expect(countdown("2025-11-03T17:59:00Z", now)).toBe("ended");
  });
});
