// Configuration: CONTRACT section 5 defaults, environment, flags over environment, and
// clear errors for values that cannot work.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, configurationTable, helpText, loadSecrets, OPTIONS, parseCommand } from "../src/config";
import { ALERT_EVENTS } from "../src/modules/alerts/model";
import { tempDir } from "./helpers";

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
      riskUrl: "http://localhost:8300",
      riskTimeoutMs: 1000,
      databaseUrl: null,
      storeStaleS: 30,
      storeTimeoutMs: 2000,
      logLevel: "INFO",
      logMaxMb: 100,
      logMinFreeMb: 100,
      queueCapacity: 100,
      sourcePollMs: 1000,
      historyDays: 30,
      historyMaxMb: 64,
      minFreeMb: 64,
      historyMaxSeries: 20_000,
      historyAnswerSeries: 1000,
      metricsMaxSeries: 1000,
      maxBodyMb: 1,
      maxBodyKeys: 50_000,
      maxDocumentKeys: 1000,
      maxDocumentMb: 8,
      token: null,
      tokenFile: null,
      readToken: null,
      readTokenFile: null,
      corsOrigins: [],
      allowedHosts: [],
      writeRate: 100,
      writeBurst: 200,
      idleTimeoutS: 10,
      staleHiveS: 300,
      staleStressS: 3600,
      staleAtlasS: 30,
      staleFilesS: 3600,
      staleRiskS: 30,
      telegramBotToken: null,
      telegramChatId: null,
      telegramApiUrl: "https://api.telegram.org",
      alertWebhookUrl: null,
      alertWebhookToken: null,
      alerts: [...ALERT_EVENTS],
    });
  });

  test("environment overrides, METRICS_PATH and LOG_PATH independent of NEOLIGHT_HOME", () => {
    expect(
      run({
        NEOLIGHT_DASHBOARD_PORT: "9000",
        NEOLIGHT_HOME: "/srv/nl",
        METRICS_PATH: "/var/lib/nl/m.json",
        LOG_PATH: "/var/log/nl.log",
        NEOLIGHT_RISK_URL: "http://risk:8300/",
        LOG_LEVEL: "debug",
        NEOLIGHT_QUEUE_CAPACITY: "500",
        NEOLIGHT_LOG_MAX_MB: "0",
        NEOLIGHT_LOG_MIN_FREE_MB: "2",
      }),
    ).toMatchObject({
      port: 9000,
      home: "/srv/nl",
      metricsPath: "/var/lib/nl/m.json",
      logPath: "/var/log/nl.log",
      riskUrl: "http://risk:8300",
      logLevel: "DEBUG",
      logMaxMb: 0,
      logMinFreeMb: 2,
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
    ["stale interval over a week", {}, ["--stale-files-s", "604801"], /--stale-files-s.*604800/],
    ["unknown flag", {}, ["--prot", "1"], /unknown option "--prot"/],
    ["a short token", { NEOLIGHT_DASHBOARD_TOKEN: "secret" }, [], /NEOLIGHT_DASHBOARD_TOKEN must be at least 16/],
    ["a token with a space", { NEOLIGHT_DASHBOARD_TOKEN: "abcdefgh ijklmnopq" }, [], /without whitespace/],
    [
      "token and token file",
      { NEOLIGHT_DASHBOARD_TOKEN: "a".repeat(20), NEOLIGHT_DASHBOARD_TOKEN_FILE: "/x" },
      [],
      /not both/,
    ],
    [
      "the same read and write token",
      { NEOLIGHT_DASHBOARD_TOKEN: "a".repeat(20), NEOLIGHT_DASHBOARD_READ_TOKEN: "a".repeat(20) },
      [],
      /must differ/,
    ],
    ["a CORS wildcard", { NEOLIGHT_CORS_ORIGINS: "*" }, [], /NEOLIGHT_CORS_ORIGINS.*"\*"/],
    ["a CORS origin with a path", { NEOLIGHT_CORS_ORIGINS: "https://ops.example/" }, [], /exact origins/],
    ["a CORS origin without scheme", { NEOLIGHT_CORS_ORIGINS: "ops.example" }, [], /exact origins/],
    [
      "an allowed host with a port",
      { NEOLIGHT_ALLOWED_HOSTS: "dash.example:8100" },
      [],
      /NEOLIGHT_ALLOWED_HOSTS.*host names/,
    ],
    ["an allowed host wildcard", {}, ["--allowed-hosts", "*.example"], /--allowed-hosts.*"\*\.example"/],
    ["a write rate of 1.5", { NEOLIGHT_WRITE_RATE: "1.5" }, [], /NEOLIGHT_WRITE_RATE/],
    ["a burst of 0", { NEOLIGHT_WRITE_BURST: "0" }, [], /NEOLIGHT_WRITE_BURST.*1 to/],
    ["an idle timeout of 0", { NEOLIGHT_IDLE_TIMEOUT_S: "0" }, [], /NEOLIGHT_IDLE_TIMEOUT_S/],
    ["an idle timeout over Bun's limit", { NEOLIGHT_IDLE_TIMEOUT_S: "256" }, [], /1 to 255/],
    ["flag without value", {}, ["--port"], /needs a value/],
    ["a log size of 1.5", { NEOLIGHT_LOG_MAX_MB: "1.5" }, [], /^NEOLIGHT_LOG_MAX_MB must be an integer/],
    ["a log floor of abc", { NEOLIGHT_LOG_MIN_FREE_MB: "abc" }, [], /^NEOLIGHT_LOG_MIN_FREE_MB must be an integer/],
    ["a bot token without a chat", { TELEGRAM_BOT_TOKEN: `1:${"k".repeat(30)}` }, [], /TELEGRAM_CHAT_ID/],
    ["a chat without a bot token", { TELEGRAM_CHAT_ID: "-100" }, [], /TELEGRAM_BOT_TOKEN/],
    ["a chat id that is neither", { TELEGRAM_CHAT_ID: "my chat" }, [], /^TELEGRAM_CHAT_ID must be a numeric/],
    ["an unknown alert event", { NEOLIGHT_ALERTS: "guardian_paused,guardian_pasued" }, [], /"guardian_pasued"/],
  ])("%s is a ConfigError naming the setting", (_name, env, argv, message) => {
    expect(() => parseCommand(env as Record<string, string>, argv as string[])).toThrow(ConfigError);
    expect(() => parseCommand(env as Record<string, string>, argv as string[])).toThrow(message);
  });
  // Issue 9: `--port abc` was blamed on NEOLIGHT_DASHBOARD_PORT, which the operator never set.
  test.each([
    ["the variable", { NEOLIGHT_DASHBOARD_PORT: "abc" }, [], "NEOLIGHT_DASHBOARD_PORT"],
    ["the flag", {}, ["--port", "abc"], "--port"],
    ["the flag, = form", {}, ["--port=abc"], "--port"],
    ["the flag, over a good variable", { NEOLIGHT_DASHBOARD_PORT: "8100" }, ["--port", "abc"], "--port"],
  ])("a bad port from %s names it", (_name, env, argv, source) => {
    let error: unknown;
    try {
      parseCommand(env as Record<string, string>, argv as string[]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect({ variable: (error as ConfigError).variable, message: (error as ConfigError).message }).toEqual({
      variable: source,
      message: `${source} must be an integer from 0 to 65535, got "abc"`,
    });
  });

  test.each([
    ["log level", ["--log-level", "LOUD"], "--log-level"],
    ["risk URL", ["--risk-url", "ftp://x"], "--risk-url"],
    ["host", ["--host", "a b"], "--host"],
    ["token", ["--token", "short"], "--token"],
    ["CORS origins", ["--cors-origins", "*"], "--cors-origins"],
    ["stale interval", ["--stale-hive-s", "x"], "--stale-hive-s"],
    // Issue 10: these two were parsed under their field names ("logMaxMb must be ...").
    ["log size", ["--log-max-mb", "x"], "--log-max-mb"],
    ["log floor", ["--log-min-free-mb", "x"], "--log-min-free-mb"],
  ])("a bad %s from its flag names the flag, not the variable", (_name, argv, flag) => {
    expect(() => parseCommand({}, argv)).toThrow(new RegExp(`^${flag} `));
  });
});

describe("security options", () => {
  test.each([
    ["a bot token", "TELEGRAM_BOT_TOKEN", "not-a-bot-token-SECRET"],
    ["a webhook URL", "NEOLIGHT_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/SECRET"],
    ["a webhook token", "NEOLIGHT_ALERT_WEBHOOK_TOKEN", "SECRET"],
  ])("%s that cannot be used is an error that does not repeat it", (_name, variable, value) => {
    const env = { TELEGRAM_CHAT_ID: "-100", TELEGRAM_BOT_TOKEN: `1:${"k".repeat(30)}`, [variable]: value };
    let error: unknown;
    try {
      parseCommand(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).not.toContain("SECRET");
  });

  test("alerts: the notifiers' settings and the events to send", () => {
    expect(
      run({
        TELEGRAM_BOT_TOKEN: ` 123:${"k".repeat(30)} `,
        TELEGRAM_CHAT_ID: "@neolight_ops",
        NEOLIGHT_TELEGRAM_API_URL: "http://127.0.0.1:8081/",
        NEOLIGHT_ALERT_WEBHOOK_URL: "https://hooks.slack.com/services/T0/B0/x",
        NEOLIGHT_ALERTS: " guardian_paused, source_stale ",
      }),
    ).toMatchObject({
      telegramBotToken: `123:${"k".repeat(30)}`,
      telegramChatId: "@neolight_ops",
      telegramApiUrl: "http://127.0.0.1:8081",
      alertWebhookUrl: "https://hooks.slack.com/services/T0/B0/x",
      alertWebhookToken: null,
      alerts: ["guardian_paused", "source_stale"],
    });
    expect(run({ NEOLIGHT_ALERTS: "none" }).alerts).toEqual([]);
  });

  test("tokens, origins, rate and timeout from the environment or flags", () => {
    expect(
      run(
        {
          NEOLIGHT_DASHBOARD_TOKEN: `${"w".repeat(20)}\n`,
          NEOLIGHT_CORS_ORIGINS: "https://ops.example:8443, http://localhost:3000",
          NEOLIGHT_ALLOWED_HOSTS: "dash.example, Ops.Example.",
          NEOLIGHT_WRITE_RATE: "0",
        },
        ["--read-token", "r".repeat(20), "--write-burst=50", "--idle-timeout-s", "30"],
      ),
    ).toMatchObject({
      token: "w".repeat(20),
      readToken: "r".repeat(20),
      corsOrigins: ["https://ops.example:8443", "http://localhost:3000"],
      allowedHosts: ["dash.example", "ops.example"],
      writeRate: 0,
      writeBurst: 50,
      idleTimeoutS: 30,
    });
  });

  test("token files are read once by loadSecrets: one trailing newline trimmed", () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "w"), `${"w".repeat(32)}\n`);
    writeFileSync(join(dir.path, "r"), "r".repeat(32));
    const config = run({
      NEOLIGHT_DASHBOARD_TOKEN_FILE: join(dir.path, "w"),
      NEOLIGHT_DASHBOARD_READ_TOKEN_FILE: join(dir.path, "r"),
    });
    expect(config.token).toBeNull();
    const reads: string[] = [];
    const loaded = loadSecrets(config, (path) => {
      reads.push(path);
      return readFileSync(path, "utf8");
    });
    expect(loaded).toMatchObject({ token: "w".repeat(32), readToken: "r".repeat(32) });
    expect(reads).toEqual([join(dir.path, "w"), join(dir.path, "r")]);
  });

  test.each([
    ["a missing file", null, /NEOLIGHT_DASHBOARD_TOKEN_FILE .* cannot be read/],
    ["an empty file", "", /is empty/],
    ["a file holding only a newline", "\n", /is empty/],
    ["a short token", "short\n", /at least 16/],
    ["two lines", `${"a".repeat(20)}\n${"b".repeat(20)}\n`, /without whitespace/],
  ])("%s is a ConfigError", (_name, content, message) => {
    using dir = tempDir();
    const path = join(dir.path, "token");
    if (content !== null) writeFileSync(path, content);
    const config = run({ NEOLIGHT_DASHBOARD_TOKEN_FILE: path });
    const load = () => loadSecrets(config, (p) => readFileSync(p, "utf8"));
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  // Issue 9: the variable column was padded to 26 characters, so longer names pushed their
  // description out of line.
  test("--help: flags and variables in columns sized by the longest, nothing past 80 columns", () => {
    const lines = helpText().trimEnd().split("\n");
    expect(lines.filter((l) => l.length > 80)).toEqual([]);
    const columns = Object.values(OPTIONS).map((spec) => {
      const line = lines.find((l) => l.startsWith(`  ${spec.flag} `)) ?? "";
      return { env: line.indexOf(` ${spec.env}`) + 1, endsWithEnv: line.endsWith(spec.env) };
    });
    const longest = Math.max(...Object.values(OPTIONS).map((spec) => `${spec.flag} <value>`.length));
    expect(new Set(columns.map((c) => c.env))).toEqual(new Set([2 + longest + 2]));
    expect(columns.every((c) => c.endsWithEnv)).toBe(true);
    // Each description follows its option, indented, whole.
    const port = lines.findIndex((l) => l.startsWith("  --port "));
    expect(lines[port + 1]).toBe("      TCP port (default 8100)");
  });

  test("--help names every option", () => {
    for (const name of [
      "NEOLIGHT_DASHBOARD_TOKEN",
      "NEOLIGHT_DASHBOARD_TOKEN_FILE",
      "NEOLIGHT_DASHBOARD_READ_TOKEN",
      "NEOLIGHT_CORS_ORIGINS",
      "NEOLIGHT_WRITE_RATE",
      "NEOLIGHT_WRITE_BURST",
      "NEOLIGHT_IDLE_TIMEOUT_S",
    ]) {
      expect(helpText()).toContain(name);
    }
  });
});

describe("one table of options", () => {
  // Issue 10: each default was stated three or four times and the copies drifted.
  test("README's Configuration table is the one OPTIONS gives (paste configurationTable() when this fails)", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"));
    const start = section.indexOf("| variable");
    const table = section.slice(start, section.indexOf("\n\n", start));
    expect(table).toBe(configurationTable());
  });

  test("every option is in --help with its default, and in the table, once", () => {
    const help = helpText();
    const table = configurationTable();
    for (const spec of Object.values(OPTIONS)) {
      expect(help.split(`  ${spec.flag} <value> `).length - 1).toBe(1);
      expect(table.split(`| \`${spec.env}\` `).length - 1).toBe(1);
    }
    // Descriptions wrap: count in the text with its line breaks and indents folded.
    expect(help.replace(/\s+/g, " ").split("(default ").length - 1).toBe(Object.keys(OPTIONS).length);
  });
});
