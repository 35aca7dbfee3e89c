// History's recorder: notes which top-level keys each commit changed (never blocking it),
// and once per flush hands their figures to the writer thread, in one transaction; it also
// records the governor's allocations when its files change. The sampling rule is here.
import type { SpaceFloor } from "../../log/free-space";
import type { Logger } from "../../log/logger";
import type { HistoryPoint } from "../../store/history";
import { HistoryThreadError } from "../../store/history-thread";
import type { DocumentState, DocumentUpdate } from "../../store/store";
import type { AgentFiles } from "../agent-files/service";
import { figureFiles } from "../meta/figures";
import { allocationPoints, documentPoints } from "./points";
import type { HistoryStatus } from "./status";
import type { HistoryThreads } from "./threads";

/** Samples are written at most this often: one transaction per tick (the samples kept follow SAMPLE_MS). */
export const FLUSH_MS = 1000;
/**
 * The sampling rule: of each top-level key (per_agent, guardian, ...) the recorder keeps
 * the last state in every window of this length, a window starting at the first change
 * after the one before. So a hive posting once a second has every snapshot kept, and a
 * flood of posts costs at most 1000 / SAMPLE_MS samples a second. (Before issue 16 a
 * flush kept only the last state of each second: 58-65 % of 1 Hz snapshots.)
 */
export const SAMPLE_MS = 500;
/** How often the governor's allocation files are checked for a new version to record. */
const GOVERNOR_SAMPLE_MS = 5000;

export interface RecorderOptions {
  log: Logger;
  status: HistoryStatus;
  threads: HistoryThreads;
  flushMs: number;
  /** The writer's series cap per class, for the WARN when it is reached. */
  maxSeries: number;
  /**
   * Free space on the state disk: under its floor nothing is written, so that the
   * document's next write finds room (issue 14). Null: no floor.
   */
  floor: SpaceFloor | null;
  /** Called with the history's size after each write: prunes the oldest rows when over the cap. */
  onSize: (bytes: number) => void;
  /** The governor's allocation files (its own, and its override copy); absent: not sampled. */
  files?: Pick<AgentFiles, "regime" | "governor" | "override">;
}

export interface Recorder {
  /** The processor's onCommit listener: notes what changed; the write happens later. Never blocks. */
  onCommit(state: DocumentState, batch: readonly DocumentUpdate[]): void;
  /** Writes what is pending now; resolves once the writer answered every write sent so far. Never rejects. */
  flush(): Promise<void>;
  /** Stops its timers and takes no more commits; flush() still writes what is pending. Idempotent. */
  stop(): void;
  /**
   * Unix ms of the latest commit whose figures a finished write holds (a query asked now
   * sees them); null before the first. A failed write, or one left out under the space
   * floor, does not move it.
   */
  recordedThrough(): number | null;
}

