// `make bench`: every scenario against five servers in the same run, one after another,
// on this machine: this service (the compiled binary), the floor (raw Bun.serve, same
// bytes, precomputed), the original stack (Go + Fiber), the Elysia peer (Elysia +
// @elysiajs/openapi hello, same bytes: what the framework alone costs) and the Elysia API
// peer (this service's routes and schemas answering precomputed bytes, with an idle SQLite
// thread: what the framework costs for this API before any of the service's work). Prints
// a table of figures and ratios, issue 14's resource goals with the platform's share of
// each (the API peer's ratio; for start-up, the API peer's doing the least start-up work
// the contract asks for, timed apart as elysia_contract) and where each server's memory is
// (/proc/<pid>/smaps), and writes them to bench/out/results.json. Never a test, never gates
// CI: this machine is shared and noisy, so only ratios measured in one run mean anything.
//
// `--resources` runs only what issue 14's goals need (start-up, idle memory, GET
// /meta/metrics, the memory rounds): the quick loop for judging one lever at a time.
//
// Environment: BENCH_DURATION_S (default 10) per load scenario, BENCH_CONNECTIONS (100),
// BENCH_STARTUP_RUNS (9), BENCH_MILLION (1000000 requests per memory round), BENCH_ROUNDS (5);
// the history scenario's in bench/history.ts, the scale table's in bench/scale.ts,
// the serialisation's in bench/serialise.ts.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../scripts/build";
import { alertsScenario, alertsTable } from "./alerts";
import { historyScenario, historyTable } from "./history";
import { IDLE_MS, type Launched, launch, median, memoryMap, procStatusKiB, serviceEnv, toMs } from "./lib";
import { pauseFileScenario, pauseFileTable } from "./pause-file";
import { scaleScenario, scaleTable } from "./scale";
import { serialiseScenario, serialiseTable } from "./serialise";

