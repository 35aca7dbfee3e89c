// The parts of one replica that the agents' files and the pause file go through (issue 12),
// wired as services.ts wires them, over a store the test opens (the JSON file, or the shared
// PostgreSQL store): the guardian's store wrapper, the transition log, channel, processor,
// meta service, the pause file's guardian and the agent files. Real parts; no HTTP.

import { createMemoryLogger, type MemoryLogger } from "../src/log/logger";
import { ALWAYS_HOLDS, createFilesHolder, type FilesHolder } from "../src/modules/agent-files/holder";
import { type AgentFiles, watchAgentFiles } from "../src/modules/agent-files/service";
import { shareAgentFiles } from "../src/modules/agent-files/shared";
import {
  createGuardian,
  type GuardianService,
  type GuardianStore,
  resolvingStore,
} from "../src/modules/guardian/service";
import { logGuardianTransitions } from "../src/modules/guardian/transitions";
import { createMetaService, type MetaService } from "../src/modules/meta/service";
import type { DocumentState, DocumentStore, DocumentUpdate, JsonObject, UpdateSource } from "../src/store/store";
import { type Channel, createChannel } from "../src/telemetry/channel";
import { type Envelope, type Processor, startProcessor } from "../src/telemetry/processor";

/** Polling of the files in these tests: fast, so that waits are short. */
export const TEST_POLL_MS = 50;

export interface Replica extends AsyncDisposable {
  home: string;
  log: MemoryLogger;
  /** The guardian's wrapper over the store (sources()). */
  store: GuardianStore;
  processor: Processor;
  meta: MetaService;
  guardian: GuardianService;
  /** The agent files as the routes serve them (shared copy where there is no local one). */
  files: AgentFiles;
  holder: FilesHolder;
  /** What this replica's guardian and agent files submitted, in order (accepted or not). */
  submitted: { set: JsonObject; source: UpdateSource }[];
  /** The meta service without the recording (a joining replica records its own). */
  unrecorded: MetaService;
}

export interface ReplicaOptions {
  home: string;
  /** The store; closed with the replica unless it joins another. */
  base: DocumentStore;
  /** The store is shared by several replicas: the holder rule applies. Default: false. */
  shared?: boolean;
  /** A shared store's feed of other replicas' changes (SharedStore.onExternal). */
  external?: (listener: (state: DocumentState, batch: readonly DocumentUpdate[]) => void) => void;
  /**
   * Another replica of this process whose store, channel and processor this one uses (one
   * file store has one writer): its own guardian and agent files, as a second host's.
   */
  join?: Replica;
}

export async function startReplica({ home, base, shared = false, external, join }: ReplicaOptions): Promise<Replica> {
  const log = createMemoryLogger();
  let channel: Channel<Envelope> | undefined;
  let store: GuardianStore;
  let processor: Processor;
  let meta: MetaService;
  if (join === undefined) {
    store = resolvingStore(base);
    const logged = logGuardianTransitions(store, log);
    channel = createChannel<Envelope>(100);
    processor = startProcessor(channel, logged, log, { external });
    meta = createMetaService({ channel, store: logged, log });
  } else {
    ({ store, processor } = join);
    meta = join.unrecorded;
  }
  const submitted: Replica["submitted"] = [];
  const inner = meta;
  // ? Recorded on the way through to the real meta service: which replica asked for what.
  meta = {
    ...inner,
    submit(set, source, coerced, overLimit) {
      submitted.push({ set, source });
      return inner.submit(set, source, coerced, overLimit);
    },
  };
  const holder = shared ? createFilesHolder(home, log) : ALWAYS_HOLDS;
  const guardian = createGuardian({ home, pollMs: TEST_POLL_MS, store, meta, processor, log, shared, holder });
  await guardian.ready();
  const local = watchAgentFiles(home, TEST_POLL_MS, log, holder);
  const files = shared ? shareAgentFiles({ files: local, store, meta, holder, log }) : local;
  await files.ready();
  return {
    home,
    log,
    store,
    processor,
    meta,
    guardian,
    files,
    holder,
    submitted,
    unrecorded: inner,
    async [Symbol.asyncDispose]() {
      guardian.close();
      files.close();
      if (channel !== undefined) {
        channel.close();
        await processor.done;
        await base.close();
      }
    },
  };
}
