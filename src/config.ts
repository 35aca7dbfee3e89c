// Environment and command line -> one typed, validated Config.
// Defaults are CONTRACT.md section 5; flags (issue 3) override the environment so a
// sysadmin can test a setting without editing the unit file.
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import pkg from "../package.json";
import { gitCommit } from "./build-info" with { type: "macro" };

export const VERSION: string = pkg.version;
/** The git commit this program was built from (build-info.ts): baked in by `bun build`. */
export const COMMIT: string = gitCommit();

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
const LOG_LEVELS: readonly LogLevel[] = ["DEBUG", "INFO", "WARN", "ERROR"];

/** Default bound of the telemetry channel: the Go original's buffered channel of 100. */
export const DEFAULT_QUEUE_CAPACITY = 100;
/** Upper bound on the channel capacity: a larger queue only hides an overloaded disk. */
export const MAX_QUEUE_CAPACITY = 100_000;
/**
 * NeoLight's Rust risk engine (risk_engine_rust) listens on its RISK_PORT, 8300 by default
 * (CONTRACT sections 2 and 5). 8301 is the GPU Monte-Carlo engine, which has no state route.
 */
export const DEFAULT_RISK_URL = "http://localhost:8300";
/** The risk engine is local; a slower answer than this means it is in trouble. Default: 1000 ms. */
export const DEFAULT_RISK_TIMEOUT_MS = 1000;
/** How often agent files are re-checked when no change event arrives. Default: 1000 ms. */
export const DEFAULT_SOURCE_POLL_MS = 1000;
/** Days of history kept in state/history.db (issue 4). Default: 30, the longest chart range. */
export const DEFAULT_HISTORY_DAYS = 30;
/** Upper bound on the history window: ten years of 1-second samples is already a large file. */
export const MAX_HISTORY_DAYS = 3650;
/**
 * Sustained writes per second one client address may make. Default: 100. NeoLight's agents
 * all post from 127.0.0.1 and share one bucket: the hive every 300 s, atlas every 30 s, the
 * stress runner now and then, so 100/s is two orders of magnitude of headroom while one
 * runaway or hostile writer can no longer grow the document and the disk traffic unboundedly.
 * 0 turns the limiter off (the load benchmarks set NEOLIGHT_WRITE_RATE themselves).
 */
export const DEFAULT_WRITE_RATE = 100;
/** Writes one client may make at once before the rate applies. Default: 200 (2 s of the rate). */
export const DEFAULT_WRITE_BURST = 200;
/**
 * Seconds a connection may sit idle, or take to deliver a request body, before Bun closes it.
 * Default: 10. A client that trickles its body is cut off after this (Bun rounds up to its
 * 4 s timer tick); headers have their own fixed ~10 s deadline in Bun that this does not change.
 * A long-lived stream must send something more often than this.
 */
export const DEFAULT_IDLE_TIMEOUT_S = 10;
/** Bun.serve's upper bound for idleTimeout. */
export const MAX_IDLE_TIMEOUT_S = 255;
/**
 * Expected reporting intervals of NeoLight's sources, in seconds (issue 6); a source silent
 * for more than twice its interval is stale. 0 turns the watch off for that source.
 * The hive posts every 300 s and the atlas bridge every 30 s (CONTRACT section 2).
 */
export const DEFAULT_STALE_HIVE_S = 300;
/** The stress runner has no fixed schedule in the contract; hourly is its usual cadence. */
export const DEFAULT_STALE_STRESS_S = 3600;
export const DEFAULT_STALE_ATLAS_S = 30;
/** Agent files (regime, allocations, performance attribution): rewritten at least hourly. */
export const DEFAULT_STALE_FILES_S = 3600;
/** The risk engine is asked this often in the background, so its silence shows without readers. */
export const DEFAULT_STALE_RISK_S = 30;
/** Longest expected interval: a week; anything slower is not watched but forgotten. */
export const MAX_STALE_S = 7 * 24 * 3600;

