// Files the NeoLight agents write (performance attribution, regime, allocations), served
// from an in-memory copy. CONTRACT section 1: agents write in place, not atomically, so
// a read can see an empty, truncated or half-rewritten file. Such a read never reaches a
// client: the last good copy keeps being served, one WARN is logged per bad stretch, and
// the new content is picked up as soon as the file is whole again.
import { type BigIntStats, constants, type FSWatcher, watch } from "node:fs";
import { type FileHandle, open, readlink, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { compiledCheck, loneSurrogateAt, MAX_DEPTH, MAX_NODES, maySpellSurrogate } from "../../http/json-body";
import type { Logger } from "../../log/logger";
import type { FilesHolder } from "./holder";
import { Allocations, type FileSource, PerformanceAttribution, RegimeDocument } from "./model";

/** A file larger than this is not an agent document; it is reported, not read. */
export const MAX_AGENT_FILE_BYTES = 16 * 1024 * 1024;
/** Change events come in bursts while an agent writes; coalesce them for this long. */
const EVENT_DEBOUNCE_MS = 20;
/**
 * Longest one look at a file (open, fstat, read) may take. Past it the last good copy stays
 * served and no new look starts until the stuck one ends: a hung filesystem must not take
 * every file-I/O thread (and with them the state file's writes) one poll at a time.
 */
export const READ_TIMEOUT_MS = 2000;
/**
 * ? Non-blocking: opening a FIFO for reading would otherwise wait for a writer, holding a
 * file-I/O thread for good (issue 15 item 5). A regular file reads the same either way.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;
/**
 * A version of a file is trusted to be unchanged while its signature (device, inode, size,
 * mtime and ctime in nanoseconds) is, but only once it was looked at this long after its
 * mtime. ? Linux stamps files from a coarse clock (a jiffy, up to 10 ms; FAT: 2 s): a
 * same-size rewrite in place within that tick of the read would keep every field of the
 * signature. Git calls this the "racy clean" case and re-checks such entries; so do we,
 * re-reading a file until a look starts SETTLED_MS after its mtime. 2 s covers every local
 * filesystem's granularity; a file whose mtime is in the future is re-read at every poll.
 * ctime is in the signature because mtime can be set back (touch -d, utimes), ctime cannot.
 */
export const SETTLED_MS = 2000;

export interface WatchedFile {
  /** The last valid content as JSON text, or null when the file does not exist or never was valid. */
  json(): string | null;
  /** The last valid content as a value (shared: callers must not mutate it). */
  value(): unknown;
  state(): FileSource;
  /** Checks the file now; resolves when any change has been taken in. Never rejects. */
  refresh(): Promise<void>;
  /** Stops watching and polling. */
  close(): void;
}

export interface WatchOptions {
  /** Short name for logs and /status, e.g. "regime". */
  name: string;
  path: string;
  /** null when `value` is a valid document, else what is wrong with it. */
  validate(value: unknown): string | null;
  pollMs: number;
  log: Logger;
  /** NEOLIGHT_HOME: a file whose real path (after symlinks) leads outside it is refused, never read. */
  home: string;
  /**
   * Called after a check that changed what is served or known (the good copy, presence,
   * serving state): the guardian's pause file is pushed on, not polled by its reader (issue
   * 11). Must not throw. Default: none.
   */
  onChange?: () => void;
}

/** What one look at the file found; "read" carries its text. */
type Look =
  | { kind: "missing" }
  | { kind: "refused"; sig: string; info: BigIntStats | null; error: string }
  | { kind: "unchanged"; info: BigIntStats }
  | { kind: "read"; sig: string; info: BigIntStats; text: string; settled: boolean };

/** The file's type in words, for "not a regular file" (never its content). */
function fileType(info: BigIntStats): string {
  if (info.isFIFO()) return "a FIFO";
  if (info.isDirectory()) return "a directory";
  if (info.isSocket()) return "a socket";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "a device";
  return "not a regular file";
}

/**
 * What is wrong with `text`'s shape under the body limits (MAX_DEPTH, MAX_NODES), or null.
 * ? Scanned before JSON.parse: a file of 200k nested arrays parses, but then stalls every
 * later step (issue 15 item 10). Linear, skips strings; counts keys and items as commas
 * plus one per non-empty container.
 */
function shapeProblem(text: string): string | null {
  let depth = 0;
  let nodes = 0;
  let opened = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    if (opened && c !== 93 && c !== 125) nodes++;
    opened = false;
    if (c === 34) {
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
    } else if (c === 91 || c === 123) {
      if (++depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
      opened = true;
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44) nodes++;
    if (nodes > MAX_NODES) return `holds more than ${MAX_NODES} keys and items`;
  }
  return null;
}

const TIMED_OUT = Symbol("timed out");

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

export function watchJsonFile({ name, path, validate, pollMs, log, home, onChange }: WatchOptions): WatchedFile {
  let good: { value: unknown; json: string } | null = null;
  let seen = ""; // signature (device, inode, size, mtime, ctime) of the version last read
  // ? That signature once it is settled (SETTLED_MS): a version, good or bad, is then not
  // read again until it changes (issue 15 item 10: a bad 400 KB file re-parsed at every poll
  // kept GET /meta/metrics at 2 s p50).
  let settledSig = "";
  let bad = false;
  let running: Promise<void> | null = null;
  let again = false;
  let debounce: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined;
  let stuck: Promise<unknown> | null = null; // a look that overran READ_TIMEOUT_MS, still running
  let realHome: string | null = null;
  const figures: FileSource = {
    name,
    path,
    present: false,
    serving: "none",
    last_good_read: null,
    last_change: null,
    last_good_change: null,
    parse_errors: 0,
    last_error: null,
  };

  function reject(sig: string, error: string): void {
    if (sig !== seen || !bad) {
      figures.parse_errors++;
      figures.last_error = error;
      // ? One WARN per bad stretch, not per poll: a stuck writer must not flood the log.
      if (!bad) log.warn("agent file unreadable, serving last good copy", { source: name, path, error });
    }
    seen = sig;
    bad = true;
    figures.serving = good === null ? "none" : "last_good";
  }

  /** The real path of the open file: /proc's link for the descriptor (no race), else realpath. */
  async function openedPath(handle: FileHandle): Promise<string> {
    return readlink(`/proc/self/fd/${handle.fd}`).catch(() => realpath(path));
  }

  async function look(): Promise<Look> {
    let info: BigIntStats;
    const startedAt = BigInt(Date.now());
    try {
      info = await stat(path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
      return {
        kind: "refused",
        sig: "stat-error",
        info: null,
        error: `cannot stat: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      };
    }
    // ? Only regular files are opened at all: a FIFO, socket or device is refused by its type.
    if (!info.isFile())
      return { kind: "refused", sig: `type:${info.ino}`, info, error: `${fileType(info)}, not a regular file` };
    let handle: FileHandle;
    try {
      handle = await open(path, OPEN_FLAGS);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
      return {
        kind: "refused",
        sig: "open-error",
        info,
        error: `cannot open: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      };
    }
    try {
      // ? fstat of what was opened: the path may have been swapped for a FIFO since stat().
      info = await handle.stat({ bigint: true });
      const sig = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
      if (!info.isFile())
        return { kind: "refused", sig: `type:${info.ino}`, info, error: `${fileType(info)}, not a regular file` };
      realHome ??= await realpath(home);
      const real = await openedPath(handle);
      if (real !== realHome && !real.startsWith(realHome + sep)) {
        return { kind: "refused", sig, info, error: "a symlink leading outside NEOLIGHT_HOME: not read" };
      }
      if (sig === settledSig) return { kind: "unchanged", info };
      if (info.size > BigInt(MAX_AGENT_FILE_BYTES)) {
        return { kind: "refused", sig, info, error: `file is larger than ${MAX_AGENT_FILE_BYTES} bytes` };
      }
      const settled = (startedAt - BigInt(SETTLED_MS)) * 1_000_000n > info.mtimeNs;
      const text = await handle.readFile("utf8");
      log.debug("agent file read", { source: name, characters: text.length, settled });
      return { kind: "read", sig, info, text, settled };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async function check(): Promise<void> {
    if (stuck) return reject("stuck", `a read has not finished after ${READ_TIMEOUT_MS} ms`);
    const work = look();
    const found = await withTimeout(work, READ_TIMEOUT_MS);
    if (found === TIMED_OUT) {
      stuck = work;
      void work
        .catch(() => {})
        .finally(() => {
          stuck = null;
        });
      return reject("stuck", `a read has not finished after ${READ_TIMEOUT_MS} ms`);
    }
    if (found.kind === "missing") {
      if (figures.present) log.info("agent file removed", { source: name, path });
      figures.present = false;
      figures.serving = "none";
      good = null;
      seen = "";
      settledSig = "";
      bad = false;
      return;
    }
    figures.present = true;
    if (found.info) figures.last_change = found.info.mtime.toISOString();
    if (found.kind === "unchanged") return;
    if (found.kind === "refused") return reject(found.sig, found.error);
    const { sig, text } = found;
    settledSig = found.settled ? sig : "";
    if (text.trim() === "") return reject(sig, "file is empty");
    const shape = shapeProblem(text);
    if (shape !== null) return reject(sig, shape);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // ? Never the parser's message: it quotes the file's first token (issue 15 item 11).
      return reject(sig, `not valid JSON (${text.length} characters)`);
    }
    // ? Refused as a bad file, not repaired: served as is, its `\ud800` escape makes jq and
    // other strict parsers refuse the whole answer (issue 15 item 12), and a repaired copy
    // would be a document the agent never wrote. The last good copy stays served. The key or
    // string is not named: it is the file's content (item 11).
    if (maySpellSurrogate(text) && loneSurrogateAt(value) !== null) {
      return reject(sig, "holds a lone UTF-16 surrogate, which strict JSON parsers refuse");
    }
    const problem = validate(value);
    if (problem !== null) return reject(sig, problem);
    if (bad) log.info("agent file readable again", { source: name, path });
    good = { value, json: JSON.stringify(value) };
    seen = sig;
    bad = false;
    figures.serving = "file";
    figures.last_good_read = new Date().toISOString();
    figures.last_good_change = figures.last_change;
    figures.last_error = null;
  }

  function refresh(): Promise<void> {
    // ? One check at a time; a request during a check runs one more after it, so the
    // last change is never missed and checks never pile up.
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const before = { good, present: figures.present, serving: figures.serving, error: figures.last_error };
        await check().catch((err) => reject("check-error", (err as Error).message));
        const changed =
          good !== before.good ||
          figures.present !== before.present ||
          figures.serving !== before.serving ||
          figures.last_error !== before.error;
        if (changed) onChange?.();
      } while (again);
      running = null;
    })();
    return running;
  }

  function startWatcher(): void {
    if (watcher) return;
    try {
      watcher = watch(dirname(path), (_event, file) => {
        if (file !== null && file !== basename(path)) return;
        clearTimeout(debounce);
        debounce = setTimeout(() => void refresh(), EVENT_DEBOUNCE_MS);
      });
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      // The directory does not exist yet: polling covers it, and retries the watcher.
      watcher = undefined;
    }
  }

  startWatcher();
  // ? Polling as well as watching: inotify misses changes on some filesystems (NFS,
  // overlay, bind mounts), and a directory created later is only seen by polling.
  const poll = setInterval(() => {
    startWatcher();
    void refresh();
  }, pollMs);
  poll.unref?.();

  return {
    json: () => good?.json ?? null,
    value: () => good?.value,
    state: () => ({ ...figures }),
    refresh,
    close() {
      clearInterval(poll);
      clearTimeout(debounce);
      watcher?.close();
      watcher = undefined;
    },
  };
}