const ROOT = join(import.meta.dir, "..");
const OUT = join(ROOT, "bench", "out");
const FIXTURE = readFileSync(join(ROOT, "test", "fixtures", "neolight", "meta_metrics_post.json"), "utf8");
const DURATION = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 9);
const MILLION = Number(process.env.BENCH_MILLION ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** The pause after each memory round before RSS is read (the same for every server). */
const ROUND_SETTLE_MS = 500;

interface Server {
  name: string;
  binary: string;
  /** What a 200 on POST /meta/metrics promises. */
  durability: string;
  env(home: string, port: number): Record<string, string>;
}

const SERVERS: Server[] = [
  {
    name: "neolight",
    binary: join(ROOT, "dist", "neolight-dashboard"),
    durability: "applied and fsynced (group commit: one fsync per batch)",
    // ? The write rate limit (default 100/s per address) would refuse a benchmark's flood
    // from 127.0.0.1; the highest rate it accepts keeps the limiter in the path, measured.
    env: (home, port) => serviceEnv(home, port, { NEOLIGHT_WRITE_RATE: "1000000", NEOLIGHT_WRITE_BURST: "1000000" }),
  },
  {
    name: "floor",
    binary: join(ROOT, "bench", "peers", "floor", "floor-peer"),
    durability: "none (body read and dropped)",
    env: (_home, port) => ({ NEOLIGHT_DASHBOARD_PORT: String(port) }),
  },
  {
    name: "fiber",
    binary: join(ROOT, "bench", "peers", "fiber", "fiber-peer"),
    durability: "queued only (written later without fsync; 503 when the queue is full)",
    env: (home, port) => ({ NEOLIGHT_HOME: home, NEOLIGHT_DASHBOARD_PORT: String(port) }),
  },
  {
    name: "elysia",
    binary: join(ROOT, "bench", "peers", "elysia", "elysia-peer"),
    durability: "none (body read and dropped)",
    env: (_home, port) => ({ NEOLIGHT_DASHBOARD_PORT: String(port) }),
  },
  {
    name: "elysia_api",
    binary: join(ROOT, "bench", "peers", "elysia", "elysia-routes-peer"),
    durability: "none (body read and dropped)",
    // ? With the idle SQLite thread: the service's history thread (issue 16) is part of the shape.
    env: (_home, port) => ({ NEOLIGHT_DASHBOARD_PORT: String(port), PEER_WORKER: "1" }),
  },
];
/**
 * Timed for start-up only, interleaved with SERVERS: the API peer doing the least start-up
 * work the wire contract asks for before a first answer (bench/peers/elysia/contract.ts).
 * It is the start-up goal's platform share: the service cannot skip that work.
 */
const CONTRACT_PEER: Server = {
  name: "elysia_contract",
  binary: join(ROOT, "bench", "peers", "elysia", "elysia-routes-peer"),
  durability: "none (body read and dropped)",
  env: (home, port) => ({
    NEOLIGHT_HOME: home,
    NEOLIGHT_DASHBOARD_PORT: String(port),
    PEER_WORKER: "1",
    PEER_CONTRACT: "1",
  }),
};
/** Only issue 14's resource figures (see the header). */
const RESOURCES_ONLY = process.argv.includes("--resources");

function sh(cmd: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function ensureTools(): void {
  const missing = ["wrk", "hey"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  if (missing.length === 0) return;
  console.error(`bench: installing ${missing.join(" ")} from Debian`);
  sh("apt-get", ["update", "-qq"]);
  sh("apt-get", ["install", "-y", "-qq", ...missing]);
}

function build(): void {
  console.error("bench: building the five servers");
  compile();
  for (const peer of ["floor", "elysia"]) {
    compile(join(ROOT, "bench", "peers", peer, `${peer}-peer`), {
      entries: [join(ROOT, "bench", "peers", peer, `${peer}.ts`)],
    });
  }
  compile(join(ROOT, "bench", "peers", "elysia", "elysia-routes-peer"), {
    entries: [join(ROOT, "bench", "peers", "elysia", "routes.ts")],
  });
  const go = existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : "go";
  sh(go, ["build", "-trimpath", "-ldflags=-s -w", "-o", "fiber-peer", "."], join(ROOT, "bench", "peers", "fiber"));
}

interface Running extends Launched {
  server: Server;
}

async function start(server: Server): Promise<Running> {
  return { ...(await launch(server.binary, server.env)), server };
}

/** exec -> first 200 on /health, in ms. */
async function startupMs(server: Server): Promise<number> {
  const run = await launch(server.binary, server.env);
  await run.stop();
  return run.startupMs;
}

function luaString(s: string): string {
  return JSON.stringify(s);
}

function writeScripts(dir: string): Record<string, string> {
  const body = JSON.stringify(JSON.parse(FIXTURE));
  const scripts = {
    post: `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${luaString(body)}\n`,
    mixed: `local body = ${luaString(body)}
local hdr = { ["Content-Type"] = "application/json" }
local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then return wrk.format("POST", "/meta/metrics", hdr, body) end
  return wrk.format("GET", "/meta/metrics")
end
`,
  };
  const paths: Record<string, string> = {};
  for (const [name, text] of Object.entries(scripts)) {
    paths[name] = join(dir, `${name}.lua`);
    writeFileSync(paths[name] as string, text);
  }
  return paths;
}

interface LoadResult {
  rps: number;
  ok_rps: number;
  p50_ms: number;
  p99_ms: number;
  non2xx: number;
  requests: number;
  rss_max_mb: number;
}

async function wrk(
  run: Running,
  path: string,
  script?: string,
  env: Record<string, string> = {},
  duration = DURATION,
): Promise<LoadResult> {
  const args = ["-t2", `-c${CONNECTIONS}`, `-d${duration}s`, "--latency"];
  if (script) args.push("-s", script);
  args.push(`http://127.0.0.1:${run.port}${path}`);
  let rssMax = procStatusKiB(run.pid, "VmRSS");
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, procStatusKiB(run.pid, "VmRSS"));
  }, 200);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn("wrk", args, { env: { ...process.env, ...env } });
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
    });
    child.stderr.on("data", (d) => {
      text += d;
    });
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk failed: ${text}`))));
  });
  clearInterval(sampler);
  rssMax = Math.max(rssMax, procStatusKiB(run.pid, "VmRSS"));
  const num = (re: RegExp) => Number(out.match(re)?.[1] ?? 0);
  const requests = num(/(\d+) requests in/);
  const seconds = toMs(out.match(/requests in ([\d.]+(?:us|ms|s))/)?.[1] ?? "1s") / 1000;
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  return {
    rps,
    ok_rps: (requests - non2xx) / seconds,
    // Anchored: "50%" and "99%" also occur inside the +/- Stdev column of the thread stats.
    p50_ms: toMs(out.match(/^\s+50%\s+(\S+)$/m)?.[1] ?? ""),
    p99_ms: toMs(out.match(/^\s+99%\s+(\S+)$/m)?.[1] ?? ""),
    non2xx,
    requests,
    rss_max_mb: rssMax / 1024,
  };
}

function hey(run: Running): { rps: number; p50_ms: number; p99_ms: number; non200: number } {
  const out = sh("hey", ["-n", "1000", "-c", "100", `http://127.0.0.1:${run.port}/meta/metrics`]);
  const codes = [...out.matchAll(/\[(\d+)\]\s+(\d+) responses/g)];
  return {
    rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0),
    p50_ms: Number(out.match(/50% in ([\d.]+) secs/)?.[1] ?? 0) * 1000,
    p99_ms: Number(out.match(/99% in ([\d.]+) secs/)?.[1] ?? 0) * 1000,
    non200: codes.filter(([, c]) => c !== "200").reduce((a, [, , n]) => a + Number(n), 0),
  };
}

