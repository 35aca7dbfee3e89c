// Issue 13's figure: a slow or dead notifier never slows a POST. POST /meta/metrics
// latency, p50 and p99 over BENCH_ALERT_POSTS (400) sequential posts that flip the guardian
// (every one is an alert), with a webhook receiver that hangs and with one that is down
// (connection refused), each as a ratio to the same service with no notifier: the peer.
// Run from source (bun src/main.ts), one server at a time.
//
//   bun bench/alerts.ts (also part of `make bench`)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../test/wait";
import { freePort, serviceEnv } from "./lib";
import { type Latency, percentiles } from "./pause-file";

const ROOT = join(import.meta.dir, "..");
const POSTS = Number(process.env.BENCH_ALERT_POSTS ?? 400);
const fixture = (name: string) => readFileSync(join(ROOT, "test", "fixtures", "neolight", `${name}.json`), "utf8");
const BODIES = [fixture("meta_metrics_paused_post"), fixture("meta_metrics_post")];

async function postLatencies(env: Record<string, string>): Promise<Latency> {
  const home = mkdtempSync(join(tmpdir(), "neolight-bench-alerts-"));
  const port = await freePort();
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts")], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...serviceEnv(home, port, { NEOLIGHT_WRITE_RATE: "0", ...env }) },
    stdout: "ignore",
    stderr: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      () =>
        fetch(`${url}/health`).then(
          (r) => r.ok,
          () => false,
        ),
      "the service to start",
      20_000,
    );
    const ms: number[] = [];
    for (let i = 0; i < POSTS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${url}/meta/metrics`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: BODIES[i % 2],
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`POST answered ${res.status}`);
      ms.push(performance.now() - t0);
    }
    return percentiles(ms);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(home, { recursive: true, force: true });
  }
}

export interface AlertsResult {
  posts: number;
  no_notifier: Latency;
  hanging_receiver: Latency;
  receiver_down: Latency;
  ratio_hanging: { p50: number; p99: number };
  ratio_down: { p50: number; p99: number };
}

/** The three services in turn: no notifier (the peer), a receiver that hangs, one that is down. */
export async function alertsScenario(): Promise<AlertsResult> {
  const hanging = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    fetch: () => new Promise<Response>(() => {}),
  });
  const down = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
  const downPort = down.port;
  await down.stop(true);
  try {
    const none = await postLatencies({});
    const hangs = await postLatencies({ NEOLIGHT_ALERT_WEBHOOK_URL: `http://127.0.0.1:${hanging.port}/hook` });
    const refused = await postLatencies({ NEOLIGHT_ALERT_WEBHOOK_URL: `http://127.0.0.1:${downPort}/hook` });
    const ratio = (a: Latency) => ({
      p50: Math.round((a.p50_ms / none.p50_ms) * 100) / 100,
      p99: Math.round((a.p99_ms / none.p99_ms) * 100) / 100,
    });
    return {
      posts: POSTS,
      no_notifier: none,
      hanging_receiver: hangs,
      receiver_down: refused,
      ratio_hanging: ratio(hangs),
      ratio_down: ratio(refused),
    };
  } finally {
    await hanging.stop(true);
  }
}

export function alertsTable(r: AlertsResult): string {
  const row = (name: string, l: Latency, x?: { p50: number; p99: number }) =>
    `| ${name} | ${l.p50_ms.toFixed(2)} ms${x ? ` (${x.p50}x)` : ""} | ${l.p99_ms.toFixed(2)} ms${x ? ` (${x.p99}x)` : ""} |`;
  return [
    `Alerts (issue 13): POST /meta/metrics latency over ${r.posts} guardian flips, each an alert`,
    "| webhook | p50 | p99 |",
    "|---|---|---|",
    row("none (peer)", r.no_notifier),
    row("receiver hangs", r.hanging_receiver, r.ratio_hanging),
    row("receiver down", r.receiver_down, r.ratio_down),
  ].join("\n");
}

if (import.meta.main) {
  const r = await alertsScenario();
  console.log(JSON.stringify(r, null, 2));
  console.log(alertsTable(r));
}
