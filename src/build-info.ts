// The build's identity for --version: the git commit the program was built from.
// config.ts imports gitCommit `with { type: "macro" }`: `bun build` (make build) runs it
// once and writes its answer into the binary as a string, so the binary needs neither git
// nor the checkout; from source, Bun runs it as it loads config.ts. It never throws: with
// no git, or outside a checkout, the commit is "unknown" and the service starts anyway.

/** Longest a git call may take; a hung git must not hold up a build or a start. */
const GIT_TIMEOUT_MS = 2000;

function git(args: string[]): string | null {
  try {
    const out = Bun.spawnSync(["git", ...args], {
      cwd: import.meta.dir,
      stdout: "pipe",
      stderr: "ignore",
      timeout: GIT_TIMEOUT_MS,
    });
    return out.exitCode === 0 ? out.stdout.toString().trim() : null;
  } catch {
    // No git on PATH: spawnSync throws ENOENT.
    return null;
  }
}

/** "1ecb8f12ab34", "1ecb8f12ab34-dirty" (tracked files changed since), or "unknown". */
export function gitCommit(): string {
  const commit = git(["rev-parse", "--short=12", "HEAD"]);
  if (commit === null || commit === "") return "unknown";
  const changes = git(["status", "--porcelain", "--untracked-files=no"]);
  return changes === null || changes === "" ? commit : `${commit}-dirty`;
}
