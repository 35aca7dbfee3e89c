// Issue 13's figure: a slow or dead notifier never slows a POST. POST /meta/metrics
// latency, p50 and p99 over BENCH_ALERT_POSTS (400) sequential posts that flip the guardian
// (every one is an alert), with a webhook receiver that hangs and with one that is down
// (connection refused), each as a ratio to the same service with no notifier: the peer.
// Run from source (bun src/main.ts), one server at a time.
//
//   bun bench/alerts.ts
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

const hanging = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  idleTimeout: 0,
  fetch: () => new Promise<Response>(() => {}),
});
const down = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
const downPort = down.port;
await down.stop(true);

const none = await postLatencies({});
const hangs = await postLatencies({ NEOLIGHT_ALERT_WEBHOOK_URL: `http://127.0.0.1:${hanging.port}/hook` });
const refused = await postLatencies({ NEOLIGHT_ALERT_WEBHOOK_URL: `http://127.0.0.1:${downPort}/hook` });
await hanging.stop(true);
const ratio = (a: Latency) => ({
  p50: Math.round((a.p50_ms / none.p50_ms) * 100) / 100,
  p99: Math.round((a.p99_ms / none.p99_ms) * 100) / 100,
});
console.log(
  JSON.stringify(
    {
      posts: POSTS,
      no_notifier: none,
      hanging_receiver: hangs,
      receiver_down: refused,
      ratio_hanging: ratio(hangs),
      ratio_down: ratio(refused),
    },
    null,
    2,
  ),
);
