// Environment and command line -> one typed, validated Config.
// Defaults are CONTRACT.md section 5; flags (issue 3) override the environment so a
// sysadmin can test a setting without editing the unit file.
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import pkg from "../package.json";
import { gitCommit } from "./build-info" with { type: "macro" };
import { MAX_BODY_BYTES, MAX_NODES } from "./http/json-body";
import { LOG_LEVELS, type LogLevel } from "./log/logger";
import { ALERT_EVENTS, type AlertEvent } from "./modules/alerts/model";
import { MAX_SERIES_PER_ANSWER } from "./modules/history/service";
import { MAX_SERIES_TOTAL } from "./modules/history/threads";
import { MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEYS } from "./modules/meta/service";
import { MAX_SERIES_PER_FAMILY } from "./modules/metrics/exposition";

export const VERSION: string = pkg.version;
/** The git commit this program was built from (build-info.ts): baked in by `bun build`. */
export const COMMIT: string = gitCommit();

export type { LogLevel } from "./log/logger";

/** Upper bound on the channel capacity: a larger queue only hides an overloaded disk. */
const MAX_QUEUE_CAPACITY = 100_000;
/** Upper bound on the log, history and free-space sizes: a petabyte is a typo. */
const MAX_LOG_MB = 1_000_000;
/** Upper bound on the history window: ten years of 1-second samples is already a large file. */
const MAX_HISTORY_DAYS = 3650;
/** Upper bound on the series caps: a million series is a history.db of hundreds of GB a month. */
const MAX_SERIES_CAP = 1_000_000;
/** Upper bound on the body and document sizes, MB: Bun refuses any request body over 128 MB. */
const MAX_SIZE_MB = 128;
/** Upper bound on the key limits: ten million keys take seconds to check on every post. */
const MAX_KEYS = 10_000_000;
const MIB = 1024 * 1024;
/** Bun.serve's upper bound for idleTimeout. */
const MAX_IDLE_TIMEOUT_S = 255;
/** Longest expected interval: a week; anything slower is not watched but forgotten. */
const MAX_STALE_S = 7 * 24 * 3600;
/** Bounds of the millisecond timings: below 10 ms is a busy loop, above a minute is not a timeout. */
const MIN_MS = 10;
const MAX_MS = 60_000;
/** Bound of the write rate and burst: a million per second per client is already no limit. */
const MAX_WRITES = 1_000_000;
/** Shortest accepted token: a guessable token is worse than none, because it looks safe. */
export const MIN_TOKEN_LENGTH = 16;

/** A configuration value that cannot be used: start-up stops with exit code 2. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** What a default may depend on: the user's home, and NEOLIGHT_HOME once it is known. */
interface DefaultContext {
  userHome: string;
  home: string;
}

/** One option, declared once: everything else (Config, parsing, --help, README) is derived. */
interface Option<T> {
  /** Its environment variable. */
  env: string;
  /** Its command-line flag, which wins over the variable. */
  flag: string;
  /** The value when neither is given; a function when it depends on another value. */
  default: T | ((at: DefaultContext) => T);
  /** The default as --help and the README show it, when String(default) does not say it. */
  shown?: string;
  /** What it means, in --help's words (the default is appended). */
  help: string;
  /** The value from its text; throws a ConfigError naming `name` (the flag or variable given). */
  parse(value: string, name: string): T;
  /**
   * A credential (a bot token, a webhook URL that is its own key): a parse error never
   * echoes it (parseCommand puts `<secret>` in its place). Nothing else prints a Config.
   */
  secret?: true;
}

/** Identity, so each entry's T is inferred from its default and parse. */
const option = <T>(spec: Option<T>): Option<T> => spec;

function integer(min: number, max: number): (value: string, name: string) => number {
  return (value, name) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(name, `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** Seconds, decimals allowed (tests use 0.1); 0 turns a staleness watch off. */
function seconds(value: string, name: string): number {
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

function logLevel(value: string, name: string): LogLevel {
  const level = value.toUpperCase() as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(name, `${name} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return level;
}

function httpUrl(value: string, name: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {}
  if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") {
    throw new ConfigError(name, `${name} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  return value.replace(/\/+$/, "");
}

/** A PostgreSQL URL; the error never echoes it (it may hold the password). */
function postgresUrl(value: string, name: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {}
  if (parsed?.protocol !== "postgres:" && parsed?.protocol !== "postgresql:") {
    throw new ConfigError(name, `${name} must be a postgres:// URL (postgres://user@host:5432/db)`);
  }
  if (parsed.hostname === "") throw new ConfigError(name, `${name} must name the database host`);
  return value;
}

function address(value: string, name: string): string {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
    throw new ConfigError(name, `${name} is not an address: ${JSON.stringify(value)}`);
  }
  return value;
}

