// Alerts that reach a person (issue 13): Telegram and a webhook (Slack, Mattermost, your
// own receiver). notify() only queues: delivery runs in the background, so a slow or dead
// notifier never slows or fails a POST, and the router is never kept waiting on a chat.
// Each notifier has its own bounded queue (the oldest alert is dropped and counted when it
// is full), retries with back-off, honours a 429's retry-after, keeps under a per-minute
// cap, and logs a failure once per outage. Secrets (the bot token, the webhook URL and
// token) are removed from every error before it is logged or shown.
import { hostname } from "node:os";
import type { Config } from "../../config";
import { clip, type Logger } from "../../log/logger";
import type { GuardianTransition } from "../guardian/transitions";
import type { AlertEvent, AlertSeverity, AlertsStatus, NotifierStatus, WebhookPayload } from "./model";

/** Alerts waiting per notifier: a 3 a.m. incident makes a handful; more is a flood, oldest go first. */
export const ALERT_QUEUE_CAPACITY = 100;
/** One attempt at most this long: Telegram answers in well under a second when it is up. */
export const ATTEMPT_TIMEOUT_MS = 5000;
/** Attempts per alert before it is given up (dropped): with the back-off, ~30 s of outage. */
export const MAX_ATTEMPTS = 5;
/** First retry after this; doubled each time (2, 4, 8, 16 s), capped at MAX_BACKOFF_MS. */
export const BACKOFF_BASE_MS = 2000;
const MAX_BACKOFF_MS = 60_000;
/** Telegram lets a bot send 20 messages a minute to one group; the webhook gets the same cap. */
export const MAX_ALERTS_PER_MINUTE = 20;
const MINUTE_MS = 60_000;
/** A 429's retry-after is obeyed up to this; longer, we try again then (and get told again). */
const MAX_RETRY_AFTER_MS = 300_000;
/** Shutdown sends what it can in this long, then gives the rest up (counted as dropped). */
export const FLUSH_MS = 1000;
/** Error text kept for the log and /status: a whole HTML error page helps nobody. */
const MAX_ERROR_CHARS = 200;

const SERVICE_NAME = "neolight-dashboard";

/** One thing that happened, as notify() is given it. */
export interface AlertInput {
  event: AlertEvent;
  severity: AlertSeverity;
  /** One line, without the mode's mark. */
  summary: string;
  /** The event's fields, as its log line has them (client text already cut). */
  details: Record<string, unknown>;
}

export interface AlertsService {
  /**
   * Queues the alert for every notifier, unless NEOLIGHT_ALERTS mutes its event. Never
   * throws and never waits: it may run inside a commit. The mode's mark is taken now, so a
   * message says the mode in force when it happened.
   */
  notify(alert: AlertInput): void;
  /** What /status `alerts` shows: the events sent and each notifier's counts, no secrets. */
  status(): AlertsStatus;
  /**
   * Stops taking alerts, sends what is queued for at most FLUSH_MS (one attempt each), then
   * aborts what is in flight; the rest is counted as dropped and logged. Idempotent.
   */
  close(): Promise<void>;
}

export interface AlertsOptions {
  config: Pick<
    Config,
    "telegramBotToken" | "telegramChatId" | "telegramApiUrl" | "alertWebhookUrl" | "alertWebhookToken" | "alerts"
  >;
  log: Logger;
  /** The served document's `mode` (TEST_MODE, PAPER_TRADING_MODE, LIVE_MODE...). */
  mode: () => unknown;
  /** Epoch ms. */
  now?: () => number;
  /** First retry delay (tests shorten it). Default: BACKOFF_BASE_MS. */
  backoffBaseMs?: number;
}

/** The smart trader's marks: 🟣 TEST, 🟢 PAPER, 🔴 LIVE. */
export function modeMark(mode: unknown): string {
  const m = typeof mode === "string" ? mode.toUpperCase() : "";
  if (m.includes("LIVE")) return "🔴 LIVE";
  if (m.includes("PAPER")) return "🟢 PAPER";
  if (m.includes("TEST")) return "🟣 TEST";
  // ? Not a mark of the three: a wrong one would tell the reader which money is at stake.
  return `⚪ ${m === "" ? "MODE UNKNOWN" : clip(m)}`;
}

