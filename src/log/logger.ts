// The JSON-lines logger: one JSON object per line, to stdout and to LOG_PATH.
// CONTRACT section 5: `tail -f dashboard_go.log | jq` must always work, so nothing here
// ever writes plain text, and user input only ever travels inside JSON string values
// (JSON.stringify escapes line breaks, so a hostile value cannot forge a line or a field).
//
// No client and no flood may fill the disk through it (issue 15 item 9: 16 KB-path 404s
// wrote 1.59 GB in 10 s, and a paused snapshot then got 503 ENOSPC):
// - client-controlled strings are cut to MAX_LOGGED_BYTES (clip), in the access line here
//   and by every caller that logs a path, a user agent or a posted key;
// - lines about refused requests are sampled per client (admit, sampler.ts);
// - the file is rotated at maxBytes, keeping LOG_ROTATED_FILES old ones;
// - the document's write must never lose to the log: below minFreeBytes free on the log's
//   filesystem, INFO and DEBUG lines stay out of the file (WARN and ERROR are still
//   written if they fit). stdout gets every line: journald has its own caps.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { spaceFloor } from "./free-space";
import type { LogStats } from "./model";
import { createLineSampler, type LineSampler } from "./sampler";

/** The levels, lowest first (LOG_LEVEL, config.ts). */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };
/** Keys every line owns; a field of the same name is renamed so it cannot overwrite them. */
const RESERVED = new Set(["timestamp", "level", "message"]);
/** Buffered lines are written at least this often. Default: 100 ms (access logs at 10k req/s). */
const FLUSH_INTERVAL_MS = 100;
/** ...or as soon as this many bytes are waiting, whichever comes first. */
const FLUSH_BYTES = 64 * 1024;

/**
 * Longest client-controlled string (path, method, user agent, posted key) a line carries, in
 * UTF-8 bytes: enough to recognise any real route or agent, and a 16 KB path costs 256 bytes.
 */
export const MAX_LOGGED_BYTES = 256;
/** Rotated files kept next to the log: <path>.1 (newest) to <path>.3. */
export const LOG_ROTATED_FILES = 3;
/** Free space on the log's filesystem is asked at most this often... */
const SPACE_CHECK_MS = 1000;
/** ...or after this many bytes written, whichever comes first: the most a flood can write past the floor. */
const SPACE_CHECK_BYTES = 1024 * 1024;

export type Fields = Record<string, unknown>;

const encoder = new TextEncoder();
const clipBuffer = new Uint8Array(MAX_LOGGED_BYTES);

/**
 * `value` itself when it fits in MAX_LOGGED_BYTES of UTF-8; else its longest prefix that
 * fits, cut between characters, followed by "…[cut, <original bytes> bytes]".
 */
export function clip(value: string): string {
  // ? A UTF-16 unit is at most 3 UTF-8 bytes: a real path or agent name costs one comparison.
  if (value.length * 3 <= MAX_LOGGED_BYTES) return value;
  const bytes = Buffer.byteLength(value);
  if (bytes <= MAX_LOGGED_BYTES) return value;
  // encodeInto stops before the first character that does not fit: never half of one.
  const { read } = encoder.encodeInto(value, clipBuffer);
  return `${value.slice(0, read)}…[cut, ${bytes} bytes]`;
}

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
  access(method: string, path: string, status: number, ms?: number, address?: string | null): void;
  /**
   * Whether one more line of `kind` about a refused request from `client` may be written:
   * at most SAMPLED_LINES_PER_CLIENT per client and SAMPLED_LINES_TOTAL in all per window
   * (sampler.ts). The rest are counted, and one WARN "log lines suppressed" per client and
   * window says how many; close() writes the pending ones. Lines of answered requests and
   * of the guardian never ask.
   */
  admit(kind: string, client: string): boolean;
  stats(): LogStats;
  /** Writes every buffered line now. */
  flush(): void;
  /** Reopens the log file (after logrotate moved it: SIGHUP). */
  reopen(): void;
  /** Flushes and closes the file; later lines go to stdout only. */
  close(): void;
}

/**
 * `json` (JSON.stringify's output) with every lone surrogate written as U+FFFD.
 * ? JSON.stringify escapes a lone surrogate as `\ud800`, and jq refuses that escape, so one
 * such character in a field (a header, an error message, a file's name) broke
 * `tail -f | jq` (CONTRACT section 5, issue 15 item 12). Only lone ones come out escaped
 * this way (a pair is written as the character), so every `\udXXX` escape is one; an odd
 * run of backslashes tells an escape from an escaped backslash followed by "ud800".
 */
