// Wiring of everything behind the routes: store, channel, processor and the feature
// services, in start-up order, and their shutdown in the reverse order (STYLE rule 4).
// Used by main.ts and by tests, so both run the very same parts.
import { dirname, join } from "node:path";
import type { SQL } from "bun";
import type { Config } from "./config";
import { type AccessPolicy, type ClientAddress, createAccessPolicy, peerAddress } from "./http/auth";
import { createHostCheck } from "./http/host-check";
import type { Logger } from "./log/logger";
import { ALWAYS_HOLDS, createFilesHolder } from "./modules/agent-files/holder";
import { type AgentFiles, watchAgentFiles } from "./modules/agent-files/service";
import { shareAgentFiles } from "./modules/agent-files/shared";
import { markRunning, startAlert, watchConditions } from "./modules/alerts/conditions";
import { type AlertsService, createAlerts, guardianAlert } from "./modules/alerts/service";
import { createGuardian, type GuardianService, resolvingStore } from "./modules/guardian/service";
import { logGuardianTransitions } from "./modules/guardian/transitions";
import { createHistory, type History, type HistoryOptions } from "./modules/history/service";
import {
  createMetaService,
  DEFAULT_MODE,
  HIDDEN_KEYS,
  type MetaService,
  pauseAfterCorruption,
  pauseWhileUnreachable,
  restoreDocument,
  servedDocument,
} from "./modules/meta/service";
import { createWriteTiming } from "./modules/metrics/persistence";
import { type MetricsService, startMetrics } from "./modules/metrics/service";
import { createRiskClient, type RiskClient } from "./modules/risk/service";
import { createSystemService, type SystemService } from "./modules/system/service";
import { createJsonFilePersistence } from "./store/json-file";
import { fileStoreStatus, type SharedStore, type StoreStatus } from "./store/shared";
import type { DocumentState } from "./store/store";
import { type DocumentStore, openStore, type Persistence } from "./store/store";
import { type Channel, createChannel } from "./telemetry/channel";
import { createHub, HEARTBEAT_MS, type Hub } from "./telemetry/hub";
import { type Envelope, type Processor, startProcessor } from "./telemetry/processor";

/**
 * The server ends a history transaction left idle this long: a replica that vanished in the
 * middle of a record must not hold its series lock. A record takes well under a second.
 */
const HISTORY_IDLE_IN_TRANSACTION_MS = 10_000;

export interface Services {
  config: Config;
  log: Logger;
  store: DocumentStore;
  /** Which store holds the document and whether it can be reached (issue 12): /status, /health/ready. */
  storeStatus(): StoreStatus;
  channel: Channel<Envelope>;
  processor: Processor;
  meta: MetaService;
  /** The guardian's pause file and operator actions (issue 11). */
  guardian: GuardianService;
  files: AgentFiles;
  risk: RiskClient;
  system: SystemService;
  /** The live stream's subscribers (GET /events), fed after each commit. */
  hub: Hub;
  /** Figures over time (GET /meta/history), recorded after each commit. */
  history: History;
  /** Who may write and read (tokens, loopback rule, rate limit). */
  access: AccessPolicy;
  /** Where a request came from; the TCP peer unless a test injects another. */
  clientAddress: ClientAddress;
  /** GET /metrics, per-request figures and source staleness (issue 6). */
  metrics: MetricsService;
  /** Telegram and webhook alerts (issue 13), off the request path. */
  alerts: AlertsService;
  /**
   * Closes the channel, waits until every accepted update is settled (persisted or
   * answered 503), tries once more to write what the store holds unsaved, ends the live
   * streams, writes the last history samples, stops watching files (the risk engine's
   * too), sends the queued alerts for at most a second, and last removes the run marker
   * (a clean stop). Idempotent.
   */
  close(): Promise<void>;
}

export interface ServiceOverrides {
  /** Replaces the JSON-file persistence (tests inject failing or recording backends). */
  persistence?: Persistence;
  /** Replaces the TCP peer address (app.handle has no socket: tests say who is asking). */
  clientAddress?: ClientAddress;
  /** The risk client's clock, epoch ms (tests move it instead of sleeping through its refresh). */
  riskClock?: () => number;
  /** History's timeouts, cache, thread code and start (tests shorten them or start a crashing thread). */
  history?: Pick<HistoryOptions, "queryTimeoutMs" | "cacheMs" | "workerEntry" | "writerStartDelayMs">;
  /** The alerts' first retry delay and condition check interval, ms (tests shorten them). */
  alerts?: { backoffBaseMs?: number; checkMs?: number };
}

