// What ships for Grafana in deploy/grafana/: the dashboard is importable (a Prometheus data
// source variable that every panel and query uses), it has the panels issue 13 lists, every
// metric its queries name is one the service exports (a typo fails), and every query of
// every panel returns data from Debian's real Prometheus server scraping the real service
// with deploy/prometheus/scrape.yml after the fixtures are posted. The provisioning files are
// Grafana's standard format and agree with scrape.yml and the README.
//
// Prometheus (/usr/bin/prometheus, Debian package `prometheus`, which also gives promtool)
// comes from apt: .ci/run installs it. Without it the real-Prometheus test skips with a
// message saying so; on the project's machines it runs.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { postJson, type ServiceProcess, spawnService } from "../e2e/process";
import { FIXTURES, fixture, ROOT, tempDir, waitFor } from "../helpers";
import { parseScrape } from "../modules/metrics/prom";

const GRAFANA = join(ROOT, "deploy", "grafana");
const PROMETHEUS_DIR = join(ROOT, "deploy", "prometheus");
const PROMETHEUS = Bun.which("prometheus");
if (PROMETHEUS === null) {
  process.stderr.write(
    "\n!! test/deploy/grafana.test.ts: the real-Prometheus test SKIPPED: no prometheus binary (apt-get install -y prometheus)\n\n",
  );
}

/** The test's scrape interval: short, so that the rate() windows fill in seconds. */
const SCRAPE_S = 1;
/**
 * What Grafana puts for its interval variables with that scrape interval (the data source's
 * timeInterval): $__rate_interval is at least four scrape intervals, so a window holds
 * enough samples for rate(); $__interval is one step, here one scrape.
 */
const GRAFANA_INTERVALS = { __rate_interval: `${4 * SCRAPE_S}s`, __interval: `${SCRAPE_S}s` };
/** Series Prometheus makes itself for each target, not in the service's /metrics. */
const PROMETHEUS_OWN = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);

interface Target {
  refId: string;
  expr: string;
  datasource: unknown;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: unknown;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: unknown;
  datasource?: unknown;
}
interface Dashboard {
  uid: string;
  id: null;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

const readDashboard = (): Dashboard =>
  JSON.parse(readFileSync(join(GRAFANA, "neolight-dashboard.json"), "utf8")) as Dashboard;

/** Every query of the dashboard: each panel's targets, and the query variables' queries. */
function queries(d: Dashboard): { where: string; expr: string }[] {
  const panels = d.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `${p.title} ${t.refId}`, expr: t.expr })),
  );
  const variables = d.templating.list
    .filter((v) => v.type === "query")
    .map((v) => ({ where: `variable ${v.name}`, expr: variableQuery(v).selector }));
  return [...panels, ...variables];
}

/** A Prometheus query variable: `label_values(<selector>, <label>)`. */
function variableQuery(v: Variable): { selector: string; label: string } {
  const text = typeof v.query === "string" ? v.query : (v.query as { query: string }).query;
  const m = text.match(/^label_values\((.+),\s*(\w+)\)$/);
  if (m === null) throw new Error(`variable ${v.name}: not label_values(selector, label): ${text}`);
  return { selector: m[1] as string, label: m[2] as string };
}

/** PromQL's keywords (any case) and number words: never a metric name. */
const PROMQL_WORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "inf",
  "nan",
]);

/**
 * The metric names a PromQL expression names: identifiers outside strings, label matchers,
 * ranges and label lists that are not a function, an aggregation or a keyword.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((m) => !/[0-9.]$/.test(bare.slice(0, m.index))) // the unit of 5m, the exponent of 1e3
    .filter(
      (m) =>
        !bare
          .slice(m.index + m[0].length)
          .trimStart()
          .startsWith("("),
    ) // a function
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w.toLowerCase()));
  return [...new Set(names)];
}

/** The names the dashboard's queries use that neither the service nor Prometheus exports. */
function unexported(d: Dashboard, exported: Set<string>): { where: string; name: string }[] {
  return queries(d).flatMap(({ where, expr }) =>
    metricNames(expr)
      .filter((name) => !exported.has(name) && !PROMETHEUS_OWN.has(name))
      .map((name) => ({ where, name })),
  );
}

/**
 * The agent files in place under `home` (the governor's file gives the allocation bounds),
 * before the service starts.
 */
