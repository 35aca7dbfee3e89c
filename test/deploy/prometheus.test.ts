// What ships for operators in deploy/prometheus/: the alert rules and the scrape config
// pass promtool (syntax, and the rules' own unit tests in alerts.test.yml), and every
// neolight_* series the rules use is one the service really exports.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_SERIES_PER_FAMILY } from "../../src/modules/metrics/exposition";
import { post, ROOT, startApp } from "../helpers";
import { PROMTOOL, scrape } from "../modules/metrics/prom";

const DIR = join(ROOT, "deploy", "prometheus");

function promtool(...args: string[]) {
  const r = Bun.spawnSync([PROMTOOL as string, ...args], { cwd: DIR });
  return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe.skipIf(PROMTOOL === null)("promtool (Debian package prometheus; .ci/run installs it)", () => {
  test("alerts.yml: valid rules", () => {
    expect(promtool("check", "rules", "alerts.yml")).toEqual({
      code: 0,
      output: expect.stringContaining("SUCCESS: 8 rules found"),
    });
  });

  test("alerts.test.yml: each alert fires when it should, not before", () => {
    expect(promtool("test", "rules", "alerts.test.yml")).toEqual({
      code: 0,
      output: expect.stringContaining("SUCCESS"),
    });
  });

  test("scrape.yml: a complete, valid prometheus.yml that loads alerts.yml", () => {
    const r = promtool("check", "config", "scrape.yml");
    expect(r).toEqual({ code: 0, output: expect.stringContaining("SUCCESS: 1 rule files found") });
    expect(r.output).toContain("SUCCESS: 8 rules found");
  });
});

test("every neolight_* series in alerts.yml is exported by the service", async () => {
  const rules = readFileSync(join(DIR, "alerts.yml"), "utf8");
  const used = [...new Set([...rules.matchAll(/\bneolight_[a-z0-9_]+/g)].map((m) => m[0]))].filter(
    (name) => !name.startsWith("neolight_dashboard"), // the job name, not a series
  );
  expect(used.length).toBeGreaterThan(8);

  await using t = await startApp();
  // A flood over the limit, so that the conditional family is there too.
  const perAgent = Object.fromEntries(
    Array.from({ length: MAX_SERIES_PER_FAMILY + 1 }, (_, i) => [`a${i}`, { pnl_1d: i }]),
  );
  expect((await post(t.app, "/meta/metrics", { per_agent: perAgent })).status).toBe(200);
  const exported = new Set((await scrape(t.app)).names());
  expect(used.filter((name) => !exported.has(name))).toEqual([]);
});