/**
 * The document's store: the embedded JSON file, or with NEOLIGHT_DATABASE_URL the store
 * every replica shares (issue 12), whose JSON file at METRICS_PATH is then this replica's
 * local copy (served when the database cannot be reached at start-up).
 */
async function openDocumentStore(
  config: Config,
  log: Logger,
  persistence: Persistence,
  writeTiming: ReturnType<typeof createWriteTiming>,
): Promise<{ store: DocumentStore; shared: SharedStore | null }> {
  // The state is held to a POST's schemas; a corrupt one is served as paused at once.
  const restore = restoreDocument(log);
  const failSafe = pauseAfterCorruption(log);
  if (config.databaseUrl === null) {
    return {
      store: await openStore({ persistence: writeTiming.wrap(persistence), log, restore, failSafe }),
      shared: null,
    };
  }
  // ? Imported only here: the embedded mode never loads the PostgreSQL code, so it pays
  // nothing for it at start-up or in memory (issue 12).
  const { openPostgresStore } = await import("./store/postgres/store");
  const shared = await openPostgresStore({
    url: config.databaseUrl,
    log,
    restore,
    corruptFailSafe: failSafe,
    failSafe: pauseWhileUnreachable(log),
    staleMs: config.storeStaleS * 1000,
    commitTimeoutMs: config.storeTimeoutMs,
    localCopy: persistence,
  });
  return { store: shared, shared };
}

/** History's own client of the shared database; its target is the URL without the password. */
async function historyDatabase(url: string): Promise<{ sql: SQL; target: string }> {
  const { openClient, redactUrl } = await import("./store/postgres/connect");
  return { sql: openClient(url, { idleInTransactionMs: HISTORY_IDLE_IN_TRANSACTION_MS }), target: redactUrl(url) };
}

