// The guardian's three sources (issue 11), plain logic without Elysia: the pause file
// watched like the agent files, the operator's pause and resume, and the store wrapper that
// resolves the served guardian in every commit that touches a source ("a pause wins",
// resolve.ts). A pause file change or an operator action is an update like a POST: it goes
// through the channel and the processor, so it is persisted, logged (transitions.ts, source
// `pause_file` / `operator`), recorded in history and streamed, by the same machinery.
//
// With a shared store (issue 12) the pause file lives on the agents' host only. The replica
// that holds the agents' files (../agent-files/holder.ts) commits the file's readings and
// mirrors into the file an operator action made on another replica; a replica that does
// not hold them never commits a reading (its "absent" would erase a pause), serves the
// shared sources, and takes an operator action by committing it alone.
import { join } from "node:path";
import { UnavailableError } from "../../http/errors";
import { clip, type Logger } from "../../log/logger";
import { removeFileDurably, writeFileDurably } from "../../store/atomic-file";
import type { DocumentState, DocumentStore, DocumentUpdate, JsonObject, UpdateSource } from "../../store/store";
import type { Processor } from "../../telemetry/processor";
import { ALWAYS_HOLDS, type FilesHolder } from "../agent-files/holder";
import { validator, type WatchedFile, watchJsonFile } from "../agent-files/service";
import type { Guardian, ServedGuardian } from "../meta/model";
import type { MetaService } from "../meta/service";
import {
  type GuardianSources,
  type GuardianView,
  type OperatorAction,
  PauseFileContent,
  type PauseReading,
  type PauseRequest,
  type ResumeRequest,
} from "./model";
import {
  DASHBOARD_WRITER,
  fileExpiry,
  filePause,
  GUARDIAN_SOURCES_KEY,
  isoSeconds,
  longerPause,
  resolveGuardian,
  sameDecision,
  sameReading,
  servedGuardianOf,
  sourcesOf,
} from "./resolve";

/** CONTRACT section 1: the pause signal, relative to NEOLIGHT_HOME. */
export const PAUSE_FILE = "state/guardian_pause.json";
/**
 * How often the pause file is re-checked at most, whatever NEOLIGHT_SOURCE_POLL_MS says.
 * The router must see a change within 1 s (issue 11); an fs watch event re-reads it at once
 * (20 ms debounce), and this poll is the bound where inotify sees nothing (NFS, overlay).
 */
export const PAUSE_FILE_POLL_MS = 250;
/** A pause file change the store could not take (queue full, disk failing) is retried this often. */
export const PAUSE_SYNC_RETRY_MS = 1000;
/** Seconds a client is told to wait after the pause file could not be written or removed. */
export const PAUSE_FILE_RETRY_AFTER_S = 5;
/** setTimeout's longest delay; an `until` further away is re-checked when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The store as the guardian wrapper returns it: also the sources of the served guardian. */
export interface GuardianStore extends DocumentStore {
  /** The sources the next commit resolves from (the committed ones). A fresh object each call. */
  sources(): GuardianSources;
}

/**
 * Returns `store` with the same contract, whose commit() resolves the served guardian in
 * every update that touches one of its sources: a hive report (an update of source `hive`
 * carrying `guardian`), or an update carrying GUARDIAN_SOURCES_KEY (a partial of the
 * sources: `pause_file`, `operator`). Such an update is committed with the resolved
 * `guardian` and the whole sources record; updates are folded in order, so the batch's last
 * one says what is served. Resolution happens here, at commit time, from the committed
 * sources of the document the store applies the batch over (commit's `prepare`: for a shared
 * store, the database's, under its head lock): an update refused (503) leaves nothing behind
 * for a later one to carry, and no replica resolves over sources another has replaced.
 * After a corrupt state file, the fail-safe pause stands in for the hive's report until the
 * hive reports (the sources of a corrupt file cannot be trusted).
 */
