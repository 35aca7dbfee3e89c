// Issue 14's levers, one at a time: builds passed as name=binary[:VAR=value,...] are
// launched in turn, round after round (interleaved, so the noise of this shared machine
// falls on all alike), and for each it prints the median start-up to the first 200, idle
// RSS and RssAnon, where the memory is (smaps) and, with BENCH_LEVER_GET=1, GET
// /meta/metrics req/s (wrk -t2 -c100 for 4 s). The README's lever table came from here:
//
//   bun run bench/levers.ts base=dist/neolight-dashboard nohistory=dist/neolight-dashboard:NEOLIGHT_HISTORY_DAYS=0 \
//     elysia=bench/peers/elysia/elysia-peer floor=bench/peers/floor/floor-peer
//
// A variant build is made with scripts/build.ts' compileArgs plus its own flags (e.g.
// --compile-exec-argv=--smol, --bytecode-order=<file>). Environment: BENCH_LEVER_RUNS (7)
// start-ups per build, the first BENCH_LEVER_SAMPLES (3) of them also read idle memory.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IDLE_MS, launch, type MemoryMap, median, memoryMap, procStatusKiB, serviceEnv } from "./lib";

const FIXTURE = readFileSync(join(import.meta.dir, "..", "test", "fixtures", "neolight", "meta_metrics_post.json"));
const RUNS = Number(process.env.BENCH_LEVER_RUNS ?? 7);
const SAMPLES = Number(process.env.BENCH_LEVER_SAMPLES ?? 3);
/** How long each GET sample loads the server: enough for a rate, short enough for many rounds. */
const GET_SECONDS = 4;

interface Build {
  name: string;
  binary: string;
  extra: Record<string, string>;
  startup: number[];
  rss: number[];
  anon: number[];
  rps: number[];
  map?: MemoryMap;
}

const builds: Build[] = process.argv.slice(2).map((arg) => {
  const [name = arg, rest = ""] = arg.split(/=(.*)/s);
  const [binary = "", vars = ""] = rest.split(":");
  const extra = Object.fromEntries(
    vars
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=", 2) as [string, string]),
  );
  return { name, binary, extra, startup: [], rss: [], anon: [], rps: [] };
});

for (let i = 0; i < RUNS; i++) {
  for (const b of builds) {
    // ? The service's settings as bench/run.ts gives them, so the figures compare.
    const run = await launch(b.binary, (home, port) =>
      serviceEnv(home, port, { NEOLIGHT_WRITE_RATE: "1000000", NEOLIGHT_WRITE_BURST: "1000000", ...b.extra }),
    );
    b.startup.push(run.startupMs);
    if (i < SAMPLES) {
      // ? A figure, not a wait for something: every build idles alike before it is read.
      await Bun.sleep(IDLE_MS);
      b.rss.push(procStatusKiB(run.pid, "VmRSS") / 1024);
      b.anon.push(procStatusKiB(run.pid, "RssAnon") / 1024);
      b.map = memoryMap(run.pid);
      if (process.env.BENCH_LEVER_GET === "1") {
        const url = `http://127.0.0.1:${run.port}/meta/metrics`;
        await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: FIXTURE });
        const out = spawnSync("wrk", ["-t2", "-c100", `-d${GET_SECONDS}s`, url], { encoding: "utf8" }).stdout;
        b.rps.push(Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0));
      }
    }
    await run.stop();
  }
}

const f = (xs: number[], d = 1) => (xs.length === 0 ? "-" : median(xs).toFixed(d));
console.log("| build | start-up ms | idle RSS MB | RssAnon MB | GET req/s | binary r-xp | r--p | rw-p | anon |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const b of builds) {
  const m = b.map;
  const maps = m
    ? [m.binary_rx, m.binary_r, m.binary_rw, m.anon].map((v) => v.toFixed(1)).join(" | ")
    : "- | - | - | -";
  console.log(`| ${b.name} | ${f(b.startup)} | ${f(b.rss)} | ${f(b.anon)} | ${f(b.rps, 0)} | ${maps} |`);
}
