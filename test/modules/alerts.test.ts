// Alerts (issue 13) through the real app and services, against real local HTTP servers
// standing in for the Telegram Bot API and a webhook receiver: one message per transition,
// delivery that never touches the request path, and the counters that show it.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { createMemoryLogger } from "../../src/log/logger";
import { markRunning } from "../../src/modules/alerts/conditions";
import { WebhookPayload } from "../../src/modules/alerts/model";
import { ALERT_QUEUE_CAPACITY, MAX_ALERTS_PER_MINUTE, MAX_ATTEMPTS } from "../../src/modules/alerts/service";
import { createJsonFilePersistence } from "../../src/store/json-file";
import type { Persistence } from "../../src/store/store";
import { deadPort, startReceiver } from "../alert-receiver";
import { fixture, get, type Json, logged, post, startApp, tempDir, waitFor } from "../helpers";

const BOT_TOKEN = "123456789:AAHtestSECRETbotTOKEN_0123456789";
const paused = fixture("meta_metrics_paused_post");
const running = fixture("meta_metrics_post");

const telegramEnv = (url: string, env: Record<string, string> = {}) => ({
  TELEGRAM_BOT_TOKEN: BOT_TOKEN,
  TELEGRAM_CHAT_ID: "-1001234567890",
  NEOLIGHT_TELEGRAM_API_URL: url,
  ...env,
});
/** Only the hive watched, so no other source's silence adds a message. */
const onlyHive = (hiveS: string) => ({
  NEOLIGHT_STALE_HIVE_S: hiveS,
  NEOLIGHT_STALE_STRESS_S: "0",
  NEOLIGHT_STALE_ATLAS_S: "0",
  NEOLIGHT_STALE_FILES_S: "0",
  NEOLIGHT_STALE_RISK_S: "0",
});
const fast = { alerts: { backoffBaseMs: 10, checkMs: 20 } };

type Notifiers = {
  name: string;
  sent: number;
  failed: number;
  dropped: number;
  queued: number;
  failing: boolean;
  capped_until: string | null;
}[];
const notifiers = async (app: Parameters<typeof get>[0]) =>
  ((await get(app, "/status")).body.alerts as { notifiers: Notifiers }).notifiers;

