// Soak run (not a test): the compiled binary under mixed load for SOAK_SECONDS (default
// 600) with faults injected, reporting every error and the process's RSS over time.
//
//   make soak                      # ten minutes
//   SOAK_SECONDS=60 make soak      # a quick check
//   SOAK_TMPFS_SIZE=128m make soak # a state disk with room above the floor: history records
//
// Load (SOAK_RPS requests/s, default 400, over SOAK_CLIENTS keep-alive clients, default 16):
// reads of every route (mostly GET /meta/metrics, as the execution router does), hive /
// stress / atlas posts under the default write rate limit, and hostile bodies (4xx expected).
// Faults: three agent files rewritten in place (truncate, half, pause, rest) all the time;
// the service frozen with SIGSTOP for 2 s once a minute (its clients just wait); and, where
// this process may mount a tmpfs, a disk-full period on the state directory in the middle
// third of the run. Nothing but the service is ever stopped.
//
// Verdict: 0 unexpected 5xx (503 "update not stored" during the disk-full window are counted
// apart as intended), every update answered 200 served at the end, the safety keys served in
// their shapes, a clean exit, RSS flat (the last third's mean within 10 % of the second third's). Figures go to stdout and bench/out/soak-<time>.json.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { compile } from "../scripts/build";
import { SafetyFields } from "../src/modules/meta/model";
import { waitFor } from "../test/wait";

const ROOT = join(import.meta.dir, "..");
const BINARY = join(ROOT, "dist", "neolight-dashboard");
const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RPS = Number(process.env.SOAK_RPS ?? 400);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 16);
/** RSS is sampled this often. */
const SAMPLE_MS = 10_000;
/** A request slower than this counts as a client timeout (the router's own timeout is 2 s). */
const CLIENT_TIMEOUT_MS = 5_000;
/** Once per this many ms the service is frozen for FREEZE_MS. */
const FREEZE_EVERY_MS = 60_000;
const FREEZE_MS = 2_000;
/**
 * The tiny state filesystem, when we may mount one (mount's notation). SOAK_TMPFS_SIZE=128m
 * gives room above NEOLIGHT_MIN_FREE_MB's 64 MB, so that history records (its WAL measured).
 */
const TMPFS_SIZE = process.env.SOAK_TMPFS_SIZE ?? "1m";
/** How long the binary may take to log "service started" (it takes well under a second). */
const START_DEADLINE_MS = 10_000;

const fixtures = join(ROOT, "test", "fixtures", "neolight");
const fixture = (name: string) => JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8"));

function sh(args: string[]): boolean {
  return spawnSync(args[0] as string, args.slice(1), { stdio: "ignore" }).status === 0;
}

// --- set-up -------------------------------------------------------------------------------
if (!existsSync(BINARY)) {
  console.log("building dist/neolight-dashboard ...");
  compile(BINARY);
}
const home = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "neolight-soak-"));
const state = join(home, "state");
const runtime = join(home, "runtime");
mkdirSync(state, { recursive: true });
mkdirSync(runtime, { recursive: true });
const tmpfs = sh(["mount", "-t", "tmpfs", "-o", `size=${TMPFS_SIZE}`, "tmpfs", state]);
if (!tmpfs) console.log("no disk-full period: cannot mount a tmpfs here (run as root to include it)");

const service = spawn(BINARY, [], {
  env: {
    PATH: process.env.PATH,
    HOME: home,
    NEOLIGHT_HOME: home,
    NEOLIGHT_DASHBOARD_HOST: "127.0.0.1",
    NEOLIGHT_DASHBOARD_PORT: "0",
    NEOLIGHT_RISK_URL: "http://127.0.0.1:9",
  },
  stdio: ["ignore", "pipe", "inherit"],
});
let port = 0;
const logCounts = new Map<string, number>();
let partial = "";
service.stdout.on("data", (chunk: Buffer) => {
  const lines = (partial + chunk.toString()).split("\n");
  partial = lines.pop() ?? "";
  for (const line of lines) {
    const parsed = JSON.parse(line) as { level: string; message: string; port?: number };
    if (parsed.message === "service started") port = parsed.port as number;
    if (parsed.level !== "INFO")
      logCounts.set(`${parsed.level} ${parsed.message}`, (logCounts.get(`${parsed.level} ${parsed.message}`) ?? 0) + 1);
  }
});
await waitFor(
  () => {
    if (service.exitCode !== null) throw new Error(`service exited ${service.exitCode}`);
    return port !== 0;
  },
  'the service to log "service started"',
  START_DEADLINE_MS,
);
const base = `http://127.0.0.1:${port}`;
const pid = service.pid as number;
console.log(`soak: ${SECONDS} s, ${RPS} req/s over ${CLIENTS} clients, pid ${pid}, ${base}`);

