// The history thread's hold on the process (src/store/history-thread.ts): an idle thread
// lets the process end, one that owes an answer keeps it alive until the answer comes. And
// the points of a `record` call arrive as they were sent.
// Found when a service whose METRICS_PATH lay outside $NEOLIGHT_HOME/state (nothing else
// holding the event loop yet) exited 0, silently, while awaiting history's first answer.
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { HistoryPoint } from "../../src/store/history";
import type { HistoryAnswer } from "../../src/store/history-model";
import { packPoints, spawnHistoryThread, unpackPoints } from "../../src/store/history-thread";
import { ROOT, tempDir } from "../helpers";

/** Runs `code` as a fresh Bun process (nothing else holds its event loop) and returns its output. */
async function run(code: string): Promise<{ exitCode: number; stdout: string }> {
  const proc = Bun.spawn([process.execPath, "-e", code], { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const stdout = await new Response(proc.stdout).text();
  return { exitCode: await proc.exited, stdout: stdout.trim() };
}

test("a process awaiting the thread's answer lives until the answer; an idle thread lets it end", async () => {
  using dir = tempDir();
  const path = join(dir.path, "history.db");
  const thread = join(ROOT, "src", "store", "history-thread.ts");
  const { exitCode, stdout } = await run(`
    import { spawnHistoryThread } from ${JSON.stringify(thread)};
    // ? Not top-level await: a pending module evaluation keeps Bun alive by itself, and
    // main.ts (like any real caller) awaits inside a function.
    void (async () => {
      const t = spawnHistoryThread();
      const opened = await t.call("open", { path: ${JSON.stringify(path)}, maxSeries: 10 });
      console.log(JSON.stringify(opened));
      // No close(): the idle thread must not keep this process alive (the test would time out).
    })();
  `);
  expect({ exitCode, stdout }).toEqual({ exitCode: 0, stdout: JSON.stringify({ series: 0 }) });
});

// Issue 16: a `record` call's points cross to the thread packed in columns (packPoints), not
// as a structured clone of objects. Whatever the store reads of a point must arrive as sent.
const SENT: HistoryPoint[] = [
  { kind: "agent", subject: "alpha", field: "pnl_1d", ts: 1_762_207_198_123, value: -12.5, peak: false },
  { kind: "agent", subject: "alpha", field: "sharpe_30d", ts: 1_762_207_198_123, value: 0 },
  { kind: "guardian", subject: "", field: "is_paused", ts: 1_762_207_198_124, value: 1, peak: true },
  { kind: "regime", subject: "", field: "label", ts: 1_762_207_198_125, value: null, label: "BULL", peak: false },
  { kind: "mode", subject: "", field: "label", ts: 1_762_207_198_126, value: null, label: null },
  { kind: "agent", subject: '名前/with "quotes"', field: "pnl_1d", ts: 1.5, value: Number.MAX_VALUE },
];

test("packed points arrive as sent: kind, subject, field, ts, value (null and 0), label, peak", () => {
  const { packed, transfer } = packPoints(SENT);
  expect(transfer).toHaveLength(4);
  // A missing label arrives as null and a missing peak as false: the store reads them so (`?? null`, truthiness).
  expect(unpackPoints(packed)).toEqual(SENT.map((p) => ({ label: null, peak: false, ...p })));
  expect(unpackPoints(packPoints([]).packed)).toEqual([]);
});

test("points recorded through the thread are answered back from the file", async () => {
  using dir = tempDir();
  const thread = spawnHistoryThread();
  try {
    await thread.call("open", { path: join(dir.path, "history.db"), maxSeries: 100 });
    expect(await thread.call("record", { points: SENT })).toMatchObject({
      written: SENT.length,
      skipped: 0,
      series: 6,
    });
    const body = await thread.call("answer", {
      from: 0,
      to: 2e12,
      points: 10,
      maxSeries: 100,
      retentionDays: 30,
      recordedThrough: null,
    });
    const answer = JSON.parse(new TextDecoder().decode(body.json)) as HistoryAnswer;
    const series = (kind: string, subject: string, field: string) =>
      answer.series.find((s) => s.kind === kind && s.subject === subject && s.field === field);
    expect(series("guardian", "", "is_paused")?.v).toEqual([1]);
    expect(series("regime", "", "label")).toMatchObject({ v: [null], labels: ["BULL"] });
    expect(series("agent", '名前/with "quotes"', "pnl_1d")?.v).toEqual([Number.MAX_VALUE]);
    expect(series("agent", "alpha", "sharpe_30d")?.v).toEqual([0]);
  } finally {
    await thread.call("close", {}).catch(() => {});
    thread.terminate();
  }
});
