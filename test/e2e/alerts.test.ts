// Alerts (issue 13) from the real service process: secrets never reach the log file or
// /status, and a restart after kill -9 says so while a restart after SIGTERM does not.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startReceiver } from "../alert-receiver";
import { tempDir, waitFor } from "../helpers";
import { spawnService } from "./process";

const BOT_TOKEN = "987654321:AAFsecretBOTtokenXYZ_abcdefghij";
const HOOK_PATH = "/services/T0SECRET/B0SECRET/hookSECRETpath";
const HOOK_TOKEN = "hooktoken-SECRET-0123456789";

test("secrets are absent from the real log file and /status, even when a receiver echoes them", async () => {
  using dir = tempDir();
  // ? Like Express's default 404 page ("Cannot POST /path"), with the credentials too: what a
  // misconfigured proxy or receiver really answers, and what an error message then carries.
  await using proxy = (() => {
    const received: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const path = new URL(req.url).pathname;
        received.push(path);
        return new Response(`Cannot POST ${path} (authorization: ${req.headers.get("authorization")})`, {
          status: 404,
        });
      },
    });
    return { url: `http://127.0.0.1:${server.port}`, received, [Symbol.asyncDispose]: () => server.stop(true) };
  })();
  await using service = await spawnService({
    home: dir.path,
    env: {
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_CHAT_ID: "-100200300",
      NEOLIGHT_TELEGRAM_API_URL: proxy.url,
      NEOLIGHT_ALERT_WEBHOOK_URL: `${proxy.url}${HOOK_PATH}`,
      NEOLIGHT_ALERT_WEBHOOK_TOKEN: HOOK_TOKEN,
    },
  });
  // A 404 is not retried: each notifier's start-up alert is tried once and given up.
  await waitFor(
    () => service.lines.filter((l) => (l as { message?: string }).message === "alert given up").length === 2,
    "both start-up alerts given up",
  );
  expect(proxy.received.sort()).toEqual([`/bot${BOT_TOKEN}/sendMessage`, HOOK_PATH].sort());
  const status = await (await fetch(`${service.url}/status`)).text();
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  expect(await service.stop("SIGTERM")).toBe(0);
  const file = readFileSync(join(dir.path, "logs", "dashboard_go.log"), "utf8");
  const failing = file
    .split("\n")
    .filter((l) => l.includes('"alert delivery failing"'))
    .map((l) => JSON.parse(l) as { notifier: string; error: string });
  expect(failing.map((l) => [l.notifier, l.error]).sort()).toEqual([
    ["telegram", "HTTP 404: Cannot POST /bot<secret>/sendMessage (authorization: null)"],
    ["webhook", "HTTP 404: Cannot POST <secret> (authorization: Bearer <secret>)"],
  ]);
  expect(JSON.parse(status).alerts.notifiers).toEqual([
    expect.objectContaining({ name: "telegram", target: `${proxy.url} chat -100200300`, dropped: 1 }),
    expect.objectContaining({ name: "webhook", target: proxy.url, dropped: 1 }),
  ]);
  for (const secret of [BOT_TOKEN, BOT_TOKEN.split(":")[1] as string, "hookSECRETpath", HOOK_TOKEN]) {
    expect(file).not.toContain(secret);
    expect(service.output().stdout).not.toContain(secret);
    expect(status).not.toContain(secret);
    expect(metrics).not.toContain(secret);
  }
});

test("a restart after kill -9 is reported as unclean, a restart after SIGTERM as a start", async () => {
  using dir = tempDir();
  await using hook = startReceiver(() => new Response("ok"));
  const env = { NEOLIGHT_ALERT_WEBHOOK_URL: hook.url };
  const first = await spawnService({ home: dir.path, env });
  await waitFor(() => hook.events().length === 1, "the first start's alert");
  expect(await first.stop("SIGKILL")).not.toBe(0);

  const second = await spawnService({ home: dir.path, env });
  const unclean = await waitFor(() => hook.received[1], "the second start's alert");
  expect(unclean.body).toMatchObject({
    event: "service_restarted_unclean",
    severity: "warning",
    details: { pid: second.proc.pid, previous_pid: first.proc.pid, previous_started_at: expect.any(String) },
  });
  expect(await second.stop("SIGTERM")).toBe(0);

  await using third = await spawnService({ home: dir.path, env });
  const clean = await waitFor(() => hook.received[2], "the third start's alert");
  expect(clean.body).toMatchObject({ event: "service_started", details: { pid: third.proc.pid } });
  expect(hook.events()).toEqual(["service_started", "service_restarted_unclean", "service_started"]);
});