/**
 * A schema as a WatchOptions.validate: null, or the first problem with its path. The check
 * is compiled on the first value and shared by every validator of the same schema
 * (compiledCheck): the replicas' shared copies use the same schemas as the watchers.
 */
export function validator(schema: TSchema): (value: unknown) => string | null {
  return (value) => {
    const check = compiledCheck(schema);
    if (check.Check(value)) return null;
    const first = check.Errors(value).First();
    return first ? `${first.path || "/"}: ${first.message}` : "does not match its schema";
  };
}

export interface AgentFiles {
  performance: WatchedFile;
  regime: WatchedFile;
  governor: WatchedFile;
  override: WatchedFile;
  all(): WatchedFile[];
  /** Resolves once every file has been read once (start-up). */
  ready(): Promise<void>;
  /**
   * `listener` runs after each check of a file that changed what is served or known of it
   * (WatchOptions.onChange), with that file. Must not throw.
   */
  onChange(listener: (file: WatchedFile) => void): void;
  close(): void;
}

/** The agent files: their key in AgentFiles, short name, path relative to NEOLIGHT_HOME, schema. */
export interface AgentFileSpec {
  key: "performance" | "regime" | "governor" | "override";
  name: string;
  relative: string;
  schema: TSchema;
}

/** CONTRACT section 1: the agent files, relative to NEOLIGHT_HOME. */
export const AGENT_FILE_SPECS: readonly AgentFileSpec[] = [
  {
    key: "performance",
    name: "performance_attribution",
    relative: "state/performance_attribution.json",
    schema: PerformanceAttribution,
  },
  { key: "regime", name: "market_regime", relative: "runtime/market_regime.json", schema: RegimeDocument },
  {
    key: "governor",
    name: "capital_governor_allocations",
    relative: "runtime/capital_governor_allocations.json",
    schema: Allocations,
  },
  { key: "override", name: "allocations_override", relative: "runtime/allocations_override.json", schema: Allocations },
];

