// Replicas for the shared-store e2e tests (issue 12): the real service process
// (test/e2e/process.ts) on port 0 with NEOLIGHT_DATABASE_URL and a NEOLIGHT_HOME of its own,
// and what the tests read from it: readiness, /status `store`, the served document, and a
// browser-like reader of the live stream.
import { expect } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { StoreStatus } from "../../src/store/shared";
import { type Json, waitFor } from "../helpers";
import { postJson, type ServiceProcess, spawnService } from "./process";

export interface ReplicaOptions {
  /** The database every replica of a test shares. */
  databaseUrl: string;
  /** This replica's NEOLIGHT_HOME (its local copy, log and agents' files); kept across a restart. */
  home: string;
  env?: Record<string, string>;
}

/**
 * The password every replica's URL carries: trust auth ignores it, and the tests check it
 * never appears in a log line, /status or an error (issue 12).
 */
export const DATABASE_PASSWORD = "e2e-pw-never-shown-91c4";

/** A replica: started once it has logged "service started", not necessarily ready. */
export function spawnReplica(options: ReplicaOptions): Promise<ServiceProcess> {
  const url = new URL(options.databaseUrl);
  url.password = DATABASE_PASSWORD;
  return spawnService({
    home: options.home,
    env: {
      NEOLIGHT_DATABASE_URL: url.toString(),
      METRICS_PATH: join(options.home, "state", "meta_metrics.json"),
      LOG_PATH: join(options.home, "logs", "dashboard_go.log"),
      // ? The storms post thousands of updates a second from one address; the limiter has its own tests.
      NEOLIGHT_WRITE_RATE: "0",
      NEOLIGHT_SOURCE_POLL_MS: "50",
      ...options.env,
    },
  });
}

/** The password is nowhere in what the replica said: stdout, stderr, its log file, /status. */
export async function expectNoPassword(svc: ServiceProcess, home: string): Promise<void> {
  const { stdout, stderr } = svc.output();
  const logFile = join(home, "logs", "dashboard_go.log");
  const logged = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
  const status = svc.proc.exitCode === null ? await (await fetch(`${svc.url}/status`)).text() : "";
  const found = Object.entries({ stdout, stderr, logged, status }).filter(([, text]) =>
    text.includes(DATABASE_PASSWORD),
  );
  expect(found.map(([where]) => where)).toEqual([]);
  if (status !== "") expect((JSON.parse(status) as { store: StoreStatus }).store.target).toContain("***");
}

/** GET /health/ready's status (a refused connection is 0). */
export async function readiness(svc: ServiceProcess): Promise<number> {
  try {
    return (await fetch(`${svc.url}/health/ready`)).status;
  } catch {
    return 0;
  }
}

/** Resolves once GET /health/ready answers 200: the first full load is done and the store reachable. */
export async function waitReady(svc: ServiceProcess, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => (await readiness(svc)) === 200, `replica :${svc.port} to be ready`, timeoutMs);
}

/** /status `store`. */
export async function storeOf(svc: ServiceProcess): Promise<StoreStatus> {
  return ((await (await fetch(`${svc.url}/status`)).json()) as { store: StoreStatus }).store;
}

/** GET /meta/metrics: the served document, as the execution router reads it. */
export async function documentOf(svc: ServiceProcess): Promise<Json> {
  return (await (await fetch(`${svc.url}/meta/metrics`)).json()) as Json;
}

/** Resolves once the replica has applied the shared sequence `seq` (or later). */
export async function waitSeq(svc: ServiceProcess, seq: number, timeoutMs = 10_000): Promise<StoreStatus> {
  return waitFor(
    async () => {
      const store = await storeOf(svc);
      return store.seq >= seq ? store : null;
    },
    `replica :${svc.port} to apply seq ${seq}`,
    timeoutMs,
  );
}

/** POST /meta/metrics that must be accepted; resolves with the shared sequence it was given. */
export async function post(svc: ServiceProcess, body: Json, path = "/meta/metrics"): Promise<number> {
  const res = await postJson(`${svc.url}${path}`, body);
  const answer = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`POST ${path} to :${svc.port}: ${res.status} ${JSON.stringify(answer)}`);
  if (typeof answer.seq !== "number") throw new Error(`POST ${path} answer without seq: ${JSON.stringify(answer)}`);
  return answer.seq;
}

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: Json;
  /** performance.now() when its frame was complete. */
  at: number;
}

export interface EventReader extends AsyncDisposable {
  readonly status: number;
  readonly events: SseEvent[];
  /** The id of the last event received: what a browser's EventSource resends on reconnect. */
  lastId(): string | undefined;
  /** Resolves with the first event received (or already received) that matches. */
  waitEvent(match: (e: SseEvent) => boolean, what: string, timeoutMs?: number): Promise<SseEvent>;
  close(): Promise<void>;
}

/**
 * Opens GET /events as a browser's EventSource does (Accept: text/event-stream, and
 * Last-Event-ID when resuming) and parses its frames as they arrive.
 */
export async function openEvents(svc: ServiceProcess, lastEventId?: string): Promise<EventReader> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
  const res = await fetch(`${svc.url}/events`, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  const reading = (async () => {
    if (res.body === null) return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      text += decoder.decode(value, { stream: true });
      const frames = text.split("\n\n");
      text = frames.pop() as string; // an incomplete frame waits for the rest
      for (const frame of frames) {
        const fields = new Map<string, string>();
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue; // a heartbeat comment
          const colon = line.indexOf(":");
          if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).replace(/^ /, ""));
        }
        const data = fields.get("data");
        if (data === undefined) continue;
        events.push({
          id: fields.get("id"),
          event: fields.get("event") ?? "message",
          data: JSON.parse(data) as Json,
          at: performance.now(),
        });
      }
    }
  })();
  const close = async () => {
    controller.abort();
    await reading;
  };
  return {
    status: res.status,
    events,
    lastId: () => events.findLast((e) => e.id !== undefined)?.id,
    waitEvent: (match, what, timeoutMs = 10_000) =>
      waitFor(() => events.find(match), `an event on :${svc.port}: ${what}`, timeoutMs),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The sequence in a live-stream id `<cluster>.<seq>`. */
export function seqOfId(id: string | undefined): number {
  const seq = Number(id?.slice(id.lastIndexOf(".") + 1));
  if (!Number.isInteger(seq)) throw new Error(`not a live-stream id: ${id}`);
  return seq;
}

/** The cluster in a live-stream id `<cluster>.<seq>`. */
export function clusterOfId(id: string | undefined): string {
  if (id === undefined || !id.includes(".")) throw new Error(`not a live-stream id: ${id}`);
  return id.slice(0, id.lastIndexOf("."));
}