export async function startServices(config: Config, log: Logger, overrides: ServiceOverrides = {}): Promise<Services> {
  const startedAt = Date.now();
  const writeTiming = createWriteTiming();
  const { store: baseStore, shared } = await openDocumentStore(
    config,
    log,
    overrides.persistence ?? createJsonFilePersistence(config.metricsPath),
    writeTiming,
  );
  const storeStatus = () => (shared === null ? fileStoreStatus(baseStore) : shared.storeStatus());
  // ? The resolver inside the transition log: the log compares what is served before and
  // after each commit, and what is served is the resolved guardian.
  const guardianStore = resolvingStore(baseStore);
  // ? Before the transition log: a fail-safe pause after a corrupt file is reported as it is wrapped.
  const alerts = createAlerts({
    config,
    log,
    mode: () => guardianStore.current().doc.mode ?? DEFAULT_MODE,
    backoffBaseMs: overrides.alerts?.backoffBaseMs,
  });
  const runMarker = markRunning(dirname(config.metricsPath), log, startedAt);
  const store = logGuardianTransitions(guardianStore, log, (t) => alerts.notify(guardianAlert(t)));
  const channel = createChannel<Envelope>(config.queueCapacity);
  const processor = startProcessor(channel, store, log, { external: shared?.onExternal.bind(shared) });
  const meta = createMetaService({
    channel,
    store,
    log,
    maxDocumentKeys: config.maxDocumentKeys,
    maxDocumentBytes: config.maxDocumentMb * 1024 * 1024,
  });
  // ? Shared store: only the replica holding the agents' files commits their readings (issue
  // 12, agent-files/holder.ts); the embedded one always holds its own.
  const holder = shared === null ? ALWAYS_HOLDS : createFilesHolder(config.home, log);
  const guardian = createGuardian({
    home: config.home,
    pollMs: config.sourcePollMs,
    store: guardianStore,
    meta,
    processor,
    log,
    shared: shared !== null,
    holder,
  });
  // ? Before the first request (main.ts listens once this resolves): after a restart the
  // pause file, changed or expired while we were down, is what the router must be told.
  await guardian.ready();
  const localFiles = watchAgentFiles(config.home, config.sourcePollMs, log, holder);
  const files = shared === null ? localFiles : shareAgentFiles({ files: localFiles, store, meta, holder, log });
  await files.ready();
  // The live stream and the history hang off the processor, off the request path: a
  // failing listener is logged by the processor and never fails a commit.
  const hub = createHub({
    initial: store.current(),
    render: (state) => servedDocument(state, new Date()),
    hiddenKeys: HIDDEN_KEYS,
    // ? Shared: the database's id and sequence, the same on every replica, so a browser that
    // reconnects to another one resumes where it was (issue 12).
    ...(shared === null ? {} : { boot: shared.cluster, sequence: (state: DocumentState) => state.lastSeq }),
    // ? Bun closes a connection that stays silent for the idle timeout, streams included:
    // beat at least twice within it.
    heartbeatMs: Math.min(HEARTBEAT_MS, (config.idleTimeoutS * 1000) / 2),
    onDrop: (info) => log.warn("live subscriber dropped", info),
    // ? Sampled per client like every refusal line: a client retrying in a loop must not flood the log.
    onClientLimit: (info) => {
      if (log.admit("live stream refused", info.client)) log.warn("live stream refused", info);
    },
  });
  processor.onCommit(hub.publish);
  // ? With a shared store history is in the same database (issue 12: every replica answers
  // /meta/history alike), on a pool of its own: a 30-day chart never queues a commit.
  const historyDb = config.databaseUrl === null ? null : await historyDatabase(config.databaseUrl);
  const history = await createHistory({
    ...(historyDb === null ? {} : { database: historyDb }),
    path: join(config.home, "state", "history.db"),
    days: config.historyDays,
    maxSeries: config.historyMaxSeries,
    answerSeries: config.historyAnswerSeries,
    maxBytes: config.historyMaxMb * 1024 * 1024,
    minFreeBytes: config.minFreeMb * 1024 * 1024,
    log,
    // ? This replica's own files: the holder records the governor's allocations, once; a
    // replica serving the shared copy would record the same points again (issue 12).
    files: localFiles,
    ...overrides.history,
  });
  // ? Local commits only: a change another replica committed was recorded by that replica.
  processor.onCommit((state, batch, origin) => {
    if (origin === "local") history.onCommit(state, batch);
  });
  const risk = createRiskClient({
    url: config.riskUrl,
    timeoutMs: config.riskTimeoutMs,
    home: config.home,
    pollMs: config.sourcePollMs,
    log,
    probeMs: config.staleRiskS * 1000,
    now: overrides.riskClock,
  });
  const metrics = startMetrics({
    config,
    log,
    store,
    storeStatus,
    processor,
    meta,
    files,
    guardian,
    risk,
    startedAt,
    writeLatency: writeTiming.latency,
    sseSubscribers: () => hub.stats().subscribers,
    history,
    alerts,
  });
  const conditions = watchConditions(
    {
      staleness: () => metrics.staleness(),
      persistence: () => store.status(),
      queue: () => meta.stats(),
      store: storeStatus,
    },
    alerts,
    log,
    overrides.alerts?.checkMs,
  );
  alerts.notify(startAlert(runMarker));
  const access = createAccessPolicy({
    token: config.token,
    readToken: config.readToken,
    writeRate: config.writeRate,
    writeBurst: config.writeBurst,
    log,
    onWriteRefused: (reason) => metrics.countRejected(reason),
    hosts: createHostCheck({ allowed: config.allowedHosts, bindHost: config.host }),
  });
  const system = createSystemService({
    startedAt,
    metricsPath: config.metricsPath,
    logPath: config.logPath,
    log,
    store,
    storeStatus,
    meta,
    files,
    pauseFile: guardian.file,
    risk,
    hub,
    history,
    access,
    metrics,
    alerts,
  });
  let closing: Promise<void> | undefined;
  return {
    config,
    log,
    store,
    storeStatus,
    channel,
    processor,
    meta,
    guardian,
    files,
    risk,
    system,
    hub,
    history,
    access,
    clientAddress: overrides.clientAddress ?? peerAddress,
    metrics,
    alerts,
    close() {
      closing ??= (async () => {
        // ? First: a pause file change seen from here on is applied at the next start-up.
        guardian.close();
        channel.close();
        await processor.done;
        await store.close();
        hub.close();
        await history.close();
        await historyDb?.sql.close();
        files.close();
        conditions.close();
        metrics.close();
        risk.close();
        // ? Last but the marker: what the shutdown itself reported still gets its second.
        await alerts.close();
        runMarker.clear();
      })();
      return closing;
    },
  };
}
