// The agent files across replicas (issue 12). The replica holding the agents' files
// (holder.ts) commits each file's last good content, and when it read it, under one hidden
// key of the document (AGENT_FILES_KEY); a replica with no local copy of a file serves that
// shared copy, with the holder's dates, on /meta/regime, /meta/performance and
// /governor/allocations, and to /metrics, history and /status alike: they all read the
// WatchedFile this wraps. Only with a shared store: the embedded mode never writes the key.
import { compiledCheck } from "../../http/json-body";
import type { Logger } from "../../log/logger";
import type { DocumentStore, UpdateSource } from "../../store/store";
import type { MetaService } from "../meta/service";
import type { FilesHolder } from "./holder";
import { AGENT_FILES_KEY, type SharedAgentFile, SharedAgentFile as SharedAgentFileSchema } from "./model";
import { AGENT_FILE_SPECS, type AgentFileSpec, type AgentFiles, validator, type WatchedFile } from "./service";

/**
 * Shortest time between two commits of the agent files: agents rewrite them every few
 * seconds at most, replicas need them within a second or two, and a burst of rewrites (the
 * governor writes both its files) becomes one commit.
 */
export const SHARE_INTERVAL_MS = 1000;
/**
 * A rewrite that leaves a file's content unchanged is committed only once its mtime moved
 * this much since the committed one: the other replicas judge staleness on it
 * (NEOLIGHT_STALE_FILES_S, 3600 s by default), which a minute does not move, and a regime
 * detector rewriting the same regime every second must not cost a commit a second.
 */
export const SHARED_DATES_REFRESH_MS = 60_000;
/** Who the shared copy's updates are from (the transition log and the processor's lines name it). */
const SHARE_SOURCE: UpdateSource = "agent_files";

/** A shared copy as served: validated once per committed value. */
interface SharedCopy {
  value: unknown;
  json: string;
  read_at: string | null;
  changed_at: string | null;
}