export function resolvingStore(store: DocumentStore, now: () => number = Date.now): GuardianStore {
  const initial = store.current().doc;
  let failSafe: Guardian | null =
    store.status().corrupt_found !== null && servedGuardianOf(initial).is_paused
      ? (initial.guardian as Guardian)
      : null;

  /**
   * Whether the fail-safe report still stands in over `doc`: its guardian is still the
   * fail-safe pause. ? With replicas, another one may have committed the hive's report since
   * (caught up here, not through this wrapper's commit): that report is trusted, and putting
   * the fail-safe back over it would pause every replica again until the hive's next one.
   */
  function standsIn(doc: Readonly<JsonObject>): boolean {
    return failSafe !== null && (doc.guardian === failSafe || Bun.deepEquals(doc.guardian, failSafe, true));
  }

  /** The sources a commit over `doc` resolves from: the fail-safe report stands in for the hive's. */
  function sourcesOver(doc: Readonly<JsonObject>): GuardianSources {
    const found = sourcesOf(doc);
    return failSafe === null || !standsIn(doc) ? found : { ...found, hive: { report: failSafe, received_at: null } };
  }

  function sources(): GuardianSources {
    return sourcesOver(store.current().doc);
  }

  /**
   * The batch with the guardian resolved, over `base`: the document the store applies it to.
   * ? Not store.current().doc: with replicas, memory may be behind the database (another
   * replica's operator pause not caught up yet), and a hive report resolved over it would
   * write back sources without that pause. The store hands the database's document, read
   * under the head lock (DocumentStore.commit's `prepare`).
   */
  function resolve(base: Readonly<JsonObject>, updates: readonly DocumentUpdate[]): DocumentUpdate[] {
    if (!standsIn(base)) failSafe = null;
    let current = sourcesOver(base);
    let previous: JsonObject = servedGuardianOf(base);
    const at = now();
    return updates.map((update) => {
      const report = update.source === "hive" && Object.hasOwn(update.set, "guardian");
      const partial = update.set[GUARDIAN_SOURCES_KEY] as Partial<GuardianSources> | undefined;
      if (!report && partial === undefined) return update;
      current = {
        ...current,
        ...partial,
        ...(report
          ? { hive: { report: update.set.guardian as Guardian, received_at: new Date(at).toISOString() } }
          : {}),
      };
      const guardian = resolveGuardian(current, previous, at);
      previous = guardian;
      return { ...update, set: { ...update.set, guardian, [GUARDIAN_SOURCES_KEY]: current } };
    });
  }

  return {
    current: () => store.current(),
    status: () => store.status(),
    close: () => store.close(),
    sources,
    async commit(updates, prepare) {
      const before = store.current();
      try {
        // ? A caller's own prepare runs first, over the same base: the guardian is resolved last.
        return await store.commit(updates, (base, batch) => resolve(base, prepare ? prepare(base, batch) : batch));
      } finally {
        // ? Once a commit is published its sources are written: they hold the fail-safe report.
        if (store.current() !== before) failSafe = null;
      }
    },
  };
}

/** Who asked, for the audit line and GET /guardian (both cut: they come from the client). */
export interface Caller {
  address: string | null;
  userAgent: string | null;
}

export type OperatorOutcome = "ok" | "failed";
export const OPERATOR_OUTCOMES: readonly OperatorOutcome[] = ["ok", "failed"];

export interface GuardianService {
  /** The pause file's watcher (its figures go to /status like an agent file's). */
  readonly file: WatchedFile;
  /**
   * Resolves once the pause file has been read and, when it changes what is served, applied
   * and durable: start-up awaits it before the first request (main.ts listens after).
   */
  ready(): Promise<void>;
  /**
   * Writes the pause file durably in NeoLight's shape (`by: "dashboard"`), then commits it
   * through the channel, and resolves with the served guardian once it is paused and on
   * disk. Rejects with UnavailableError (503) when the file could not be written (nothing
   * changed), or when the commit failed (the file is on disk: the watcher applies it once the
   * store can write, and the smart trader obeys it already). Actions are serialised.
   */
  pause(request: PauseRequest, caller: Caller): Promise<ServedGuardian>;
  /**
   * Removes the pause file durably and commits "not paused" (resumed by operator; a hive
   * pause reported before now no longer counts), resolving with the served guardian once
   * that is on disk. Rejects with UnavailableError (503) as pause() does.
   */
  resume(request: ResumeRequest, caller: Caller): Promise<ServedGuardian>;
  /** GET /guardian: the served guardian and each source as of now. */
  view(): GuardianView;
  /** Operator actions by action and outcome, since start-up (/metrics). */
  actions(): Record<"pause" | "resume", Record<OperatorOutcome, number>>;
  /** Stops watching and the timers. Idempotent. */
  close(): void;
}

