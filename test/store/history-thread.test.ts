// The history thread's hold on the process (src/store/history-thread.ts): an idle thread
// lets the process end, one that owes an answer keeps it alive until the answer comes.
// Found when a service whose METRICS_PATH lay outside $NEOLIGHT_HOME/state (nothing else
// holding the event loop yet) exited 0, silently, while awaiting history's first answer.
import { expect, test } from "bun:test";
import { join } from "node:path";
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
