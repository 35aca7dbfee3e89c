// Start-up time and idle memory of compiled binaries (issue 3 targets; issue 6 measured
// what /metrics costs). For each binary: start it on a temp NEOLIGHT_HOME and a free port,
// time exec -> first 200 on /health, then read VmRSS after it has idled a second.
// Runs alternate between binaries so machine noise hits each alike.
//   bun bench/metrics/cost.ts [runs] name=path/to/binary[@VAR=value,...] ...
import { IDLE_MS, launch, median, procStatusKiB, serviceEnv } from "../lib";

interface Run {
  startMs: number;
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
}

async function once(binary: string, extraEnv: Record<string, string>): Promise<Run> {
  const run = await launch(binary, (home, port) => serviceEnv(home, port, extraEnv));
  await Bun.sleep(IDLE_MS);
  // ? VmRSS = RssAnon + RssFile (+ shmem). RssFile is the part of the 100 MiB binary that
  // is mapped, and varies by a few MiB with the page cache's state of the file (measured:
  // two builds of one commit differed by 2.7 MiB). RssAnon is what the process allocated.
  const mib = (field: "VmRSS" | "RssAnon" | "RssFile") => procStatusKiB(run.pid, field) / 1024;
  const result = { startMs: run.startupMs, rssMiB: mib("VmRSS"), anonMiB: mib("RssAnon"), fileMiB: mib("RssFile") };
  await run.stop(true);
  return result;
}

const args = process.argv.slice(2);
const runs = /^\d+$/.test(args[0] ?? "") ? Number(args.shift()) : 7;
const binaries = args.map((a) => {
  const [name, rest] = a.split(/=(.*)/s) as [string, string];
  const [path, env = ""] = rest.split("@") as [string, string?];
  const extra = Object.fromEntries(
    env
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]),
  );
  return [name, path, extra] as const;
});
const results = new Map<string, Record<keyof Run, number[]>>(
  binaries.map(([name]) => [name, { startMs: [], rssMiB: [], anonMiB: [], fileMiB: [] }]),
);
for (let i = 0; i < runs; i++) {
  for (const [name, path, extra] of binaries) {
    const r = await once(path, extra);
    const into = results.get(name) as Record<keyof Run, number[]>;
    for (const key of Object.keys(r) as (keyof Run)[]) into[key].push(r[key]);
  }
}
const base = binaries[0]?.[0] as string;
const baseStart = median(results.get(base)?.startMs ?? []);
for (const [name, r] of results) {
  const start = median(r.startMs);
  console.log(
    `${name.padEnd(16)} start-up median ${start.toFixed(1)} ms (x${(start / baseStart).toFixed(2)} of ${base}), ` +
      `idle RSS median ${median(r.rssMiB).toFixed(1)} MiB (anon ${median(r.anonMiB).toFixed(1)}, file ${median(r.fileMiB).toFixed(1)}), runs ${r.startMs.length}`,
  );
}