/** `key: value` lines of the details, null and absent left out. */
function detailLines(details: Record<string, unknown>): string[] {
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
}

/** A queued alert: the payload every notifier sends, made once. */
interface Queued {
  payload: WebhookPayload;
}

/** What one attempt came to. */
type Outcome = { ok: true } | { ok: false; error: string; retry: boolean; waitMs?: number; status?: number };

interface Transport {
  readonly name: NotifierStatus["name"];
  readonly target: string;
  send(payload: WebhookPayload, signal: AbortSignal): Promise<Outcome>;
}

/** Seconds from a Retry-After header or Telegram's parameters.retry_after, as ms; null when none. */
function retryAfterMs(seconds: unknown): number | undefined {
  const n = typeof seconds === "string" ? Number(seconds) : seconds;
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, n * 1000);
}

/** Whether another attempt may succeed: the receiver is busy or broken, not refusing us. */
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/** The Bot API's sendMessage; its answers are `{ok, description, parameters: {retry_after}}`. */
function telegram(api: string, token: string, chatId: string): Transport {
  const url = `${api}/bot${token}/sendMessage`;
  return {
    name: "telegram",
    target: `${new URL(api).origin} chat ${chatId}`,
    async send(payload, signal) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ chat_id: chatId, text: payload.text, disable_web_page_preview: true }),
        signal,
      });
      const text = await res.text().catch(() => "");
      let body: { ok?: unknown; description?: unknown; parameters?: { retry_after?: unknown } } | null = null;
      try {
        body = JSON.parse(text);
      } catch {
        // ? Not the Bot API answering (a proxy's error page): its text is the description.
      }
      if (res.ok && body?.ok === true) return { ok: true };
      const description = typeof body?.description === "string" ? body.description : text || res.statusText;
      return {
        ok: false,
        status: res.status,
        error: `HTTP ${res.status}: ${description}`,
        retry: retryable(res.status),
        waitMs: retryAfterMs(body?.parameters?.retry_after ?? res.headers.get("retry-after")),
      };
    },
  };
}

/** A JSON POST of the payload; any 2xx is delivered. */
function webhook(url: string, token: string | null): Transport {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return {
    name: "webhook",
    target: new URL(url).origin,
    async send(payload, signal) {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(payload), signal });
      const text = await res.text().catch(() => "");
      if (res.ok) return { ok: true };
      return {
        ok: false,
        status: res.status,
        error: `HTTP ${res.status}: ${text || res.statusText}`,
        retry: retryable(res.status),
        waitMs: retryAfterMs(res.headers.get("retry-after")),
      };
    },
  };
}

/** Replaces every secret (and the forms a URL takes in an error) with <secret>. */
function scrubber(secrets: readonly (string | null)[]): (text: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (s === null || s === "") continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    try {
      const url = new URL(s);
      forms.add(url.href);
      // ? A Slack webhook's secret is its path: an error may name the path alone.
      if (url.pathname.length > 1) forms.add(url.pathname + url.search);
    } catch {}
  }
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const f of sorted) out = out.replaceAll(f, "<secret>");
    return out;
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

interface Notifier {
  readonly transport: Transport;
  enqueue(item: Queued): void;
  status(): NotifierStatus;
  /** Resolves when the queue is empty and nothing is in flight. */
  idle(): Promise<void>;
  /** Gives up what is still queued (counted as dropped); returns how many. */
  abandon(): number;
}

interface DeliveryContext {
  log: Logger;
  now: () => number;
  backoffBaseMs: number;
  scrub: (text: string) => string;
  /** Aborted at the end of the flush: in-flight attempts and waits end. */
  stop: AbortSignal;
  /** True once close() began: one attempt per alert, no waiting for retries. */
  closing: () => boolean;
}