export interface Config {
  /** TCP port. Default: 8100 (CONTRACT section 5). 0 picks a free port (tests). */
  port: number;
  /** Bind address. Default: 0.0.0.0, as the Go original listened on ":8100". */
  host: string;
  /** Root of NeoLight's files. Default: $HOME/neolight. */
  home: string;
  /** The persisted meta-metrics document. Default: $NEOLIGHT_HOME/state/meta_metrics.json. */
  metricsPath: string;
  /** JSON-lines log file. Default: $NEOLIGHT_HOME/logs/dashboard_go.log (name kept for log shippers). */
  logPath: string;
  /** Base URL of the Rust risk engine; its GET /risk/state is asked. Default: http://localhost:8300. */
  riskUrl: string;
  /** Timeout of one risk-engine request. Default: 1000 ms. */
  riskTimeoutMs: number;
  /** Lowest level written. Default: INFO. */
  logLevel: LogLevel;
  /** Bound of the telemetry channel. Default: 100. */
  queueCapacity: number;
  /** Poll interval of agent-written files. Default: 1000 ms. */
  sourcePollMs: number;
  /** Days of history kept in $NEOLIGHT_HOME/state/history.db; 0 records none. Default: 30. */
  historyDays: number;
  /** Bearer token every write must carry. Default: none (writes from this host only, auth.ts). */
  token: string | null;
  /** File holding the write token, read once at start-up (loadSecrets). Default: none. */
  tokenFile: string | null;
  /** Bearer token reads from clients on other hosts must carry. Default: none (reads open). */
  readToken: string | null;
  /** File holding the read token, read once at start-up (loadSecrets). Default: none. */
  readTokenFile: string | null;
  /** Browser origins allowed cross-origin (exact match). Default: none (CORS off). */
  corsOrigins: string[];
  /** Sustained writes per second per client address; 0 = no limit. Default: 100. */
  writeRate: number;
  /** Burst of writes per client address. Default: 200. */
  writeBurst: number;
  /** Idle / slow-body timeout of a connection, seconds. Default: 10. */
  idleTimeoutS: number;
  /** Expected interval of the hive agent's posts (per_agent or guardian). Default: 300 s; 0: not watched. */
  staleHiveS: number;
  /** Expected interval of the stress runner's posts (stress_last). Default: 3600 s; 0: not watched. */
  staleStressS: number;
  /** Expected interval of POST /atlas/update. Default: 30 s; 0: not watched. */
  staleAtlasS: number;
  /** Expected interval between rewrites of each agent file. Default: 3600 s; 0: not watched. */
  staleFilesS: number;
  /** Interval of the background risk-engine probe and its staleness. Default: 30 s; 0: no probe. */
  staleRiskS: number;
}

/** A configuration value that cannot be used: start-up stops with exit code 2. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** One option: its environment variable, its flag, and what it means (for --help). */
interface OptionSpec {
  env: string;
  flag: string;
  help: string;
}

