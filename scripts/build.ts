// The one command that compiles the service into a standalone executable: `make build`,
// the benchmarks, the soak run and the e2e and browser tests all build through here, so
// every binary they run is the binary we ship (and the benchmarks' floor peer is built
// with the same flags, so the comparison is fair).
//
//   bun run scripts/build.ts [outfile]              # default: dist/neolight-dashboard
//   bun run scripts/build.ts outfile entry.ts ...   # another program, with the same flags
//                                                   # (the benchmarks' floor peer)
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

/** What to compile: entry points, and the root their names inside the binary start from. */
export interface Program {
  entries: string[];
  root?: string;
}

/** The service: src/main.ts and the history thread (see the note at the top). */
export const SERVICE: Program = {
  entries: [join(ROOT, "src", "main.ts"), join(ROOT, "src", WORKER_ENTRY)],
  root: join(ROOT, "src"),
};

/** `bun build` arguments that compile `program` (default: the service) to `outfile`. */
export function compileArgs(outfile: string, program: Program = SERVICE): string[] {
  return [
    "build",
    ...program.entries,
    ...(program.root === undefined ? [] : ["--root", program.root]),
    "--compile",
    "--minify",
    "--bytecode",
    "--sourcemap=none",
    "--outfile",
    outfile,
  ];
}

/** Compiles `program` to `outfile`; throws with the compiler's output when it fails. */
export function compile(outfile = DEFAULT_BINARY, program: Program = SERVICE): string {
  const r = spawnSync(process.execPath, compileArgs(outfile, program), { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  return outfile;
}

if (import.meta.main) {
  const [outfile = DEFAULT_BINARY, ...entries] = process.argv.slice(2);
  const out = compile(outfile, entries.length === 0 ? SERVICE : { entries });
  console.log(`built ${out}`);
}
