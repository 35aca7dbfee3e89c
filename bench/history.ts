// Issue 16's scenario: GET /meta/metrics (the execution router's read) while five
// dashboards load 30-day charts, with 30 days of history of N agents and N strategies
// (default 300) recorded beforehand by the recorder's own code (bench/history-fill.ts).
// Run by `make bench` for this service and, when BENCH_HISTORY_BASE names a git ref
// (default: main), for that ref's design too, built from `git archive` in a temporary
// directory with its own recorder filling its own history.db.
//
// ? The dashboards are clients on the server's own two cores, so what they spend is charged
// to the server's figures. A browser decompresses the gzipped answer on the viewer's machine;
// here Bun's fetch would do it on the server's cores (~40 ms of CPU per 1 MB answer at 300
// agents, five at once when a shared answer arrives). So the charts read the gzipped bytes
// as sent (the server's whole work) without decompressing them, and one more row
// ("clients decompress") measures the same with clients that do, to show that cost apart.
//
//   bun bench/history.ts            # this scenario alone (dist/neolight-dashboard must exist)
//
// Environment: BENCH_HISTORY_AGENTS (300), BENCH_HISTORY_DAYS (30), BENCH_DURATION_S (10),
// BENCH_HISTORY_BASE (main; "" skips the comparison), BENCH_HISTORY_FILLED (a history.db
// to copy instead of recording one: at 300 agents recording 30 days takes minutes),
// BENCH_HISTORY_BASE_FILLED (the same for the base's design, when its layout is the same).
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../test/wait";
import { launch, serviceEnv, toMs } from "./lib";

const ROOT = join(import.meta.dir, "..");
const AGENTS = Number(process.env.BENCH_HISTORY_AGENTS ?? 300);
const DAYS = Number(process.env.BENCH_HISTORY_DAYS ?? 30);
const DURATION = Number(process.env.BENCH_DURATION_S ?? 10);
const BASE = process.env.BENCH_HISTORY_BASE ?? "main";
/** A history.db this design's bench/history-fill.ts wrote before (same agents and days): copied, not refilled. */
const REUSE = process.env.BENCH_HISTORY_FILLED;
/** The same for the base's design (its own recorder's layout). */
const REUSE_BASE = process.env.BENCH_HISTORY_BASE_FILLED;
/** Dashboards loading charts at once, and the router's connections (wrk). */
const DASHBOARDS = 5;
const ROUTER_CONNECTIONS = 10;
const DAY = 86_400_000;

export interface HistoryLoadResult {
  design: string;
  fill_s: number;
  history_db_mb: number;
  /** No charts: the router's figures on this machine at this moment, to compare with. */
  none: LoadFigures;
  /** Charts asked as the page asks (range=30d: the shared cache answers most). */
  cached: LoadFigures;
  /** The same, with clients that decompress the answers on the server's cores. */
  cached_decompressed: LoadFigures;
  /** Each chart a different from/to: every one a real query of 30 days. */
  uncached: LoadFigures;
}

interface LoadFigures {
  /** GETs not answered within wrk's timeout, 2 s: the router's, after which it trades as if not paused. */
  get_timeouts: number;
  get_p50_ms: number;
  get_p99_ms: number;
  get_max_ms: number;
  get_rps: number;
  charts: number;
  chart_errors: number;
  chart_p50_ms: number;
}

function wrkGet(port: number, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", [
      "-t2",
      `-c${ROUTER_CONNECTIONS}`,
      `-d${seconds}s`,
      "--latency",
      "--timeout",
      "2s",
      `http://127.0.0.1:${port}/meta/metrics`,
    ]);
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
    });
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk failed: ${text}`))));
  });
}

/** The router's figures while DASHBOARDS clients load charts for as long as wrk runs. */
async function underCharts(
  port: number,
  mode: "none" | "cached" | "uncached",
  decompress = false,
): Promise<LoadFigures> {
  const cached = mode === "cached";
  // ? Bun's fetch sends no Accept-Encoding when told not to decompress: asked for, as a browser does.
  const init: BunFetchRequestInit = decompress ? {} : { decompress: false, headers: { "accept-encoding": "gzip" } };
  let running = true;
  const times: number[] = [];
  let errors = 0;
  let n = 0;
  const dashboards = Array.from({ length: mode === "none" ? 0 : DASHBOARDS }, async () => {
    while (running) {
      const to = Date.now() + n++;
      const query = cached ? "range=30d&points=300" : `from=${to - 30 * DAY}&to=${to}&points=300`;
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/meta/history?${query}`, init);
        await res.arrayBuffer();
        times.push(performance.now() - t0);
        if (res.status !== 200) {
          errors++;
          // As a page does: wait as long as the 503 says before asking again.
          await Bun.sleep(Number(res.headers.get("retry-after") ?? 1) * 1000);
        }
      } catch {
        errors++;
        await Bun.sleep(1000);
      }
    }
  });
  // ? The charts start first (as many answers as there are charts), so the router's whole
  // run is under their load.
  await waitFor(() => times.length + errors >= dashboards.length, "every chart's first answer", 30_000);
  const out = await wrkGet(port, DURATION);
  running = false;
  await Promise.all(dashboards);
  times.sort((a, b) => a - b);
  return {
    get_timeouts: Number(out.match(/timeout (\d+)/)?.[1] ?? 0),
    get_p50_ms: toMs(out.match(/^\s+50%\s+(\S+)$/m)?.[1] ?? ""),
    get_p99_ms: toMs(out.match(/^\s+99%\s+(\S+)$/m)?.[1] ?? ""),
    get_max_ms: toMs(out.match(/Latency\s+\S+\s+\S+\s+(\S+)/)?.[1] ?? ""),
    get_rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0),
    charts: times.length,
    chart_errors: errors,
    chart_p50_ms: times[Math.floor(times.length / 2)] ?? Number.NaN,
  };
}