// --- the agents rewriting their files in place -------------------------------------------
const writer = spawn(
  process.execPath,
  [
    "-e",
    `const fs = require("node:fs");
     const files = ${JSON.stringify([
       [join(runtime, "market_regime.json"), JSON.stringify(fixture("market_regime"))],
       [join(runtime, "capital_governor_allocations.json"), JSON.stringify(fixture("capital_governor_allocations"))],
       [join(state, "performance_attribution.json"), JSON.stringify(fixture("performance_attribution"))],
     ])};
     let n = 0;
     for (;;) {
       const [path, text] = files[n++ % files.length];
       try {
         const fd = fs.openSync(path, "w");
         fs.writeSync(fd, text.slice(0, text.length >> 1));
         Bun.sleepSync(1);
         fs.writeSync(fd, text.slice(text.length >> 1));
         fs.closeSync(fd);
       } catch {}
       Bun.sleepSync(15);
     }`,
  ],
  { stdio: "ignore" },
);

// --- load --------------------------------------------------------------------------------
const counts = {
  requests: 0,
  ok: 0,
  by_status: {} as Record<string, number>,
  unexpected_5xx: 0,
  intended_503: 0,
  client_timeouts: 0,
  network_errors: 0,
};
const unexpected: string[] = [];
const latencies: number[] = [];
const acked = new Map<string, number>();
let seq = 0;
let diskFull: { from: number; to: number } | null = null;

const hive = fixture("meta_metrics_post");
const paused = fixture("meta_metrics_paused_post");
const stress = fixture("stress_post");
const atlas = fixture("atlas_update_post");
const HOSTILE = [
  '{"mode": "A", "mode": "B"}',
  '{"__proto__": {"is_paused": true}}',
  '{"guardian": {"is_paused": "yes", "drawdown": 1, "reason": "x"}}',
  '{"x": 1e400}',
  '{"timestamp": {"toString": 1}}',
  '{"truncated": ',
  "[]",
];
const READS = [
  "/meta/metrics",
  "/meta/metrics",
  "/meta/metrics",
  "/meta/metrics",
  "/status",
  "/health",
  "/meta/regime",
  "/governor/allocations",
  "/meta/performance",
  "/",
];

type Op = { method: string; path: string; body?: string; counter?: [string, number] };
function nextOp(client: number, i: number): Op {
  const r = (i * 7919 + client * 104729) % 100;
  if (r < 80) return { method: "GET", path: READS[i % READS.length] as string };
  if (r < 90) {
    const n = ++seq;
    const key = `soak_client_${client}`;
    const doc = n % 10 === 0 ? (n % 20 === 0 ? paused : hive) : n % 3 === 0 ? stress : {};
    return { method: "POST", path: "/meta/metrics", body: JSON.stringify({ ...doc, [key]: n }), counter: [key, n] };
  }
  if (r < 95) return { method: "POST", path: "/atlas/update", body: JSON.stringify(atlas) };
  return { method: "POST", path: "/meta/metrics", body: HOSTILE[i % HOSTILE.length] };
}

