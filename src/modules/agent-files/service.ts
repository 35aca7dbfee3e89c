// Files the NeoLight agents write (performance attribution, regime, allocations), served
// from an in-memory copy. CONTRACT section 1: agents write in place, not atomically, so
// a read can see an empty, truncated or half-rewritten file. Such a read never reaches a
// client: the last good copy keeps being served, one WARN is logged per bad stretch, and
// the new content is picked up as soon as the file is whole again.
import { type FSWatcher, watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Logger } from "../../log/logger";
import { Allocations, type FileSource, PerformanceAttribution, RegimeDocument } from "./model";

/** A file larger than this is not an agent document; it is reported, not read. */
export const MAX_AGENT_FILE_BYTES = 16 * 1024 * 1024;
/** Change events come in bursts while an agent writes; coalesce them for this long. */
const EVENT_DEBOUNCE_MS = 20;

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
}

export function watchJsonFile({ name, path, validate, pollMs, log }: WatchOptions): WatchedFile {
  let good: { value: unknown; json: string } | null = null;
  let seen = ""; // signature (inode, size, mtime) of the version last read
  let bad = false;
  let running: Promise<void> | null = null;
  let again = false;
  let debounce: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined;
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

  async function check(): Promise<void> {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        reject("stat-error", (err as Error).message);
        return;
      }
      if (figures.present) log.info("agent file removed", { source: name, path });
      figures.present = false;
      figures.serving = "none";
      good = null;
      seen = "";
      bad = false;
      return;
    }
    figures.present = true;
    figures.last_change = info.mtime.toISOString();
    const sig = `${info.ino}:${info.size}:${info.mtimeMs}`;
    if (sig === seen && !bad) return;
    if (info.size > MAX_AGENT_FILE_BYTES) return reject(sig, `file is larger than ${MAX_AGENT_FILE_BYTES} bytes`);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      return reject(sig, (err as Error).message);
    }
    if (text.trim() === "") return reject(sig, "file is empty");
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return reject(sig, `not valid JSON: ${(err as Error).message}`);
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
        await check().catch((err) => reject("check-error", (err as Error).message));
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

/** Compiles a schema into a WatchOptions.validate: null, or the first problem with its path. */
export function validator(schema: TSchema): (value: unknown) => string | null {
  const check = TypeCompiler.Compile(schema);
  return (value) => {
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
  close(): void;
}

/** CONTRACT section 1: the agent files, relative to NEOLIGHT_HOME. */
export function watchAgentFiles(home: string, pollMs: number, log: Logger): AgentFiles {
  const file = (name: string, relative: string, schema: TSchema) =>
    watchJsonFile({ name, path: join(home, relative), validate: validator(schema), pollMs, log });
  const performance = file("performance_attribution", "state/performance_attribution.json", PerformanceAttribution);
  const regime = file("market_regime", "runtime/market_regime.json", RegimeDocument);
  const governor = file("capital_governor_allocations", "runtime/capital_governor_allocations.json", Allocations);
  const override = file("allocations_override", "runtime/allocations_override.json", Allocations);
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