export function wellFormedJson(json: string): string {
  if (!json.includes("\\ud")) return json;
  return json.replace(LONE_SURROGATE_ESCAPE, (all, slashes: string) =>
    slashes.length % 2 === 1 ? `${slashes.slice(1)}\ufffd` : all,
  );
}
const LONE_SURROGATE_ESCAPE = /(\\+)ud[89a-f][0-9a-f]{2}/g;

/** JSON.stringify(value) for a line: a string that JSON cannot hold faithfully is written well-formed. */
function quote(value: string): string {
  return wellFormedJson(JSON.stringify(value));
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
    return `${wellFormedJson(JSON.stringify(line, replacer))}\n`;
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
  /** Size at which the file is rotated (<path>.1 ... .LOG_ROTATED_FILES). Default: none (never). */
  maxBytes?: number;
  /** Free bytes on the file's filesystem below which INFO and DEBUG lines stay out of it. Default: 0 (none). */
  minFreeBytes?: number;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level];
  const toStdout = options.stdout ?? true;
  const maxBytes = options.maxBytes ?? 0;
  const minFree = options.minFreeBytes ?? 0;
  const { path } = options;
  let fd: number | undefined = path === undefined ? undefined : openSync(path, "a", 0o644);
  let size = fd === undefined ? 0 : fstatSync(fd).size;
  let pending: string[] = [];
  let pendingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let rotations = 0;
  let rotationFailed = false;
  const floor = path === undefined ? null : spaceFloor(dirname(path), minFree);
  let dropped = 0;
  /** When free space was last asked (0: never) and the bytes written since. */
  let spaceCheckedAt = 0;
  let writtenSinceCheck = 0;

  // Pipes whose last write stopped inside a line: the next write there starts on a new
  // line, so a torn line is never glued to the next one.
  const torn = new Set<number>();

  /**
   * Writes all of `text` or throws; returns the bytes written. A write that stops halfway
   * (ENOSPC) leaves no torn line in a file: the file is cut back to where the write began.
   */
  function writeAll(target: number, text: string): number {
    const bytes = Buffer.from(torn.has(target) ? `\n${text}` : text);
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(target, bytes, off);
      torn.delete(target);
      return off;
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

  /** Asks the filesystem; on crossing the floor, says so once (WARN going under, INFO back). */
  function checkSpace(now: number): void {
    spaceCheckedAt = now;
    writtenSinceCheck = 0;
    if (floor === null || !floor.check()) return;
    const fields = { path, free_bytes: floor.free, min_free_bytes: minFree };
    // ? Emitted after the state changed, so the WARN reaches the file (urgent) before the
    // batch being flushed is dropped, and the INFO follows the batch that found space again.
    if (floor.low) emit("WARN", "log disk space low: INFO lines not written to the file", fields);
    else emit("INFO", "log disk space recovered", { ...fields, dropped });
  }

  /** Moves <path> to <path>.1 (and .1 to .2 ...) and opens a new file. */
  function rotate(): void {
    try {
      for (let i = LOG_ROTATED_FILES; i >= 1; i--) {
        try {
          renameSync(i === 1 ? (path as string) : `${path}.${i - 1}`, `${path}.${i}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
      }
      reopenFile();
      rotations++;
      rotationFailed = false;
    } catch (err) {
      // ? Keep writing to the file we have: the floor still protects the disk. One WARN
      // until a rotation works again; each later flush over the size tries again.
      if (!rotationFailed) {
        rotationFailed = true;
        emit("WARN", "log file rotation failed", { path, error: (err as Error).message });
      }
    }
  }

  function reopenFile(): void {
    const next = openSync(path as string, "a", 0o644);
    if (fd !== undefined) {
      torn.delete(fd);
      closeSync(fd);
    }
    fd = next;
    size = fstatSync(next).size;
  }

  /** `urgent`: the last of `lines` is a WARN or ERROR, written to the file even under the floor. */
  function writeFile(target: number, lines: string[], text: string, urgent: boolean): void {
    if (minFree > 0) {
      const now = Date.now();
      if (now - spaceCheckedAt >= SPACE_CHECK_MS || writtenSinceCheck >= SPACE_CHECK_BYTES) checkSpace(now);
    }
    let out = text;
    if (floor?.low) {
      dropped += urgent ? lines.length - 1 : lines.length;
      out = urgent ? (lines[lines.length - 1] as string) : "";
      if (out === "") return;
    }
    if (maxBytes > 0 && size > 0 && size + out.length > maxBytes) {
      rotate();
      if (fd === undefined) return;
      target = fd;
    }
    const n = writeAll(target, out);
    size += n;
    writtenSinceCheck += n;
  }

  function flush(urgent = false): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0) return;
    const lines = pending;
    const text = lines.join("");
    pending = [];
    pendingBytes = 0;
    // ? A full disk must not take the service down with it: a failed log write is dropped
    // (it cannot be logged), and the next flush tries again.
    if (fd !== undefined) {
      try {
        writeFile(fd, lines, text, urgent);
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
    if (urgent || pendingBytes >= FLUSH_BYTES) flush(urgent);
    else if (timer === undefined) {
      timer = setTimeout(flush, FLUSH_INTERVAL_MS);
      // ? The flush timer alone must not keep a finished process alive.
      timer.unref?.();
    }
  }

  if (fd !== undefined && minFree > 0) checkSpace(Date.now());

  // ? toISOString per line is measurable at 100k lines/s; it only changes every ms.
  let stampAt = 0;
  let stamp = "";
  function access(method: string, path: string, status: number, ms?: number, address?: string | null): void {
    if (RANK.INFO < min) return;
    const now = Date.now();
    if (now !== stampAt) {
      stampAt = now;
      stamp = new Date(now).toISOString();
    }
    // method and path come from the client: cut, then quoted and escaped by JSON.stringify.
    push(
      `{"timestamp":"${stamp}","level":"INFO","message":"request","method":${quote(clip(method))},"path":${quote(clip(path))},"status":${status}${ms === undefined ? "" : `,"ms":${ms}`}${address === undefined ? "" : `,"address":${JSON.stringify(address)}`}}\n`,
      false,
    );
  }

  const admit = samplersFor((fields) => emit("WARN", SUPPRESSED, fields));
  return {
    access,
    admit,
    debug: (m, f) => emit("DEBUG", m, f),
    info: (m, f) => emit("INFO", m, f),
    warn: (m, f) => emit("WARN", m, f),
    error: (m, f) => emit("ERROR", m, f),
    flush: () => flush(),
    stats: () => ({
      max_bytes: maxBytes > 0 ? maxBytes : null,
      rotated_files: LOG_ROTATED_FILES,
      rotations,
      min_free_bytes: minFree,
      low_space: floor?.low ?? false,
      dropped_low_space: dropped,
    }),
    reopen() {
      flush();
      if (path === undefined) return;
      reopenFile();
    },
    close() {
      admit.flush();
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

/** The line that reports a client's suppressed lines (sampler.ts). */
const SUPPRESSED = "log lines suppressed";

/** Logger.admit, one sampler per kind of line, each reporting through `warn`; flush() reports them all now. */
function samplersFor(warn: (fields: Fields) => void): Logger["admit"] & { flush(): void } {
  const samplers = new Map<string, LineSampler>();
  const admit = (kind: string, client: string): boolean => {
    let sampler = samplers.get(kind);
    if (sampler === undefined) {
      sampler = createLineSampler({
        report: (address, suppressed, windowMs) =>
          warn({ of: kind, address, suppressed, window_s: Math.round(windowMs / 100) / 10 }),
      });
      samplers.set(kind, sampler);
    }
    return sampler.admit(client);
  };
  admit.flush = () => {
    for (const sampler of samplers.values()) sampler.flush();
  };
  return admit;
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
  // The same sampling as the real logger: tests see what an operator would.
  const admit = samplersFor((fields) => push("WARN")(SUPPRESSED, fields));
  return {
    lines,
    access: (method, path, status, ms, address) =>
      push("INFO")("request", {
        method: clip(method),
        path: clip(path),
        status,
        ...(ms === undefined ? {} : { ms }),
        ...(address === undefined ? {} : { address }),
      }),
    admit,
    stats: () => ({
      max_bytes: null,
      rotated_files: LOG_ROTATED_FILES,
      rotations: 0,
      min_free_bytes: 0,
      low_space: false,
      dropped_low_space: 0,
    }),
    debug: push("DEBUG"),
    info: push("INFO"),
    warn: push("WARN"),
    error: push("ERROR"),
    flush() {},
    reopen() {},
    /** Reports the samplers' suppressed counts now, as the real logger's close() does. */
    close: () => admit.flush(),
  };
}
