// The JSON-lines logger: one JSON object per line, to stdout and to LOG_PATH.
// CONTRACT section 5: `tail -f dashboard_go.log | jq` must always work, so nothing here
// ever writes plain text, and user input only ever travels inside JSON string values
// (JSON.stringify escapes line breaks, so a hostile value cannot forge a line or a field).
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import type { LogLevel } from "../config";

const RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };
/** Keys every line owns; a field of the same name is renamed so it cannot overwrite them. */
const RESERVED = new Set(["timestamp", "level", "message"]);
/** Buffered lines are written at least this often. Default: 100 ms (access logs at 10k req/s). */
const FLUSH_INTERVAL_MS = 100;
/** ...or as soon as this many bytes are waiting, whichever comes first. */
const FLUSH_BYTES = 64 * 1024;

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  /** WARN and ERROR are written through at once: they are what an operator reads after a crash. */
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /**
   * One access-log line (INFO "request"): the same JSON as info("request", {...}), built
   * by hand because it runs on every request (at 100k req/s a generic line is a third of
   * the CPU).
   */
  access(method: string, path: string, status: number, ms?: number): void;
  /** Writes every buffered line now. */
  flush(): void;
  /** Reopens the log file (after logrotate moved it: SIGHUP). */
  reopen(): void;
  /** Flushes and closes the file; later lines go to stdout only. */
  close(): void;
}

/** Errors become {error, stack} so the stack reaches the log as one JSON string. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { error: value.message, name: value.name, stack: value.stack };
  if (typeof value === "bigint") return value.toString();
  return value;
}

export function formatLine(level: LogLevel, message: string, fields?: Fields, now = new Date()): string {
  const line: Fields = { timestamp: now.toISOString(), level, message };
  if (fields) {
    for (const key of Object.keys(fields)) {
      line[RESERVED.has(key) ? `field_${key}` : key] = fields[key];
    }
  }
  try {
    return `${JSON.stringify(line, replacer)}\n`;
  } catch (err) {
    // ? A field JSON cannot hold (a cycle) must not turn a log call into a crash, least of
    // all inside the error handler: the line keeps its fixed keys and says what was lost.
    const { timestamp } = line;
    return `${JSON.stringify({ timestamp, level, message, log_error: `fields not serialisable: ${(err as Error).message}` })}\n`;
  }
}

export interface LoggerOptions {
  level: LogLevel;
  /** Log file path; undefined writes to stdout only. */
  path?: string;
  /** Also write to stdout. Default: true. */
  stdout?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level];
  const toStdout = options.stdout ?? true;
  let fd: number | undefined = options.path === undefined ? undefined : openSync(options.path, "a", 0o644);
  let pending: string[] = [];
  let pendingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  // Pipes whose last write stopped inside a line: the next write there starts on a new
  // line, so a torn line is never glued to the next one.
  const torn = new Set<number>();

  /**
   * Writes all of `text` or throws. A write that stops halfway (ENOSPC) leaves no torn line
   * in a file: the file is cut back to where the write began.
   */
  function writeAll(target: number, text: string): void {
    const bytes = Buffer.from(torn.has(target) ? `\n${text}` : text);
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(target, bytes, off);
      torn.delete(target);
    } catch (err) {
      if (off > 0) {
        try {
          const info = fstatSync(target);
          if (info.isFile()) ftruncateSync(target, info.size - off);
          else torn.add(target);
        } catch {
          torn.add(target);
        }
      }
      throw err;
    }
  }

  function flush(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    pendingBytes = 0;
    // ? A full disk must not take the service down with it: a failed log write is dropped
    // (it cannot be logged), and the next flush tries again.
    if (fd !== undefined) {
      try {
        writeAll(fd, text);
      } catch {}
    }
    if (toStdout) {
      try {
        writeAll(1, text);
      } catch {}
    }
  }

  function emit(level: LogLevel, message: string, fields: Fields | undefined): void {
    if (RANK[level] < min) return;
    push(formatLine(level, message, fields), RANK[level] >= RANK.WARN);
  }

  function push(line: string, urgent: boolean): void {
    pending.push(line);
    pendingBytes += line.length;
    if (urgent || pendingBytes >= FLUSH_BYTES) flush();
    else if (timer === undefined) {
      timer = setTimeout(flush, FLUSH_INTERVAL_MS);
      // ? The flush timer alone must not keep a finished process alive.
      timer.unref?.();
    }
  }

  // ? toISOString per line is measurable at 100k lines/s; it only changes every ms.
  let stampAt = 0;
  let stamp = "";
  function access(method: string, path: string, status: number, ms?: number): void {
    if (RANK.INFO < min) return;
    const now = Date.now();
    if (now !== stampAt) {
      stampAt = now;
      stamp = new Date(now).toISOString();
    }
    // method and path come from the client: JSON.stringify quotes and escapes them.
    push(
      `{"timestamp":"${stamp}","level":"INFO","message":"request","method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status}${ms === undefined ? "" : `,"ms":${ms}`}}\n`,
      false,
    );
  }

  return {
    access,
    debug: (m, f) => emit("DEBUG", m, f),
    info: (m, f) => emit("INFO", m, f),
    warn: (m, f) => emit("WARN", m, f),
    error: (m, f) => emit("ERROR", m, f),
    flush,
    reopen() {
      flush();
      if (options.path === undefined) return;
      const next = openSync(options.path, "a", 0o644);
      if (fd !== undefined) {
        torn.delete(fd);
        closeSync(fd);
      }
      fd = next;
    },
    close() {
      flush();
      if (fd !== undefined) {
        try {
          fsyncSync(fd);
        } catch {}
        closeSync(fd);
        fd = undefined;
      }
    },
  };
}

/** A logger that keeps its lines in memory: for tests that assert what was logged. */
export interface MemoryLogger extends Logger {
  readonly lines: Fields[];
}

export function createMemoryLogger(level: LogLevel = "DEBUG"): MemoryLogger {
  const lines: Fields[] = [];
  const push = (lvl: LogLevel) => (message: string, fields?: Fields) => {
    if (RANK[lvl] >= RANK[level]) lines.push(JSON.parse(formatLine(lvl, message, fields)) as Fields);
  };
  return {
    lines,
    access: (method, path, status, ms) =>
      push("INFO")("request", { method, path, status, ...(ms === undefined ? {} : { ms }) }),
    debug: push("DEBUG"),
    info: push("INFO"),
    warn: push("WARN"),
    error: push("ERROR"),
    flush() {},
    reopen() {},
    close() {},
  };
}
