// What every benchmark script here needs: start a server binary on a free port with a
// temporary NEOLIGHT_HOME, time exec -> first 200 on /health, read its memory from /proc,
// stop it; and a median. Traffic only ever goes to 127.0.0.1.
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../test/wait";

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Launched {
  port: number;
  pid: number;
  home: string;
  /** exec -> first 200 on /health, ms. */
  startupMs: number;
  /** Stops the server (SIGTERM, or SIGKILL when `kill`) and removes its home. */
  stop(kill?: boolean): Promise<void>;
}

/** The environment of this service for a benchmark: its own home and port, loopback only. */
export function serviceEnv(home: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    NEOLIGHT_HOME: home,
    NEOLIGHT_DASHBOARD_PORT: String(port),
    NEOLIGHT_DASHBOARD_HOST: "127.0.0.1",
    // Nothing listens on the discard port: the risk engine is simply unreachable.
    NEOLIGHT_RISK_URL: "http://127.0.0.1:9",
    ...extra,
  };
}

/**
 * Idle memory is read after the server has idled this long: a figure, not a wait for
 * something to happen (the time is what is measured).
 */
export const IDLE_MS = 1000;

/** How long a server may take to answer /health before the benchmark gives up. */
const START_DEADLINE_MS = 10_000;
/** Start-up is timed by polling /health: every millisecond, so the figure is exact to ~1 ms. */
const START_POLL_MS = 1;

/**
 * Starts `binary` with `env(home, port)` (PATH is passed through) and resolves once it
 * answers 200 on /health (START_POLL_MS says how exactly that is timed).
 */
export async function launch(
  binary: string,
  env: (home: string, port: number) => Record<string, string>,
): Promise<Launched> {
  const home = mkdtempSync(join(tmpdir(), "neolight-bench-"));
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([binary], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env(home, port) },
    stdout: "ignore",
    stderr: "ignore",
  });
  const healthy = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false; // not listening yet
    }
  };
  try {
    await waitFor(healthy, `${binary} to answer /health`, START_DEADLINE_MS, START_POLL_MS);
  } catch (error) {
    proc.kill("SIGKILL");
    throw error;
  }
  const startupMs = performance.now() - t0;
  return {
    port,
    pid: proc.pid,
    home,
    startupMs,
    async stop(kill = false) {
      proc.kill(kill ? "SIGKILL" : "SIGTERM");
      await proc.exited;
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * A field of /proc/<pid>/status in KiB, 0 when the process is gone: VmRSS (what the targets
 * name), RssAnon (the process's own memory) or RssFile (the mapped executable, which the
 * page cache shares and can drop: for a 100 MB Bun executable most of VmRSS).
 */
export function procStatusKiB(pid: number, field: "VmRSS" | "RssAnon" | "RssFile"): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+)`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

/** CPU time the main thread of `pid` has used (user + system), ms, from /proc/<pid>/task/<pid>/stat. */
export function mainThreadCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  // ? After the ")" that closes the command name: state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** A wrk duration ("812.00us", "1.52ms", "2.00s") in ms; NaN when it is none. */
export function toMs(v: string): number {
  const m = v.match(/^([\d.]+)(us|ms|s)$/);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** Where a server's resident memory is, from /proc/<pid>/smaps (issue 14), in MiB. */
export interface MemoryMap {
  /** The executable's code: the part of Bun's native code start-up and requests touched. */
  binary_rx: number;
  /** The executable's read-only data (the embedded bundle and bytecode among it). */
  binary_r: number;
  /** The executable's writable data. */
  binary_rw: number;
  /** Anonymous memory: heaps (JS and native), stacks. */
  anon: number;
  /** Every other file-backed mapping (shared libraries). */
  other_files: number;
}

/** The Rss of each mapping of `pid`, summed by kind (MemoryMap); zeros when it is gone. */
export function memoryMap(pid: number): MemoryMap {
  const map: MemoryMap = { binary_rx: 0, binary_r: 0, binary_rw: 0, anon: 0, other_files: 0 };
  let text: string;
  let exe: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return map;
  }
  let kind: keyof MemoryMap = "anon";
  for (const line of text.split("\n")) {
    // A mapping's header: "start-end perms offset dev inode [path]".
    const header = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ \S+ (\d+)\s*(.*)$/);
    if (header) {
      const [, perms = "", inode = "0", path = ""] = header;
      if (path === exe)
        kind = perms.startsWith("r-x") ? "binary_rx" : perms.startsWith("rw") ? "binary_rw" : "binary_r";
      else kind = inode === "0" ? "anon" : "other_files";
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB/);
    if (rss) map[kind] += Number(rss[1]) / 1024;
  }
  return map;
}
