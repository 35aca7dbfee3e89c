// Configuration: CONTRACT section 5 defaults, environment, flags over environment, and
// clear errors for values that cannot work.
import { describe, expect, test } from "bun:test";
import { ConfigError, helpText, parseCommand } from "../src/config";

const run = (env: Record<string, string>, argv: string[] = []) => {
  const c = parseCommand(env, argv);
  if (c.kind !== "run") throw new Error(`expected run, got ${c.kind}`);
  return c.config;
};

describe("config", () => {
  test("defaults from the contract", () => {
    expect(run({ HOME: "/home/trader" })).toEqual({
      port: 8100,
      host: "0.0.0.0",
      home: "/home/trader/neolight",
      metricsPath: "/home/trader/neolight/state/meta_metrics.json",
      logPath: "/home/trader/neolight/logs/dashboard_go.log",
      riskUrl: "http://localhost:8301",
      riskTimeoutMs: 1000,
      logLevel: "INFO",
      queueCapacity: 100,
      sourcePollMs: 1000,
      staleHiveS: 300,
      staleStressS: 3600,
      staleAtlasS: 30,
      staleFilesS: 3600,
      staleRiskS: 30,
    });
  });

  test("environment overrides, METRICS_PATH and LOG_PATH independent of NEOLIGHT_HOME", () => {
    expect(
      run({
        NEOLIGHT_DASHBOARD_PORT: "9000",
        NEOLIGHT_HOME: "/srv/nl",
        METRICS_PATH: "/var/lib/nl/m.json",
        LOG_PATH: "/var/log/nl.log",
        NEOLIGHT_RISK_URL: "http://risk:8301/",
        LOG_LEVEL: "debug",
        NEOLIGHT_QUEUE_CAPACITY: "500",
      }),
    ).toMatchObject({
      port: 9000,
      home: "/srv/nl",
      metricsPath: "/var/lib/nl/m.json",
      logPath: "/var/log/nl.log",
      riskUrl: "http://risk:8301",
      logLevel: "DEBUG",
      queueCapacity: 500,
    });
  });

  test("flags win over the environment, in both --flag value and --flag=value forms", () => {
    expect(
      run({ NEOLIGHT_DASHBOARD_PORT: "9000", NEOLIGHT_HOME: "/a" }, ["--port", "9100", "--home=/b"]),
    ).toMatchObject({
      port: 9100,
      home: "/b",
      metricsPath: "/b/state/meta_metrics.json",
    });
  });

  test("staleness intervals: seconds with decimals, 0 turns a watch off, flags win", () => {
    expect(
      run({ NEOLIGHT_STALE_HIVE_S: "600", NEOLIGHT_STALE_ATLAS_S: "0.25", NEOLIGHT_STALE_RISK_S: "0" }, [
        "--stale-stress-s=7200",
        "--stale-files-s",
        "90",
      ]),
    ).toMatchObject({ staleHiveS: 600, staleAtlasS: 0.25, staleRiskS: 0, staleStressS: 7200, staleFilesS: 90 });
  });

  test("--help and --version", () => {
    expect(parseCommand({}, ["--help"])).toEqual({ kind: "help" });
    expect(parseCommand({}, ["--version"])).toEqual({ kind: "version" });
    for (const name of [
      "NEOLIGHT_DASHBOARD_PORT",
      "NEOLIGHT_HOME",
      "METRICS_PATH",
      "LOG_PATH",
      "NEOLIGHT_RISK_URL",
      "--port",
    ]) {
      expect(helpText()).toContain(name);
    }
  });

  test.each([
    ["port abc", { NEOLIGHT_DASHBOARD_PORT: "abc" }, [], /NEOLIGHT_DASHBOARD_PORT.*"abc"/],
    ["port 70000", { NEOLIGHT_DASHBOARD_PORT: "70000" }, [], /0 to 65535/],
    ["port -1", { NEOLIGHT_DASHBOARD_PORT: "-1" }, [], /integer/],
    ["log level", { LOG_LEVEL: "LOUD" }, [], /LOG_LEVEL/],
    ["risk URL", { NEOLIGHT_RISK_URL: "ftp://x" }, [], /http/],
    ["queue capacity 0", { NEOLIGHT_QUEUE_CAPACITY: "0" }, [], /NEOLIGHT_QUEUE_CAPACITY/],
    ["stale interval abc", { NEOLIGHT_STALE_HIVE_S: "abc" }, [], /NEOLIGHT_STALE_HIVE_S.*"abc"/],
    ["stale interval -1", { NEOLIGHT_STALE_ATLAS_S: "-1" }, [], /NEOLIGHT_STALE_ATLAS_S.*seconds/],
    ["stale interval over a week", {}, ["--stale-files-s", "604801"], /NEOLIGHT_STALE_FILES_S.*604800/],
    ["unknown flag", {}, ["--prot", "1"], /unknown option "--prot"/],
    ["flag without value", {}, ["--port"], /needs a value/],
  ])("%s is a ConfigError naming the setting", (_name, env, argv, message) => {
    expect(() => parseCommand(env as Record<string, string>, argv as string[])).toThrow(ConfigError);
    expect(() => parseCommand(env as Record<string, string>, argv as string[])).toThrow(message);
  });
});
