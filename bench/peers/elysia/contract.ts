// The routes peer's optional start-up work (PEER_CONTRACT=1, issue 14): the least the wire
// contract has every start of the service do before its first answer, done as cheaply as
// it can be and checked not at all. It loads the built-ins that work needs (node:fs for the
// files, bun:ffi for the state lock's flock, node:os for $HOME, node:path), takes the lock,
// reads the document, the pause file and the agents' files where they exist (CONTRACT.md
// section 1), and writes one log line. What is left between this peer and the service is
// the service's own way of doing that work (validation, the guardian, watches, alerts,
// history, metrics) and its hooks. A benchmark peer: it keeps nothing.

/** The files a start reads, relative to NEOLIGHT_HOME (CONTRACT.md section 1). */
const READ_AT_START = [
  "state/meta_metrics.json",
  "state/guardian_pause.json",
  "state/performance_attribution.json",
  "runtime/market_regime.json",
  "runtime/capital_governor_allocations.json",
  "runtime/allocations_override.json",
];
const LOCK_EX = 2;
const LOCK_NB = 4;

/** Does the start-up work when PEER_CONTRACT=1; returns once it is done. */
export async function maybeDoContractWork(): Promise<void> {
  if (process.env.PEER_CONTRACT !== "1") return;
  const fs = await import("node:fs");
  // ? Loaded, not called: the service reads and watches the agents' files through it.
  await import("node:fs/promises");
  const { homedir } = await import("node:os");
  const { join } = await import("node:path");
  const { dlopen, FFIType } = await import("bun:ffi");
  const home = process.env.NEOLIGHT_HOME || join(homedir(), "neolight");
  for (const dir of ["state", "runtime", "logs"]) fs.mkdirSync(join(home, dir), { recursive: true });
  const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  const lockFd = fs.openSync(join(home, "state", "dashboard.lock"), "w");
  if (libc.symbols.flock(lockFd, LOCK_EX | LOCK_NB) !== 0) throw new Error("state directory locked");
  for (const file of READ_AT_START) {
    const path = join(home, file);
    if (fs.existsSync(path)) JSON.parse(fs.readFileSync(path, "utf8"));
  }
  fs.appendFileSync(join(home, "logs", "dashboard_go.log"), `${JSON.stringify({ msg: "service started" })}\n`);
}