describe("Telegram", () => {
  test("one message per pause and per resume, with the reason and the mode's mark; none for a repeated post", async () => {
    await using bot = startReceiver();
    await using t = await startApp({ env: telegramEnv(bot.url) });
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200); // the same snapshot again
    expect((await post(t.app, "/meta/metrics", fixture("stress_post"))).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    // Delivery is in order: once the resume arrived, anything queued before it has too.
    await waitFor(() => bot.texts().some((x) => x.includes("resumed")), "the resume message");
    expect(bot.received.map((r) => r.path)).toEqual([
      `/bot${BOT_TOKEN}/sendMessage`,
      `/bot${BOT_TOKEN}/sendMessage`,
      `/bot${BOT_TOKEN}/sendMessage`,
    ]);
    const [started, pause, resume] = bot.received.map((r) => r.body);
    expect(started).toMatchObject({
      chat_id: "-1001234567890",
      text: expect.stringMatching(/^🟣 TEST the dashboard service started\n/),
    });
    // The paused snapshot carries PAPER_TRADING_MODE, the running one TEST_MODE.
    expect(pause?.text).toStartWith("🟢 PAPER guardian paused trading: Daily drawdown limit exceeded\n");
    expect(pause?.text).toContain("drawdown: 8.73");
    expect(pause?.text).toContain("source: hive");
    expect(resume?.text).toStartWith("🟣 TEST guardian resumed trading: Normal operation\n");
    expect(resume?.text).toContain("paused_reason: Daily drawdown limit exceeded");
    expect((await notifiers(t.app))[0]).toMatchObject({ name: "telegram", sent: 3, failed: 0, dropped: 0 });
  });

  test("a 429 with retry_after is retried after it and delivered", async () => {
    await using bot = startReceiver((i) =>
      i === 0
        ? Response.json(
            {
              ok: false,
              error_code: 429,
              description: "Too Many Requests: retry after 1",
              parameters: { retry_after: 1 },
            },
            { status: 429 },
          )
        : Response.json({ ok: true, result: {} }),
    );
    // ? A back-off of a minute: delivered within the wait only if retry_after (1 s) was obeyed.
    await using t = await startApp({ env: telegramEnv(bot.url), overrides: { alerts: { backoffBaseMs: 60_000 } } });
    await waitFor(() => bot.received.length >= 2, "the retry");
    expect(bot.texts()[1]).toBe(bot.texts()[0] as string);
    await waitFor(async () => (await notifiers(t.app))[0]?.sent === 1, "the retry counted as sent");
    expect((await notifiers(t.app))[0]).toMatchObject({ sent: 1, failed: 1, dropped: 0, failing: false });
    expect(logged(t.log, "alert delivery failing")).toEqual([
      expect.objectContaining({
        notifier: "telegram",
        status: 429,
        error: "HTTP 429: Too Many Requests: retry after 1",
      }),
    ]);
    expect(logged(t.log, "alert delivery recovered")).toHaveLength(1);
  });

  test("the per-minute cap holds the rest back, in the queue, and says so", async () => {
    await using bot = startReceiver();
    await using t = await startApp({ env: telegramEnv(bot.url) });
    // The start-up alert and one per flip: five more than the cap.
    for (let i = 0; i < MAX_ALERTS_PER_MINUTE + 4; i++)
      await post(t.app, "/meta/metrics", i % 2 === 0 ? paused : running);
    const [telegram] = await waitFor(async () => {
      const n = await notifiers(t.app);
      return n[0]?.capped_until ? n : null;
    }, "the cap to hold alerts back");
    expect(bot.received).toHaveLength(MAX_ALERTS_PER_MINUTE);
    expect(telegram).toMatchObject({ sent: MAX_ALERTS_PER_MINUTE, queued: 4, dropped: 0 });
    expect(logged(t.log, "alert rate cap reached")).toEqual([
      expect.objectContaining({ notifier: "telegram", per_minute: MAX_ALERTS_PER_MINUTE, until: expect.any(String) }),
    ]);
  });

  test("NEOLIGHT_ALERTS mutes the events it does not list", async () => {
    await using bot = startReceiver();
    await using t = await startApp({ env: telegramEnv(bot.url, { NEOLIGHT_ALERTS: "guardian_resumed" }) });
    await post(t.app, "/meta/metrics", paused);
    await post(t.app, "/meta/metrics", running);
    await waitFor(() => bot.received.length >= 1, "the resume message");
    expect(bot.texts()).toEqual([expect.stringContaining("guardian resumed trading: Normal operation")]);
    expect((await get(t.app, "/status")).body.alerts).toMatchObject({ events: ["guardian_resumed"] });
  });
});