/** An operator action committed on another replica that the holder writes into the pause file. */
type Mirror = { action: "pause"; at: string; content: PauseFileContent } | { action: "resume"; at: string };

export interface GuardianDeps {
  home: string;
  /** NEOLIGHT_SOURCE_POLL_MS; the pause file is polled at most every PAUSE_FILE_POLL_MS. */
  pollMs: number;
  store: GuardianStore;
  meta: MetaService;
  processor: Processor;
  log: Logger;
  now?: () => number;
  /**
   * The store is shared by several replicas (issue 12): another replica's commits reach the
   * processor's listeners as `remote`, and the rules of the holder apply. Default: false.
   */
  shared?: boolean;
  /** Whether this replica holds the agents' files (../agent-files/holder.ts). Default: ALWAYS_HOLDS. */
  holder?: FilesHolder;
}

export function createGuardian({
  home,
  pollMs,
  store,
  meta,
  processor,
  log,
  now = Date.now,
  shared = false,
  holder = ALWAYS_HOLDS,
}: GuardianDeps): GuardianService {
  const path = join(home, PAUSE_FILE);
  const counts = {
    pause: { ok: 0, failed: 0 },
    resume: { ok: 0, failed: 0 },
  };
  let closed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let expiry: ReturnType<typeof setTimeout> | undefined;
  let expiryAt: number | null = null;
  /** Operator actions and file syncs run one at a time, in order: neither sees the other half done. */
  let chain: Promise<unknown> = Promise.resolve();
  let syncQueued: Promise<void> | null = null;
  /** Failed attempts to apply the file since the last success (0: none failing). */
  let retrying = 0;
  /**
   * When the file went away, at the earliest (epoch ms): a removal is seen within one poll, so
   * one poll before it was seen, or just before this service removed it. null while present,
   * or absent since start-up. ? The earliest: an operator action it is compared with (mirrorOf)
   * is then taken as newer, and mirroring an operator's pause is the safe side.
   */
  let absentSince: number | null = null;
  /** `at` of the last operator action mirrored into the file: each is mirrored once. */
  let mirroredAt: string | null = null;
  /**
   * The file's reading as this replica last committed, mirrored, or found equal to the
   * store's; undefined before the first sync. A reading different from it is a change of
   * this host's file (shared store: only those are committed).
   */
  let lastLocal: PauseReading | undefined;

  const file = watchJsonFile({
    name: "guardian_pause",
    path,
    validate: validator(PauseFileContent),
    pollMs: Math.min(pollMs, PAUSE_FILE_POLL_MS),
    log,
    home,
    onChange: () => {
      const present = file.state().present;
      if (!present && absentSince === null) absentSince = now() - Math.min(pollMs, PAUSE_FILE_POLL_MS);
      if (present) absentSince = null;
      holder.saw(present, path);
      void sync();
    },
  });

  function serial<T>(work: () => Promise<T>): Promise<T> {
    const run = chain.then(work);
    chain = run.catch(() => {});
    return run;
  }

  /** The file as the watcher holds it: its last good content while it exists. */
  function reading(): PauseReading {
    const state = file.state();
    if (!state.present) return { state: "absent" };
    const content = file.value();
    if (state.serving !== "none" && content !== undefined) {
      return { state: "content", content: content as PauseFileContent };
    }
    return { state: "unreadable", error: state.last_error ?? "not read yet" };
  }

  /**
   * The pause file as this replica serves it: its own reading while it holds the agents'
   * files, else the shared one (the holder's, or an operator's action).
   */
  function servedReading(): PauseReading {
    return holder.holds() ? reading() : store.sources().pause_file;
  }

  /** Submits the changed sources; the store wrapper resolves the guardian at commit time. */
  function submit(partial: Partial<GuardianSources>, source: UpdateSource) {
    const sources = { ...store.sources(), ...partial };
    // ? The guardian here is what the commit will replace with its own resolution: it is
    // carried so the update says it touches the guardian (history, logs, the live stream).
    const guardian = resolveGuardian(sources, servedGuardianOf(store.current().doc), now());
    return meta.submit({ guardian, [GUARDIAN_SOURCES_KEY]: partial }, source);
  }

  /**
   * The operator action of `sources` the holder may write into its file: the shared pause
   * file reading is an operator's (a pause by "dashboard" still active, or a resume's
   * absence), differs from the file here, and was not mirrored yet (each action once: a
   * later file of an agent is never overwritten by it again).
   */
  function operatorMirror(sources: GuardianSources, local: PauseReading, at: number): Mirror | null {
    const operator = sources.operator;
    const shared = sources.pause_file;
    if (operator === null || operator.at === null || operator.at === mirroredAt || sameReading(local, shared)) {
      return null;
    }
    if (
      operator.last_action === "pause" &&
      shared.state === "content" &&
      shared.content.by === DASHBOARD_WRITER &&
      filePause(shared, at) !== null
    ) {
      return { action: "pause", at: operator.at, content: shared.content };
    }
    if (operator.last_action === "resume" && shared.state === "absent") return { action: "resume", at: operator.at };
    return null;
  }

  /**
   * The operator's action is newer than the file's last change seen here: its mtime, when it
   * went away, or never (absent since start-up: a pause wins). ? Only consulted when both
   * changed (start-up, or a file change crossing an action): the hosts' clocks must agree to
   * the second (NTP). An unreadable mtime is not "older": the file is then taken as newer.
   */
  function newerThanFile(mirror: Mirror): boolean {
    const state = file.state();
    const changedAt = state.present ? Date.parse(state.last_change ?? "") : (absentSince ?? Number.NEGATIVE_INFINITY);
    return Date.parse(mirror.at) > changedAt;
  }

  /** Writes (or removes) the file as the operator's route would have here; the watcher then agrees with the store. */
  async function mirrorInto(mirror: Mirror, sources: GuardianSources): Promise<void> {
    try {
      if (mirror.action === "pause") await writeFileDurably(path, `${JSON.stringify(mirror.content, null, 2)}\n`);
      else {
        absentSince = now();
        await removeFileDurably(path);
      }
    } catch (err) {
      if (mirror.action === "resume" && file.state().present) absentSince = null;
      failed(err, "guardian pause file not mirrored yet, retrying");
      return;
    }
    mirroredAt = mirror.at;
    // ? What the file now says is the store's, not a change of this host's to commit.
    lastLocal = mirror.action === "pause" ? { state: "content", content: mirror.content } : { state: "absent" };
    retrying = 0;
    log.warn("guardian pause file written for an operator action on another replica", {
      action: mirror.action,
      at: mirror.at,
      client: sources.operator?.client ?? null,
      path,
    });
    // ? Read back at once: until then this replica's reading differs from the shared one.
    await file.refresh();
  }

  /** A failed attempt to apply or mirror the file: one WARN per failing stretch, then a retry. */
  function failed(err: unknown, message: string): void {
    // ? One line per failing stretch, not one a second: the disk may stay full for hours.
    if (retrying++ === 0) {
      log.warn(message, { path, error: (err as Error).message, retry_ms: PAUSE_SYNC_RETRY_MS });
    }
    if (!closed) {
      clearTimeout(retry);
      retry = setTimeout(() => void sync(), PAUSE_SYNC_RETRY_MS);
      retry.unref?.();
    }
  }

  /**
   * Applies the file's reading, or its `until` passing, when either changes what is served.
   * ? Shared store, not holding the agents' files: the reading here is not the agents' (no
   * file is an "absent" that would erase the holder's pause), so only the passing of an
   * `until` is committed (re-resolved from the shared sources; the holder does the same, and
   * the second commit changes nothing).
   * ? Shared store, holding them: only a change of the file here is committed. When the
   * shared reading differs from an unchanged file, another replica changed it (an operator):
   * it is mirrored into the file when it is an operator's action, and never overwritten by
   * this file's older reading (that erased an operator's pause made while this replica
   * removed the file for the resume before it).
   */
  async function syncOnce(): Promise<void> {
    if (closed) return;
    const sources = store.sources();
    const served = servedGuardianOf(store.current().doc);
    const at = now();
    const reResolve = async (): Promise<void> => {
      if (sameDecision(resolveGuardian(sources, served, at), served)) return schedule();
      await apply({}, "pause_file");
    };
    if (!holder.holds()) return reResolve();
    const next = reading();
    if (shared && !sameReading(next, sources.pause_file)) {
      const changedHere = lastLocal === undefined || !sameReading(next, lastLocal);
      const mirror = operatorMirror(sources, next, at);
      if (mirror !== null && (!changedHere || newerThanFile(mirror))) return mirrorInto(mirror, sources);
      if (!changedHere) return reResolve();
    }
    const resolved = resolveGuardian({ ...sources, pause_file: next }, served, at);
    if (sameReading(next, sources.pause_file) && sameDecision(resolved, served)) {
      lastLocal = next;
      return schedule();
    }
    if (await apply({ pause_file: next }, "pause_file")) lastLocal = next;
  }

  /** Submits `partial`; false (logged, retried) when the store could not take it. */
  async function apply(partial: Partial<GuardianSources>, source: UpdateSource): Promise<boolean> {
    try {
      await submit(partial, source);
      if (retrying) log.info("guardian pause file applied", { path, attempts: retrying });
      retrying = 0;
      return true;
    } catch (err) {
      failed(err, "guardian pause file not applied yet, retrying");
      return false;
    }
  }

  function sync(): Promise<void> {
    if (closed) return Promise.resolve();
    syncQueued ??= serial(() => {
      // ? Cleared when the run starts: a change seen during it queues one more run.
      syncQueued = null;
      return syncOnce();
    });
    return syncQueued;
  }

  /** Re-resolves when the file's `until` passes (issue 11: within 1 s), however the state changed. */
  function schedule(state: DocumentState = store.current()): void {
    if (closed) return;
    const at = fileExpiry(sourcesOf(state.doc).pause_file, now());
    if (at === expiryAt) return;
    clearTimeout(expiry);
    expiryAt = at;
    if (at === null) return;
    expiry = setTimeout(
      () => {
        expiryAt = null;
        void sync();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, at - now())),
    );
    expiry.unref?.();
  }
  processor.onCommit((state, _batch, origin) => {
    schedule(state);
    // ? Another replica's commit may be an operator action this holder must write into the file.
    if (shared && origin === "remote" && holder.holds()) void sync();
  });
  // ? The agent files are read after the pause file: holding may begin once they are.
  holder.onHold(() => void sync());

  function caller(c: Caller) {
    return { address: c.address, user_agent: c.userAgent === null ? null : clip(c.userAgent) };
  }

  async function act<T>(action: "pause" | "resume", c: Caller, work: () => Promise<T>): Promise<T> {
    try {
      const result = await serial(work);
      counts[action].ok++;
      return result;
    } catch (err) {
      counts[action].failed++;
      log.error("guardian operator action failed", { action, error: (err as Error).message, ...caller(c) });
      throw err;
    }
  }

  function unavailable(what: string, err: unknown): UnavailableError {
    return new UnavailableError(
      `${what} ${path} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; nothing was changed, retry later`,
      PAUSE_FILE_RETRY_AFTER_S,
    );
  }

  function operatorAction(action: "pause" | "resume", at: number, reason: string | null, c: Caller): OperatorAction {
    // ? To the millisecond: compared with the hive report's arrival (resolve.ts), both our clock.
    return { last_action: action, at: new Date(at).toISOString(), reason, client: c.address };
  }

  return {
    file,
    async ready() {
      await file.refresh();
      await sync();
    },
    pause(request, c) {
      return act("pause", c, async () => {
        const at = now();
        const asked = request.minutes === undefined ? undefined : isoSeconds(at + request.minutes * 60_000);
        const until = longerPause(filePause(servedReading(), at), asked);
        // ? The smart trader's shape (CONTRACT section 6): no `until` at all for "until resumed".
        const content: PauseFileContent = {
          paused: true,
          reason: request.reason,
          ...(until === undefined ? {} : { until }),
          updated_at: isoSeconds(at),
          by: DASHBOARD_WRITER,
        };
        // ? Not holding the agents' files (issue 12): a file here is read by no agent, and
        // would make this replica a holder. The commit pauses every replica at once; the
        // holder writes the file for the trader (mirrorOf).
        const here = holder.holds();
        if (here) {
          try {
            await writeFileDurably(path, `${JSON.stringify(content, null, 2)}\n`);
          } catch (err) {
            throw unavailable("writing", err);
          }
          // ? The watcher takes the new file in now: GET /guardian right after the answer shows it.
          await file.refresh();
        }
        const { seq, state } = await submit(
          { pause_file: { state: "content", content }, operator: operatorAction("pause", at, request.reason, c) },
          "operator",
        );
        log.warn("guardian paused by operator", {
          reason: clip(request.reason),
          minutes: request.minutes ?? null,
          until: until ?? null,
          ...(until !== asked ? { kept_until_of_file: true } : {}),
          ...(here ? {} : { file_written_by_holder: true }),
          seq,
          ...caller(c),
        });
        return servedGuardianOf(state.doc);
      });
    },
    resume(request, c) {
      return act("resume", c, async () => {
        const at = now();
        const here = holder.holds();
        if (here) {
          try {
            await removeFileDurably(path);
          } catch (err) {
            throw unavailable("removing", err);
          }
          await file.refresh();
        }
        const reason = request.reason === undefined || request.reason === "" ? null : request.reason;
        const { seq, state } = await submit(
          { pause_file: { state: "absent" }, operator: operatorAction("resume", at, reason, c) },
          "operator",
        );
        log.warn("guardian resumed by operator", {
          reason: reason === null ? null : clip(reason),
          ...(here ? {} : { file_removed_by_holder: true }),
          seq,
          ...caller(c),
        });
        return servedGuardianOf(state.doc);
      });
    },
    view() {
      const sources = store.sources();
      const state = file.state();
      const t = now();
      const here = holder.holds();
      const shown = servedReading();
      const receivedAt = sources.hive?.received_at ?? null;
      return {
        guardian: servedGuardianOf(store.current().doc),
        sources: {
          hive: {
            report: sources.hive?.report ?? null,
            received_at: receivedAt,
            age_s: receivedAt === null ? null : Math.max(0, Math.round(t - Date.parse(receivedAt)) / 1000),
          },
          pause_file: here
            ? {
                path,
                held_here: true,
                present: state.present,
                active: filePause(shown, t) !== null,
                content: state.present ? ((file.value() as PauseFileContent | undefined) ?? null) : null,
                error: state.last_error,
              }
            : {
                path,
                held_here: false,
                present: shown.state !== "absent",
                active: filePause(shown, t) !== null,
                content: shown.state === "content" ? shown.content : null,
                error: shown.state === "unreadable" ? shown.error : null,
              },
          operator: sources.operator ?? { last_action: null, at: null, reason: null, client: null },
        },
      };
    },
    actions: () => ({ pause: { ...counts.pause }, resume: { ...counts.resume } }),
    close() {
      closed = true;
      file.close();
      clearTimeout(retry);
      clearTimeout(expiry);
    },
  };
}