/** A token given directly (env or flag, named `name`): trailing newline trimmed, too short is an error. */
function token(value: string, name: string): string {
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

/** A Telegram bot token as @BotFather gives it: `<bot id>:<secret>`. */
function botToken(value: string, name: string): string {
  const trimmed = value.trim();
  if (!/^\d+:[A-Za-z0-9_-]{20,}$/.test(trimmed)) {
    throw new ConfigError(name, `${name} must be a Telegram bot token as @BotFather gives it (<digits>:<key>)`);
  }
  return trimmed;
}

/** A numeric chat id (negative for groups) or a public channel's @name. */
function chatId(value: string, name: string): string {
  const trimmed = value.trim();
  if (!/^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$/.test(trimmed)) {
    throw new ConfigError(name, `${name} must be a numeric chat id or @channelname, got ${JSON.stringify(value)}`);
  }
  return trimmed;
}

/** "guardian_paused, source_stale" or "all" -> the events to send; an unknown name is a typo. */
function alertEvents(value: string, name: string): AlertEvent[] {
  const list = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (list.length === 1 && list[0] === "all") return [...ALERT_EVENTS];
  if (list.length === 1 && list[0] === "none") return [];
  for (const event of list) {
    if (!(ALERT_EVENTS as readonly string[]).includes(event)) {
      throw new ConfigError(
        name,
        `${name} lists unknown event ${JSON.stringify(event)}; known: all, none, ${ALERT_EVENTS.join(", ")}`,
      );
    }
  }
  return [...new Set(list)] as AlertEvent[];
}

/** "https://ops.example:8443, http://localhost:3000" -> exact origins; "*" is refused. */
function origins(value: string, name: string): string[] {
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

/** "dash.example, Ops.Example." -> ["dash.example", "ops.example"]: host names, no port or scheme. */
function hostNames(value: string, name: string): string[] {
  const list = value
    .split(",")
    .map((h) => h.trim().toLowerCase().replace(/\.$/, ""))
    .filter((h) => h !== "");
  for (const host of list) {
    // ? Exact names only (IP literals and localhost are always allowed): a wildcard would
    // let any name an attacker can point at this host through, which is the rebinding.
    if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(host)) {
      throw new ConfigError(
        name,
        `${name} must list host names like dash.example (no port, scheme or wildcard), got ${JSON.stringify(host)}`,
      );
    }
  }
  return list;
}

/**
 * Every option, in --help's and the README's order (defaults are CONTRACT section 5). `home`
 * comes before the paths that default under it.
 */
export const OPTIONS = {
  /** 0 picks a free port (tests). */
  port: option({
    env: "NEOLIGHT_DASHBOARD_PORT",
    flag: "--port",
    default: 8100,
    help: "TCP port",
    parse: integer(0, 65535),
  }),
  /** As the Go original listened on ":8100". */
  host: option({
    env: "NEOLIGHT_DASHBOARD_HOST",
    flag: "--host",
    default: "0.0.0.0",
    help: "bind address",
    parse: address,
  }),
  home: option({
    env: "NEOLIGHT_HOME",
    flag: "--home",
    default: ({ userHome }) => join(userHome, "neolight"),
    shown: "$HOME/neolight",
    help: "NeoLight root",
    parse: path,
  }),
  metricsPath: option({
    env: "METRICS_PATH",
    flag: "--metrics-path",
    default: ({ home }) => join(home, "state", "meta_metrics.json"),
    shown: "$NEOLIGHT_HOME/state/meta_metrics.json",
    help: "persisted document",
    parse: path,
  }),
  /** The Go original's file name, kept for log shippers. */
  logPath: option({
    env: "LOG_PATH",
    flag: "--log-path",
    default: ({ home }) => join(home, "logs", "dashboard_go.log"),
    shown: "$NEOLIGHT_HOME/logs/dashboard_go.log",
    help: "JSON-lines log",
    parse: path,
  }),
  /**
   * NeoLight's Rust risk engine (risk_engine_rust) listens on its RISK_PORT, 8300 by default
   * (CONTRACT sections 2 and 5). 8301 is the GPU Monte-Carlo engine, which has no state route.
   */
  riskUrl: option({
    env: "NEOLIGHT_RISK_URL",
    flag: "--risk-url",
    default: "http://localhost:8300",
    help: "Rust risk engine base URL, asked for /risk/state",
    parse: httpUrl,
  }),
  /** The risk engine is local; a slower answer than this means it is in trouble. */
  riskTimeoutMs: option({
    env: "NEOLIGHT_RISK_TIMEOUT_MS",
    flag: "--risk-timeout-ms",
    default: 1000,
    help: "risk engine request timeout in ms",
    parse: integer(MIN_MS, MAX_MS),
  }),
  /**
   * Issue 12: several replicas share one document through PostgreSQL. Unset: the embedded
   * JSON file, as the README's quick start runs it. A credential (it may hold the password):
   * never printed; the store logs it with the password replaced by ***.
   */
  databaseUrl: option<string | null>({
    env: "NEOLIGHT_DATABASE_URL",
    flag: "--database-url",
    default: null,
    shown: "none: the embedded state file",
    help: "PostgreSQL URL shared by every replica (postgres://user@host:5432/db?sslmode=require)",
    parse: postgresUrl,
    secret: true,
  }),
  /**
   * Issue 12: a pause that cannot be written would be lost, so after this long without the
   * database the served guardian is paused (the corrupt-file rule); it clears on catch-up.
   */
  storeStaleS: option({
    env: "NEOLIGHT_STORE_STALE_S",
    flag: "--store-stale-s",
    default: 30,
    help: "seconds without the database after which the served guardian is paused, 0 = never",
    parse: seconds,
  }),
  /**
   * Issue 12: a write that cannot commit within this answers 503 with Retry-After (a
   * black-holed network must not hang a POST). Commits take ~1 ms; the hive's own timeout is
   * longer than this, so it sees the 503 and retries.
   */
  storeTimeoutMs: option({
    env: "NEOLIGHT_STORE_TIMEOUT_MS",
    flag: "--store-timeout-ms",
    default: 2000,
    help: "longest a write waits for the database to commit, ms (then 503)",
    parse: integer(MIN_MS, MAX_MS),
  }),
  logLevel: option<LogLevel>({
    env: "LOG_LEVEL",
    flag: "--log-level",
    default: "INFO",
    help: "DEBUG, INFO, WARN or ERROR",
    parse: logLevel,
  }),
  /**
   * Issue 15: a 404 flood wrote 1.59 GB in 10 s. With LOG_ROTATED_FILES (3) old files the
   * default keeps at most 400 MB of log; 0 leaves rotation to logrotate (and SIGHUP) alone.
   */
  logMaxMb: option({
    env: "NEOLIGHT_LOG_MAX_MB",
    flag: "--log-max-mb",
    default: 100,
    help: "log file size in MB at which it is rotated, 3 old files kept, 0 = never",
    parse: integer(0, MAX_LOG_MB),
  }),
  /**
   * Free space the log leaves on its filesystem for the state file: below it, INFO and DEBUG
   * lines stay out of the log file (WARN and ERROR are still written if they fit). The
   * default is many times the largest document write.
   */
  logMinFreeMb: option({
    env: "NEOLIGHT_LOG_MIN_FREE_MB",
    flag: "--log-min-free-mb",
    default: 100,
    help: "free MB kept on the log's disk: below it INFO lines stay out of the file, 0 = none",
    parse: integer(0, MAX_LOG_MB),
  }),
  /** The Go original's buffered channel of 100. */
  queueCapacity: option({
    env: "NEOLIGHT_QUEUE_CAPACITY",
    flag: "--queue-capacity",
    default: 100,
    help: "telemetry channel bound",
    parse: integer(1, MAX_QUEUE_CAPACITY),
  }),
  /** How often agent files are re-checked when no change event arrives. */
  sourcePollMs: option({
    env: "NEOLIGHT_SOURCE_POLL_MS",
    flag: "--source-poll-ms",
    default: 1000,
    help: "agent file re-check interval in ms",
    parse: integer(MIN_MS, MAX_MS),
  }),
  /** Issue 4: the longest chart range. */
  historyDays: option({
    env: "NEOLIGHT_HISTORY_DAYS",
    flag: "--history-days",
    default: 30,
    help: "days of chart history kept in state/history.db, 0 for none",
    parse: integer(0, MAX_HISTORY_DAYS),
  }),
  /**
   * Issue 14: history filled the soak's state disk in 45 s. Sized for 30 days of a normal
   * deployment: the fixtures' hive snapshot is 47 series, posted once per 300 s that is
   * 47 x 8,640 = 406,080 points in 30 days, at 54.4 bytes per point (measured: points plus
   * minute and hour roll-ups) 22.1 MB. 64 MB leaves room for three times those agents
   * before the cap, not NEOLIGHT_HISTORY_DAYS, decides what is kept. Over it the oldest
   * raw points go first (long charts still read the roll-ups), then minute, then hour
   * roll-ups.
   */
  historyMaxMb: option({
    env: "NEOLIGHT_HISTORY_MAX_MB",
    flag: "--history-max-mb",
    default: 64,
    help: "size cap of state/history.db with its WAL in MB: over it the oldest points are pruned",
    parse: integer(1, MAX_LOG_MB),
  }),
  /**
   * Issue 14: the document must always find room. While free space on the state disk is
   * under this, history records nothing (WARN once, /status history.recording false); it
   * resumes 10 % above it. Many times the largest document write (its temporary copy
   * included).
   */
  minFreeMb: option({
    env: "NEOLIGHT_MIN_FREE_MB",
    flag: "--min-free-mb",
    default: 64,
    help: "free MB kept on the state disk for the document: below it history is not recorded, 0 = none",
    parse: integer(0, MAX_LOG_MB),
  }),
  /**
   * Issue 16: at 1,334 agents the old single cap of 20,000 was all agents' series. The
   * safety kinds (guardian, breakers, regime, mode, allocations) have a budget of this size
   * of their own, so agents never crowd them out; past it new series are not recorded.
   */
  historyMaxSeries: option({
    env: "NEOLIGHT_HISTORY_MAX_SERIES",
    flag: "--history-max-series",
    default: MAX_SERIES_TOTAL,
    help: "most series recorded per class (agents and strategies; the safety kinds), each ~15 per agent",
    parse: integer(1, MAX_SERIES_CAP),
  }),
  /** ~100 agents x 8 figures; the safety series always come first in the cut. */
  historyAnswerSeries: option({
    env: "NEOLIGHT_HISTORY_ANSWER_SERIES",
    flag: "--history-answer-series",
    default: MAX_SERIES_PER_ANSWER,
    help: "most series in one /meta/history answer, the safety series first (truncated says when cut)",
    parse: integer(1, MAX_SERIES_CAP),
  }),
  /** 1,000 series per family is ~1 MB per scrape at 3,000 agents (README: the /metrics cost). */
  metricsMaxSeries: option({
    env: "NEOLIGHT_METRICS_MAX_SERIES",
    flag: "--metrics-max-series",
    default: MAX_SERIES_PER_FAMILY,
    help: "most series per /metrics family (one per agent or strategy)",
    parse: integer(1, MAX_SERIES_CAP),
  }),
  /**
   * A hive snapshot is ~330 bytes and ~17 keys per agent: the defaults hold ~2,900 agents.
   * A body over either limit still has its guardian, breakers and mode applied (json-body.ts).
   */
  maxBodyMb: option({
    env: "NEOLIGHT_MAX_BODY_MB",
    flag: "--max-body-mb",
    default: MAX_BODY_BYTES / MIB,
    help: "largest accepted POST body, MB",
    parse: integer(1, MAX_SIZE_MB),
  }),
  maxBodyKeys: option({
    env: "NEOLIGHT_MAX_BODY_KEYS",
    flag: "--max-body-keys",
    default: MAX_NODES,
    help: "most keys and array items in one POST body",
    parse: integer(1, MAX_KEYS),
  }),
  /** Issue 15: 30 posts of 40k new keys made a 20.5 MB document that put /health's p99 at 6.9 s. */
  maxDocumentKeys: option({
    env: "NEOLIGHT_MAX_DOCUMENT_KEYS",
    flag: "--max-document-keys",
    default: MAX_DOCUMENT_KEYS,
    help: "most top-level keys the document holds",
    parse: integer(1, MAX_KEYS),
  }),
  /** At 8 MB a render or a durable write still costs tens of ms; 69 MB cost 1.1 s per GET (issue 15). */
  maxDocumentMb: option({
    env: "NEOLIGHT_MAX_DOCUMENT_MB",
    flag: "--max-document-mb",
    default: MAX_DOCUMENT_BYTES / MIB,
    help: "largest stored document, MB of JSON",
    parse: integer(1, MAX_SIZE_MB),
  }),
  /** Without it, writes are accepted from this host only (auth.ts). */
  token: option<string | null>({
    env: "NEOLIGHT_DASHBOARD_TOKEN",
    flag: "--token",
    default: null,
    shown: "none: writes from this host only",
    help: "bearer token required on every write; prefer the _FILE form",
    parse: token,
  }),
  /** Read once at start-up by loadSecrets. */
  tokenFile: option<string | null>({
    env: "NEOLIGHT_DASHBOARD_TOKEN_FILE",
    flag: "--token-file",
    default: null,
    shown: "none",
    help: "file holding the write token, read once at start-up",
    parse: path,
  }),
  readToken: option<string | null>({
    env: "NEOLIGHT_DASHBOARD_READ_TOKEN",
    flag: "--read-token",
    default: null,
    shown: "none: reads open",
    help: "bearer token required on reads from clients on other hosts",
    parse: token,
  }),
  readTokenFile: option<string | null>({
    env: "NEOLIGHT_DASHBOARD_READ_TOKEN_FILE",
    flag: "--read-token-file",
    default: null,
    shown: "none",
    help: "file holding the read token, read once at start-up",
    parse: path,
  }),
  corsOrigins: option<string[]>({
    env: "NEOLIGHT_CORS_ORIGINS",
    flag: "--cors-origins",
    default: () => [],
    shown: "none: CORS off",
    help: "comma-separated browser origins allowed cross-origin, exact match",
    parse: origins,
  }),
  /** host-check.ts: the DNS-rebinding guard (issue 15 item 13). */
  allowedHosts: option<string[]>({
    env: "NEOLIGHT_ALLOWED_HOSTS",
    flag: "--allowed-hosts",
    default: () => [],
    shown: "none: localhost, IP literals, the bind address and this machine's name",
    help: "comma-separated extra host names (Host header) that writes and the page answer to, exact match",
    parse: hostNames,
  }),
  /**
   * NeoLight's agents all post from 127.0.0.1 and share one bucket: the hive every 300 s,
   * atlas every 30 s, the stress runner now and then, so 100/s is two orders of magnitude of
   * headroom while one runaway or hostile writer can no longer grow the document and the disk
   * traffic unboundedly. 0 turns the limiter off (the load benchmarks set it themselves).
   */
  writeRate: option({
    env: "NEOLIGHT_WRITE_RATE",
    flag: "--write-rate",
    default: 100,
    help: "sustained writes per second per client address, 0 = unlimited",
    parse: integer(0, MAX_WRITES),
  }),
  /** Two seconds of the rate. */
  writeBurst: option({
    env: "NEOLIGHT_WRITE_BURST",
    flag: "--write-burst",
    default: 200,
    help: "writes a client may make at once before the rate applies",
    parse: integer(1, MAX_WRITES),
  }),
  /**
   * A client that trickles its body is cut off after this (Bun rounds up to its 4 s timer
   * tick); headers have their own fixed ~10 s deadline in Bun that this does not change. A
   * long-lived stream must send something more often than this.
   */
  idleTimeoutS: option({
    env: "NEOLIGHT_IDLE_TIMEOUT_S",
    flag: "--idle-timeout-s",
    default: 10,
    help: "seconds before an idle or slow-sending connection is closed",
    parse: integer(1, MAX_IDLE_TIMEOUT_S),
  }),
  /**
   * Expected reporting intervals of NeoLight's sources (issue 6): a source silent for more
   * than twice its interval is stale; 0 turns the watch off for that source. The hive posts
   * every 300 s and the atlas bridge every 30 s (CONTRACT section 2).
   */
  staleHiveS: option({
    env: "NEOLIGHT_STALE_HIVE_S",
    flag: "--stale-hive-s",
    default: 300,
    help: "hive post interval, s",
    parse: seconds,
  }),
  /** The stress runner has no fixed schedule in the contract; hourly is its usual cadence. */
  staleStressS: option({
    env: "NEOLIGHT_STALE_STRESS_S",
    flag: "--stale-stress-s",
    default: 3600,
    help: "stress runner post interval, s",
    parse: seconds,
  }),
  staleAtlasS: option({
    env: "NEOLIGHT_STALE_ATLAS_S",
    flag: "--stale-atlas-s",
    default: 30,
    help: "atlas bridge interval, s",
    parse: seconds,
  }),
  /** Agent files (regime, allocations, performance attribution): rewritten at least hourly. */
  staleFilesS: option({
    env: "NEOLIGHT_STALE_FILES_S",
    flag: "--stale-files-s",
    default: 3600,
    help: "agent file rewrite interval, s",
    parse: seconds,
  }),
  /** The risk engine is asked this often in the background, so its silence shows without readers; 0: no probe. */
  staleRiskS: option({
    env: "NEOLIGHT_STALE_RISK_S",
    flag: "--stale-risk-s",
    default: 30,
    help: "risk engine probe interval, s",
    parse: seconds,
  }),
  /** Issue 13: NeoLight's own agents' variable names, so one environment file serves them all. */
  telegramBotToken: option<string | null>({
    env: "TELEGRAM_BOT_TOKEN",
    flag: "--telegram-bot-token",
    default: null,
    shown: "none: no Telegram alerts",
    help: "bot token alerts are sent with (with TELEGRAM_CHAT_ID)",
    parse: botToken,
    secret: true,
  }),
  telegramChatId: option<string | null>({
    env: "TELEGRAM_CHAT_ID",
    flag: "--telegram-chat-id",
    default: null,
    shown: "none",
    help: "chat the alerts go to: a numeric id or @channelname",
    parse: chatId,
  }),
  /** Tests and proxies (a corporate egress, a local relay) point it elsewhere. */
  telegramApiUrl: option({
    env: "NEOLIGHT_TELEGRAM_API_URL",
    flag: "--telegram-api-url",
    default: "https://api.telegram.org",
    help: "Telegram Bot API base URL",
    parse: httpUrl,
  }),
  /** A Slack or Mattermost incoming webhook's URL is its own credential: secret. */
  alertWebhookUrl: option<string | null>({
    env: "NEOLIGHT_ALERT_WEBHOOK_URL",
    flag: "--alert-webhook-url",
    default: null,
    shown: "none: no webhook alerts",
    help: "URL every alert is POSTed to as JSON (Slack, Mattermost or your own receiver)",
    parse: httpUrl,
    secret: true,
  }),
  alertWebhookToken: option<string | null>({
    env: "NEOLIGHT_ALERT_WEBHOOK_TOKEN",
    flag: "--alert-webhook-token",
    default: null,
    shown: "none",
    help: "bearer token sent to the alert webhook",
    parse: token,
    secret: true,
  }),
  alerts: option<AlertEvent[]>({
    env: "NEOLIGHT_ALERTS",
    flag: "--alerts",
    default: () => [...ALERT_EVENTS],
    shown: "all",
    help: "comma-separated alert events to send (README: Alerts), all or none",
    parse: alertEvents,
  }),
};

type Options = typeof OPTIONS;
type Key = keyof Options;

/** The typed configuration: one field per option, of the type its parse returns. */
export type Config = { [K in Key]: Options[K] extends Option<infer T> ? T : never };

/** The default of `key` as --help and the README show it. */
function shownDefault(key: Key): string {
  const spec: Option<unknown> = OPTIONS[key];
  return spec.shown ?? String(spec.default);
}

/** The --help description of `key`: its help text and its default. */
function describe(key: Key): string {
  return `${OPTIONS[key].help} (default ${shownDefault(key)})`;
}

type Raw = Partial<Record<Key, string>>;
/**
 * Where each given value came from: its flag when the command line set it, else its
 * environment variable. Errors name that, so `--port abc` is not blamed on a variable the
 * operator never set.
 */
type Sources = Partial<Record<Key, string>>;

const KEYS = Object.keys(OPTIONS) as Key[];

/** What the command line asked for besides options. */
export type Command = { kind: "run"; config: Config } | { kind: "help" } | { kind: "version" };

/** Flags win over the environment; unknown flags are an error, not silently ignored. */
function collect(
  env: Record<string, string | undefined>,
  argv: readonly string[],
): { raw: Raw; from: Sources } | Command {
  const raw: Raw = {};
  const from: Sources = {};
  for (const key of KEYS) {
    const value = env[OPTIONS[key].env];
    if (value !== undefined && value !== "") [raw[key], from[key]] = [value, OPTIONS[key].env];
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    if (arg === "--version" || arg === "-v") return { kind: "version" };
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const key = KEYS.find((k) => OPTIONS[k].flag === flag);
    if (key === undefined) throw new ConfigError(flag, `unknown option ${JSON.stringify(flag)} (see --help)`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(flag, `option ${flag} needs a value`);
    [raw[key], from[key]] = [value, flag];
  }
  return { raw, from };
}

/**
 * Parses the environment and argv into a Config, or asks for --help/--version.
 * Pure: it reads nothing from disk; main.ts checks that the paths are writable.
 */
export function parseCommand(env: Record<string, string | undefined>, argv: readonly string[] = []): Command {
  const collected = collect(env, argv);
  if ("kind" in collected) return collected;
  const { raw, from } = collected;
  const name = (key: Key) => from[key] ?? OPTIONS[key].env;
  for (const [direct, file] of TOKEN_PAIRS) {
    if (raw[direct] !== undefined && raw[file] !== undefined) {
      throw new ConfigError(name(file), `set ${name(direct)} or ${name(file)}, not both`);
    }
  }
  const at: DefaultContext = { userHome: env.HOME || homedir(), home: "" };
  const config: Record<string, unknown> = {};
  for (const key of KEYS) {
    const spec: Option<unknown> = OPTIONS[key];
    const value = raw[key];
    config[key] =
      value !== undefined
        ? parseValue(spec, value, name(key))
        : typeof spec.default === "function"
          ? spec.default(at)
          : spec.default;
    if (key === "home") at.home = config[key] as string;
  }
  const parsed = config as Config;
  if ((parsed.telegramBotToken === null) !== (parsed.telegramChatId === null)) {
    const missing = parsed.telegramBotToken === null ? "telegramBotToken" : "telegramChatId";
    throw new ConfigError(name(missing), `Telegram alerts need both TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID`);
  }
  if (parsed.token !== null && parsed.token === parsed.readToken) {
    throw new ConfigError(name("readToken"), "the read token must differ from the write token");
  }
  return { kind: "run", config: parsed };
}

/** `spec.parse`, with a secret's value never in the error (the message is logged and printed). */
function parseValue(spec: Option<unknown>, value: string, name: string): unknown {
  try {
    return spec.parse(value, name);
  } catch (err) {
    if (spec.secret && err instanceof ConfigError && value !== "") {
      throw new ConfigError(
        err.variable,
        err.message.replaceAll(JSON.stringify(value), "<secret>").replaceAll(value, "<secret>"),
      );
    }
    throw err;
  }
}

/** Each token and the option naming a file that may hold it instead (one or the other). */
const TOKEN_PAIRS = [
  ["token", "tokenFile"],
  ["readToken", "readTokenFile"],
] as const;

/**
 * Reads the token files named in `config` (once, at start-up) into token/readToken. An
 * unreadable, empty or too short file is a ConfigError: starting without the token the
 * operator meant to set would silently open the service.
 */
export function loadSecrets(config: Config, read: (path: string) => string): Config {
  const out = { ...config };
  for (const [key, file] of TOKEN_PAIRS) {
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
    throw new ConfigError(OPTIONS.readToken.env, "the read token must differ from the write token");
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
    ...KEYS.map((key): [string, string, string] => [`${OPTIONS[key].flag} <value>`, OPTIONS[key].env, describe(key)]),
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

/**
 * The README's Configuration table, from OPTIONS (test/config.test.ts compares the two):
 * columns padded to their widest cell, as a Markdown formatter leaves them.
 */
export function configurationTable(): string {
  const code = (text: string) => `\`${text}\``;
  const rows = [
    ["variable", "flag", "default", "meaning"],
    ...KEYS.map((key) => {
      const shown = shownDefault(key);
      // "none: reads open" is words; "8100" and "$HOME/neolight" are values to type.
      const value = shown.startsWith("none") ? shown : code(shown);
      return [code(OPTIONS[key].env), code(OPTIONS[key].flag), value, OPTIONS[key].help];
    }),
  ];
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(rows[0] as string[]), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)].join("\n");
}
