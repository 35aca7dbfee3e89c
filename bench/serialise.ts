// Issue 16 item 6, in-process: the JSON text a commit makes, the way before (the whole
// document stringified for the size caps, the file and the GET cache; the SSE frame too
// when someone listens) against json-text.ts (each value once, the rest from its text), for
// N agents and N strategies. The peer is the old way, measured in the same run, in
// alternating rounds; the figure is the time above parsing the body, which both pay.
//
//   bun bench/serialise.ts        # BENCH_SERIALISE_ROUNDS (5), BENCH_SERIALISE_AGENTS ("30,300,3000")
import { objectJson, valueJson } from "../src/store/json-text";
import { hiveSnapshot } from "./history-fill";
import { median } from "./lib";

const ROUNDS = Number(process.env.BENCH_SERIALISE_ROUNDS ?? 5);
const AGENTS = (process.env.BENCH_SERIALISE_AGENTS ?? "30,300,3000").split(",").map(Number);
/** Commits per measurement: at least ~100 ms of work at every N. */
const commits = (agents: number) => Math.max(20, Math.round(60_000 / agents));

type Doc = Record<string, unknown>;
const served = (doc: Doc) => ({ timestamp: "", per_agent: {}, ...doc, cache_timestamp: "2025-11-03T22:00:00Z" });
const stored = (doc: Doc) => ({ ...doc, cache_timestamp: "2025-11-03T22:00:00Z" });

const WAYS: Record<string, (doc: Doc) => number> = {
  /** Only the parse both pay: subtracted from the others. */
  parse: () => 0,
  before: (doc) => {
    let n = 0;
    for (const k of Object.keys(doc)) n += (JSON.stringify(doc[k]) ?? "").length;
    return n + JSON.stringify(stored(doc)).length + JSON.stringify(served(doc)).length;
  },
  "json-text": (doc) => {
    let n = 0;
    for (const k of Object.keys(doc)) n += valueJson(doc[k]).length;
    return n + objectJson(stored(doc)).length + objectJson(served(doc)).length;
  },
};

/** µs per commit of `way`, the body parsed fresh each time (as a POST's is). */
function measure(way: (doc: Doc) => number, text: string, count: number): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) sink += way(JSON.parse(text) as Doc);
  const us = ((performance.now() - t0) * 1000) / count;
  return sink < 0 ? Number.NaN : us;
}

export function serialiseScenario(): { agents: number; before_us: number; json_text_us: number }[] {
  return AGENTS.map((agents) => {
    const text = JSON.stringify(hiveSnapshot(agents, 1));
    const times: Record<string, number[]> = { parse: [], before: [], "json-text": [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, way] of Object.entries(WAYS)) times[name]?.push(measure(way, text, commits(agents)));
    }
    const parse = median(times.parse ?? []);
    return {
      agents,
      before_us: median(times.before ?? []) - parse,
      json_text_us: median(times["json-text"] ?? []) - parse,
    };
  });
}

export function serialiseTable(rows: ReturnType<typeof serialiseScenario>): string {
  return [
    "JSON text per commit (caps + file + GET cache), µs above the parse, median of alternating rounds",
    "",
    "| N | before | json-text | ratio |",
    "| ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.agents} | ${r.before_us.toFixed(0)} | ${r.json_text_us.toFixed(0)} | ${(r.json_text_us / r.before_us).toFixed(2)}x |`,
    ),
  ].join("\n");
}

if (import.meta.main) console.log(serialiseTable(serialiseScenario()));
