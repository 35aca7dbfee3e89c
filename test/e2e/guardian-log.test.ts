// Guardian transitions in the log file of a real process (issue 9): what the operator
// reads with `tail -f logs/dashboard_go.log | jq` when trading stopped or restarted.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, tempDir } from "../helpers";
import { postJson, spawnService } from "./process";

test("a pause and a resume are one WARN and one INFO line each in the log file", async () => {
  using home = tempDir();
  {
    await using svc = await spawnService({ home: home.path });
    for (const body of ["meta_metrics_paused_post", "meta_metrics_paused_post", "stress_post", "meta_metrics_post"]) {
      expect((await postJson(`${svc.url}/meta/metrics`, fixture(body))).status).toBe(200);
    }
    expect(await svc.stop()).toBe(0);
  }
  const lines = readFileSync(join(home.path, "logs", "dashboard_go.log"), "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.message === "guardian paused" || l.message === "guardian resumed");
  expect(lines).toEqual([
    expect.objectContaining({
      level: "WARN",
      message: "guardian paused",
      reason: "Daily drawdown limit exceeded",
      drawdown: 8.73,
      source: "hive",
      seq: 1,
    }),
    expect.objectContaining({
      level: "INFO",
      message: "guardian resumed",
      reason: "Normal operation",
      source: "hive",
      seq: 4,
      paused_reason: "Daily drawdown limit exceeded",
    }),
  ]);
});
