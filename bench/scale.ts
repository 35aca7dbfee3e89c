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
// "-" for the history rows; an hour at 1 Hz of 3,000 agents is 160 M points, minutes to fill),
// BENCH_SCALE_ROUNDS (1): rounds of the load rows, every N in turn in each, medians printed.
//
// ? A rate at 50 connections swings by up to 2x between runs on this shared machine, and
// the growth from N=300 to N=3000 with it (11-22x in four runs of one build). The main
// thread's CPU per snapshot (from /proc) is the cost itself, what the rate is made of: the
// row to judge the growth on.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../test/wait";
import { buildBase } from "./history";
import { fillHistory, hiveSnapshot } from "./history-fill";
import { launch, mainThreadCpuMs, median, procStatusKiB, serviceEnv } from "./lib";

const ROOT = join(import.meta.dir, "..");
const DURATION = Number(process.env.BENCH_DURATION_S ?? 10);
const AGENTS = (process.env.BENCH_SCALE_AGENTS ?? "3,30,300,3000").split(",").map(Number);
const BASE = process.env.BENCH_SCALE_BASE ?? "main";
const HISTORY_MAX = Number(process.env.BENCH_SCALE_HISTORY_MAX ?? 300);
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 1);
/** The issue's: 50 posters at once. */
const CONNECTIONS = 50;
/** Queries timed per history figure (each a different from/to: none is cached). */
const QUERIES = 3;
/** /metrics scrapes timed at N=3000. */
const SCRAPES = 10;
const HOUR = 3_600_000;
/**
 * How long after the posts' flood the second RSS is read: the allocator settings differ in
 * how soon they hand freed memory back (the default 100 ms after it is freed).
 */
const RSS_SETTLE_MS = 3000;

/** The part of /status read here (every design has it). */
type StatusQueue = { queue?: { depth?: number } };

/** Load figures of one design at one N. */
interface Load {
  ok_rps: number;
  refused: number;
  /** The server's main thread's CPU per accepted snapshot, ms (/proc/<pid>/task/<pid>/stat). */
  main_ms_per_post: number;
  /** VmRSS at the end of the posts' flood, and RSS_SETTLE_MS after it, MB. */
  rss_flood_mb: number;
  rss_after_mb: number;
  get_rps: number;
}

/** The median of each figure over the rounds. */
function medianLoad(rounds: readonly Load[]): Load {
  const of = (k: keyof Load) => median(rounds.map((r) => r[k]));
  return {
    ok_rps: of("ok_rps"),
    refused: of("refused"),
    main_ms_per_post: of("main_ms_per_post"),
    rss_flood_mb: of("rss_flood_mb"),
    rss_after_mb: of("rss_after_mb"),
    get_rps: of("get_rps"),
  };
}

