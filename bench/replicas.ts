// Issue 12's figures, part of `make bench`: the embedded mode (one JSON file) against the
// shared PostgreSQL store (two replicas on one database) in the same run, on the compiled
// binary. Durable POST /meta/metrics per second at 100 connections (goal: >= 5,000/s with
// PostgreSQL), GET /meta/metrics req/s (goal: within 5 % of embedded), a write on replica A
// until replica B serves it, p50 and p99 (goal: p99 <= 50 ms), and start-up and idle RSS in
// each mode. Prints a table with ratios and writes bench/out/replicas.json. Never a test and
// never gates CI: the machine is shared, so only ratios measured in one run mean much.
//
//   bun bench/replicas.ts              # builds dist/neolight-dashboard first
//   bun bench/replicas.ts --no-build   # `make bench`: run.ts has just built it
//
// PostgreSQL: BENCH_PG_URL (default postgres://root@127.0.0.1:5432/postgres, the machine's
// server) is only used to create a database of its own, named at random, and drop it at the
// end. Environment: BENCH_DURATION_S (10) per load figure, split into BENCH_REPLICA_ROUNDS
// (2) rounds alternating between the modes; BENCH_REPLICA_PROBES (300) writes for the A -> B
// latency; BENCH_STARTUP_RUNS (9); BENCH_REPLICAS_BASE (main; "" skips it): that ref's
// binary, built from `git archive`, is started beside the embedded mode for start-up and
// idle memory, since the embedded mode must pay nothing for the PostgreSQL code.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { compile, DEFAULT_BINARY } from "../scripts/build";
import { waitFor } from "../test/wait";
import { buildBase } from "./history";
import { IDLE_MS, type Launched, launch, median, procStatusKiB, serviceEnv, toMs } from "./lib";

const ROOT = join(import.meta.dir, "..");
const OUT = join(ROOT, "bench", "out");
const FIXTURE = readFileSync(join(ROOT, "test", "fixtures", "neolight", "meta_metrics_post.json"), "utf8");
const DURATION = Number(process.env.BENCH_DURATION_S ?? 10);
const ROUNDS = Number(process.env.BENCH_REPLICA_ROUNDS ?? 2);
const PROBES = Number(process.env.BENCH_REPLICA_PROBES ?? 300);
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 9);
const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? "postgres://root@127.0.0.1:5432/postgres";
const BASE = process.env.BENCH_REPLICAS_BASE ?? "main";
/** The issue's: durable posts per second at 100 connections. */
const CONNECTIONS = 100;
/**
 * How often B is asked whether it serves A's write yet: the latency figure is exact to about
 * this much (the same poll as the start-up figures).
 */
const PROBE_POLL_MS = 1;
/** A write that B does not serve within this is reported as lost, not waited for. */
const PROBE_DEADLINE_MS = 5_000;
/** How long a replica may take to be ready (first full load from PostgreSQL). */
const READY_DEADLINE_MS = 10_000;

/** Goals of issue 12 (the README's "Running more than one replica" quotes them). */
const GOAL_POST_PER_S = 5_000;
const GOAL_GET_RATIO = 0.95;
const GOAL_PROPAGATION_P99_MS = 50;

/** The options of a benchmark run: the write limiter out of the way of the flood, as in run.ts. */
const LOAD_ENV = { NEOLIGHT_WRITE_RATE: "1000000", NEOLIGHT_WRITE_BURST: "1000000" };

interface Load {
  rps: number;
  ok_rps: number;
  p50_ms: number;
  p99_ms: number;
  non2xx: number;
}

function runWrk(port: number, path: string, seconds: number, script?: string): Promise<Load> {
  const args = ["-t2", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency"];
  if (script !== undefined) args.push("-s", script);
  args.push(`http://127.0.0.1:${port}${path}`);
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`wrk failed: ${out}`));
      const num = (re: RegExp) => Number(out.match(re)?.[1] ?? 0);
      const requests = num(/(\d+) requests in/);
      const elapsed = toMs(out.match(/requests in ([\d.]+(?:us|ms|s))/)?.[1] ?? "1s") / 1000;
      const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
      const p99 = toMs(out.match(/^\s+99%\s+(\S+)$/m)?.[1] ?? "");
      // ? Said, not hidden: a figure that could not be read is left out of the median.
      if (Number.isNaN(p99)) console.error(`bench replicas: wrk's p99 not read from:\n${out}`);
      resolve({
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        ok_rps: (requests - non2xx) / elapsed,
        // Anchored: "50%" and "99%" also occur in the thread stats' +/- Stdev column.
        p50_ms: toMs(out.match(/^\s+50%\s+(\S+)$/m)?.[1] ?? ""),
        p99_ms: p99,
        non2xx,
      });
    });
  });
}