async function main(): Promise<void> {
  ensureTools();
  if (!process.argv.includes("--no-build")) build();
  mkdirSync(OUT, { recursive: true });
  const scripts = writeScripts(mkdtempSync(join(tmpdir(), "bench-lua-")));
  const results: Record<string, Record<string, unknown>> = {};
  for (const s of SERVERS) results[s.name] = { durability: s.durability, binary_mb: statSync(s.binary).size / 1048576 };

  console.error(`bench: start-up, median of ${STARTUP_RUNS} (servers interleaved)`);
  const timed = [...SERVERS, CONTRACT_PEER];
  const starts: Record<string, number[]> = Object.fromEntries(timed.map((s) => [s.name, []]));
  for (let i = 0; i < STARTUP_RUNS; i++) for (const s of timed) starts[s.name]?.push(await startupMs(s));
  results[CONTRACT_PEER.name] = { durability: CONTRACT_PEER.durability };
  for (const s of timed) (results[s.name] as Record<string, unknown>).startup_ms = median(starts[s.name] as number[]);

  const running: Running[] = [];
  for (const s of SERVERS) running.push(await start(s));
  await Bun.sleep(IDLE_MS);
  for (const r of running) {
    (results[r.server.name] as Record<string, unknown>).idle_rss_mb = procStatusKiB(r.pid, "VmRSS") / 1024;
    (results[r.server.name] as Record<string, unknown>).idle_anon_mb = procStatusKiB(r.pid, "RssAnon") / 1024;
    (results[r.server.name] as Record<string, unknown>).idle_map_mb = memoryMap(r.pid);
  }

  // Every server holds the full hive fixture before the read scenarios.
  for (const r of running) {
    await fetch(`http://127.0.0.1:${r.port}/meta/metrics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: FIXTURE,
    });
  }
  const all: [string, (r: Running) => Promise<LoadResult>][] = [
    ["get_health", (r) => wrk(r, "/health")],
    ["get_metrics", (r) => wrk(r, "/meta/metrics")],
    ["post_metrics", (r) => wrk(r, "/meta/metrics", scripts.post)],
    ["mixed_90_10", (r) => wrk(r, "/meta/metrics", scripts.mixed)],
  ];
  const scenarios = RESOURCES_ONLY ? all.filter(([name]) => name === "get_metrics") : all;
  for (const [name, run] of scenarios) {
    for (const r of running) {
      console.error(`bench: ${name} on ${r.server.name}`);
      (results[r.server.name] as Record<string, unknown>)[name] = await run(r);
    }
  }
  if (!RESOURCES_ONLY)
    for (const r of running) (results[r.server.name] as Record<string, unknown>).hey_get_metrics = hey(r);

  // wrk cannot stop after N requests, so each round runs the mixed load for as long as
  // that server needs to serve MILLION requests at its measured rate (plus 10 %), and
  // records how many it really served.
  console.error(`bench: RSS after each of ${ROUNDS} rounds of >= ${MILLION} mixed requests`);
  for (const r of running) {
    // ? --resources measures no mixed scenario: the GET rate stands in for it.
    const measured = results[r.server.name] as Record<string, LoadResult | undefined>;
    const rate = (measured.mixed_90_10 ?? measured.get_metrics)?.rps ?? 0;
    const seconds = Math.max(1, Math.ceil((MILLION / Math.max(rate, 1)) * 1.1));
    const rounds: number[] = [];
    const anon: number[] = [];
    let served = 0;
    for (let i = 0; i < ROUNDS; i++) {
      served += (await wrk(r, "/meta/metrics", scripts.mixed, {}, seconds)).requests;
      // ? A figure, not a wait for something: every server pauses alike before its RSS is read.
      await Bun.sleep(ROUND_SETTLE_MS);
      rounds.push(procStatusKiB(r.pid, "VmRSS") / 1024);
      anon.push(procStatusKiB(r.pid, "RssAnon") / 1024);
    }
    (results[r.server.name] as Record<string, unknown>).rss_after_rounds_mb = rounds;
    (results[r.server.name] as Record<string, unknown>).anon_after_rounds_mb = anon;
    (results[r.server.name] as Record<string, unknown>).rounds_requests = served;
    (results[r.server.name] as Record<string, unknown>).rounds_map_mb = memoryMap(r.pid);
  }
  for (const r of running) await r.stop();
  if (RESOURCES_ONLY) {
    writeFileSync(
      join(OUT, "resources.json"),
      `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`,
    );
    console.log(resourcesTable(results));
    return;
  }
  // Issue 16: the router's read under five dashboards' 30-day charts (this service only,
  // and main's design beside it).
  const history = await historyScenario(SERVERS[0]?.binary);
  // Issue 16: the table of how it scales with N agents (this service, main's design beside it).
  const scale = await scaleScenario(SERVERS[0]?.binary);
  const serialise = serialiseScenario();
  // Issue 11: the pause file's write -> served latency, with POST /meta/metrics beside it.
  const pauseFile = await pauseFileScenario(SERVERS[0]?.binary);
  // Issue 13: a hanging or dead notifier beside none, POST latency.
  const alerts = await alertsScenario();

  writeFileSync(
    join(OUT, "results.json"),
    `${JSON.stringify({ date: new Date().toISOString(), duration_s: DURATION, connections: CONNECTIONS, results, history, scale, serialise, pause_file: pauseFile, alerts }, null, 2)}\n`,
  );
  printTable(results);
  console.log(`\n${resourcesTable(results)}`);
  console.log(`\n${historyTable(history)}`);
  console.log(`\n${scaleTable(scale)}`);
  console.log(`\n${serialiseTable(serialise)}`);
  console.log(`\n${pauseFileTable(pauseFile)}`);
  console.log(`\n${alertsTable(alerts)}`);
}

type Results = Record<string, Record<string, unknown>>;

const n = (v: unknown, d = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(d) : "-");

/** results[server].a.b.c as a number; NaN when it is missing. */
function figure(results: Results, server: string, path: string): number {
  let v: unknown = results[server];
  for (const k of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[k];
  return typeof v === "number" ? v : Number.NaN;
}

/** "Flat over five rounds": RSS grows no more than this from the first round to the last. */
const FLAT_MB = 1;

/**
 * The server whose ratio is the platform's share of a goal: Elysia with this API doing
 * nothing per request, and for start-up the same doing the least start-up work the contract
 * asks for (CONTRACT_PEER). When it alone misses a goal, no service with this API and this
 * contract on this platform can meet it.
 */
const PLATFORM = "elysia_api";

/** A goal's verdict: met, missed where the platform alone misses it too, or missed. */
function verdict(met: boolean, platformMet: boolean): string {
  if (met) return "met";
  return platformMet ? "not met" : "platform-bound";
}

/** The goals of issue 14, each as the ratio it names, and where each server's memory is. */
const GOALS: {
  label: string;
  path: string;
  peer: string;
  /** The platform's server for this goal, when not PLATFORM. */
  platform?: string;
  goal: (ratio: number, ours: number) => boolean;
  says: string;
}[] = [
  { label: "idle RSS", path: "idle_rss_mb", peer: "elysia", goal: (r) => r <= 1.15, says: "<= 1.15x elysia" },
  {
    label: "start-up to first 200",
    path: "startup_ms",
    peer: "elysia",
    platform: CONTRACT_PEER.name,
    goal: (r, ours) => r <= 1.5 && ours < 100,
    says: "<= 1.5x elysia and < 100 ms",
  },
  {
    label: "GET /meta/metrics req/s",
    path: "get_metrics.rps",
    peer: "floor",
    goal: (r) => r >= 0.9,
    says: ">= 0.9x floor",
  },
];

function resourcesTable(results: Results): string {
  const names = SERVERS.map((s) => s.name);
  const lines = [
    `| issue 14 goal | ${names.join(" | ")} | ratio | platform's ratio | goal | verdict |`,
    `| --- | ${names.map(() => "---:").join(" | ")} | ---: | ---: | --- | --- |`,
  ];
  for (const g of GOALS) {
    const ours = figure(results, "neolight", g.path);
    const platformName = g.platform ?? PLATFORM;
    const platform = figure(results, platformName, g.path);
    const ratio = ours / figure(results, g.peer, g.path);
    const platformRatio = platform / figure(results, g.peer, g.path);
    // ? Which server it is; one outside the columns shows its own figure too.
    const shown = names.includes(platformName) ? ` (${platformName})` : ` (${platformName} ${n(platform, 1)})`;
    lines.push(
      `| ${g.label} | ${names.map((s) => n(figure(results, s, g.path), 1)).join(" | ")} | ${n(ratio, 2)} | ${n(platformRatio, 2)}${shown} | ${g.says} | ${verdict(g.goal(ratio, ours), g.goal(platformRatio, platform))} |`,
    );
  }
  const rounds = (s: string) => (results[s]?.rss_after_rounds_mb as number[] | undefined) ?? [];
  const last = (s: string) => rounds(s).at(-1) ?? Number.NaN;
  const growth = (s: string) => last(s) - (rounds(s)[0] ?? Number.NaN);
  const roundsGoal = (s: string) => last(s) / last("floor") <= 1.2 && growth(s) <= FLAT_MB;
  const cells = names.map((s) => `${n(last(s))} (${n(growth(s))})`).join(" | ");
  lines.push(
    `| RSS after the rounds (growth first -> last) | ${cells} | ${n(last("neolight") / last("floor"), 2)} | ${n(last(PLATFORM) / last("floor"), 2)} (${PLATFORM}) | <= 1.2x floor, flat | ${verdict(roundsGoal("neolight"), roundsGoal(PLATFORM))} |`,
  );
  lines.push("", "| MiB resident (/proc/<pid>/smaps) | binary r-xp | binary r--p | binary rw-p | anon | other files |");
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [when, key] of [
    ["idle", "idle_map_mb"],
    ["after the rounds", "rounds_map_mb"],
  ]) {
    for (const s of names) {
      const m = results[s]?.[key as string] as Record<string, number> | undefined;
      if (m === undefined) continue;
      lines.push(
        `| ${s}, ${when} | ${n(m.binary_rx)} | ${n(m.binary_r)} | ${n(m.binary_rw)} | ${n(m.anon)} | ${n(m.other_files)} |`,
      );
    }
  }
  return lines.join("\n");
}

