// The process: the only file that reads the environment, listens and handles signals.
// Start-up: config -> directories -> logger -> state lock -> services -> listen. Shutdown
// (SIGTERM, SIGINT): stop accepting, close the channel, drain it, persist, exit 0; an error
// on the way is logged and exits 1. An unusable configuration exits 2 with one ERROR line.
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createApp } from "./app";
import { type Config, ConfigError, helpText, loadSecrets, parseCommand, VERSION, versionText } from "./config";
import { coalesceCollections } from "./http/listen-gc";
import { sameFilesystem } from "./log/free-space";
import { createLogger, formatLine, type Logger } from "./log/logger";
import { startServices } from "./services";
import { DirectoryLockedError, lockDirectories } from "./store/lock";

/** Longest a graceful shutdown may take before the process gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Exit codes: 2 = the configuration cannot work (systemd must not restart: it cannot
 * help); 1 = anything else (a busy port, a disk error: a restart may well help). */
const EXIT_CONFIG = 2;
const EXIT_FAILURE = 1;
/** The log options are in MB (10^6 bytes, as df -H and disk vendors count). */
const MB = 1_000_000;
/** The state disk's options (NEOLIGHT_MIN_FREE_MB, as services.ts reads them) are in MiB. */
const STATE_MB = 1024 * 1024;

/** Before the logger exists: one JSON line on stdout. */
function fail(message: string, fields: Record<string, unknown>, code: number): never {
  process.stdout.write(formatLine("ERROR", message, fields));
  process.exit(code);
}

/** After the logger exists: the line reaches the log file too. */
function die(log: Logger, message: string, fields: Record<string, unknown>): never {
  log.error(message, fields);
  log.close();
  process.exit(EXIT_FAILURE);
}

/** Why a listen failed, in words, for the system errors an operator can act on. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: "address already in use: another process listens on this port",
  EADDRNOTAVAIL: "address not available: the host has no interface with this address",
  EACCES: "permission denied: ports below 1024 need privileges",
};

function listenFailure(err: unknown): { code: string | null; reason: string } {
  const code = (err as { code?: unknown } | null)?.code;
  const known = typeof code === "string" ? LISTEN_FAILURES[code] : undefined;
  return {
    code: typeof code === "string" ? code : null,
    reason: known ?? (err instanceof Error ? err.message : String(err)),
  };
}

/** Creates the directories the service writes to and proves they are writable. */
function prepareDirectories(config: Config): void {
  const dirs: [string, string][] = [
    ["METRICS_PATH", dirname(config.metricsPath)],
    ["LOG_PATH", dirname(config.logPath)],
  ];
  // ? history.db lives in $NEOLIGHT_HOME/state even when METRICS_PATH points elsewhere:
  // made here, so that it is there to be locked (lockState) before the history opens it.
  // With a shared store history lives in the database (issue 12): no local file.
  if (config.historyDays > 0 && config.databaseUrl === null) dirs.push(["NEOLIGHT_HOME", join(config.home, "state")]);
  for (const [variable, dir] of dirs) {
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    } catch (err) {
      throw new ConfigError(variable, `${variable} directory ${dir} is not writable: ${(err as Error).message}`);
    }
  }
}

/**
 * One instance per state directory (issue 9): METRICS_PATH's directory, and
 * $NEOLIGHT_HOME/state (history.db) where it exists, if that is another one (not with a
 * shared store: history is in the database, and replicas on one host share NEOLIGHT_HOME
 * for the agents' files, each with a METRICS_PATH of its own, issue 12). Taken before
 * the state is read or anything is written, held until the process exits. Held by another
 * instance: exit 1 (a restart helps once it is gone). No flock at all: exit 1 as well,
 * never a start without the lock.
 */
function lockState(config: Config, log: Logger): void {
  const directories = [dirname(config.metricsPath)];
  const historyDir = join(config.home, "state");
  if (config.databaseUrl === null && existsSync(historyDir)) directories.push(historyDir);
  try {
    lockDirectories(directories);
  } catch (err) {
    if (err instanceof DirectoryLockedError) {
      die(log, "state directory in use by another instance", {
        directory: err.directory,
        holder_pid: err.holderPid,
        lock_file: err.lockFile,
      });
    }
    die(log, "cannot lock the state directory", { directories, error: (err as Error).message });
  }
}

async function main(): Promise<void> {
  let config: Config;
  let log: Logger;
  try {
    const command = parseCommand(process.env, process.argv.slice(2));
    if (command.kind === "help") {
      process.stdout.write(helpText());
      return;
    }
    if (command.kind === "version") {
      process.stdout.write(versionText());
      return;
    }
    config = loadSecrets(command.config, (path) => readFileSync(path, "utf8"));
    prepareDirectories(config);
    log = createLogger({
      level: config.logLevel,
      path: config.logPath,
      maxBytes: config.logMaxMb * MB,
      // ? On the state disk the log keeps at least the state's floor free: it must never
      // write into the room history leaves the document (issue 14).
      minFreeBytes: Math.max(
        config.logMinFreeMb * MB,
        sameFilesystem(dirname(config.logPath), join(config.home, "state")) ? config.minFreeMb * STATE_MB : 0,
      ),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      fail("invalid configuration", { variable: err.variable, error: err.message }, EXIT_CONFIG);
    }
    fail("start-up failed", { error: err }, EXIT_FAILURE);
  }

  lockState(config, log);
  process.on("uncaughtException", (err) => log.error("uncaught exception", { error: err }));
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { error: err }));

  const services = await startServices(config, log).catch((err) => die(log, "start-up failed", { error: err }));
  const app = createApp(services);
  // ? Elysia collects garbage three times as it starts to listen, before any answer: those
  // run as one collection a second later instead (src/http/listen-gc.ts, issue 14).
  coalesceCollections();
  try {
    app.listen({
      port: config.port,
      hostname: config.host,
      idleTimeout: config.idleTimeoutS,
      // ? Elysia turns SO_REUSEPORT on by default: a second instance started by mistake
      // would then share the port, each with its own document, both writing the same
      // file. A port in use must be an error (exit 1).
      reusePort: false,
      development: false,
    });
  } catch (err) {
    // ? The reason in words, not the error: its stack (minified in the binary) tells an
    // operator nothing that host, port and "address already in use" do not.
    die(log, "cannot listen", { host: config.host, port: config.port, ...listenFailure(err) });
  }
  const port = app.server?.port;
  log.info("service started", {
    version: VERSION,
    host: config.host,
    port,
    pid: process.pid,
    home: config.home,
    store: services.storeStatus().kind,
    store_target: services.storeStatus().target,
    writes: services.access.stats().writes,
    reads: services.access.stats().reads,
    idle_timeout_s: config.idleTimeoutS,
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal, queued: services.channel.depth });
    const timer = setTimeout(() => {
      log.error("shutdown timed out", { timeout_ms: SHUTDOWN_TIMEOUT_MS });
      log.close();
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    try {
      // Stop accepting; requests in flight still get their answers from the processor.
      const stopped = app.server?.stop(false);
      await services.close();
      await stopped;
      log.info("service stopped", { signal, persisted: services.store.current().updatedAt });
      clearTimeout(timer);
      log.close();
      process.exit(0);
    } catch (err) {
      log.error("shutdown failed", { error: err });
      log.close();
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    log.reopen();
    log.info("log file reopened", { path: config.logPath });
  });
}

// ? No top-level await: it breaks `bun build --bytecode` (issue 3).
void main();