/** Fills a history.db with `fill` (a bench/history-fill.ts), starts `binary` on it, measures. */
async function measure(design: string, binary: string, fill: string, cwd: string): Promise<HistoryLoadResult> {
  // ? The recorder's own code of that design writes its own layout, before the start.
  const scratch = mkdtempSync(join(tmpdir(), "neolight-history-"));
  const filled = join(scratch, "history.db");
  console.error(`bench: history (${design}): recording ${DAYS} days of ${AGENTS} agents`);
  const t0 = performance.now();
  const reuse = design === "this" ? REUSE : REUSE_BASE;
  if (reuse !== undefined) copyFileSync(reuse, filled);
  else {
    const r = spawnSync(process.execPath, [fill, filled, String(AGENTS), String(DAYS)], { cwd, stdio: "inherit" });
    if (r.status !== 0) throw new Error(`${fill} failed`);
  }
  const fillS = (performance.now() - t0) / 1000;
  const size = Bun.file(filled).size / 1048576;
  const run = await launch(binary, (home, port) => {
    mkdirSync(join(home, "state"), { recursive: true });
    renameSync(filled, join(home, "state", "history.db"));
    return serviceEnv(home, port);
  });
  try {
    console.error(`bench: history (${design}): no charts`);
    const none = await underCharts(run.port, "none");
    console.error(`bench: history (${design}): cached charts`);
    const cached = await underCharts(run.port, "cached");
    console.error(`bench: history (${design}): cached charts, clients decompress`);
    const cachedDecompressed = await underCharts(run.port, "cached", true);
    console.error(`bench: history (${design}): uncached charts`);
    const uncached = await underCharts(run.port, "uncached");
    return {
      design,
      fill_s: fillS,
      history_db_mb: size,
      none,
      cached,
      cached_decompressed: cachedDecompressed,
      uncached,
    };
  } finally {
    await run.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Builds `ref`'s binary in a temporary directory; its path and tree, or null when that fails. */
export function buildBase(ref: string): { binary: string; tree: string } | null {
  const tree = mkdtempSync(join(tmpdir(), "neolight-base-"));
  const archive = spawnSync("sh", ["-c", `git archive ${ref} | tar -x -C ${tree}`], { cwd: ROOT });
  if (archive.status !== 0) return null;
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
  // The generator is this tree's; it calls only what both designs have (extractPoints, record).
  cpSync(join(ROOT, "bench", "history-fill.ts"), join(tree, "bench", "history-fill.ts"));
  const built = spawnSync("make", ["build"], { cwd: tree, stdio: "ignore" });
  const binary = join(tree, "dist", "neolight-dashboard");
  return built.status === 0 && existsSync(binary) ? { binary, tree } : null;
}

export async function historyScenario(binary = join(ROOT, "dist", "neolight-dashboard")): Promise<HistoryLoadResult[]> {
  console.error(`bench: history, ${AGENTS} agents and strategies, ${DAYS} days`);
  const results = [await measure("this", binary, join(ROOT, "bench", "history-fill.ts"), ROOT)];
  if (BASE !== "") {
    const base = buildBase(BASE);
    if (base === null) console.error(`bench: history: could not build ${BASE}; no comparison`);
    else {
      try {
        results.push(await measure(BASE, base.binary, join(base.tree, "bench", "history-fill.ts"), base.tree));
      } finally {
        rmSync(base.tree, { recursive: true, force: true });
      }
    }
  }
  return results;
}

export function historyTable(results: readonly HistoryLoadResult[]): string {
  const n = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "-");
  const lines = [
    `GET /meta/metrics (wrk, ${ROUTER_CONNECTIONS} connections) while ${DASHBOARDS} dashboards load 30-day charts; ${AGENTS} agents and ${AGENTS} strategies, ${DAYS} days of history`,
    "",
    "| design | charts | GET p50 ms | GET p99 ms | GET max ms | GET req/s | GET timeouts (2 s) | charts answered | chart errors | chart p50 ms | fill s | history.db MB |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    for (const [label, f] of [
      ["none", r.none],
      ["range=30d (cached)", r.cached],
      ["range=30d (cached), clients decompress", r.cached_decompressed],
      ["from/to (uncached)", r.uncached],
    ] as const) {
      lines.push(
        `| ${r.design} | ${label} | ${n(f.get_p50_ms, 2)} | ${n(f.get_p99_ms, 2)} | ${n(f.get_max_ms, 0)} | ${n(f.get_rps, 0)} | ${f.get_timeouts} | ${f.charts} | ${f.chart_errors} | ${n(f.chart_p50_ms, 0)} | ${n(r.fill_s, 0)} | ${n(r.history_db_mb, 0)} |`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  console.log(historyTable(await historyScenario()));
}
