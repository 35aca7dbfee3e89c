// The dashboard page. Live state comes from GET /events (Server-Sent Events): a snapshot,
// then one update per applied POST, merged here into the document. The rest (service
// figures, agent files, risk engine) is polled every few seconds; charts come from
// GET /meta/history and refresh after updates. EventSource reconnects by itself (the
// server asks for 1 s), and the server answers a reconnect with the missed events or a
// fresh snapshot, so after a service restart the page is whole again without a reload.
//
// Every answer is typed by the server's own schemas (imported as types only: nothing of the
// server is bundled). The service checks what it stores against them, except that a value a
// poster broke is stored as null (the POST's `coerced`): so figures are still checked
// (isNum, str) before they are shown, and nested objects read with `?.`.
import "./style.css";
import type { Allocations, PerformanceAttribution } from "../../modules/agent-files/model";
import type { HistoryAnswer, RangeName } from "../../modules/history/model";
import type { SnapshotEvent, UpdateEvent } from "../../modules/live/model";
import type { MetaMetricsDocument, RegimeDocument } from "../../modules/meta/model";
import type { RiskStatus } from "../../modules/risk/model";
import type { Status } from "../../modules/system/model";
import { banner, type HiveView, hiveReported, hiveView, type ServedGuardian } from "./banner";
import { Charts, REGIME_COLOURS } from "./charts";
import { figureColumns } from "./columns";
import { bindGuardianDialog } from "./dialog";
import { byId, fact, fill, h, setText } from "./dom";
import { ago, amount, duration, int, isNum, money, moneyShort, num, pct, ratioPct, signClass, stamp } from "./format";
import { showBanner } from "./guardian";
import { SOURCE_LABELS, sourceRows } from "./sources";
import { SortableTable } from "./tables";

/**
 * A JSON answer of the service: its 2xx body, or its error.
 * ? The error is CONTRACT section 4's `{error, code}` (ErrorResponse in http/respond.ts),
 * read loosely: that file is server code the page's type-check cannot include, and a proxy's
 * error page may not be JSON of ours at all.
 */
type Answer<T> = { ok: true; body: T } | { ok: false; body: { error?: unknown } };

const str = (v: unknown, fallback = "—") => (typeof v === "string" && v !== "" ? v : fallback);

/** Service panel, agent files and risk are re-read this often. */
const POLL_MS = 5000;
/** After an update, charts re-read history this much later: it records once a second. */
const HISTORY_AFTER_UPDATE_MS = 1500;
/**
 * An answer whose recorded_through predates the latest update is asked again (it may be a
 * shared answer of a few seconds ago), for at most this long after the update arrived.
 */
const HISTORY_CATCH_UP_MS = 15_000;
/** Charts also refresh on their own this often (the x axis moves with time). */
const HISTORY_REFRESH_MS = 30_000;
/** A reconnecting stream that has not opened after this long is rebuilt from scratch. */
const STREAM_STALL_MS = 10_000;

const state = {
  /** The document from the stream; empty until its first snapshot. */
  doc: {} as Partial<MetaMetricsDocument>,
  version: -1,
  status: null as Status | null,
  performance: null as PerformanceAttribution | null,
  regimeFile: null as RegimeDocument | null,
  governor: null as Allocations | null,
  risk: null as Answer<RiskStatus> | null,
  range: "1h" as RangeName,
  /** The hive's freshness, for the banner; null until the first /status answer. */
  hive: null as HiveView | null,
  /** Page-clock ms of the last answer or event from the service; null before any. */
  lastHeard: null as number | null,
  /** The stream is down and the last fetch failed: the page has lost the service. */
  disconnected: false,
  /** The stream's last hive report (its keys were in an update): page-clock ms and service time. */
  hiveReport: null as { at: number; iso: string } | null,
};

// ---------- rendering ----------

