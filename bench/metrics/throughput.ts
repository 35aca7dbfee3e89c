// Throughput of GET /meta/metrics (or another path) on compiled binaries, with wrk:
// what the per-request recording of issue 6 costs. Each binary is started once on a temp
// NEOLIGHT_HOME; rounds alternate between binaries so machine noise hits each alike.
//   bun bench/metrics/throughput.ts [rounds] [seconds] name=path/to/binary ...
// Short runs on 127.0.0.1 only; the machine is shared, so never a long load test.
import { launch, median, serviceEnv } from "../lib";

const PATH = process.env.BENCH_PATH ?? "/meta/metrics";
const CONNECTIONS = 32;

async function start(binary: string) {
  const run = await launch(binary, (home, port) => serviceEnv(home, port, { LOG_PATH: "/dev/null" }));
  return { url: `http://127.0.0.1:${run.port}${PATH}`, stop: () => run.stop(true) };
}

function wrk(url: string, seconds: number): number {
  const out = Bun.spawnSync(["wrk", "-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, url]).stdout.toString();
  const m = out.match(/Requests\/sec:\s+([\d.]+)/);
  if (!m) throw new Error(`wrk output without Requests/sec:\n${out}`);
  return Number(m[1]);
}

const args = process.argv.slice(2);
const rounds = /^\d+$/.test(args[0] ?? "") ? Number(args.shift()) : 3;
const seconds = /^\d+$/.test(args[0] ?? "") ? Number(args.shift()) : 4;
const binaries = args.map((a) => a.split(/=(.*)/s) as [string, string]);
const servers = await Promise.all(binaries.map(([, path]) => start(path)));
const results = binaries.map(() => [] as number[]);
for (const s of servers) wrk(s.url, 1); // warm-up
for (let r = 0; r < rounds; r++) {
  // ? The order turns each round, so no binary always runs first (or right after another).
  for (let k = 0; k < servers.length; k++) {
    const i = (k + r) % servers.length;
    (results[i] as number[]).push(wrk((servers[i] as { url: string }).url, seconds));
  }
}
await Promise.all(servers.map((s) => s.stop()));
// ? Other load on the shared machine moves every figure by up to 2x between rounds; the
// ratio within a round, where all binaries saw about the same load, is the steadier figure.
const base = results[0] as number[];
binaries.forEach(([name], i) => {
  const own = results[i] as number[];
  const ratios = own.map((x, r) => x / (base[r] as number));
  console.log(
    `${name.padEnd(16)} ${PATH} median ${median(own).toFixed(0)} req/s, median ratio to ${binaries[0]?.[0]} per round x${median(ratios).toFixed(3)}; rounds ${own.map((x) => x.toFixed(0)).join(" ")}`,
  );
});