export interface ShareDeps {
  /** This replica's own watchers of the agent files. */
  files: AgentFiles;
  store: Pick<DocumentStore, "current">;
  meta: Pick<MetaService, "submit">;
  holder: FilesHolder;
  log: Logger;
  now?: () => number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Returns `files` serving, for each file without a local copy (it does not exist here, or
 * never was valid), the copy the holder shared; and, while this replica holds the files,
 * commits what it reads (coalesced: at most one commit per SHARE_INTERVAL_MS, and only when
 * a file's content changed, appeared, went away, or its mtime moved SHARED_DATES_REFRESH_MS).
 * A commit that fails (503) is retried at the next interval; one WARN per failing stretch.
 */
export function shareAgentFiles({ files, store, meta, holder, log, now = Date.now }: ShareDeps): AgentFiles {
  const validators = new Map(AGENT_FILE_SPECS.map((spec) => [spec.name, validator(spec.schema)]));
  /** Committed values (never mutated) -> what they serve; null when unusable (logged once). */
  const copies = new WeakMap<object, SharedCopy | null>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastCommitAt = Number.NEGATIVE_INFINITY;
  let running: Promise<void> | null = null;
  let again = false;
  let failing = 0;
  let closed = false;

  function sharedRecord(): Record<string, unknown> {
    const record = store.current().doc[AGENT_FILES_KEY];
    return isObject(record) ? record : {};
  }

  /** The shared copy of the file `name`, or null. O(1) but for the first call per committed value. */
  function sharedCopy(name: string): SharedCopy | null {
    const entry = sharedRecord()[name];
    if (!isObject(entry)) return null;
    const cached = copies.get(entry);
    if (cached !== undefined) return cached;
    let copy: SharedCopy | null = null;
    const validate = validators.get(name);
    const problem =
      validate === undefined
        ? "not an agent file"
        : compiledCheck(SharedAgentFileSchema).Check(entry)
          ? validate(entry.content)
          : "not a shared agent file entry";
    if (problem === null) {
      const { content, read_at, changed_at } = entry as SharedAgentFile;
      copy = { value: content, json: JSON.stringify(content), read_at, changed_at };
    } else {
      // ? Another version's, or a hand edit of the database: the default is served, never
      // a document that breaks the file's schema. Once per committed value.
      log.warn("shared agent file copy unusable", { source: name, problem });
    }
    copies.set(entry, copy);
    return copy;
  }

  /** `local` serving the shared copy while it has none of its own. */
  function served(local: WatchedFile, spec: AgentFileSpec): WatchedFile {
    return {
      json: () => local.json() ?? sharedCopy(spec.name)?.json ?? null,
      value: () => (local.json() !== null ? local.value() : sharedCopy(spec.name)?.value),
      state() {
        const state = local.state();
        if (state.serving !== "none") return state;
        const copy = sharedCopy(spec.name);
        if (copy === null) return state;
        return { ...state, serving: "shared", last_good_read: copy.read_at, last_good_change: copy.changed_at };
      },
      refresh: () => local.refresh(),
      close: () => local.close(),
    };
  }

  /** What this replica holds, when it differs from what is shared; null when they agree. */
  function changedRecord(): Record<string, SharedAgentFile> | null {
    const shared = sharedRecord();
    const next: Record<string, SharedAgentFile> = {};
    let changed = false;
    for (const spec of AGENT_FILE_SPECS) {
      const local = files[spec.key];
      const json = local.json();
      const had = sharedCopy(spec.name);
      if (json === null) {
        if (Object.hasOwn(shared, spec.name)) changed = true;
        continue;
      }
      const state = local.state();
      next[spec.name] = { content: local.value(), read_at: state.last_good_read, changed_at: state.last_good_change };
      if (had === null || had.json !== json) changed = true;
      else if (had.changed_at !== state.last_good_change) {
        const moved = Date.parse(state.last_good_change ?? "") - Date.parse(had.changed_at ?? "");
        // ? An unreadable date on either side is a change: the shared one is then refreshed.
        if (!(Math.abs(moved) < SHARED_DATES_REFRESH_MS)) changed = true;
      }
    }
    return changed ? next : null;
  }

  async function commitOnce(): Promise<void> {
    const record = changedRecord();
    if (record === null) return;
    lastCommitAt = now();
    try {
      await meta.submit({ [AGENT_FILES_KEY]: record }, SHARE_SOURCE);
      if (failing > 0) log.info("agent files shared", { attempts: failing });
      failing = 0;
    } catch (err) {
      if (closed) return;
      // ? One line per failing stretch: the database may stay away for minutes.
      if (failing++ === 0) {
        log.warn("agent files not shared yet, retrying", {
          error: (err as Error).message,
          retry_ms: SHARE_INTERVAL_MS,
        });
      }
      again = true;
    }
  }

  /** Commits what changed, at most once per SHARE_INTERVAL_MS; never two at once. */
  function schedule(): void {
    if (closed || !holder.holds()) return;
    if (running !== null) {
      again = true;
      return;
    }
    if (timer !== undefined) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        running = commitOnce().finally(() => {
          running = null;
          if (again) {
            again = false;
            schedule();
          }
        });
      },
      Math.max(0, lastCommitAt + SHARE_INTERVAL_MS - now()),
    );
    timer.unref?.();
  }

  files.onChange(() => schedule());
  holder.onHold(() => schedule());

  const wrapped = Object.fromEntries(
    AGENT_FILE_SPECS.map((spec) => [spec.key, served(files[spec.key], spec)]),
  ) as Record<AgentFileSpec["key"], WatchedFile>;
  const { performance, regime, governor, override } = wrapped;
  const all = () => [performance, regime, governor, override];

  return {
    performance,
    regime,
    governor,
    override,
    all,
    async ready() {
      await files.ready();
      schedule();
    },
    onChange: (listener) =>
      files.onChange((file) => listener(all().find((f) => f.state().path === file.state().path) ?? file)),
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      files.close();
    },
  };
}