function renderGuardian(): void {
  const b = state.doc.breakers;
  const guardian: ServedGuardian | undefined = state.doc.guardian;
  showBanner(
    banner({
      guardian,
      hive: state.hive,
      lastHeard: state.lastHeard,
      disconnected: state.disconnected,
      now: Date.now(),
    }),
  );
  setText("g-drawdown", pct(guardian?.drawdown));
  for (const [id, key] of [
    ["g-quote", "quote_state"],
    ["g-trade", "trade_state"],
  ] as const) {
    const v = str(b?.[key]);
    setText(id, v, `breaker breaker-${v.toLowerCase()}`);
  }
  setText("g-mode", str(state.doc.mode), str(state.doc.mode) === "LIVE_MODE" ? "mode-live" : "");
}

function renderRegime(): void {
  // The document's copy (the hive's), else the detector's file; `{}` when the hive has none.
  const fromDoc = state.doc.market_regime;
  const r = fromDoc && "regime" in fromDoc && typeof fromDoc.regime === "string" ? fromDoc : state.regimeFile;
  const label = str(r?.regime, "UNKNOWN");
  const badge = h("span", { class: "regime-label", "data-regime": label }, label);
  fill(
    byId("regime"),
    badge,
    h(
      "dl",
      { class: "facts" },
      fact("Confidence", ratioPct(r?.confidence, 0)),
      fact("Risk multiplier", isNum(r?.risk_multiplier) ? `×${num(r.risk_multiplier)}` : "—"),
      isNum(r?.volatility) && fact("Volatility", ratioPct(r.volatility, 2)),
      typeof r?.strategy?.position_sizing === "string" && fact("Sizing", r.strategy.position_sizing),
      fact("Detected", ago(r?.timestamp, Date.now())),
    ),
    h("p", { class: "muted" }, str(r?.description, "")),
  );
  byId("regime").style.setProperty("--regime", REGIME_COLOURS[label] ?? "#495057");
}

function renderAllocations(): void {
  // ? GET /governor/allocations already applies the one allocation rule (the governor's
  // file, else its override copy: meta/figures.ts governorAllocations). The atlas bridge's
  // weights are a proposal, not an allocation, so they are never shown as one (issue 10).
  const gov = state.governor;
  const weights: Readonly<Record<string, unknown>> = gov?.allocations ?? {};
  const source = str(gov?.source, "capital governor");
  const min = isNum(gov?.min_allocation) ? gov.min_allocation : null;
  const max = isNum(gov?.max_allocation) ? gov.max_allocation : null;
  const rows = Object.entries(weights)
    .filter((e): e is [string, number] => isNum(e[1]))
    .sort((a, b) => b[1] - a[1]);
  const el = byId("allocations");
  if (rows.length === 0) {
    fill(el, h("p", { class: "muted" }, "no allocations yet"));
    return;
  }
  fill(
    el,
    h(
      "p",
      { class: "muted small" },
      `from ${source}`,
      min !== null || max !== null ? ` · bounds ${ratioPct(min, 0)} – ${ratioPct(max, 0)}` : "",
    ),
    ...rows.map(([agent, w]) => {
      const outside = (min !== null && w < min - 1e-9) || (max !== null && w > max + 1e-9);
      const bar = h("div", { class: "bar" }, h("div", { class: `bar-fill${outside ? " outside" : ""}` }));
      (bar.firstChild as HTMLElement).style.width = `${Math.min(100, Math.max(0, w * 100))}%`;
      for (const [bound, cls] of [
        [min, "bound-min"],
        [max, "bound-max"],
      ] as const) {
        if (bound === null) continue;
        const mark = h("div", {
          class: `bound ${cls}`,
          title: `${cls === "bound-min" ? "min" : "max"} ${ratioPct(bound, 0)}`,
        });
        mark.style.left = `${bound * 100}%`;
        bar.append(mark);
      }
      return h(
        "div",
        { class: "alloc" },
        h("span", { class: "alloc-name" }, agent),
        bar,
        h("span", { class: `alloc-value${outside ? " neg" : ""}` }, ratioPct(w, 1)),
      );
    }),
  );
}