/** The median of each figure over the rounds. */
function medianLoad(rounds: Load[]): Load {
  const m = (k: keyof Load) => median(rounds.map((r) => r[k]).filter((v) => !Number.isNaN(v)));
  return { rps: m("rps"), ok_rps: m("ok_rps"), p50_ms: m("p50_ms"), p99_ms: m("p99_ms"), non2xx: m("non2xx") };
}

/** A percentile of `xs` (nearest rank). */
function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

/** Resolves, with the ms from now, once GET `path` on `port` answers 200. */
async function msUntil200(port: number, path: string): Promise<number> {
  const t0 = performance.now();
  await waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`).catch(() => null);
      await res?.arrayBuffer();
      return res?.status === 200;
    },
    `${path} to answer 200`,
    READY_DEADLINE_MS,
    PROBE_POLL_MS,
  );
  return performance.now() - t0;
}

interface Mode {
  name: "embedded" | "postgres" | "base";
  env(home: string, port: number): Record<string, string>;
}

async function postJson(port: number, body: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/meta/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export interface ReplicasResult {
  embedded: Record<string, unknown>;
  postgres: Record<string, unknown>;
  /** BASE's binary in the embedded mode: start-up and idle memory only; null when not built. */
  base: { ref: string; startup_ms: number; idle_rss_mb: number; idle_anon_mb: number } | null;
  propagation: { probes: number; lost: number; p50_ms: number; p99_ms: number; max_ms: number; commit_p50_ms: number };
}

/** The whole scenario on `binary` against a fresh database on the server at PG_ADMIN_URL. */
export async function replicasScenario(binary = DEFAULT_BINARY): Promise<ReplicasResult> {
  const admin = new SQL(PG_ADMIN_URL);
  const database = `neolight_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.unsafe(`CREATE DATABASE ${database}`);
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${database}`;
  const modes: Mode[] = [
    { name: "embedded", env: (home, port) => serviceEnv(home, port, LOAD_ENV) },
    {
      name: "postgres",
      env: (home, port) => serviceEnv(home, port, { ...LOAD_ENV, NEOLIGHT_DATABASE_URL: dbUrl.toString() }),
    },
  ];
  const running: Launched[] = [];
  const base = BASE === "" ? null : buildBase(BASE);
  if (BASE !== "" && base === null) console.error(`bench replicas: could not build ${BASE}; no comparison`);
  try {
    const result: ReplicasResult = {
      embedded: {},
      postgres: {},
      base: null,
      propagation: { probes: 0, lost: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, commit_p50_ms: 0 },
    };
    const of = (m: Mode) => (m.name === "base" ? {} : result[m.name]);

    // Start-up, interleaved (BASE's binary too): exec -> first 200 on /health, then on /health/ready.
    // The first PostgreSQL start also creates the schema; the median hides it.
    console.error(`bench replicas: start-up, median of ${STARTUP_RUNS} per mode`);
    const starts: Record<string, { health: number[]; ready: number[] }> = {
      embedded: { health: [], ready: [] },
      postgres: { health: [], ready: [] },
    };
    const baseStarts: number[] = [];
    for (let i = 0; i < STARTUP_RUNS; i++) {
      for (const m of modes) {
        const run = await launch(binary, m.env);
        const ready = run.startupMs + (await msUntil200(run.port, "/health/ready"));
        await run.stop();
        starts[m.name]?.health.push(run.startupMs);
        starts[m.name]?.ready.push(ready);
      }
      if (base !== null) {
        const run = await launch(base.binary, (modes[0] as Mode).env);
        await run.stop();
        baseStarts.push(run.startupMs);
      }
    }
    for (const m of modes) {
      of(m).startup_ms = median(starts[m.name]?.health ?? []);
      of(m).ready_ms = median(starts[m.name]?.ready ?? []);
    }
    if (base !== null) {
      const run = await launch(base.binary, (modes[0] as Mode).env);
      // ? A figure, not a wait for something: idled as long as the others below.
      await Bun.sleep(IDLE_MS);
      result.base = {
        ref: BASE,
        startup_ms: median(baseStarts),
        idle_rss_mb: procStatusKiB(run.pid, "VmRSS") / 1024,
        idle_anon_mb: procStatusKiB(run.pid, "RssAnon") / 1024,
      };
      await run.stop();
    }

    // One embedded server, two replicas A and B on the database.
    const [embeddedMode, pgMode] = modes as [Mode, Mode];
    const embedded = await launch(binary, embeddedMode.env);
    running.push(embedded);
    const a = await launch(binary, pgMode.env);
    running.push(a);
    const b = await launch(binary, pgMode.env);
    running.push(b);
    for (const r of [a, b]) await msUntil200(r.port, "/health/ready");
    // ? A figure, not a wait for something: every server idles alike before RSS is read.
    await Bun.sleep(IDLE_MS);
    for (const [m, r] of [
      [embeddedMode, embedded],
      [pgMode, a],
    ] as const) {
      of(m).idle_rss_mb = procStatusKiB(r.pid, "VmRSS") / 1024;
      of(m).idle_anon_mb = procStatusKiB(r.pid, "RssAnon") / 1024;
    }

    // Both modes hold the hive's snapshot before the reads (B gets it through the database).
    for (const r of [embedded, a]) {
      const res = await postJson(r.port, FIXTURE);
      if (res.status !== 200) throw new Error(`posting the fixture: ${res.status} ${await res.text()}`);
    }
    await waitFor(
      async () =>
        ((await (await fetch(`http://127.0.0.1:${b.port}/meta/metrics`)).json()) as { per_agent?: object }).per_agent,
      "B to serve the fixture",
    );

    const lua = mkdtempSync(join(tmpdir(), "bench-replicas-"));
    const postScript = join(lua, "post.lua");
    writeFileSync(
      postScript,
      `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(JSON.stringify(JSON.parse(FIXTURE)))}\n`,
    );
    const seconds = Math.max(1, Math.round(DURATION / ROUNDS));
    const loads: Record<string, Record<string, Load[]>> = {
      embedded: { get: [], post: [] },
      postgres: { get: [], post: [] },
    };
    for (const [figure, path, script] of [
      ["get", "/meta/metrics", undefined],
      ["post", "/meta/metrics", postScript],
    ] as const) {
      for (let i = 0; i < ROUNDS; i++) {
        for (const [m, r] of [
          [embeddedMode, embedded],
          [pgMode, a],
        ] as const) {
          console.error(`bench replicas: ${figure} /meta/metrics on ${m.name}, round ${i + 1} of ${ROUNDS}`);
          loads[m.name]?.[figure]?.push(await runWrk(r.port, path, seconds, script));
        }
      }
    }
    rmSync(lua, { recursive: true, force: true });
    for (const m of modes) {
      of(m).get_metrics = medianLoad(loads[m.name]?.get ?? []);
      of(m).post_metrics = medianLoad(loads[m.name]?.post ?? []);
    }

    // A write on A until B serves it: one at a time, each with a value B has never served.
    console.error(`bench replicas: ${PROBES} writes on A, each until B serves it`);
    const latencies: number[] = [];
    const commits: number[] = [];
    let lost = 0;
    for (let i = 1; i <= PROBES; i++) {
      const t0 = performance.now();
      const res = await postJson(a.port, { bench_probe: i });
      await res.arrayBuffer();
      commits.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`probe ${i}: POST on A answered ${res.status}`);
      try {
        await waitFor(
          async () =>
            ((await (await fetch(`http://127.0.0.1:${b.port}/meta/metrics`)).json()) as { bench_probe?: number })
              .bench_probe === i,
          `B to serve probe ${i}`,
          PROBE_DEADLINE_MS,
          PROBE_POLL_MS,
        );
        latencies.push(performance.now() - t0);
      } catch {
        lost++;
      }
    }
    result.propagation = {
      probes: PROBES,
      lost,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      max_ms: Math.max(...latencies),
      commit_p50_ms: percentile(commits, 50),
    };
    return result;
  } finally {
    for (const r of running) await r.stop();
    if (base !== null) rmSync(base.tree, { recursive: true, force: true });
    await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.close();
  }
}