describe("webhook", () => {
  test("the payload: event, severity, summary, details, timestamp, service, host, text; the bearer token", async () => {
    await using hook = startReceiver(() => new Response("ok"));
    await using t = await startApp({
      env: {
        NEOLIGHT_ALERT_WEBHOOK_URL: `${hook.url}/services/T0/B0/XyZ`,
        NEOLIGHT_ALERT_WEBHOOK_TOKEN: "w".repeat(24),
      },
    });
    await post(t.app, "/meta/metrics", paused);
    await waitFor(() => hook.events().includes("guardian_paused"), "the pause");
    const body = hook.received[1]?.body as Json;
    expect(Value.Check(WebhookPayload, body)).toBe(true);
    expect(body).toEqual({
      event: "guardian_paused",
      severity: "critical",
      summary: "guardian paused trading: Daily drawdown limit exceeded",
      details: { reason: "Daily drawdown limit exceeded", drawdown: 8.73, source: "hive", seq: 1 },
      timestamp: expect.any(String),
      service: "neolight-dashboard",
      host: expect.any(String),
      text: expect.stringMatching(/^🟢 PAPER guardian paused trading/),
    });
    expect(hook.received.map((r) => [r.path, r.authorization])).toEqual([
      ["/services/T0/B0/XyZ", `Bearer ${"w".repeat(24)}`],
      ["/services/T0/B0/XyZ", `Bearer ${"w".repeat(24)}`],
    ]);
  });

  test("a stale hive, then its recovery: one message each", async () => {
    await using hook = startReceiver(() => new Response("ok"));
    await using t = await startApp({
      env: { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url, ...onlyHive("0.1") },
      overrides: fast,
    });
    const stale = await waitFor(() => hook.received.find((r) => r.body.event === "source_stale"), "the stale hive");
    expect(stale.body).toMatchObject({ severity: "critical", details: { source: "hive", expected_interval_s: 0.1 } });
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    await waitFor(() => hook.events().includes("source_recovered"), "the recovery");
    // Silent again 0.2 s later, it may go stale again: up to the recovery, one of each.
    expect(hook.events().slice(0, 3)).toEqual(["service_started", "source_stale", "source_recovered"]);
  });

  test("a receiver that hangs: POSTs keep being answered, and shutdown gives up within its second", async () => {
    await using hook = startReceiver(() => new Promise<Response>(() => {}));
    const t = await startApp({ env: { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url } });
    await waitFor(() => hook.pending() === 1, "the receiver to hang on the first alert");
    for (let i = 0; i < 20; i++) {
      expect((await post(t.app, "/meta/metrics", i % 2 === 0 ? paused : running)).status).toBe(200);
    }
    expect((await get(t.app, "/meta/metrics")).body.guardian).toMatchObject({ is_paused: false });
    // Still hanging on that first one: the posts never waited for it.
    expect(hook.pending()).toBe(1);
    expect(hook.received).toHaveLength(1);
    expect((await notifiers(t.app))[0]).toMatchObject({ queued: 20, sent: 0 });
    await t[Symbol.asyncDispose]();
    expect(t.services.alerts.status().notifiers[0]).toMatchObject({ queued: 0, sent: 0, dropped: 21 });
    expect(logged(t.log, "alerts not sent at shutdown")).toEqual([
      expect.objectContaining({ notifier: "webhook", dropped: 20 }),
    ]);
  });

  test("a receiver that is down: nothing else is affected, the counters move, one log line per outage", async () => {
    const port = await deadPort();
    await using t = await startApp({
      env: { NEOLIGHT_ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/hook` },
      overrides: fast,
    });
    expect((await post(t.app, "/meta/metrics", paused)).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    expect((await get(t.app, "/meta/metrics")).body.guardian).toMatchObject({ is_paused: false });
    // started, paused, resumed: each tried MAX_ATTEMPTS times, then given up.
    const [webhook] = await waitFor(async () => {
      const n = await notifiers(t.app);
      return n[0]?.dropped === 3 ? n : null;
    }, "the three alerts given up");
    expect(webhook).toMatchObject({ sent: 0, failed: 3 * MAX_ATTEMPTS, dropped: 3, queued: 0, failing: true });
    const text = await (await t.app.handle(new Request("http://localhost/metrics"))).text();
    expect(text).toContain(`neolight_alerts_failed_total{notifier="webhook"} ${3 * MAX_ATTEMPTS}`);
    expect(text).toContain('neolight_alerts_dropped_total{notifier="webhook"} 3');
    expect(text).toContain('neolight_alerts_sent_total{notifier="webhook"} 0');
    expect(logged(t.log, "alert delivery failing")).toHaveLength(1);
    expect(logged(t.log, "alert given up")).toHaveLength(3);
  });

  test("a flood keeps the newest alerts: the oldest are dropped and counted", async () => {
    await using hook = startReceiver(() => new Promise<Response>(() => {}));
    await using t = await startApp({ env: { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url } });
    await waitFor(() => hook.pending() === 1, "the receiver to hang on the first alert");
    const flips = ALERT_QUEUE_CAPACITY + 10;
    for (let i = 0; i < flips; i++) await post(t.app, "/meta/metrics", i % 2 === 0 ? paused : running);
    expect((await notifiers(t.app))[0]).toMatchObject({ queued: ALERT_QUEUE_CAPACITY, dropped: 10 });
    expect(logged(t.log, "alert queue full, oldest dropped")).toHaveLength(1);
  });
});

/** The real JSON-file persistence, whose saves fail while `broken` and wait while `held`. */
function faultyPersistence(path: string) {
  const real = createJsonFilePersistence(path);
  const control = { broken: false, held: null as Promise<void> | null };
  const persistence: Persistence = {
    path: real.path,
    load: () => real.load(),
    keepAside: () => real.keepAside(),
    async save(state) {
      if (control.held) await control.held;
      if (control.broken) throw new Error("ENOSPC: no space left on device, write");
      return real.save(state);
    },
  };
  return { persistence, control };
}

describe("the service's own troubles", () => {
  test("persistence failing, then recovered: one message each, however many writes fail", async () => {
    using dir = tempDir();
    await using hook = startReceiver(() => new Response("ok"));
    const { persistence, control } = faultyPersistence(join(dir.path, "state", "meta_metrics.json"));
    await using t = await startApp({
      home: dir.path,
      env: { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url },
      overrides: { ...fast, persistence },
    });
    control.broken = true;
    for (let i = 0; i < 5; i++) expect((await post(t.app, "/meta/metrics", running)).status).toBe(503);
    const failing = await waitFor(() => hook.received.find((r) => r.body.event === "persistence_failing"), "failing");
    expect(failing.body).toMatchObject({
      severity: "critical",
      details: { error: expect.stringContaining("ENOSPC"), failures: expect.any(Number) },
    });
    control.broken = false;
    expect((await post(t.app, "/meta/metrics", running)).status).toBe(200);
    await waitFor(() => hook.events().includes("persistence_recovered"), "recovered");
    expect(hook.events()).toEqual(["service_started", "persistence_failing", "persistence_recovered"]);
  });

  test("a saturated channel: one message per stretch of refusals, and one when it accepts again", async () => {
    using dir = tempDir();
    await using hook = startReceiver(() => new Response("ok"));
    const { persistence, control } = faultyPersistence(join(dir.path, "state", "meta_metrics.json"));
    await using t = await startApp({
      home: dir.path,
      env: { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url, NEOLIGHT_QUEUE_CAPACITY: "1" },
      overrides: { ...fast, persistence },
    });
    let release = () => {};
    control.held = new Promise((resolve) => {
      release = resolve;
    });
    // The first is taken by the processor and held in its write, the second fills the channel.
    const accepted = [post(t.app, "/meta/metrics", running)];
    await waitFor(() => t.services.channel.depth === 0 && t.services.meta.stats().accepted === 1, "the write held");
    accepted.push(post(t.app, "/meta/metrics", running));
    for (let i = 0; i < 10; i++) expect((await post(t.app, "/meta/metrics", running)).status).toBe(503);
    await waitFor(() => hook.events().includes("channel_saturated"), "saturated");
    control.held = null;
    release();
    expect((await Promise.all(accepted)).map((r) => r.status)).toEqual([200, 200]);
    const recovered = await waitFor(
      () => hook.received.find((r) => r.body.event === "channel_recovered"),
      "the channel accepting again",
    );
    expect(recovered.body.details).toEqual({ refused: 10, depth: 0, capacity: 1 });
    expect(hook.events()).toEqual(["service_started", "channel_saturated", "channel_recovered"]);
  });
});

test("no notifier configured: /status says so and /metrics has no series", async () => {
  await using t = await startApp();
  expect((await get(t.app, "/status")).body.alerts).toMatchObject({ notifiers: [] });
  const text = await (await t.app.handle(new Request("http://localhost/metrics"))).text();
  expect(text).not.toContain("neolight_alerts_sent_total{");
});

// Issue 14: the marker was fsynced on the path to the first 200 (16 ms of start-up under the
// profiler); it is now written there and fsynced on the thread pool.
describe("the run marker", () => {
  /** Whether this process holds a descriptor open on `path`. */
  const holds = (path: string) =>
    readdirSync("/proc/self/fd").some((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false; // closed since the listing (the listing's own descriptor among them)
      }
    });

  test("is readable when markRunning returns; its descriptor is closed once its fsync is done", async () => {
    using dir = tempDir();
    const log = createMemoryLogger();
    const path = join(dir.path, "dashboard.running");
    const marker = markRunning(dir.path, log, Date.parse("2026-12-02T10:00:00Z"));
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
      pid: process.pid,
      started_at: "2026-12-02T10:00:00.000Z",
    });
    expect(marker.previous).toBeNull();
    await waitFor(() => !holds(path), "the marker's descriptor to be closed");
    // The next start finds it: the last run never reached its clean shutdown.
    expect(markRunning(dir.path, log, Date.now()).previous).toEqual({
      pid: process.pid,
      started_at: "2026-12-02T10:00:00.000Z",
    });
    await waitFor(() => !holds(path), "the second marker's descriptor to be closed");
    expect(logged(log, "run marker not written")).toEqual([]);
    expect(logged(log, "run marker not synced")).toEqual([]);
  });

  test("one that cannot be written is logged, and clear() then touches nothing", () => {
    using dir = tempDir();
    const log = createMemoryLogger();
    const marker = markRunning(join(dir.path, "missing"), log, Date.now());
    expect(logged(log, "run marker not written")).toHaveLength(1);
    marker.clear();
    expect(logged(log, "run marker not removed")).toEqual([]);
  });
});