function agentFiles(home: string): void {
  mkdirSync(join(home, "runtime"), { recursive: true });
  mkdirSync(join(home, "state"), { recursive: true });
  for (const f of ["capital_governor_allocations", "market_regime"]) {
    copyFileSync(join(FIXTURES, `${f}.json`), join(home, "runtime", `${f}.json`));
  }
  copyFileSync(join(FIXTURES, "performance_attribution.json"), join(home, "state", "performance_attribution.json"));
}

/** Posts what the hive, the stress runner and the atlas bridge post; resolves with /metrics once it shows them. */
async function postFixtures(svc: ServiceProcess): Promise<string> {
  for (const [path, name] of [
    ["/meta/metrics", "meta_metrics_post"],
    ["/meta/metrics", "stress_post"],
    ["/atlas/update", "atlas_update_post"],
  ] as const) {
    expect((await postJson(`${svc.url}${path}`, fixture(name))).status).toBe(200);
  }
  // The governor's file is read by the source poller: wait until its bounds are exported.
  return waitFor(async () => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const shown = text.includes("\nneolight_allocation_max_weight{") && text.includes("\nneolight_stress_passed ");
    return shown ? text : null;
  }, "the fixtures and the governor's file in /metrics");
}

describe("deploy/grafana/neolight-dashboard.json", () => {
  test("importable: a Prometheus data source variable that every panel and query uses, unique ids, no overlap", () => {
    const d = readDashboard();
    expect(d).toMatchObject({ uid: "neolight-dashboard", id: null, title: "NeoLight Dashboard" });
    // The schema Grafana 12.0 writes, or later: a current Grafana loads it without migrating.
    expect(d.schemaVersion).toBeGreaterThanOrEqual(41);
    const sources = d.templating.list.filter((v) => v.type === "datasource");
    expect(sources).toEqual([expect.objectContaining({ name: "datasource", query: "prometheus" })]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
    const ds = { type: "prometheus", uid: "${datasource}" };

    const panels = d.panels.filter((p) => p.type !== "row");
    expect(panels.length).toBeGreaterThanOrEqual(12);
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of panels) {
      expect({ title: p.title, datasource: p.datasource }).toEqual({ title: p.title, datasource: ds });
      expect(["timeseries", "state-timeline", "bargauge", "stat", "table"]).toContain(p.type);
      expect(p.targets?.length ?? 0).toBeGreaterThan(0);
      const targets = p.targets ?? [];
      expect(new Set(targets.map((t) => t.refId)).size).toBe(targets.length);
      for (const t of targets) expect({ ...t, expr: t.expr.length > 0 }).toMatchObject({ datasource: ds, expr: true });
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
    for (const v of d.templating.list.filter((x) => x.type === "query")) expect(v.datasource).toEqual(ds);
    // Grafana would move overlapping panels about: the layout is the one written here.
    const overlaps = panels.flatMap((a, i) =>
      panels
        .slice(i + 1)
        .filter(
          (b) =>
            a.gridPos.x < b.gridPos.x + b.gridPos.w &&
            b.gridPos.x < a.gridPos.x + a.gridPos.w &&
            a.gridPos.y < b.gridPos.y + b.gridPos.h &&
            b.gridPos.y < a.gridPos.y + a.gridPos.h,
        )
        .map((b) => `${a.title} / ${b.title}`),
    );
    expect(overlaps).toEqual([]);
  });

  test("has the panels issue 13 lists", () => {
    const panels = readDashboard().panels;
    // Each: a panel of this type whose queries, together, match every pattern.
    const wanted: [string, string | null, RegExp[]][] = [
      ["the guardian as a state timeline", "state-timeline", [/neolight_guardian_paused/]],
      ["drawdown", null, [/neolight_guardian_drawdown/]],
      ["per-agent P&L", null, [/neolight_agent_pnl_1d/]],
      [
        "allocation weights with their bounds",
        null,
        [/allocation_weight/, /allocation_min_weight/, /allocation_max_weight/],
      ],
      [
        "each source's age against its expected interval",
        null,
        [/time\(\) - neolight_source_last_update_timestamp_seconds/, /neolight_source_expected_interval_seconds/],
      ],
      ["request rate", null, [/rate\(neolight_http_requests_total/]],
      ["p99 latency by route", null, [/histogram_quantile\(0\.99, sum by \(route, le\)/]],
      ["queue depth", null, [/neolight_telemetry_queue_depth/]],
      ["rejections by reason", null, [/by \(reason\) \(rate\(neolight_telemetry_updates_rejected_total/]],
      ["persistence failures", null, [/neolight_persistence_write_failures_total/]],
      ["SSE viewers", null, [/neolight_sse_subscribers/]],
    ];
    const missing = wanted
      .filter(
        ([, type, patterns]) =>
          !panels.some((p) => {
            const exprs = (p.targets ?? []).map((t) => t.expr).join("\n");
            return (type === null || p.type === type) && patterns.every((re) => re.test(exprs));
          }),
      )
      .map(([what]) => what);
    expect(missing).toEqual([]);
  });

  test("metricNames reads PromQL: functions, keywords, label lists, ranges and strings are not metrics", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (route, le) (rate(neolight_http_request_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))',
      ),
    ).toEqual(["neolight_http_request_duration_seconds_bucket"]);
    expect(metricNames('(time() - a_seconds{source="x{y}"}) / (b_seconds > 0) or on(instance) c offset 5m')).toEqual([
      "a_seconds",
      "b_seconds",
      "c",
    ]);
    expect(metricNames("sum without (agent) (x) unless ignoring(job) group_left(le) y * 1e3")).toEqual(["x", "y"]);
  });

  test("every metric a query names is exported by the service (a misspelled one is caught)", async () => {
    using home = tempDir();
    agentFiles(home.path);
    await using svc = await spawnService({ home: home.path });
    const exported = new Set(parseScrape(await postFixtures(svc)).names());
    const d = readDashboard();
    const used = new Set(queries(d).flatMap((q) => metricNames(q.expr)));
    expect(used.size).toBeGreaterThanOrEqual(18);
    expect(unexported(d, exported)).toEqual([]);

    // The check bites: one letter off in one panel is reported, with where it is.
    const typo = JSON.parse(
      JSON.stringify(d).replace("neolight_agent_pnl_7d", "neolight_agent_pnl_7days"),
    ) as Dashboard;
    expect(unexported(typo, exported)).toEqual([{ where: "Agent P&L, 7 days A", name: "neolight_agent_pnl_7days" }]);
  });
});

describe("deploy/grafana/provisioning", () => {
  const yaml = (path: string) => Bun.YAML.parse(readFileSync(join(GRAFANA, "provisioning", path), "utf8"));

  test("datasources: the Prometheus, with scrape.yml's interval so $__rate_interval fits its samples", () => {
    const scrape = Bun.YAML.parse(readFileSync(join(PROMETHEUS_DIR, "scrape.yml"), "utf8")) as {
      global: { scrape_interval: string };
    };
    expect(yaml("datasources/neolight.yaml")).toEqual({
      apiVersion: 1,
      datasources: [
        {
          name: expect.any(String),
          type: "prometheus",
          uid: expect.any(String),
          access: "proxy",
          url: "http://localhost:9090",
          isDefault: true,
          editable: false,
          jsonData: { timeInterval: scrape.global.scrape_interval },
        },
      ],
    });
  });

  test("dashboards: a file provider, at the path the README copies the dashboard to", () => {
    const config = yaml("dashboards/neolight.yaml") as { apiVersion: number; providers: Record<string, unknown>[] };
    expect(config).toEqual({
      apiVersion: 1,
      providers: [
        expect.objectContaining({ name: "neolight", type: "file", options: { path: expect.stringMatching(/^\//) } }),
      ],
    });
    const { path } = (config.providers[0] as { options: { path: string } }).options;
    const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
    expect(lines.filter((l) => l.includes("neolight-dashboard.json"))).toContainEqual(
      expect.stringContaining(`-t ${path} deploy/grafana/neolight-dashboard.json`),
    );
  });
});

/** A free TCP port on loopback (Prometheus cannot listen on port 0 and tell which it got). */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

interface PrometheusServer extends AsyncDisposable {
  url: string;
  /** GET /api/v1/<path>: its `data`, after checking `status: success`. */
  api(path: string, params: Record<string, string>): Promise<unknown>;
}

/**
 * Debian's Prometheus server in `dir` with the shipped scrape.yml, its one target changed to
 * `target` and its intervals to SCRAPE_S (the rest, alerts.yml included, as shipped).
 */
async function startPrometheus(dir: string, target: string): Promise<PrometheusServer> {
  const config = Bun.YAML.parse(readFileSync(join(PROMETHEUS_DIR, "scrape.yml"), "utf8")) as {
    global: Record<string, string>;
    scrape_configs: { job_name: string; scrape_timeout: string; static_configs: { targets: string[] }[] }[];
  };
  const job = config.scrape_configs.find((c) => c.job_name === "neolight-dashboard");
  expect(job?.static_configs).toEqual([{ targets: ["localhost:8100"] }]);
  config.global.scrape_interval = `${SCRAPE_S}s`;
  config.global.evaluation_interval = `${SCRAPE_S}s`;
  (job as { scrape_timeout: string }).scrape_timeout = `${SCRAPE_S}s`;
  (job as { static_configs: { targets: string[] }[] }).static_configs = [{ targets: [target] }];
  // JSON is YAML: Prometheus reads this as it reads scrape.yml.
  writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  copyFileSync(join(PROMETHEUS_DIR, "alerts.yml"), join(dir, "alerts.yml"));

  // Another process may take the free port before Prometheus binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    const port = freePort();
    const proc = Bun.spawn(
      [
        PROMETHEUS as string,
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const log = { text: "" };
    // ? Read while it runs: a server that fills the pipe would block.
    const drained = Promise.all(
      [proc.stdout, proc.stderr].map(async (s) => {
        for await (const chunk of s) log.text += new TextDecoder().decode(chunk);
      }),
    );
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitFor(
      async () => {
        if (proc.exitCode !== null) return "exited";
        return (await fetch(`${url}/-/ready`).catch(() => null))?.ok === true && "ready";
      },
      "Prometheus to be ready",
      30_000,
    );
    if (ready === "exited") {
      await drained;
      if (attempt < 3 && log.text.includes("address already in use")) continue;
      throw new Error(`prometheus exited ${proc.exitCode}:\n${log.text}`);
    }
    return {
      url,
      async api(path, params) {
        const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
        const body = (await res.json()) as { status: string; data: unknown; error?: string };
        expect({ path, params, status: body.status, error: body.error }).toEqual({
          path,
          params,
          status: "success",
          error: undefined,
        });
        return body.data;
      },
      async [Symbol.asyncDispose]() {
        // Its storage is a temporary directory: nothing to shut down cleanly for.
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        await proc.exited;
      },
    };
  }
}

/** A query with Grafana's variables replaced by what Grafana would put; an unknown one throws. */
function concrete(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const value = vars[(braced ?? bare) as string];
    if (value === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
    return value;
  });
}

/** A value as Grafana's Prometheus data source puts it into a regex matcher (=~"$instance"). */
const promRegex = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&");

type Vector = { metric: Record<string, string>; value: [number, string] }[];

describe.skipIf(PROMETHEUS === null)("the dashboard against Debian's Prometheus scraping the service", () => {
  test("every query of every panel returns data after the fixtures are posted", async () => {
    using dir = tempDir("neolight-prometheus-");
    const home = join(dir.path, "home");
    agentFiles(home);
    await using svc = await spawnService({ home });
    await postFixtures(svc);
    const target = `127.0.0.1:${svc.port}`;
    await using prometheus = await startPrometheus(dir.path, target);

    // Scraped enough: a rate() window ending now holds at least three scrapes of the posted state.
    const window = GRAFANA_INTERVALS.__rate_interval;
    const at = await waitFor(
      async () => {
        const v = (await prometheus.api("query", {
          query: `count_over_time(neolight_build_info{job="neolight-dashboard"}[${window}])`,
        })) as { result: Vector };
        const sample = v.result[0]?.value;
        return sample !== undefined && Number(sample[1]) >= 3 && sample[0];
      },
      "Prometheus to scrape the service three times",
      30_000,
    );

    // The instance variable lists the service, as Grafana would ask for it.
    const d = readDashboard();
    const instanceVar = d.templating.list.find((v) => v.name === "instance") as Variable;
    const { selector, label } = variableQuery(instanceVar);
    expect(await prometheus.api(`label/${label}/values`, { "match[]": selector })).toEqual([target]);
    const vars = { ...GRAFANA_INTERVALS, instance: promRegex(target) };

    const problems: string[] = [];
    for (const p of d.panels) {
      for (const t of p.targets ?? []) {
        const query = concrete(t.expr, vars);
        const data = (await prometheus.api("query", { query, time: String(at) })) as {
          resultType: string;
          result: Vector;
        };
        const finite = data.result.filter((s) => Number.isFinite(Number(s.value[1])));
        if (data.resultType !== "vector" || finite.length === 0) {
          problems.push(`${p.title} ${t.refId}: ${query} -> ${data.resultType} ${JSON.stringify(data.result)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(d.panels.flatMap((p) => p.targets ?? []).length).toBeGreaterThanOrEqual(18);
  });
});
