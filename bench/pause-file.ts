// Issue 11's figure: how long after state/guardian_pause.json is written (in place, as
// agent self-heal writes it) the execution router's GET /meta/metrics serves the change,
// p50 and p99 over BENCH_PAUSE_WRITES (100) writes alternating paused true and false. The
// peer, measured in the same run on the same process: POST /meta/metrics of a guardian
// (sent -> served, the hive's path, a durable write included). Only the ratio means much on
// a shared machine; the bound the router relies on is 1 s.
//
//   bun bench/pause-file.ts       # this scenario alone (dist/neolight-dashboard must exist)
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../test/wait";
import { launch, serviceEnv } from "./lib";

const ROOT = join(import.meta.dir, "..");
const WRITES = Number(process.env.BENCH_PAUSE_WRITES ?? 100);
/** The router's read is polled this often while waiting: the figures are exact to about it. */
const POLL_MS = 1;

export interface Latency {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface PauseFileResult {
  writes: number;
  /** Pause file written in place -> served by GET /meta/metrics. */
  pause_file: Latency;
  /** POST /meta/metrics sent -> served by GET /meta/metrics (the peer). */
  post: Latency;
  /** pause_file p50 and p99 over the POST's. */
  ratio_p50: number;
  ratio_p99: number;
}

export function percentiles(xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { p50_ms: r(at(0.5)), p99_ms: r(at(0.99)), max_ms: r(s[s.length - 1] as number) };
}

export async function pauseFileScenario(binary = join(ROOT, "dist", "neolight-dashboard")): Promise<PauseFileResult> {
  console.error(`bench: pause file write -> served, ${WRITES} writes`);
  const server = await launch(binary, (home, port) => serviceEnv(home, port));
  const url = `http://127.0.0.1:${server.port}/meta/metrics`;
  const path = join(server.home, "state", "guardian_pause.json");
  const paused = async () =>
    ((await (await fetch(url)).json()) as { guardian: { is_paused: boolean } }).guardian.is_paused;
  try {
    const file: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      const want = i % 2 === 0;
      const t0 = performance.now();
      writeFileSync(path, JSON.stringify({ paused: want, reason: `bench cooldown ${i}` }));
      await waitFor(async () => (await paused()) === want, `pause file write ${i} served`, 10_000, POLL_MS);
      file.push(performance.now() - t0);
    }
    rmSync(path);
    await waitFor(async () => !(await paused()), "the pause file's removal served", 10_000, POLL_MS);
    const post: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      const want = i % 2 === 0;
      const t0 = performance.now();
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ guardian: { is_paused: want, drawdown: 1, reason: `bench post ${i}` } }),
      });
      await res.arrayBuffer();
      await waitFor(async () => (await paused()) === want, `post ${i} served`, 10_000, POLL_MS);
      post.push(performance.now() - t0);
    }
    const f = percentiles(file);
    const p = percentiles(post);
    const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;
    return {
      writes: WRITES,
      pause_file: f,
      post: p,
      ratio_p50: ratio(f.p50_ms, p.p50_ms),
      ratio_p99: ratio(f.p99_ms, p.p99_ms),
    };
  } finally {
    await server.stop();
  }
}

export function pauseFileTable(r: PauseFileResult): string {
  return [
    `pause file write -> served (${r.writes} writes)   p50 ${r.pause_file.p50_ms} ms   p99 ${r.pause_file.p99_ms} ms   max ${r.pause_file.max_ms} ms`,
    `POST /meta/metrics -> served (peer)          p50 ${r.post.p50_ms} ms   p99 ${r.post.p99_ms} ms   max ${r.post.max_ms} ms`,
    `ratio pause file / POST                      p50 ${r.ratio_p50}x   p99 ${r.ratio_p99}x`,
  ].join("\n");
}

if (import.meta.main) {
  console.log(pauseFileTable(await pauseFileScenario()));
}