const n = (v: unknown, d = 1) =>
  typeof v === "number" && Number.isFinite(v)
    ? v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "-";

/** The table: each figure in both modes, PostgreSQL / embedded, and the goal. */
export function replicasTable(r: ReplicasResult): string {
  const e = r.embedded as Record<string, Load & number>;
  const p = r.postgres as Record<string, Load & number>;
  const num = (o: Record<string, unknown>, path: string) => {
    let v: unknown = o;
    for (const k of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[k];
    return typeof v === "number" ? v : Number.NaN;
  };
  const rows: {
    label: string;
    path: string;
    d: number;
    goal?: string;
    met?: (pg: number, ratio: number) => boolean;
  }[] = [
    {
      label: `durable POST /meta/metrics 200/s (${CONNECTIONS} connections)`,
      path: "post_metrics.ok_rps",
      d: 0,
      goal: `>= ${GOAL_POST_PER_S.toLocaleString("en-US")}/s with PostgreSQL`,
      met: (pg) => pg >= GOAL_POST_PER_S,
    },
    { label: "POST /meta/metrics non-2xx", path: "post_metrics.non2xx", d: 0 },
    { label: "POST /meta/metrics p50 ms", path: "post_metrics.p50_ms", d: 2 },
    { label: "POST /meta/metrics p99 ms", path: "post_metrics.p99_ms", d: 2 },
    {
      label: "GET /meta/metrics req/s",
      path: "get_metrics.rps",
      d: 0,
      goal: `>= ${GOAL_GET_RATIO}x embedded`,
      met: (_pg, ratio) => ratio >= GOAL_GET_RATIO,
    },
    { label: "GET /meta/metrics p99 ms", path: "get_metrics.p99_ms", d: 2 },
    { label: "start-up to first 200 on /health ms (median)", path: "startup_ms", d: 1 },
    { label: "start-up to first 200 on /health/ready ms (median)", path: "ready_ms", d: 1 },
    { label: "idle RSS MB", path: "idle_rss_mb", d: 1 },
    { label: "idle RssAnon MB", path: "idle_anon_mb", d: 1 },
  ];
  const lines = [
    "| issue 12 figure | embedded | PostgreSQL | PostgreSQL / embedded | goal | met |",
    "| --- | ---: | ---: | ---: | --- | --- |",
  ];
  for (const row of rows) {
    const [ev, pv] = [num(e, row.path), num(p, row.path)];
    const ratio = pv / ev;
    const met = row.met === undefined ? "" : row.met(pv, ratio) ? "yes" : "no";
    const shown = Number.isFinite(ratio) ? `${n(ratio, 2)}x` : "-";
    lines.push(`| ${row.label} | ${n(ev, row.d)} | ${n(pv, row.d)} | ${shown} | ${row.goal ?? ""} | ${met} |`);
  }
  const pr = r.propagation;
  const propMet = pr.lost === 0 && pr.p99_ms <= GOAL_PROPAGATION_P99_MS ? "yes" : "no";
  lines.push(`| write on A -> served on B p50 ms (${pr.probes} writes) | - | ${n(pr.p50_ms, 2)} | | | |`);
  lines.push(
    `| write on A -> served on B p99 ms (max ${n(pr.max_ms, 1)}, lost ${pr.lost}) | - | ${n(pr.p99_ms, 2)} | | <= ${GOAL_PROPAGATION_P99_MS} ms | ${propMet} |`,
  );
  lines.push(`| POST on A alone (its 200) p50 ms, one at a time | - | ${n(pr.commit_p50_ms, 2)} | | | |`);
  if (r.base !== null) {
    const b = r.base;
    lines.push(
      "",
      `| the embedded mode against ${b.ref} (no PostgreSQL code) | this build | ${b.ref} | this / ${b.ref} |`,
    );
    lines.push("| --- | ---: | ---: | ---: |");
    for (const [label, ours, theirs] of [
      ["start-up to first 200 on /health ms (median)", num(e, "startup_ms"), b.startup_ms],
      ["idle RSS MB", num(e, "idle_rss_mb"), b.idle_rss_mb],
      ["idle RssAnon MB", num(e, "idle_anon_mb"), b.idle_anon_mb],
    ] as const) {
      lines.push(`| ${label} | ${n(ours)} | ${n(theirs)} | ${n(ours / theirs, 2)}x |`);
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  if (!process.argv.includes("--no-build")) {
    console.error("bench replicas: building dist/neolight-dashboard");
    compile();
  }
  const result = await replicasScenario();
  mkdirSync(OUT, { recursive: true });
  writeFileSync(
    join(OUT, "replicas.json"),
    `${JSON.stringify({ date: new Date().toISOString(), duration_s: DURATION, rounds: ROUNDS, connections: CONNECTIONS, ...result }, null, 2)}\n`,
  );
  console.log(replicasTable(result));
}
