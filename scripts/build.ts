// The one command that compiles the service into a standalone executable: `make build`,
// the benchmarks, the soak run and the e2e and browser tests all build through here, so
// every binary they run is the binary we ship.
//
//   bun run scripts/build.ts [outfile]     # default: dist/neolight-dashboard
//
// ? The history worker (src/store/history-worker.ts) is a second entry point: Bun bundles
// only what is imported, and `new Worker(...)` is not an import, so without it the binary
// starts but its history thread cannot load. `--root src` fixes the name the worker gets
// inside the binary (/$bunfs/root/store/history-worker.js; see WORKER_ENTRY).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { WORKER_ENTRY } from "../src/store/history-thread";

const ROOT = join(import.meta.dir, "..");
export const DEFAULT_BINARY = join(ROOT, "dist", "neolight-dashboard");

/** `bun build` arguments that compile the service to `outfile`. */
export function compileArgs(outfile: string): string[] {
  return [
    "build",
    join(ROOT, "src", "main.ts"),
    join(ROOT, "src", WORKER_ENTRY),
    "--root",
    join(ROOT, "src"),
    "--compile",
    "--minify",
    "--bytecode",
    "--sourcemap=none",
    "--outfile",
    outfile,
  ];
}

/** Compiles the service to `outfile`; throws with the compiler's output when it fails. */
export function compile(outfile = DEFAULT_BINARY): string {
  const r = spawnSync(process.execPath, compileArgs(outfile), { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  return outfile;
}

if (import.meta.main) {
  const out = compile(process.argv[2] ?? DEFAULT_BINARY);
  console.log(`built ${out}`);
}
