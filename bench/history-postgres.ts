// History in PostgreSQL against SQLite, same run, same points (issue 12): the record of one
// hive snapshot at N=300 agents, and a 30-day chart at N=30 after 30 days of snapshots every
// 300 s (the recorder's own points: documentPoints of bench/history-fill.ts's snapshots).
// Needs the server at 127.0.0.1:5432 (NEOLIGHT_BENCH_PG): it creates a database and drops it.
// Prints figures and ratios; gates nothing.
//   bun bench/history-postgres.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { documentPoints } from "../src/modules/history/points";
import { answerJson, type HistoryPoint, type HistoryStore } from "../src/store/history";
import { openSqliteHistory } from "../src/store/history-sqlite";
import { openPostgresHistory, type PostgresHistory } from "../src/store/postgres/history";
import { MIGRATIONS } from "../src/store/postgres/migrations";
import { hiveSnapshot } from "./history-fill";

const SERVER = process.env.NEOLIGHT_BENCH_PG ?? "postgres://root@127.0.0.1:5432";
const KEYS = ["per_agent", "per_strategy", "guardian", "breakers", "mode", "market_regime"];
const STEP_MS = 300_000;
const DAY_MS = 86_400_000;
/** What the service adds to an answer (GET /meta/history). */
const FACTS = { retentionDays: 30, recordedThrough: null };
/** Snapshots per record() while filling: as bench/history-fill.ts. */
const FILL_BATCH = 100;
const RUNS = 15;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function timed(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** A fresh schema of `db` with MIGRATIONS applied (migrate.ts does this at start-up), and a pool on it. */
async function pool(db: string, schema: string): Promise<SQL> {
  const setup = new SQL(`${SERVER}/${db}`, { max: 1 });
  await setup.begin(async (tx) => {
    await tx.unsafe(`CREATE SCHEMA ${schema}`);
    await tx.unsafe(`SET LOCAL search_path = ${schema}`);
    for (const m of MIGRATIONS) await tx.unsafe(m.sql);
  });
  await setup.close();
  return new SQL(`${SERVER}/${db}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, { max: 4 });
}

async function main(): Promise<void> {
  const db = `neolight_bench_${process.pid}`;
  const admin = new SQL(`${SERVER}/postgres`, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${db}`);
  const dir = mkdtempSync(join(tmpdir(), "neolight-bench-"));
  const pools: SQL[] = [];
  try {
    const open = async (name: string): Promise<[PostgresHistory, HistoryStore]> => {
      const sql = await pool(db, name);
      pools.push(sql);
      return [await openPostgresHistory(sql), openSqliteHistory(join(dir, `${name}.db`))];
    };

    // 1. One N=300 snapshot's points: the first creates the series, the rest are the steady state.
    const [pg300, lite300] = await open("n300");
    const t0 = Date.parse("2025-11-03T00:00:00Z");
    const snap = (i: number) => documentPoints(hiveSnapshot(300, i), KEYS, t0 + i * STEP_MS);
    const first = snap(0);
    const firstPg = await timed(() => pg300.record(first));
    const firstLite = await timed(() => lite300.record(first));
    const pgRuns: number[] = [];
    const liteRuns: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const points = snap(i);
      pgRuns.push(await timed(() => pg300.record(points)));
      liteRuns.push(await timed(() => lite300.record(points)));
    }
    console.log(`record of one N=300 snapshot (${first.length} points), median of ${RUNS}:`);
    console.log(`  first (creates the series): postgres ${ms(firstPg)}, sqlite ${ms(firstLite)}`);
    console.log(
      `  steady: postgres ${ms(median(pgRuns))}, sqlite ${ms(median(liteRuns))} (x${(median(pgRuns) / median(liteRuns)).toFixed(2)})`,
    );

    // 2. 30 days at N=30, one snapshot every 300 s, then the 30-day chart (300 points, every series).
    const [pg30, lite30] = await open("n30");
    const count = (30 * DAY_MS) / STEP_MS;
    let batch: HistoryPoint[] = [];
    let points = 0;
    let fillPg = 0;
    let fillLite = 0;
    for (let i = 0; i < count; i++) {
      batch.push(...documentPoints(hiveSnapshot(30, i), KEYS, t0 + i * STEP_MS));
      if ((i + 1) % FILL_BATCH === 0 || i === count - 1) {
        const b = batch;
        fillPg += await timed(() => pg30.record(b));
        fillLite += await timed(() => lite30.record(b));
        points += b.length;
        batch = [];
      }
    }
    console.log(
      `fill: ${points} points (30 d at N=30): postgres ${(fillPg / 1000).toFixed(1)} s, sqlite ${(fillLite / 1000).toFixed(1)} s`,
    );
    const to = t0 + count * STEP_MS;
    const q = { from: to - 30 * DAY_MS, to, points: 300, maxSeries: 1000 };
    await pg30.answer(q, FACTS);
    const qPg: number[] = [];
    const qLite: number[] = [];
    let same = true;
    let stall = 0;
    for (let i = 0; i < 7; i++) {
      let a = new Uint8Array();
      let b = new Uint8Array();
      // The main thread's longest stall while PostgreSQL answers: what a GET /meta/metrics would wait.
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        stall = Math.max(stall, now - last);
        last = now;
      }, 1);
      qPg.push(
        await timed(async () => {
          a = await pg30.answer(q, FACTS);
        }),
      );
      clearInterval(ticker);
      qLite.push(
        await timed(() => {
          b = answerJson(q, lite30.query(q), FACTS);
        }),
      );
      same &&= Buffer.from(a).equals(Buffer.from(b));
    }
    const size = await pg30.size();
    console.log(`30 d query at N=30 (300 points, ${pg30.seriesCount()} series, answer JSON included), median of 7:`);
    console.log(
      `  postgres ${ms(median(qPg))}, sqlite ${ms(median(qLite))} (x${(median(qPg) / median(qLite)).toFixed(2)}); same bytes: ${same}`,
    );
    console.log(`  longest main-thread stall during the postgres answers: ${ms(stall)}`);
    console.log(`  postgres tables: ${(size.bytes / 1024 / 1024).toFixed(1)} MiB (pg_total_relation_size)`);
  } finally {
    for (const p of pools) await p.close();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