/**
 * Watches the agent files under `home`. `holder` is told of each file found present (the
 * rule of holder.ts); default: none (the embedded mode always holds its files).
 */
export function watchAgentFiles(home: string, pollMs: number, log: Logger, holder?: FilesHolder): AgentFiles {
  const listeners: ((file: WatchedFile) => void)[] = [];
  const watched = {} as Record<AgentFileSpec["key"], WatchedFile>;
  for (const spec of AGENT_FILE_SPECS) {
    const path = join(home, spec.relative);
    const file: WatchedFile = watchJsonFile({
      name: spec.name,
      path,
      validate: validator(spec.schema),
      pollMs,
      log,
      home,
      onChange: () => {
        holder?.saw(file.state().present, path);
        for (const listener of listeners) listener(file);
      },
    });
    watched[spec.key] = file;
  }
  const { performance, regime, governor, override } = watched;
  const all = () => [performance, regime, governor, override];
  return {
    performance,
    regime,
    governor,
    override,
    all,
    async ready() {
      await Promise.all(all().map((f) => f.refresh()));
    },
    onChange(listener) {
      listeners.push(listener);
    },
    close() {
      for (const f of all()) f.close();
    },
  };
}

/** GET /meta/performance: the file, or the contract's empty default. */
export function performanceJson(files: AgentFiles): string {
  return files.performance.json() ?? JSON.stringify({ decisions: [], last_update: null });
}

/** GET /meta/regime: the file, or {regime: "UNKNOWN", timestamp: now}. */
export function regimeJson(files: AgentFiles, now = new Date()): string {
  return files.regime.json() ?? JSON.stringify({ regime: "UNKNOWN", timestamp: now.toISOString() });
}

/** GET /governor/allocations: the governor's file, else its override copy, else empty. */
export function allocationsJson(files: AgentFiles, now = new Date()): { json: string; source: string } {
  const governor = files.governor.json();
  if (governor !== null) return { json: governor, source: "capital_governor_allocations" };
  const override = files.override.json();
  if (override !== null) return { json: override, source: "allocations_override" };
  return { json: JSON.stringify({ allocations: {}, timestamp: now.toISOString() }), source: "default" };
}