export function startRecorder({
  log,
  status,
  threads,
  flushMs,
  maxSeries,
  floor,
  onSize,
  files,
}: RecorderOptions): Recorder {
  /** Top-level keys changed since the last flush, each with the time of its last change. */
  const dirty = new Map<string, number>();
  /** When each dirty key's current sampling window began (the first change in it). */
  const windowStart = new Map<string, number>();
  /** Samples of earlier windows, taken at a commit, written with the next flush. */
  let captured: HistoryPoint[] = [];
  let latest: DocumentState | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seriesCapWarned = false;
  let allocationsSeen: string | null = null;
  let stopped = false;
  let recordedThrough: number | null = null;
  /** Writes sent to the writer and not answered yet: flush() waits for them. */
  const writing = new Set<Promise<void>>();

  /** Asks the state disk; false (and the points counted) while it is under the floor. WARN/INFO on crossing. */
  function roomFor(points: number): boolean {
    if (floor === null) return true;
    if (floor.check()) {
      const fields = { path: status.path, free_bytes: floor.free, min_free_bytes: status.min_free_bytes };
      if (floor.low) log.warn("history paused: state disk space under the floor", fields);
      else log.info("history resumed: state disk space back", { ...fields, skipped: status.skipped_low_space });
    }
    status.free_bytes = floor.free;
    status.recording = !floor.low;
    if (floor.low) status.skipped_low_space += points;
    return !floor.low;
  }

  /** Sends points to the writer; `through`: the latest commit among them, for recordedThrough. */
  function write(points: HistoryPoint[], through: number | null): Promise<void> {
    if (points.length === 0 || !status.enabled || !roomFor(points.length)) return Promise.resolve();
    const done = (async () => {
      const thread = await threads.writer();
      if (thread === null) return;
      try {
        const { written, skipped, series, size } = await thread.call("record", { points });
        status.points_written += written;
        status.series = series;
        status.bytes = size.bytes;
        status.wal_bytes = size.walBytes;
        onSize(size.bytes);
        status.flushes++;
        status.last_flush_at = new Date().toISOString();
        status.last_error = null;
        if (through !== null) recordedThrough = Math.max(recordedThrough ?? 0, through);
        if (skipped > 0 && !seriesCapWarned) {
          // ? Only new series are refused; the ones already charted keep being recorded.
          log.warn("history series limit reached, new series not recorded", { limit: maxSeries, skipped });
          seriesCapWarned = true;
        }
      } catch (err) {
        threads.failed(err);
        if (err instanceof HistoryThreadError && err.corrupt) await threads.recover(err);
      }
    })();
    writing.add(done);
    void done.finally(() => writing.delete(done));
    return done;
  }

  async function flush(): Promise<void> {
    // ? A first sample still waiting for the writer's start (threads.ready) is pending too.
    sampleAllocations();
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (latest !== null && dirty.size > 0) {
      // ? Each key is stamped with the commit that last changed it, not the flush: an atlas
      // update a moment after a hive snapshot must not move the agents' figures in time.
      const byTime = new Map<number, string[]>();
      let through = 0;
      // ? Pushed in place: copying the array per key made a 45,000-key post stall GETs for 6.1 s (issue 15).
      for (const [key, ts] of dirty) {
        through = Math.max(through, ts);
        const keys = byTime.get(ts);
        if (keys === undefined) byTime.set(ts, [key]);
        else keys.push(key);
      }
      dirty.clear();
      windowStart.clear();
      const points: HistoryPoint[] = captured;
      captured = [];
      for (const [ts, keys] of byTime) points.push(...documentPoints(latest.doc, keys, ts));
      void write(points, through);
    }
    await Promise.all([...writing]);
  }

  /** Records the governor's allocations (its file, else its override copy) when either changed. */
  function sampleAllocations(): void {
    if (files === undefined || !status.enabled || stopped) return;
    const stamp = `${files.governor.state().last_good_read}|${files.override.state().last_good_read}`;
    if (stamp === "null|null" || stamp === allocationsSeen) return;
    allocationsSeen = stamp;
    void write(allocationPoints(figureFiles(files), Date.now()), null);
  }

  let sampler: ReturnType<typeof setInterval> | undefined;
  if (status.enabled && files !== undefined) {
    // ? Once the writer has started on its own (threads.ready), not at start-up (issue 14).
    void threads.ready().then(sampleAllocations);
    sampler = setInterval(sampleAllocations, GOVERNOR_SAMPLE_MS);
    sampler.unref?.();
  }

  return {
    onCommit(state, batch) {
      if (!status.enabled || stopped) return;
      const ts = state.updatedAt === null ? Date.now() : Date.parse(state.updatedAt);
      for (const update of batch) {
        for (const key of Object.keys(update.set)) {
          const since = windowStart.get(key);
          const last = dirty.get(key);
          if (since === undefined) windowStart.set(key, ts);
          else if (last !== undefined && latest !== null && ts - since >= SAMPLE_MS) {
            // ? The sampling rule: the last state of each key in each SAMPLE_MS window is
            // kept. The previous state still holds this key as of its last change (states
            // are immutable), so its sample is taken now, before it is replaced.
            captured.push(...documentPoints(latest.doc, [key], last));
            windowStart.set(key, ts);
          }
          dirty.set(key, ts);
        }
      }
      latest = state;
      if (timer === undefined) {
        timer = setTimeout(() => void flush(), flushMs);
        timer.unref?.();
      }
    },
    flush,
    stop() {
      stopped = true;
      clearInterval(sampler);
      sampler = undefined;
    },
    recordedThrough: () => recordedThrough,
  };
}