export const OPTIONS = {
  port: { env: "NEOLIGHT_DASHBOARD_PORT", flag: "--port", help: "TCP port (default 8100)" },
  host: { env: "NEOLIGHT_DASHBOARD_HOST", flag: "--host", help: "bind address (default 0.0.0.0)" },
  home: { env: "NEOLIGHT_HOME", flag: "--home", help: "NeoLight root (default $HOME/neolight)" },
  metricsPath: {
    env: "METRICS_PATH",
    flag: "--metrics-path",
    help: "persisted document (default $NEOLIGHT_HOME/state/meta_metrics.json)",
  },
  logPath: {
    env: "LOG_PATH",
    flag: "--log-path",
    help: "JSON-lines log (default $NEOLIGHT_HOME/logs/dashboard_go.log)",
  },
  riskUrl: {
    env: "NEOLIGHT_RISK_URL",
    flag: "--risk-url",
    help: "Rust risk engine base URL, asked for /risk/state (default http://localhost:8300)",
  },
  riskTimeoutMs: {
    env: "NEOLIGHT_RISK_TIMEOUT_MS",
    flag: "--risk-timeout-ms",
    help: "risk engine request timeout in ms (default 1000)",
  },
  logLevel: { env: "LOG_LEVEL", flag: "--log-level", help: "DEBUG, INFO, WARN or ERROR (default INFO)" },
  queueCapacity: {
    env: "NEOLIGHT_QUEUE_CAPACITY",
    flag: "--queue-capacity",
    help: "telemetry channel bound (default 100)",
  },
  sourcePollMs: {
    env: "NEOLIGHT_SOURCE_POLL_MS",
    flag: "--source-poll-ms",
    help: "agent file re-check interval in ms (default 1000)",
  },
  historyDays: {
    env: "NEOLIGHT_HISTORY_DAYS",
    flag: "--history-days",
    help: "days of chart history kept in state/history.db, 0 for none (default 30)",
  },
  token: {
    env: "NEOLIGHT_DASHBOARD_TOKEN",
    flag: "--token",
    help: "bearer token required on every write (default none: writes from this host only; prefer the _FILE form)",
  },
  tokenFile: {
    env: "NEOLIGHT_DASHBOARD_TOKEN_FILE",
    flag: "--token-file",
    help: "file holding the write token, read once at start-up",
  },
  readToken: {
    env: "NEOLIGHT_DASHBOARD_READ_TOKEN",
    flag: "--read-token",
    help: "bearer token required on reads from clients on other hosts (default none: reads open)",
  },
  readTokenFile: {
    env: "NEOLIGHT_DASHBOARD_READ_TOKEN_FILE",
    flag: "--read-token-file",
    help: "file holding the read token, read once at start-up",
  },
  corsOrigins: {
    env: "NEOLIGHT_CORS_ORIGINS",
    flag: "--cors-origins",
    help: "comma-separated browser origins allowed cross-origin, exact match (default none: CORS off)",
  },
  writeRate: {
    env: "NEOLIGHT_WRITE_RATE",
    flag: "--write-rate",
    help: "sustained writes per second per client address, 0 = unlimited (default 100)",
  },
  writeBurst: {
    env: "NEOLIGHT_WRITE_BURST",
    flag: "--write-burst",
    help: "writes a client may make at once before the rate applies (default 200)",
  },
  idleTimeoutS: {
    env: "NEOLIGHT_IDLE_TIMEOUT_S",
    flag: "--idle-timeout-s",
    help: "seconds before an idle or slow-sending connection is closed (default 10)",
  },
  staleHiveS: { env: "NEOLIGHT_STALE_HIVE_S", flag: "--stale-hive-s", help: "hive post interval, s (default 300)" },
  staleStressS: {
    env: "NEOLIGHT_STALE_STRESS_S",
    flag: "--stale-stress-s",
    help: "stress runner post interval, s (default 3600)",
  },
  staleAtlasS: {
    env: "NEOLIGHT_STALE_ATLAS_S",
    flag: "--stale-atlas-s",
    help: "atlas bridge interval, s (default 30)",
  },
  staleFilesS: {
    env: "NEOLIGHT_STALE_FILES_S",
    flag: "--stale-files-s",
    help: "agent file rewrite interval, s (default 3600)",
  },
  staleRiskS: {
    env: "NEOLIGHT_STALE_RISK_S",
    flag: "--stale-risk-s",
    help: "risk engine probe interval, s (default 30)",
  },
} as const satisfies Record<keyof Config, OptionSpec>;

type Raw = Partial<Record<keyof Config, string>>;
/**
 * Where each given value came from: its flag when the command line set it, else its
 * environment variable. Errors name that, so `--port abc` is not blamed on a variable the
 * operator never set.
 */
type Sources = Partial<Record<keyof Config, string>>;

/** What the command line asked for besides options. */
export type Command = { kind: "run"; config: Config } | { kind: "help" } | { kind: "version" };

/** Flags win over the environment; unknown flags are an error, not silently ignored. */
function collect(
  env: Record<string, string | undefined>,
  argv: readonly string[],
): { raw: Raw; from: Sources } | Command {
  const raw: Raw = {};
  const from: Sources = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [keyof Config, OptionSpec][]) {
    const value = env[spec.env];
    if (value !== undefined && value !== "") [raw[key], from[key]] = [value, spec.env];
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    if (arg === "--version" || arg === "-v") return { kind: "version" };
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const entry = (Object.entries(OPTIONS) as [keyof Config, OptionSpec][]).find(([, s]) => s.flag === flag);
    if (!entry) throw new ConfigError(flag, `unknown option ${JSON.stringify(flag)} (see --help)`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(flag, `option ${flag} needs a value`);
    [raw[entry[0]], from[entry[0]]] = [value, flag];
  }
  return { raw, from };
}

/** The name an error gives `key`: where its value came from (Sources), else its variable. */
type Namer = (key: keyof Config) => string;