function startNotifier(transport: Transport, ctx: DeliveryContext): Notifier {
  const { log, now, scrub } = ctx;
  const queue: Queued[] = [];
  const counts = { sent: 0, failed: 0, dropped: 0 };
  let failing = false;
  /** Failed attempts in the current outage, for the recovery line. */
  let outageAttempts = 0;
  let overflowing = false;
  let lastError: string | null = null;
  let lastErrorAt: string | null = null;
  let lastSentAt: string | null = null;
  /** While the per-minute cap holds the next alert back: when it lets it go. */
  let cappedUntil: string | null = null;
  /** Start times of the attempts of the last minute (the per-minute cap). */
  const recent: number[] = [];
  let running: Promise<void> | null = null;
  const iso = (ms: number) => new Date(ms).toISOString();

  function failed(outcome: Extract<Outcome, { ok: false }>): void {
    counts.failed++;
    outageAttempts++;
    lastError = clip(scrub(outcome.error)).slice(0, MAX_ERROR_CHARS);
    lastErrorAt = iso(now());
    if (!failing) {
      failing = true;
      log.warn("alert delivery failing", {
        notifier: transport.name,
        target: transport.target,
        status: outcome.status ?? null,
        error: lastError,
      });
    }
  }

  function delivered(): void {
    counts.sent++;
    lastSentAt = iso(now());
    lastError = null;
    if (failing) {
      log.info("alert delivery recovered", { notifier: transport.name, failed_attempts: outageAttempts });
      failing = false;
    }
    outageAttempts = 0;
  }

  async function attempt(item: Queued): Promise<Outcome> {
    recent.push(now());
    const signal = AbortSignal.any([AbortSignal.timeout(ATTEMPT_TIMEOUT_MS), ctx.stop]);
    try {
      return await transport.send(item.payload, signal);
    } catch (err) {
      const e = err as { name?: unknown; message?: unknown; code?: unknown } | null;
      // ? Bun's fetch errors carry the URL (in `path`), and Telegram's URL holds the bot
      // token: only the code and message are kept, and failed() scrubs them all the same.
      const error =
        e?.name === "TimeoutError"
          ? `no answer within ${ATTEMPT_TIMEOUT_MS} ms`
          : `${typeof e?.code === "string" ? `${e.code}: ` : ""}${String(e?.message ?? err)}`;
      return { ok: false, error, retry: true };
    }
  }

  /** Waits until another attempt fits the per-minute cap; false when closing does not allow it. */
  async function underCap(): Promise<boolean> {
    for (;;) {
      const t = now();
      while (recent.length > 0 && (recent[0] as number) <= t - MINUTE_MS) recent.shift();
      if (recent.length < MAX_ALERTS_PER_MINUTE) {
        cappedUntil = null;
        return true;
      }
      if (ctx.closing()) return false;
      const until = (recent[0] as number) + MINUTE_MS;
      if (cappedUntil === null) {
        log.warn("alert rate cap reached", {
          notifier: transport.name,
          per_minute: MAX_ALERTS_PER_MINUTE,
          queued: queue.length + 1,
          until: iso(until),
        });
      }
      cappedUntil = iso(until);
      await sleep(until - t, ctx.stop);
      if (ctx.stop.aborted) return false;
    }
  }

  async function deliver(item: Queued): Promise<void> {
    for (let n = 1; ; n++) {
      if (!(await underCap())) {
        counts.dropped++;
        return;
      }
      const outcome = await attempt(item);
      if (outcome.ok) return delivered();
      failed(outcome);
      if (!outcome.retry || n >= MAX_ATTEMPTS || ctx.closing()) {
        counts.dropped++;
        log.warn("alert given up", {
          notifier: transport.name,
          event: item.payload.event,
          attempts: n,
          error: lastError,
        });
        return;
      }
      await sleep(outcome.waitMs ?? Math.min(MAX_BACKOFF_MS, ctx.backoffBaseMs * 2 ** (n - 1)), ctx.stop);
      if (ctx.stop.aborted) {
        counts.dropped++;
        return;
      }
    }
  }

  async function run(): Promise<void> {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      if (ctx.stop.aborted) {
        counts.dropped++;
        continue;
      }
      await deliver(item);
    }
    overflowing = false;
    running = null;
  }

  return {
    transport,
    enqueue(item) {
      if (queue.length >= ALERT_QUEUE_CAPACITY) {
        queue.shift();
        counts.dropped++;
        if (!overflowing) {
          overflowing = true;
          log.warn("alert queue full, oldest dropped", { notifier: transport.name, capacity: ALERT_QUEUE_CAPACITY });
        }
      }
      queue.push(item);
      // ? Started from a fresh task: notify() runs inside a commit, and even starting a
      // fetch is not the commit's business.
      running ??= new Promise<void>((resolve) => setTimeout(resolve, 0)).then(run);
    },
    status: () => ({
      name: transport.name,
      target: transport.target,
      queued: queue.length,
      capacity: ALERT_QUEUE_CAPACITY,
      ...counts,
      failing,
      last_error: lastError,
      last_error_at: lastErrorAt,
      last_sent_at: lastSentAt,
      capped_until: cappedUntil,
    }),
    idle: async () => {
      while (running !== null) await running;
    },
    abandon() {
      const left = queue.length;
      queue.length = 0;
      counts.dropped += left;
      return left;
    },
  };
}

