// GET /metrics from the real process over a real socket: promtool-clean, the process
// figures from the real /proc, and a source that goes stale logged in the real log.
import { expect, test } from "bun:test";
import { fixture, tempDir, waitFor } from "../helpers";
import { parseScrape, promtoolCheck } from "../modules/metrics/prom";
import { postJson, spawnService } from "./process";

test("the real process: a clean scrape, its own pid's figures, and a stale source in the log", async () => {
  using home = tempDir();
  await using svc = await spawnService({
    home: home.path,
    env: { NEOLIGHT_STALE_ATLAS_S: "0.1", NEOLIGHT_STALE_RISK_S: "0" },
  });
  expect((await postJson(`${svc.url}/meta/metrics`, fixture("meta_metrics_post"))).status).toBe(200);
  await waitFor(
    () => svc.lines.find((l) => (l as { message?: string; source?: string }).source === "atlas"),
    "the atlas source to go stale",
  );
  const res = await fetch(`${svc.url}/metrics`);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const check = promtoolCheck(text);
  if (check !== null) expect(check).toEqual({ code: 0, output: "" });
  const s = parseScrape(text);

  const status = await Bun.file(`/proc/${svc.proc.pid}/status`).text();
  const rss = Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1]) * 1024;
  expect(s.value("process_resident_memory_bytes")).toBeGreaterThan(rss / 2);
  expect(s.value("process_resident_memory_bytes")).toBeLessThan(rss * 2);
  expect(s.value("neolight_guardian_paused")).toBe(0);
  expect(s.value("neolight_source_stale", { source: "atlas" })).toBe(1);
  expect(s.value("neolight_source_stale", { source: "hive" })).toBe(0);
  expect(svc.lines).toContainEqual(
    expect.objectContaining({ level: "WARN", message: "source stale", source: "atlas", last_update: null }),
  );
  expect(await svc.stop("SIGTERM")).toBe(0);
});