function integer(name: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Seconds, decimals allowed (tests use 0.1); 0 turns a staleness watch off. */
function seconds(name: string, value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isFinite(n) || n > MAX_STALE_S) {
    throw new ConfigError(
      name,
      `${name} must be a number of seconds from 0 to ${MAX_STALE_S}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function path(value: string): string {
  return isAbsolute(value) ? value : resolve(value);
}

/** Shortest accepted token: a guessable token is worse than none, because it looks safe. */
export const MIN_TOKEN_LENGTH = 16;

/** A token given directly (env or flag, named `name`): trailing newline trimmed, too short is an error. */
function token(name: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  return checkToken(name, value.replace(/\r?\n$/, ""));
}

function checkToken(variable: string, value: string): string {
  if (value.length < MIN_TOKEN_LENGTH || /[\s]/.test(value)) {
    throw new ConfigError(
      variable,
      `${variable} must be at least ${MIN_TOKEN_LENGTH} characters without whitespace (e.g. openssl rand -hex 32)`,
    );
  }
  return value;
}

/** "https://ops.example:8443, http://localhost:3000" -> exact origins; "*" is refused. */
function origins(name: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const list = value
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {}
    // ? Exact origins only: a wildcard would let any web page a trader opens read the
    // guardian state and, with a token in that page, write it.
    if (!parsed || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
      throw new ConfigError(
        name,
        `${name} must list exact origins like https://ops.example:8443 (no wildcard, path or trailing slash), got ${JSON.stringify(origin)}`,
      );
    }
  }
  return list;
}

/**
 * Parses the environment and argv into a Config, or asks for --help/--version.
 * Pure: it reads nothing from disk; main.ts checks that the paths are writable.
 */
export function parseCommand(env: Record<string, string | undefined>, argv: readonly string[] = []): Command {
  const collected = collect(env, argv);
  if ("kind" in collected) return collected;
  const { raw, from } = collected;
  const name: Namer = (key) => from[key] ?? OPTIONS[key].env;
  const home = path(raw.home ?? join(env.HOME || homedir(), "neolight"));
  const logLevel = (raw.logLevel ?? "INFO").toUpperCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      name("logLevel"),
      `${name("logLevel")} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(raw.logLevel)}`,
    );
  }
  const riskUrl = raw.riskUrl ?? DEFAULT_RISK_URL;
  let parsedRisk: URL;
  try {
    parsedRisk = new URL(riskUrl);
  } catch {
    throw new ConfigError(name("riskUrl"), `${name("riskUrl")} must be an http(s) URL, got ${JSON.stringify(riskUrl)}`);
  }
  if (parsedRisk.protocol !== "http:" && parsedRisk.protocol !== "https:") {
    throw new ConfigError(name("riskUrl"), `${name("riskUrl")} must be an http(s) URL, got ${JSON.stringify(riskUrl)}`);
  }
  const host = raw.host ?? "0.0.0.0";
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) {
    throw new ConfigError(name("host"), `${name("host")} is not an address: ${JSON.stringify(host)}`);
  }
  return {
    kind: "run",
    config: {
      port: integer(name("port"), raw.port ?? "8100", 0, 65535),
      host,
      home,
      metricsPath: path(raw.metricsPath ?? join(home, "state", "meta_metrics.json")),
      logPath: path(raw.logPath ?? join(home, "logs", "dashboard_go.log")),
      riskUrl: riskUrl.replace(/\/+$/, ""),
      riskTimeoutMs: integer(name("riskTimeoutMs"), raw.riskTimeoutMs ?? String(DEFAULT_RISK_TIMEOUT_MS), 10, 60_000),
      logLevel,
      queueCapacity: integer(
        name("queueCapacity"),
        raw.queueCapacity ?? String(DEFAULT_QUEUE_CAPACITY),
        1,
        MAX_QUEUE_CAPACITY,
      ),
      sourcePollMs: integer(name("sourcePollMs"), raw.sourcePollMs ?? String(DEFAULT_SOURCE_POLL_MS), 10, 60_000),
      historyDays: integer(name("historyDays"), raw.historyDays ?? String(DEFAULT_HISTORY_DAYS), 0, MAX_HISTORY_DAYS),
      ...security(raw, name),
      staleHiveS: seconds(name("staleHiveS"), raw.staleHiveS ?? String(DEFAULT_STALE_HIVE_S)),
      staleStressS: seconds(name("staleStressS"), raw.staleStressS ?? String(DEFAULT_STALE_STRESS_S)),
      staleAtlasS: seconds(name("staleAtlasS"), raw.staleAtlasS ?? String(DEFAULT_STALE_ATLAS_S)),
      staleFilesS: seconds(name("staleFilesS"), raw.staleFilesS ?? String(DEFAULT_STALE_FILES_S)),
      staleRiskS: seconds(name("staleRiskS"), raw.staleRiskS ?? String(DEFAULT_STALE_RISK_S)),
    },
  };
}