async function once(op: Op): Promise<void> {
  const started = performance.now();
  counts.requests++;
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${base}${op.path}`, {
      method: op.method,
      body: op.body,
      headers: op.body === undefined ? {} : { "content-type": "application/json" },
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (err) {
    if ((err as Error).name === "TimeoutError") counts.client_timeouts++;
    else counts.network_errors++;
    return;
  }
  latencies.push(performance.now() - started);
  counts.by_status[res.status] = (counts.by_status[res.status] ?? 0) + 1;
  if (res.status === 200) {
    counts.ok++;
    if (op.counter) {
      const [key, n] = op.counter;
      if (n > (acked.get(key) ?? 0)) acked.set(key, n);
    }
  } else if (res.status >= 500) {
    const now = Date.now();
    const inWindow = diskFull !== null && now >= diskFull.from && now <= diskFull.to + 2000;
    if (res.status === 503 && inWindow && text.includes("update not stored")) counts.intended_503++;
    else {
      counts.unexpected_5xx++;
      if (unexpected.length < 20) unexpected.push(`${op.method} ${op.path} ${res.status} ${text.slice(0, 200)}`);
    }
  }
}

const started = Date.now();
const deadline = started + SECONDS * 1000;
const perClientGapMs = (1000 * CLIENTS) / RPS;
const clients = Array.from({ length: CLIENTS }, async (_, c) => {
  let next = performance.now() + (c * perClientGapMs) / CLIENTS;
  for (let i = 0; Date.now() < deadline; i++) {
    await once(nextOp(c, i));
    next += perClientGapMs;
    const wait = next - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    else next = performance.now(); // behind (a freeze): do not burst to catch up
  }
});

// --- faults and samples ----------------------------------------------------------------------
const rss: { t: number; rss_mib: number }[] = [];
/** The largest history.db and WAL seen at a sample (issue 14: they once filled the state disk). */
const historyDisk = { max_db_bytes: 0, max_wal_bytes: 0 };
function sampleHistoryDisk() {
  for (const [key, file] of [
    ["max_db_bytes", "history.db"],
    ["max_wal_bytes", "history.db-wal"],
  ] as const) {
    try {
      historyDisk[key] = Math.max(historyDisk[key], statSync(join(state, file)).size);
    } catch {
      // not there (yet)
    }
  }
}
function sampleRss() {
  sampleHistoryDisk();
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const entry = { t: Math.round((Date.now() - started) / 1000), rss_mib: Math.round((kib / 1024) * 10) / 10 };
  rss.push(entry);
  console.log(
    `t=${String(entry.t).padStart(4)} s  rss ${entry.rss_mib} MiB  requests ${counts.requests}  5xx ${counts.unexpected_5xx}`,
  );
}
sampleRss();
const sampler = setInterval(sampleRss, SAMPLE_MS);

let freezes = 0;
function freeze() {
  process.kill(pid, "SIGSTOP");
  freezes++;
  setTimeout(() => process.kill(pid, "SIGCONT"), FREEZE_MS);
}
// The first freeze early enough that a short run has one too, then once a minute.
let freezer: ReturnType<typeof setInterval> | undefined;
const firstFreeze = setTimeout(
  () => {
    freeze();
    freezer = setInterval(freeze, FREEZE_EVERY_MS);
  },
  Math.min(FREEZE_EVERY_MS / 2, (SECONDS * 1000) / 4),
);

const fillers: string[] = [];
if (tmpfs) {
  const third = (SECONDS * 1000) / 3;
  const length = Math.max(5000, third / 3);
  setTimeout(
    () => {
      diskFull = { from: Date.now(), to: Date.now() + length };
      const chunk = Buffer.alloc(16 * 1024, 1);
      for (let i = 0; ; i++) {
        try {
          const path = join(state, `filler-${i}`);
          writeFileSync(path, chunk);
          fillers.push(path);
        } catch {
          break;
        }
      }
      console.log(`disk full for ${Math.round(length / 1000)} s`);
      setTimeout(() => {
        for (const path of fillers) unlinkSync(path);
        console.log("disk space back");
      }, length);
    },
    third + third / 3,
  );
}

await Promise.all(clients);
clearInterval(sampler);
clearTimeout(firstFreeze);
clearInterval(freezer);
process.kill(pid, "SIGCONT");
sampleRss();

// --- verdict -------------------------------------------------------------------------------
const doc = (await (await fetch(`${base}/meta/metrics`)).json()) as Record<string, unknown>;
// ? The safety keys as the router reads them (as test/modules/fuzz.test.ts checks): since
// issue 15 any other value that breaks its schema (the hostile `timestamp` object above) is
// served as null, which MetaMetricsDocument's other fields do not describe, so checking
// the whole document failed every soak run that sent one.
const valid = TypeCompiler.Compile(SafetyFields).Check(doc);
const missing = [...acked].filter(([key, n]) => ((doc[key] as number) ?? 0) < n);
const history = ((await (await fetch(`${base}/status`)).json()) as { history: Record<string, unknown> }).history;
service.kill("SIGTERM");
const exitCode = await new Promise<number | null>((resolve) => service.on("exit", (code) => resolve(code)));
writer.kill("SIGKILL");
if (tmpfs) sh(["umount", "-l", state]);
rmSync(home, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const pct = (p: number) => Math.round((latencies[Math.floor((latencies.length - 1) * p)] ?? 0) * 100) / 100;
const mean = (xs: { rss_mib: number }[]) => xs.reduce((a, b) => a + b.rss_mib, 0) / Math.max(1, xs.length);
const third = Math.floor(rss.length / 3);
const middle = mean(rss.slice(third, 2 * third));
const last = mean(rss.slice(2 * third));
const growth = middle > 0 ? (last - middle) / middle : 0;
const report = {
  seconds: SECONDS,
  target_rps: RPS,
  achieved_rps: Math.round(counts.requests / ((Date.now() - started) / 1000)),
  ...counts,
  latency_ms: { p50: pct(0.5), p99: pct(0.99), max: pct(1) },
  freezes,
  disk_full_period: tmpfs,
  state_tmpfs: tmpfs ? TMPFS_SIZE : null,
  history_disk: historyDisk,
  history: {
    recording: history.recording,
    points_written: history.points_written,
    skipped_low_space: history.skipped_low_space,
    bytes: history.bytes,
    wal_bytes: history.wal_bytes,
    pruned_for_size: history.pruned_for_size,
    failures: history.failures,
  },
  acked_counters: acked.size,
  acked_missing: missing.length,
  document_valid: valid,
  exit_code: exitCode,
  log_warn_error_counts: Object.fromEntries(logCounts),
  rss_samples: rss,
  rss_growth_last_third: Math.round(growth * 1000) / 10,
  rss_flat: Math.abs(growth) < 0.1,
  unexpected_samples: unexpected,
};
mkdirSync(join(ROOT, "bench", "out"), { recursive: true });
const out = join(ROOT, "bench", "out", `soak-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
const { rss_samples: _samples, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
console.log(`report: ${out}`);
const pass = counts.unexpected_5xx === 0 && missing.length === 0 && valid && exitCode === 0;
console.log(
  `${pass ? "PASS" : "FAIL"}: ${counts.unexpected_5xx} unexpected 5xx, ${counts.intended_503} intended 503 (disk full), ` +
    `${missing.length} acknowledged updates missing, RSS ${report.rss_flat ? "flat" : "NOT flat"} (${report.rss_growth_last_third} % over the last third)`,
);
process.exit(pass ? 0 : 1);
