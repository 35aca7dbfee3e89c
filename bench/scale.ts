// Issue 16's table: how the service scales with the agents. For N agents and N strategies
// (N = 3, 30, 300, 3000; generated snapshots, bench/history-fill.ts), on the compiled
// binary: the snapshot's size, durable snapshots/s at 50 connections, GET /meta/metrics
// req/s, /meta/history?range=1h after an hour at 1 Hz, history.db after 30 days at the
// hive's interval, and what a /metrics scrape costs at N=3000. The two load rows are
// measured for a peer in the same run too (BENCH_SCALE_BASE, default main: that ref's
// binary built from `git archive`), and given as ratios to it; the history rows depend
// only on this design's recorder (its own code fills them), so they have none.
//
//   bun bench/scale.ts            # this scenario alone (dist/neolight-dashboard must exist)
//
// Environment: BENCH_DURATION_S (10) per load figure, BENCH_SCALE_AGENTS ("3,30,300,3000"),
// BENCH_SCALE_BASE (main; "" skips the peer), BENCH_SCALE_HISTORY_MAX (300: larger N get
// "-" for the history rows; an hour at 1 Hz of 3,000 agents is 160 M points, minutes to fill).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../test/wait";
import { buildBase } from "./history";
import { fillHistory, hiveSnapshot } from "./history-fill";
import { launch, median, serviceEnv } from "./lib";

const ROOT = join(import.meta.dir, "..");
const DURATION = Number(process.env.BENCH_DURATION_S ?? 10);
const AGENTS = (process.env.BENCH_SCALE_AGENTS ?? "3,30,300,3000").split(",").map(Number);
const BASE = process.env.BENCH_SCALE_BASE ?? "main";
const HISTORY_MAX = Number(process.env.BENCH_SCALE_HISTORY_MAX ?? 300);
/** The issue's: 50 posters at once. */
const CONNECTIONS = 50;
/** Queries timed per history figure (each a different from/to: none is cached). */
const QUERIES = 3;
/** /metrics scrapes timed at N=3000. */
const SCRAPES = 10;
const HOUR = 3_600_000;

/** The part of /status read here (every design has it). */
type StatusQueue = { queue?: { depth?: number } };

/** Load figures of one design at one N. */
interface Load {
  ok_rps: number;
  refused: number;
  get_rps: number;
}

export interface ScaleResult {
  agents: number;
  snapshot_bytes: number;
  this: Load;
  base: Load | null;
  /** Seconds for /meta/history of the last hour after an hour at 1 Hz; null when not measured. */
  history_1h_s: number | null;
  /** history.db after 30 days at one snapshot per 300 s, MB; null when not measured. */
  history_30d_mb: number | null;
  /** Points in it, for MB per million points. */
  history_30d_points: number | null;
}

export interface ScrapeCost {
  series_limit: number;
  ms: number;
  bytes: number;
}

/** Options every design takes: no rate limit in the way of a benchmark's flood. */
const LOAD_ENV = { NEOLIGHT_WRITE_RATE: "1000000", NEOLIGHT_WRITE_BURST: "1000000" };
/** This design's limits raised so that N=3000 (51,011 keys) is taken whole, not refused. */
const RAISED = { NEOLIGHT_MAX_BODY_KEYS: "1000000", NEOLIGHT_MAX_BODY_MB: "8" };