export function createAlerts(options: AlertsOptions): AlertsService {
  const { config, log } = options;
  const now = options.now ?? Date.now;
  const host = hostname();
  const enabled = new Set<AlertEvent>(config.alerts);
  const stop = new AbortController();
  let closing = false;
  const ctx: DeliveryContext = {
    log,
    now,
    backoffBaseMs: options.backoffBaseMs ?? BACKOFF_BASE_MS,
    scrub: scrubber([config.telegramBotToken, config.alertWebhookUrl, config.alertWebhookToken]),
    stop: stop.signal,
    closing: () => closing,
  };
  const transports: Transport[] = [];
  if (config.telegramBotToken !== null && config.telegramChatId !== null) {
    transports.push(telegram(config.telegramApiUrl, config.telegramBotToken, config.telegramChatId));
  }
  if (config.alertWebhookUrl !== null) transports.push(webhook(config.alertWebhookUrl, config.alertWebhookToken));
  const notifiers = transports.map((t) => startNotifier(t, ctx));
  let closed: Promise<void> | undefined;

  return {
    notify(alert) {
      if (closing || notifiers.length === 0 || !enabled.has(alert.event)) return;
      try {
        const timestamp = new Date(now()).toISOString();
        const text = [
          `${modeMark(options.mode())} ${alert.summary}`,
          ...detailLines(alert.details),
          `${host} · ${timestamp}`,
        ].join("\n");
        const payload: WebhookPayload = { ...alert, timestamp, service: SERVICE_NAME, host, text };
        for (const n of notifiers) n.enqueue({ payload });
      } catch (err) {
        // ? An alert is never worth a failed commit.
        log.error("alert not queued", { event: alert.event, error: err });
      }
    },
    status: () => ({ events: [...enabled], notifiers: notifiers.map((n) => n.status()) }),
    close() {
      closed ??= (async () => {
        closing = true;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, FLUSH_MS);
        });
        await Promise.race([Promise.all(notifiers.map((n) => n.idle())), deadline]);
        clearTimeout(timer);
        stop.abort();
        for (const n of notifiers) {
          const left = n.abandon();
          await n.idle();
          if (left > 0) log.warn("alerts not sent at shutdown", { notifier: n.transport.name, dropped: left });
        }
      })();
      return closed;
    },
  };
}

/** A guardian transition (guardian/transitions.ts) as an alert: who paused, why, at what drawdown. */
export function guardianAlert({ paused, fields }: GuardianTransition): AlertInput {
  const reason = typeof fields.reason === "string" ? fields.reason : "no reason given";
  return paused
    ? { event: "guardian_paused", severity: "critical", summary: `guardian paused trading: ${reason}`, details: fields }
    : { event: "guardian_resumed", severity: "info", summary: `guardian resumed trading: ${reason}`, details: fields };
}
