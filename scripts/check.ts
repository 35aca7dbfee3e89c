// The README's test command: type-check, lint, then every test. Each step's output is
// shown as it runs; the first failing step decides the exit code.
import { spawnSync } from "node:child_process";

/** Longest one test may run before it counts as hung. */
const TEST_TIMEOUT_MS = 60_000;

const steps: [string, string[]][] = [
  ["type-check", [process.execPath, "x", "tsc", "--noEmit", "-p", "."]],
  ["type-check page", [process.execPath, "x", "tsc", "--noEmit", "-p", "src/web/page"]],
  ["lint", [process.execPath, "x", "biome", "check", "."]],
  // ? bunfig.toml has no per-test timeout setting that bun test honours (its default is 5 s):
  // real processes and the compiled binary need more on a loaded 2-core machine. No test
  // waits on time, so this only bounds a hung one.
  ["tests", [process.execPath, "test", "--timeout", String(TEST_TIMEOUT_MS), ...process.argv.slice(2)]],
];

for (const [name, [cmd, ...args]] of steps) {
  process.stderr.write(`\n== ${name}: ${[cmd, ...args].join(" ")}\n`);
  const result = spawnSync(cmd as string, args, { stdio: "inherit" });
  if (result.status !== 0) {
    process.stderr.write(`\n== ${name} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
}