function renderStress(): void {
  const s = state.doc.stress_last;
  const el = byId("stress");
  if (!s || Object.keys(s).length === 0) {
    fill(el, h("p", { class: "muted" }, "no stress test reported yet"));
    return;
  }
  const passed = s.passed === true ? "PASSED" : s.passed === false ? "FAILED" : "—";
  const scenarios = Object.entries(s.scenarios ?? {});
  fill(
    el,
    h("span", { class: `badge ${s.passed === true ? "ok" : s.passed === false ? "bad" : ""}` }, passed),
    h(
      "dl",
      { class: "facts" },
      fact("Worst case", money(s.worst_case_pnl), signClass(s.worst_case_pnl)),
      fact("Ran", `${stamp(state.doc.stress_timestamp)} (${ago(state.doc.stress_timestamp, Date.now())})`),
    ),
    scenarios.length > 0 &&
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "compact" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", null, "Scenario"),
              h("th", { class: "num" }, "P&L"),
              h("th", { class: "num" }, "Max DD"),
            ),
          ),
          h(
            "tbody",
            null,
            ...scenarios.map(([name, sc]) => {
              // A scenario the book did not survive is the line to read: red, and said so.
              const failed = sc?.survived === false;
              return h(
                "tr",
                null,
                h("th", { scope: "row", class: failed ? "neg" : undefined }, failed ? `${name} (not survived)` : name),
                h("td", { class: `num ${signClass(sc?.pnl)}` }, money(sc?.pnl)),
                h("td", { class: "num" }, pct(sc?.max_dd_pct, 1)),
              );
            }),
          ),
        ),
      ),
  );
}

function renderRisk(): void {
  const el = byId("risk");
  if (state.risk === null) {
    fill(el, h("p", { class: "muted" }, "asking the risk engine…"));
    return;
  }
  if (!state.risk.ok) {
    fill(
      el,
      h("span", { class: "badge bad" }, "UNAVAILABLE"),
      h("p", { class: "muted" }, str(state.risk.body.error, "the risk engine has not answered")),
    );
    return;
  }
  const body = state.risk.body;
  const r = body.risk;
  const fromFile = body.served_from === "file";
  const stale = body.stale === true;
  const since = (seconds: unknown) => (isNum(seconds) ? `${duration(seconds)} ago` : "—");
  fill(
    el,
    h(
      "span",
      { class: `badge ${stale ? "warn" : "ok"}`, "data-served-from": body.served_from },
      fromFile ? "FROM FILE" : stale ? "STALE" : "LIVE",
    ),
    h(
      "dl",
      { class: "facts" },
      fact("VaR", amount(r.var)),
      fact("CVaR", amount(r.cvar)),
      fact("Drawdown", pct(r.drawdown, 2), isNum(r.drawdown) && r.drawdown > 0 ? "neg" : ""),
      fact("Exposure", isNum(r.total_exposure) ? `${ratioPct(r.total_exposure, 1)} of portfolio` : "—"),
      fact("Positions", int(r.active_positions)),
      // The engine's own clock (when it last computed) next to ours (when we last heard it).
      fact("Engine update", since(body.engine_age_seconds)),
      fromFile
        ? fact("File written", since(body.file_age_seconds), "warn")
        : fact("Fetched", since(body.age_seconds), stale ? "warn" : ""),
    ),
    stale &&
      h("p", { class: "muted small" }, fromFile ? `read from ${body.state_file}: ` : "", str(body.last_error, "")),
  );
}

/** The Service card's source list (sources.ts decides each state). */
function sourceList(status: Status): HTMLElement {
  const now = Date.now();
  return h(
    "ul",
    { class: "sources" },
    ...sourceRows(status).map((s) =>
      h(
        "li",
        { class: `source source-${s.state}`, "data-source": s.source, title: s.problem ?? undefined },
        h("span", { class: "source-name" }, s.source),
        h("span", { class: "source-state" }, SOURCE_LABELS[s.state]),
        h(
          "span",
          { class: "muted small" },
          [s.lastUpdate === null ? "" : ago(s.lastUpdate, now), s.intervalS > 0 ? `every ${duration(s.intervalS)}` : ""]
            .filter((part) => part !== "")
            .join(" · "),
        ),
      ),
    ),
  );
}

