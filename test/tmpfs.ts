// A real tiny filesystem for fault tests: a tmpfs mounted on a temporary directory (root
// only; callers skip with a message where mounting is not allowed), and a way to fill it.
import { expect } from "bun:test";
import { mkdirSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers";

/** Size of the tiny filesystem: a few copies of the document, quickly filled. */
const TMPFS_SIZE = "256k";

/** A tmpfs of `size` (mount's notation: "256k", "4m") mounted at `dir`, unmounted at the end of its `using` scope. */
export function mountTmpfs(dir: string, size = TMPFS_SIZE): Disposable & { remount(mode: "ro" | "rw"): void } {
  mkdirSync(dir, { recursive: true });
  const run = (args: string[]) => {
    const r = Bun.spawnSync(args, { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${args.join(" ")}: ${r.stderr.toString().trim()}`);
  };
  run(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  return {
    remount: (mode) => run(["mount", "-o", `remount,${mode}`, dir]),
    [Symbol.dispose]: () => run(["umount", "-l", dir]),
  };
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN); probed once. */
export const canMount = (() => {
  using probe = tempDir("neolight-mount-probe-");
  try {
    using _fs = mountTmpfs(join(probe.path, "m"));
    return true;
  } catch (err) {
    console.warn(`SKIP disk-full tests: cannot mount a tmpfs (${(err as Error).message}); run as root to include them`);
    return false;
  }
})();

/** Fills the filesystem holding `dir` until a write fails with ENOSPC. */
export function fill(dir: string): void {
  const chunk = Buffer.alloc(16 * 1024, 1);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
      throw err;
    }
  }
  expect(statfsSync(dir).bavail).toBe(0);
}