export interface ScaleResult {
  agents: number;
  snapshot_bytes: number;
  this: Load;
  base: Load | null;
  /** The floor peer parsing the same posts; null when it is not built. */
  floor: Load | null;
  /** This design's posts with UNIT_ALLOCATOR: as the systemd units run it. */
  asUnit: Load;
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

/**
 * Bun's allocator settings the systemd units give the service (deploy/neolight-dashboard.service;
 * Bun reads them only at exec, so the binary cannot set them for itself): measured as their
 * own row. At N=3000 each post's ~1 MB body and text are freed in bulk at a garbage
 * collection, handed back to the kernel 100 ms later and faulted in again by the next posts
 * (700-800 minor faults a post against 9-11 at N=300): the main thread's cost per snapshot
 * grew 20-25x for 10x the data by default.
 */
function unitAllocatorEnv(): Record<string, string> {
  const unit = readFileSync(join(ROOT, "deploy", "neolight-dashboard.service"), "utf8");
  const env = Object.fromEntries(
    [...unit.matchAll(/^Environment=(MIMALLOC_\w+)=(\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]),
  );
  if (Object.keys(env).length === 0) throw new Error("deploy/neolight-dashboard.service sets no MIMALLOC_ option");
  return env;
}
const UNIT_ALLOCATOR = unitAllocatorEnv();
/** UNIT_ALLOCATOR as the table names it. */
const UNIT_ALLOCATOR_TEXT = Object.entries(UNIT_ALLOCATOR)
  .map(([k, v]) => `${k}=${v}`)
  .join(" ");
/** The floor peer (bench/peers/floor) parsing each POST: the platform's read and parse alone. */
const FLOOR = join(ROOT, "bench", "peers", "floor", "floor-peer");

/**
 * Durable snapshots/s of `body` at CONNECTIONS, then (unless `postsOnly`: a peer that keeps
 * no document) GET /meta/metrics req/s once the queue has drained.
 */
async function load(binary: string, body: string, env: Record<string, string>, postsOnly = false): Promise<Load> {
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
    const cpu0 = mainThreadCpuMs(run.pid);
    const post = await runWrk([...common, "-s", script, url]);
    const mainMs = mainThreadCpuMs(run.pid) - cpu0;
    const rssFlood = procStatusKiB(run.pid, "VmRSS") / 1024;
    const requests = Number(post.match(/(\d+) requests in/)?.[1] ?? 0);
    const refused = Number(post.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
    const secs = Number(post.match(/requests in ([\d.]+)s/)?.[1] ?? DURATION);
    const posts = {
      ok_rps: (requests - refused) / secs,
      refused,
      main_ms_per_post: requests > refused ? mainMs / (requests - refused) : Number.NaN,
      rss_flood_mb: rssFlood,
      rss_after_mb: await Bun.sleep(RSS_SETTLE_MS).then(() => procStatusKiB(run.pid, "VmRSS") / 1024),
    };
    if (postsOnly) return { ...posts, get_rps: Number.NaN };
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
      ...posts,
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
    const bodies = AGENTS.map((agents) => JSON.stringify(hiveSnapshot(agents, 1)));
    const mine: Load[][] = AGENTS.map(() => []);
    const theirs: Load[][] = AGENTS.map(() => []);
    const floors: Load[][] = AGENTS.map(() => []);
    const asUnit: Load[][] = AGENTS.map(() => []);
    const floorBuilt = existsSync(FLOOR);
    if (!floorBuilt) console.error(`bench: scale: ${FLOOR} is not built; no floor row`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [i, agents] of AGENTS.entries()) {
        const body = bodies[i] as string;
        console.error(`bench: scale, ${agents} agents: load (round ${round} of ${ROUNDS})`);
        mine[i]?.push(await load(binary, body, RAISED));
        if (base !== null) theirs[i]?.push(await load(base.binary, body, {}));
        if (floorBuilt) floors[i]?.push(await load(FLOOR, body, { FLOOR_PARSE: "1" }, true));
        asUnit[i]?.push(await load(binary, body, { ...RAISED, ...UNIT_ALLOCATOR }, true));
      }
    }
    for (const [i, agents] of AGENTS.entries()) {
      const body = bodies[i] as string;
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
        this: medianLoad(mine[i] ?? []),
        base: base === null ? null : medianLoad(theirs[i] ?? []),
        floor: floorBuilt ? medianLoad(floors[i] ?? []) : null,
        asUnit: medianLoad(asUnit[i] ?? []),
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
  const rss = (l: Load) => `${Math.round(l.rss_flood_mb)} MB, ${Math.round(l.rss_after_mb)} MB`;
  // ? "No row grows faster than the data" (issue 16's verdict), read off one column: how
  // much each row's cost grows from one N to the next, beside the snapshot's own growth.
  // A rate's cost is its inverse (10x fewer snapshots/s is 10x the cost of one).
  const growth = (cost: (r: ScaleResult) => number | null) => {
    const steps: string[] = [];
    for (let i = 1; i < rows.length; i++) {
      const [before, after] = [cost(rows[i - 1] as ScaleResult), cost(rows[i] as ScaleResult)];
      if (before !== null && after !== null && before > 0) steps.push(`${(after / before).toFixed(1)}x`);
    }
    return steps.length === 0 ? "-" : steps.join(", ");
  };
  const lines = [
    `How the service scales with N agents and N strategies (compiled binary, ${CONNECTIONS} connections, ${DURATION} s per figure, load rows the medians of ${ROUNDS} round(s); ratios to ${base ?? "no peer"} measured in the same run)`,
    "",
    `| | ${rows.map((r) => `N=${r.agents}`).join(" | ")} | cost growth from one N to the next |`,
    `|---|${rows.map(() => "---").join("|")}|---|`,
    `| snapshot | ${cell((r) => size(r.snapshot_bytes))} | ${growth((r) => r.snapshot_bytes)} (the data) |`,
    `| durable snapshots/s | ${cell((r) => vs(r.this.ok_rps, r.base?.ok_rps))} | ${growth((r) => 1 / r.this.ok_rps)} |`,
    `| main thread's CPU per snapshot | ${cell((r) => `${r.this.main_ms_per_post.toFixed(2)} ms`)} | ${growth((r) => r.this.main_ms_per_post)} |`,
    // ? The platform's share: raw Bun.serve reading and parsing the same posts, nothing else.
    `| the same, floor (read + JSON.parse only) | ${cell((r) => (r.floor === null ? "-" : `${r.floor.main_ms_per_post.toFixed(2)} ms`))} | ${growth((r) => r.floor?.main_ms_per_post ?? null)} |`,
    `| durable snapshots/s, as the systemd units run it (${UNIT_ALLOCATOR_TEXT}) | ${cell((r) => int(r.asUnit.ok_rps))} | ${growth((r) => 1 / r.asUnit.ok_rps)} |`,
    `| main thread's CPU per snapshot, as the systemd units run it | ${cell((r) => `${r.asUnit.main_ms_per_post.toFixed(2)} ms`)} | ${growth((r) => r.asUnit.main_ms_per_post)} |`,
    `| RSS at the end of the posts' flood and ${RSS_SETTLE_MS / 1000} s after it, by default | ${cell((r) => rss(r.this))} | - |`,
    `| the same, as the systemd units run it | ${cell((r) => rss(r.asUnit))} | - |`,
    // ? Where the peer refused the snapshot its document is the defaults: no comparison.
    `| GET /meta/metrics req/s | ${cell((r) =>
      r.base !== null && r.base.ok_rps === 0
        ? `${int(r.this.get_rps)} (${base} holds no snapshot)`
        : vs(r.this.get_rps, r.base?.get_rps),
    )} | ${growth((r) => 1 / r.this.get_rps)} |`,
    `| /meta/history 1 h after 1 h at 1 Hz | ${cell((r) => (r.history_1h_s === null ? "-" : `${r.history_1h_s.toFixed(3)} s`))} | ${growth((r) => r.history_1h_s)} |`,
    `| history.db after 30 days at 1/300 s | ${cell((r) =>
      r.history_30d_mb === null
        ? "-"
        : `${r.history_30d_mb.toFixed(1)} MB (${((r.history_30d_mb * 1e6) / (r.history_30d_points ?? 1)).toFixed(1)} B/point)`,
    )} | ${growth((r) => r.history_30d_mb)} |`,
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