function renderService(): void {
  const el = byId("service");
  const now = Date.now();
  const updated = state.doc.cache_timestamp;
  if (state.status === null) {
    fill(
      el,
      h("p", { class: "muted" }, "loading…"),
      h("dl", { class: "facts" }, fact("Last update", ago(updated, now))),
    );
    return;
  }
  const { system: sys, queue: q, live, store } = state.status;
  fill(
    el,
    h(
      "dl",
      { class: "facts" },
      fact("Uptime", str(sys.uptime)),
      // Issue 12: with replicas, whether this one reaches the shared store is the first question.
      ...(store.kind === "postgres"
        ? [
            fact(
              "Store",
              store.reachable
                ? `shared, seq ${int(store.seq)}`
                : `UNREACHABLE ${ago(store.unreachable_since, now)}${store.served_from === "local_copy" ? ", local copy" : ""}`,
              store.reachable ? "" : "neg",
            ),
          ]
        : []),
      fact("Last update", typeof updated === "string" ? `${ago(updated, now)}` : "none yet"),
      fact("Queue", `${int(q.depth)} / ${int(q.capacity)}`, q.depth >= q.capacity ? "neg" : ""),
      fact("CPU", `${num(sys.cpu, 1)}%`),
      fact("Memory", `${num(sys.memory, 0)} MiB`),
      fact("Disk", `${num(sys.disk, 0)}%`),
      fact("Viewers", int(live.subscribers)),
    ),
    sourceList(state.status),
  );
}

function renderDecisions(): void {
  const recent = [...(state.performance?.decisions ?? [])]
    .sort((a, b) => b.timestamp.localeCompare(a.timestamp))
    .slice(0, 10);
  const el = byId("decisions");
  if (recent.length === 0) {
    fill(el, h("li", { class: "muted" }, "no decisions recorded yet"));
    return;
  }
  fill(
    el,
    ...recent.map((d) =>
      h(
        "li",
        { class: "decision" },
        h("span", { class: "muted small" }, stamp(d.timestamp)),
        h("span", { class: "decision-agent" }, str(d.agent)),
        h("span", { class: "decision-what" }, str(d.decision)),
        h("span", { class: `num ${signClass(d.pnl)}` }, isNum(d.pnl) ? money(d.pnl) : "—"),
        h("span", { class: "decision-why muted" }, str(d.reasoning, "")),
      ),
    ),
  );
}

function renderUpdated(): void {
  const t = state.doc.cache_timestamp;
  setText("updated", typeof t === "string" ? `updated ${ago(t, Date.now())}` : "no update yet");
}

const agents = new SortableTable(byId<HTMLTableElement>("agents"), "Agent", figureColumns("agent"));
const strategies = new SortableTable(byId<HTMLTableElement>("strategies"), "Strategy", figureColumns("strategy"));

function renderDoc(): void {
  renderGuardian();
  renderRegime();
  renderAllocations();
  renderStress();
  agents.update(state.doc.per_agent);
  strategies.update(state.doc.per_strategy);
  renderUpdated();
  renderService();
}

// ---------- data ----------

/**
 * Heard from the service (any answer or event), or a fetch got no answer. The page has lost
 * the service when a fetch fails while the stream is down too; the banner says so at once.
 */
function heard(answered: boolean): void {
  const lost = !answered && stream?.readyState !== EventSource.OPEN;
  if (answered) state.lastHeard = Date.now();
  if (lost === state.disconnected) return;
  state.disconnected = lost;
  renderGuardian();
}

