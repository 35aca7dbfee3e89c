// History never starves the document (issue 14), against the real process on a real tiny
// tmpfs: with free space on the state disk under NEOLIGHT_MIN_FREE_MB history records
// nothing (one WARN, /status, /metrics say so) while POST /meta/metrics keeps answering 200
// and its updates reach the file; with space back, history records again.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statfsSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, tempDir, waitFor } from "../helpers";
import { canMount, mountTmpfs } from "../tmpfs";
import { postJson, spawnService } from "./process";

const MB = 1024 * 1024;
/** The state disk, and the floor on it: a few documents of room under the floor. */
const DISK = "8m";
const FLOOR_MB = 3;

type History = {
  recording: boolean;
  points_written: number;
  skipped_low_space: number;
  free_bytes: number | null;
  min_free_bytes: number;
};

/** Fills the filesystem holding `dir` with 16 KB files until under `freeBytes` free; returns them. */
function fillTo(dir: string, freeBytes: number): string[] {
  const chunk = Buffer.alloc(16 * 1024, 1);
  const files: string[] = [];
  const free = () => {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize;
  };
  while (free() >= freeBytes) {
    const path = join(dir, `filler-${files.length}`);
    writeFileSync(path, chunk);
    files.push(path);
  }
  return files;
}

/** The service with its state directory on a fresh tmpfs of DISK and `env`; all undone at the end of the scope. */
async function onTinyDisk(env: (state: string) => Record<string, string>) {
  const home = tempDir();
  const state = join(home.path, "state");
  const disk = mountTmpfs(state, DISK);
  const svc = await spawnService({ home: home.path, env: { NEOLIGHT_MIN_FREE_MB: String(FLOOR_MB), ...env(state) } });
  return {
    state,
    svc,
    async [Symbol.asyncDispose]() {
      await svc[Symbol.asyncDispose]();
      disk[Symbol.dispose]();
      home[Symbol.dispose]();
    },
  };
}

test.skipIf(!canMount)(
  "state disk under the floor: history stops (WARN once, /status, /metrics), POSTs still 200 and on disk; space back, history resumes",
  async () => {
    await using run = await onTinyDisk(() => ({ NEOLIGHT_WRITE_RATE: "0" }));
    const { state, svc } = run;
    const historyStatus = async () =>
      ((await (await fetch(`${svc.url}/status`)).json()) as { history: History }).history;
    const metric = async (name: string) => {
      const text = await (await fetch(`${svc.url}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    };
    /** Posts; the update's timestamp (its cache_timestamp). */
    const post = async (body: Record<string, unknown>) => {
      const res = await postJson(`${svc.url}/meta/metrics`, body);
      expect(res.status).toBe(200);
      return ((await res.json()) as { timestamp: string }).timestamp;
    };
    // From/to, never a shared answer: what history holds now.
    const recordedThrough = async () => {
      const range = `from=${Date.now() - 60_000}&to=${Date.now() + 1000}&kinds=guardian`;
      return ((await (await fetch(`${svc.url}/meta/history?${range}`)).json()) as { recorded_through: string | null })
        .recorded_through;
    };

    // Room: the hive's snapshot is recorded.
    const recorded = await post(fixture("meta_metrics_post"));
    await waitFor(async () => (await historyStatus()).points_written > 0, "history to record the snapshot");
    expect(await recordedThrough()).toBe(recorded);
    expect(await metric("neolight_history_recording")).toBe(1);

    // Under the floor, though not full: history stops, the document does not.
    const fillers = fillTo(state, (FLOOR_MB - 1) * MB);
    for (let i = 0; i < 5; i++) await post({ ...fixture("meta_metrics_post"), under_floor: i });
    await waitFor(
      () =>
        svc.lines.some(
          (l) => (l as { message?: string }).message === "history paused: state disk space under the floor",
        ),
      "the WARN that history paused",
    );
    const paused = await waitFor(async () => {
      const h = await historyStatus();
      return !h.recording && h.skipped_low_space > 0 ? h : undefined;
    }, "/status to say history is not recording");
    expect(paused.min_free_bytes).toBe(FLOOR_MB * MB);
    expect(paused.free_bytes as number).toBeLessThan(FLOOR_MB * MB);
    expect(await metric("neolight_history_recording")).toBe(0);
    expect(await metric("neolight_history_skipped_low_space_total")).toBeGreaterThan(0);
    // Durable: the last acknowledged update is in the file, not only in memory.
    const onDisk = JSON.parse(readFileSync(join(state, "meta_metrics.json"), "utf8")) as Record<string, unknown>;
    expect(onDisk.under_floor).toBe(4);
    // More posts under the floor: still 200, and no second WARN for the same stretch.
    for (let i = 5; i < 10; i++) await post({ mode: `UNDER_${i}` });
    await waitFor(
      async () => (await historyStatus()).skipped_low_space > paused.skipped_low_space,
      "the next flush to be skipped",
    );
    const warns = () =>
      svc.lines.filter(
        (l) => (l as { message?: string }).message === "history paused: state disk space under the floor",
      );
    expect(warns()).toHaveLength(1);
    expect((await historyStatus()).points_written).toBe(paused.points_written);
    // Left out is not recorded: the answers still say the first snapshot is the latest they hold.
    expect(await recordedThrough()).toBe(recorded);

    // Space back: history records again.
    for (const path of fillers) unlinkSync(path);
    expect(readdirSync(state).filter((n) => n.startsWith("filler-"))).toEqual([]);
    const back = await post({ ...fixture("meta_metrics_post"), back: true });
    const resumed = await waitFor(async () => {
      const h = await historyStatus();
      return h.recording && h.points_written > paused.points_written ? h : undefined;
    }, "history to record again");
    expect(await recordedThrough()).toBe(back);
    expect(resumed.skipped_low_space).toBeGreaterThan(0);
    expect(await metric("neolight_history_recording")).toBe(1);
    // ? The line reaches us through the child's stdout pipe, which may lag /status.
    await waitFor(
      () => svc.lines.some((l) => (l as { message?: string }).message === "history resumed: state disk space back"),
      "the INFO that history resumed",
    );
    expect(await svc.stop()).toBe(0);
  },
  60_000,
);

test.skipIf(!canMount)(
  "a log on the state disk keeps at least the state's floor free, whatever NEOLIGHT_LOG_MIN_FREE_MB says",
  async () => {
    await using run = await onTinyDisk((state) => ({
      LOG_PATH: join(state, "dashboard_go.log"),
      NEOLIGHT_LOG_MIN_FREE_MB: "1",
    }));
    const { state, svc } = run;
    type Log = { min_free_bytes: number; low_space: boolean; dropped_low_space: number };
    const logStatus = async () =>
      ((await (await fetch(`${svc.url}/status`)).json()) as { guardian: { logs: { service: Log } } }).guardian.logs
        .service;
    expect((await logStatus()).min_free_bytes).toBe(FLOOR_MB * MB);
    // Between the two floors: the log's own (1 MB) would still write INFO lines here.
    fillTo(state, (FLOOR_MB - 1) * MB);
    const low = await waitFor(async () => {
      const l = await logStatus();
      return l.low_space && l.dropped_low_space > 0 ? l : undefined;
    }, "the log to keep INFO lines out of the file");
    expect(low.min_free_bytes).toBe(FLOOR_MB * MB);
  },
  60_000,
);