function printTable(results: Results): void {
  const get = (server: string, path: string) => figure(results, server, path);
  const rows: [string, string, number][] = [
    ["GET /health req/s", "get_health.rps", 0],
    ["GET /health p99 ms", "get_health.p99_ms", 2],
    ["GET /meta/metrics req/s", "get_metrics.rps", 0],
    ["GET /meta/metrics p50 ms", "get_metrics.p50_ms", 2],
    ["GET /meta/metrics p99 ms", "get_metrics.p99_ms", 2],
    ["GET /meta/metrics RSS MB", "get_metrics.rss_max_mb", 1],
    ["POST /meta/metrics 200/s", "post_metrics.ok_rps", 0],
    ["POST /meta/metrics non-2xx", "post_metrics.non2xx", 0],
    ["POST /meta/metrics p99 ms", "post_metrics.p99_ms", 2],
    ["POST /meta/metrics RSS MB", "post_metrics.rss_max_mb", 1],
    ["mixed 90/10 2xx/s", "mixed_90_10.ok_rps", 0],
    ["mixed 90/10 p99 ms", "mixed_90_10.p99_ms", 2],
    ["hey -n 1000 -c 100 req/s", "hey_get_metrics.rps", 0],
    ["start-up ms (median)", "startup_ms", 1],
    ["idle RSS MB", "idle_rss_mb", 1],
    ["idle RssAnon MB", "idle_anon_mb", 1],
    ["binary MB", "binary_mb", 1],
  ];
  const names = SERVERS.map((s) => s.name);
  const lines = [
    `| figure | ${names.join(" | ")} | neolight/floor | neolight/fiber |`,
    `| --- | ${names.map(() => "---:").join(" | ")} | ---: | ---: |`,
  ];
  for (const [label, path, d] of rows) {
    const vals = names.map((s) => get(s, path));
    const [ours, floor, fiber] = [get("neolight", path), get("floor", path), get("fiber", path)];
    lines.push(
      `| ${label} | ${vals.map((v) => n(v, d)).join(" | ")} | ${n(ours / floor, 2)} | ${n(ours / fiber, 2)} |`,
    );
  }
  const rounds = names.map((s) =>
    ((results[s]?.rss_after_rounds_mb as number[]) ?? []).map((v) => v.toFixed(1)).join(" → "),
  );
  lines.push(`| RSS MB after each 1M-request round | ${rounds.join(" | ")} | | |`);
  const anon = names.map((s) =>
    ((results[s]?.anon_after_rounds_mb as number[]) ?? []).map((v) => v.toFixed(1)).join(" → "),
  );
  lines.push(`| RssAnon MB after each round | ${anon.join(" | ")} | | |`);
  console.log(lines.join("\n"));
  console.log(`\ndurability of a 200 on POST: ${SERVERS.map((s) => `${s.name}: ${s.durability}`).join("; ")}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