/** GET `path`: its answer, whose 2xx body the caller names the schema of; null when unreachable. */
async function getJson<T>(path: string): Promise<Answer<T> | null> {
  try {
    const res = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
    heard(true);
    // ? Not checked again here: the service builds each answer to its route's schema (an
    // agent file is served only once it passed it), and the renderers check each figure.
    return { ok: res.ok, body: await res.json() } as Answer<T>;
  } catch {
    heard(false);
    return null; // the service is restarting: keep what is shown, the next poll retries
  }
}

async function poll(): Promise<void> {
  const asked = Date.now();
  // While the stream is down the document is read directly, so the banner is not left
  // showing a state the service no longer serves.
  const live = stream?.readyState === EventSource.OPEN;
  const [status, perf, regime, gov, risk, doc] = await Promise.all([
    getJson<Status>("/status"),
    getJson<PerformanceAttribution>("/meta/performance"),
    getJson<RegimeDocument>("/meta/regime"),
    getJson<Allocations>("/governor/allocations"),
    getJson<RiskStatus>("/risk/status"),
    live ? null : getJson<MetaMetricsDocument>("/meta/metrics"),
  ]);
  if (status?.ok) {
    state.status = status.body;
    const hive = hiveView(status.body, Date.now());
    // An answer asked before the stream's latest hive report may predate it: the report wins.
    const report = state.hiveReport;
    state.hive = report !== null && report.at > asked ? hiveReported(hive, report.iso, report.at) : hive;
  }
  if (doc?.ok && stream?.readyState !== EventSource.OPEN) state.doc = doc.body;
  if (perf?.ok) state.performance = perf.body;
  if (regime?.ok) state.regimeFile = regime.body;
  if (gov?.ok) state.governor = gov.body;
  if (risk) state.risk = risk;
  renderGuardian();
  renderService();
  renderDecisions();
  renderRegime();
  renderAllocations();
  renderRisk();
}

const charts = new Charts(byId("charts"), { money: moneyShort, pct: (v) => pct(v, 1) });
let historyTimer: ReturnType<typeof setTimeout> | undefined;

async function loadHistory(): Promise<void> {
  clearTimeout(historyTimer);
  historyDue = Date.now() + HISTORY_REFRESH_MS;
  historyTimer = setTimeout(loadHistory, HISTORY_REFRESH_MS);
  const res = await getJson<HistoryAnswer>(`/meta/history?range=${state.range}&points=300`);
  const box = byId("charts");
  if (res === null || !res.ok) {
    box.dataset.history = "unavailable";
    setText("history-note", res === null ? "" : `history unavailable: ${str(res.body.error, "")}`);
    return;
  }
  box.dataset.history = "ok";
  box.dataset.truncated = String(res.body.truncated);
  catchUp(res.body.recorded_through);
  // ? The answer's cut keeps the safety series first (guardian, breakers, regime, ...):
  // what is left out are agents and strategies, and the viewer should know.
  setText("history-note", res.body.truncated ? "more series than one answer holds: some agents are not charted" : "");
  charts.show(res.body);
}

/** When the pending history load fires (Date.now() ms). */
let historyDue = 0;
/** The latest update the charts do not show yet: its updated_at (service clock) and when it came (page clock). */
let uncharted: { at: number; heard: number } | null = null;

/**
 * Asks again soon while the answer predates the latest update.
 * ? The service shares a named range's answer for a few seconds: without this, the load
 * after a lone update could get the answer of a moment before it and keep it for
 * HISTORY_REFRESH_MS.
 */
function catchUp(recordedThrough: string | null): void {
  if (uncharted === null) return;
  const through = recordedThrough === null ? Number.NEGATIVE_INFINITY : Date.parse(recordedThrough);
  if (through >= uncharted.at || Date.now() - uncharted.heard > HISTORY_CATCH_UP_MS) uncharted = null;
  else historySoon();
}

/** Notes an update for catchUp(), then historySoon(). */
function historyAfter(updatedAt: string | null): void {
  if (updatedAt !== null) uncharted = { at: Date.parse(updatedAt), heard: Date.now() };
  historySoon();
}