function runWrk(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args);
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
    });
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk failed: ${text}`))));
  });
}

async function load(binary: string, body: string, env: Record<string, string>): Promise<Load> {
  const dir = mkdtempSync(join(tmpdir(), "bench-scale-"));
  const script = join(dir, "post.lua");
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(body)}\n`,
  );
  const run = await launch(binary, (home, port) => serviceEnv(home, port, { ...LOAD_ENV, ...env }));
  try {
    const url = `http://127.0.0.1:${run.port}/meta/metrics`;
    const common = ["-t2", `-c${CONNECTIONS}`, `-d${DURATION}s`, "--timeout", "10s"];
    const post = await runWrk([...common, "-s", script, url]);
    const requests = Number(post.match(/(\d+) requests in/)?.[1] ?? 0);
    const refused = Number(post.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
    const secs = Number(post.match(/requests in ([\d.]+)s/)?.[1] ?? DURATION);
    // The posts wrk left in the queue are applied first: the GETs are measured alone.
    await waitFor(
      async () =>
        ((await (await fetch(`http://127.0.0.1:${run.port}/status`)).json()) as StatusQueue).queue?.depth === 0,
      "the queue to drain",
      60_000,
    );
    // The document now holds the snapshot (or, where it was refused, the defaults).
    const get = await runWrk([...common, url]);
    return {
      ok_rps: (requests - refused) / secs,
      refused,
      get_rps: Number(get.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0),
    };
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median seconds of QUERIES uncached /meta/history queries of the last hour, after an hour at 1 Hz. */
async function historyHour(binary: string, agents: number): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "bench-scale-history-"));
  const filled = join(scratch, "history.db");
  const end = Date.now();
  fillHistory(filled, { agents, days: 1 / 24, everyMs: 1000, end });
  const run = await launch(binary, (home, port) => {
    mkdirSync(join(home, "state"), { recursive: true });
    renameSync(filled, join(home, "state", "history.db"));
    return serviceEnv(home, port);
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const to = end + 1000 + i;
      const t0 = performance.now();
      const res = await fetch(`http://127.0.0.1:${run.port}/meta/history?from=${to - HOUR}&to=${to}&points=300`);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`/meta/history answered ${res.status}`);
      times.push((performance.now() - t0) / 1000);
    }
    return median(times);
  } finally {
    await run.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** history.db after 30 days at one snapshot per 300 s, recorded by this design's recorder. */
function history30d(agents: number): { mb: number; points: number } {
  const scratch = mkdtempSync(join(tmpdir(), "bench-scale-30d-"));
  try {
    const path = join(scratch, "history.db");
    const points = fillHistory(path, { agents, days: 30 });
    let bytes = 0;
    for (const suffix of ["", "-wal"]) {
      try {
        bytes += statSync(path + suffix).size;
      } catch {}
    }
    return { mb: bytes / 1048576, points };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Median time and size of a /metrics scrape with 3,000 agents stored, at `limit` series per family. */
async function scrapeCost(binary: string, body: string, limit: number): Promise<ScrapeCost> {
  const run = await launch(binary, (home, port) =>
    serviceEnv(home, port, { ...LOAD_ENV, ...RAISED, NEOLIGHT_METRICS_MAX_SERIES: String(limit) }),
  );
  try {
    const base = `http://127.0.0.1:${run.port}`;
    const posted = await fetch(`${base}/meta/metrics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    if (posted.status !== 200) throw new Error(`POST answered ${posted.status}`);
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i <= SCRAPES; i++) {
      const t0 = performance.now();
      const text = await (await fetch(`${base}/metrics`)).arrayBuffer();
      // The first scrape warms up; it is not counted.
      if (i > 0) times.push(performance.now() - t0);
      bytes = text.byteLength;
    }
    return { series_limit: limit, ms: median(times), bytes };
  } finally {
    await run.stop();
  }
}

export async function scaleScenario(
  binary = join(ROOT, "dist", "neolight-dashboard"),
): Promise<{ rows: ScaleResult[]; scrapes: ScrapeCost[]; base: string | null }> {
  const base = BASE === "" ? null : buildBase(BASE);
  if (BASE !== "" && base === null) console.error(`bench: scale: could not build ${BASE}; no peer`);
  const rows: ScaleResult[] = [];
  const scrapes: ScrapeCost[] = [];
  try {
    for (const agents of AGENTS) {
      const body = JSON.stringify(hiveSnapshot(agents, 1));
      console.error(`bench: scale, ${agents} agents: load`);
      const mine = await load(binary, body, RAISED);
      const theirs = base === null ? null : await load(base.binary, body, {});
      let hour: number | null = null;
      let month: { mb: number; points: number } | null = null;
      if (agents <= HISTORY_MAX) {
        console.error(`bench: scale, ${agents} agents: history`);
        hour = await historyHour(binary, agents);
        month = history30d(agents);
      }
      if (agents >= 3000) {
        console.error(`bench: scale, ${agents} agents: /metrics`);
        for (const limit of [1000, agents * 2]) scrapes.push(await scrapeCost(binary, body, limit));
      }
      rows.push({
        agents,
        snapshot_bytes: Buffer.byteLength(body),
        this: mine,
        base: theirs,
        history_1h_s: hour,
        history_30d_mb: month?.mb ?? null,
        history_30d_points: month?.points ?? null,
      });
    }
  } finally {
    if (base !== null) rmSync(base.tree, { recursive: true, force: true });
  }
  return { rows, scrapes, base: base === null ? null : BASE };
}

export function scaleTable({ rows, scrapes, base }: Awaited<ReturnType<typeof scaleScenario>>): string {
  const size = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} KB`);
  const int = (v: number) => Math.round(v).toLocaleString("en");
  const vs = (mine: number, theirs: number | undefined) =>
    theirs === undefined
      ? int(mine)
      : theirs === 0
        ? `${int(mine)} (${base}: refused)`
        : `${int(mine)} (${(mine / theirs).toFixed(2)}x ${base})`;
  const cell = (f: (r: ScaleResult) => string) => rows.map(f).join(" | ");
  const lines = [
    `How the service scales with N agents and N strategies (compiled binary, ${CONNECTIONS} connections, ${DURATION} s per figure; ratios to ${base ?? "no peer"} measured in the same run)`,
    "",
    `| | ${rows.map((r) => `N=${r.agents}`).join(" | ")} |`,
    `|---|${rows.map(() => "---").join("|")}|`,
    `| snapshot | ${cell((r) => size(r.snapshot_bytes))} |`,
    `| durable snapshots/s | ${cell((r) => vs(r.this.ok_rps, r.base?.ok_rps))} |`,
    // ? Where the peer refused the snapshot its document is the defaults: no comparison.
    `| GET /meta/metrics req/s | ${cell((r) =>
      r.base !== null && r.base.ok_rps === 0
        ? `${int(r.this.get_rps)} (${base} holds no snapshot)`
        : vs(r.this.get_rps, r.base?.get_rps),
    )} |`,
    `| /meta/history 1 h after 1 h at 1 Hz | ${cell((r) => (r.history_1h_s === null ? "-" : `${r.history_1h_s.toFixed(3)} s`))} |`,
    `| history.db after 30 days at 1/300 s | ${cell((r) =>
      r.history_30d_mb === null
        ? "-"
        : `${r.history_30d_mb.toFixed(1)} MB (${((r.history_30d_mb * 1e6) / (r.history_30d_points ?? 1)).toFixed(1)} B/point)`,
    )} |`,
    "",
    "This design's body limits raised for the load rows (NEOLIGHT_MAX_BODY_KEYS): with the defaults N=3000 (51,011 keys) is answered 400 with its guardian applied.",
  ];
  for (const s of scrapes) {
    lines.push(
      `GET /metrics at N=3000, ${s.series_limit} series per family: ${s.ms.toFixed(1)} ms, ${size(s.bytes)} per scrape`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) console.log(scaleTable(await scaleScenario()));