function security(raw: Raw, name: Namer) {
  for (const [direct, file] of [
    ["token", "tokenFile"],
    ["readToken", "readTokenFile"],
  ] as const) {
    if (raw[direct] !== undefined && raw[file] !== undefined) {
      throw new ConfigError(name(file), `set ${name(direct)} or ${name(file)}, not both`);
    }
  }
  const tokens = {
    token: token(name("token"), raw.token),
    tokenFile: raw.tokenFile === undefined ? null : path(raw.tokenFile),
    readToken: token(name("readToken"), raw.readToken),
    readTokenFile: raw.readTokenFile === undefined ? null : path(raw.readTokenFile),
  };
  if (tokens.token !== null && tokens.token === tokens.readToken) {
    throw new ConfigError(name("readToken"), "the read token must differ from the write token");
  }
  return {
    ...tokens,
    corsOrigins: origins(name("corsOrigins"), raw.corsOrigins),
    writeRate: integer(name("writeRate"), raw.writeRate ?? String(DEFAULT_WRITE_RATE), 0, 1_000_000),
    writeBurst: integer(name("writeBurst"), raw.writeBurst ?? String(DEFAULT_WRITE_BURST), 1, 1_000_000),
    idleTimeoutS: integer(
      name("idleTimeoutS"),
      raw.idleTimeoutS ?? String(DEFAULT_IDLE_TIMEOUT_S),
      1,
      MAX_IDLE_TIMEOUT_S,
    ),
  };
}

/**
 * Reads the token files named in `config` (once, at start-up) into token/readToken. An
 * unreadable, empty or too short file is a ConfigError: starting without the token the
 * operator meant to set would silently open the service.
 */
export function loadSecrets(config: Config, read: (path: string) => string): Config {
  const out = { ...config };
  for (const [key, file] of [
    ["token", "tokenFile"],
    ["readToken", "readTokenFile"],
  ] as const) {
    const at = config[file];
    if (at === null) continue;
    const variable = OPTIONS[file].env;
    let text: string;
    try {
      text = read(at);
    } catch (err) {
      throw new ConfigError(variable, `${variable} ${at} cannot be read: ${(err as Error).message}`);
    }
    // ? One trailing newline (echo, editors) is not part of the token; anything else is.
    const value = text.replace(/\r?\n$/, "");
    if (value === "") throw new ConfigError(variable, `${variable} ${at} is empty`);
    out[key] = checkToken(variable, value);
  }
  if (out.token !== null && out.token === out.readToken) {
    throw new ConfigError("NEOLIGHT_DASHBOARD_READ_TOKEN", "the read token must differ from the write token");
  }
  return out;
}

/** Shorthand for tests and embedders: a Config from an environment alone. */
export function configFromEnv(env: Record<string, string | undefined>): Config {
  const command = parseCommand(env);
  if (command.kind !== "run") throw new Error("unreachable: no argv given");
  return command.config;
}

/** --help fits a terminal this wide (an 80-column ssh session); descriptions wrap to it. */
const HELP_WIDTH = 80;
/** Descriptions sit under their option, indented this much. */
const HELP_INDENT = 6;

/**
 * One line per option with its flag and variable in columns sized by the longest entry (a
 * long name never shifts the next), its description wrapped on the lines below.
 */
export function helpText(): string {
  const rows: [string, string, string][] = [
    ...Object.values(OPTIONS).map((spec): [string, string, string] => [`${spec.flag} <value>`, spec.env, spec.help]),
    ["-h, --help", "", "print this help"],
    ["-v, --version", "", "print the version, the commit it was built from and the Bun version"],
  ];
  const flagWidth = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [
    `neolight-dashboard ${VERSION}: the NeoLight dashboard service`,
    "",
    "Usage: neolight-dashboard [options]",
    "",
    "Options (each also read from its environment variable; a flag wins):",
  ];
  for (const [flag, env, help] of rows) {
    lines.push(`  ${flag.padEnd(flagWidth)}  ${env}`.trimEnd());
    for (const line of wrap(help, HELP_WIDTH - HELP_INDENT)) lines.push(`${" ".repeat(HELP_INDENT)}${line}`);
  }
  return `${lines.join("\n")}\n`;
}

/** `text` cut at spaces into lines of at most `width` (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}

/** --version: what an operator needs to say which build runs. */
export function versionText(): string {
  return `neolight-dashboard ${VERSION} (commit ${COMMIT}, bun ${Bun.version})\n`;
}