/**
 * Loads history HISTORY_AFTER_UPDATE_MS after an update, unless a load is due sooner.
 * ? Issue 16: this restarted its timer on every update, so while updates streamed (faster
 * than one per HISTORY_AFTER_UPDATE_MS) the charts never refreshed.
 */
function historySoon(): void {
  const due = Date.now() + HISTORY_AFTER_UPDATE_MS;
  if (historyDue > Date.now() && historyDue <= due) return;
  clearTimeout(historyTimer);
  historyDue = due;
  historyTimer = setTimeout(loadHistory, HISTORY_AFTER_UPDATE_MS);
}

// ---------- live stream ----------

let stream: EventSource | null = null;
let stallTimer: ReturnType<typeof setTimeout> | undefined;

/** The keys by which /status counts an update as the hive's (metrics/sources.ts). */
const HIVE_KEYS = ["per_agent", "guardian"] as const;

function noteHiveReport(data: UpdateEvent): void {
  if (!HIVE_KEYS.some((k) => Object.hasOwn(data.set, k))) return;
  const at = Date.now();
  const iso = data.updated_at ?? new Date(at).toISOString();
  state.hiveReport = { at, iso };
  if (state.hive !== null) state.hive = hiveReported(state.hive, iso, at);
}

function setConnection(kind: "live" | "reconnecting" | "connecting"): void {
  const el = byId("conn");
  el.textContent = kind === "live" ? "live" : kind === "reconnecting" ? "reconnecting…" : "connecting…";
  el.dataset.state = kind;
}

function connect(): void {
  stream?.close();
  setConnection("connecting");
  const es = new EventSource("/events");
  stream = es;
  es.addEventListener("open", () => {
    clearTimeout(stallTimer);
    setConnection("live");
    heard(true);
    // After a gap (restart, network), everything polled may have moved too.
    void poll();
  });
  es.addEventListener("snapshot", (e) => {
    const data: SnapshotEvent = JSON.parse((e as MessageEvent<string>).data);
    state.doc = data.doc;
    state.version = data.version;
    heard(true);
    renderDoc();
    historyAfter(data.updated_at);
  });
  es.addEventListener("update", (e) => {
    const data: UpdateEvent = JSON.parse((e as MessageEvent<string>).data);
    // An event the page already has (a resume overlapping a snapshot) changes nothing.
    if (data.version <= state.version) return;
    state.doc = { ...state.doc, ...data.set, cache_timestamp: data.updated_at };
    state.version = data.version;
    heard(true);
    noteHiveReport(data);
    renderDoc();
    historyAfter(data.updated_at);
  });
  es.addEventListener("error", () => {
    setConnection("reconnecting");
    // Is it the stream or the service? One cheap question decides whether the page has lost it.
    void getJson("/health");
    clearTimeout(stallTimer);
    // EventSource retries by itself, except after a non-stream answer (it closes);
    // either way, a stream that has not come back in a while is rebuilt.
    const delay = es.readyState === EventSource.CLOSED ? 2000 : STREAM_STALL_MS;
    stallTimer = setTimeout(() => {
      if (stream === es && es.readyState !== EventSource.OPEN) connect();
    }, delay);
  });
}

// ---------- controls ----------

for (const button of document.querySelectorAll<HTMLButtonElement>("#ranges button")) {
  button.addEventListener("click", () => {
    // The buttons' data-range values are RangeName's (index.html).
    state.range = (button.dataset.range ?? "1h") as RangeName;
    for (const b of document.querySelectorAll<HTMLButtonElement>("#ranges button")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    void loadHistory();
  });
}

bindGuardianDialog((guardian) => {
  state.doc = { ...state.doc, guardian };
  renderGuardian();
});
renderDoc();
renderRisk();
renderDecisions();
connect();
void poll();
void loadHistory();
setInterval(() => void poll(), POLL_MS);
// "12 s ago" keeps counting between updates.
setInterval(() => {
  renderUpdated();
  renderService();
  renderGuardian(); // the pause's countdown, the stale and disconnected ages
}, 1000);
