// Wiring of everything behind the routes: store, channel, processor and the feature
// services, in start-up order, and their shutdown in the reverse order (STYLE rule 4).
// Used by main.ts and by tests, so both run the very same parts.
import type { Config } from "./config";
import type { Logger } from "./log/logger";
import { type AgentFiles, watchAgentFiles } from "./modules/agent-files/service";
import { createMetaService, type MetaService } from "./modules/meta/service";
import { createWriteTiming } from "./modules/metrics/persistence";
import { type MetricsService, startMetrics } from "./modules/metrics/service";
import { createRiskClient, type RiskClient } from "./modules/risk/service";
import { createSystemService, type SystemService } from "./modules/system/service";
import { createJsonFilePersistence } from "./store/json-file";
import { type DocumentStore, openStore, type Persistence } from "./store/store";
import { type Channel, createChannel } from "./telemetry/channel";
import { type Envelope, type Processor, startProcessor } from "./telemetry/processor";

export interface Services {
  config: Config;
  log: Logger;
  store: DocumentStore;
  channel: Channel<Envelope>;
  processor: Processor;
  meta: MetaService;
  files: AgentFiles;
  risk: RiskClient;
  system: SystemService;
  /** GET /metrics, per-request figures and source staleness (issue 6). */
  metrics: MetricsService;
  /**
   * Closes the channel, waits until every accepted update is settled (persisted or
   * answered 503), and stops watching files. Idempotent.
   */
  close(): Promise<void>;
}

export interface ServiceOverrides {
  /** Replaces the JSON-file persistence (tests inject failing or recording backends). */
  persistence?: Persistence;
}

export async function startServices(config: Config, log: Logger, overrides: ServiceOverrides = {}): Promise<Services> {
  const startedAt = Date.now();
  const writeTiming = createWriteTiming();
  const store = await openStore({
    persistence: writeTiming.wrap(overrides.persistence ?? createJsonFilePersistence(config.metricsPath, log)),
  });
  const channel = createChannel<Envelope>(config.queueCapacity);
  const processor = startProcessor(channel, store, log);
  const meta = createMetaService({ channel, store, log });
  const files = watchAgentFiles(config.home, config.sourcePollMs, log);
  await files.ready();
  const risk = createRiskClient({ url: config.riskUrl, timeoutMs: config.riskTimeoutMs, log });
  const metrics = startMetrics({
    config,
    log,
    store,
    processor,
    meta,
    files,
    risk,
    startedAt,
    writeLatency: writeTiming.latency,
  });
  const system = createSystemService({
    startedAt,
    metricsPath: config.metricsPath,
    logPath: config.logPath,
    store,
    meta,
    files,
    risk,
    metrics,
  });
  let closing: Promise<void> | undefined;
  return {
    config,
    log,
    store,
    channel,
    processor,
    meta,
    files,
    risk,
    system,
    metrics,
    close() {
      closing ??= (async () => {
        channel.close();
        await processor.done;
        files.close();
        metrics.close();
      })();
      return closing;
    },
  };
}
