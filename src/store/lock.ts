// One instance per state directory (issue 9): an exclusive flock(2) on a lock file in the
// directory, held for the life of the process. Two instances writing one meta_metrics.json
// would leave, after a restart, a state that neither of them served to the router.
//
// Why flock through bun:ffi: Bun has no flock API, and a lock must be released by the
// kernel when its holder dies (kill -9, OOM), or a crash would keep the service from
// coming back. A pid file or an O_EXCL file would outlive its holder; flock does not.
// The lock belongs to the open file description, so it is released when the process
// exits however it exits, and a second open() of the file, even in the same process,
// conflicts with it.
//
// The lock file is never deleted: unlinking it would let a newcomer lock a fresh inode
// while the holder still holds the old one. Its content is the holder's pid, for the
// refusal's log line only; the lock itself is the kernel's.
import { dlopen, FFIType, type Pointer, read, suffix } from "bun:ffi";
import { closeSync, constants, openSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";

/** The lock file's name inside the locked directory (beside meta_metrics.json). */
export const LOCK_FILE_NAME = "dashboard.lock";

/** flock(2) operations, the same on Linux and macOS. */
const LOCK_EX = 2;
const LOCK_NB = 4;

/** Another live process holds the lock: exit 1 (a restart may succeed once it is gone). */
export class DirectoryLockedError extends Error {
  constructor(
    readonly directory: string,
    readonly lockFile: string,
    /** The pid the holder wrote into the file; null when it has not written it yet. */
    readonly holderPid: number | null,
  ) {
    super(`${directory} is in use by another instance (pid ${holderPid ?? "unknown"}; lock ${lockFile})`);
    this.name = "DirectoryLockedError";
  }
}

/** flock itself cannot be had (no libc through bun:ffi, or flock failed otherwise). */
export class LockUnavailableError extends Error {
  constructor(
    readonly lockFile: string,
    message: string,
  ) {
    super(`cannot lock ${lockFile}: ${message}`);
    this.name = "LockUnavailableError";
  }
}

/**
 * Tries an exclusive, non-blocking lock on `fd`: true when taken, false when another open
 * file description holds it. Throws on any other failure.
 */
export type TryLock = (fd: number) => boolean;

let libcTryLock: TryLock | undefined;

/** flock(fd, LOCK_EX | LOCK_NB) from the C library, loaded once. Throws when it cannot be. */
export function flockTryLock(): TryLock {
  if (libcTryLock) return libcTryLock;
  // ? On glibc `libc.so` is a linker script that dlopen cannot load: the soname comes first.
  const names = process.platform === "linux" ? ["libc.so.6", `libc.${suffix}`] : [`libc.${suffix}`];
  const errnoSymbol = process.platform === "linux" ? "__errno_location" : "__error";
  let lastError: unknown;
  for (const name of names) {
    try {
      const lib = dlopen(name, {
        flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        [errnoSymbol]: { args: [], returns: FFIType.ptr },
      });
      const flock = lib.symbols.flock as (fd: number, op: number) => number;
      const errnoPointer = lib.symbols[errnoSymbol] as () => Pointer | null;
      libcTryLock = (fd) => {
        if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
        const pointer = errnoPointer();
        const errno = pointer === null ? -1 : read.i32(pointer, 0);
        if (errno === osConstants.errno.EWOULDBLOCK) return false;
        const name = Object.entries(osConstants.errno).find(([, value]) => value === errno)?.[0];
        throw new Error(`flock failed: ${name ?? "errno"} ${errno}`);
      };
      return libcTryLock;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`flock is not available through bun:ffi (${names.join(", ")}): ${(lastError as Error).message}`);
}

/** A held lock. The process keeps it until it exits; release() is for tests. */
export interface DirectoryLock {
  readonly directory: string;
  readonly lockFile: string;
  /** Closes the file, which releases the lock. Idempotent. */
  release(): void;
}

function holderPid(lockFile: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(lockFile, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the exclusive lock on `directory` (which must exist) and writes this process's pid
 * into its lock file. Throws DirectoryLockedError when another process holds it, and
 * LockUnavailableError when the lock cannot be had at all: running unlocked is never an
 * option. `loadTryLock` replaces flock (tests: a platform without it).
 */
export function lockDirectory(directory: string, loadTryLock: () => TryLock = flockTryLock): DirectoryLock {
  const lockFile = join(directory, LOCK_FILE_NAME);
  /** Runs one step; its failure closes `fd` (when open) and becomes LockUnavailableError. */
  const step = <T>(run: () => T, fd?: number): T => {
    try {
      return run();
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      throw new LockUnavailableError(lockFile, (err as Error).message);
    }
  };
  const tryLock = step(loadTryLock);
  // ? The lock is held on a read-only descriptor: a file open for writing would make the
  // kernel refuse a read-only remount of the state filesystem ("busy") for as long as the
  // service runs. flock does not need write access; the pid is written through a second,
  // short-lived descriptor once the lock is held.
  const fd = step(() => openSync(lockFile, constants.O_RDONLY | constants.O_CREAT, 0o644));
  if (!step(() => tryLock(fd), fd)) {
    closeSync(fd);
    throw new DirectoryLockedError(directory, lockFile, holderPid(lockFile));
  }
  // ? Only the holder writes, so truncating cannot clobber another's pid; a stale pid of a
  // killed holder is replaced here. The pid is for the refusal's log line only: a full disk
  // must not keep the service from starting and serving its fail-safe pause (issue 15), so
  // no space for it leaves the file empty (the refusal then says "pid unknown").
  step(() => {
    try {
      writeFileSync(lockFile, `${process.pid}\n`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOSPC" && code !== "EDQUOT") throw err;
    }
  }, fd);
  let open = true;
  return {
    directory,
    lockFile,
    release() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/**
 * Locks each directory once (by real path: a symlink to a locked directory is the same
 * directory), in order. On a failure the locks already taken are released and the error
 * is thrown.
 */
export function lockDirectories(directories: readonly string[], loadTryLock?: () => TryLock): DirectoryLock[] {
  const locks: DirectoryLock[] = [];
  const seen = new Set<string>();
  try {
    for (const directory of directories) {
      const real = realpathSync(directory);
      if (seen.has(real)) continue;
      seen.add(real);
      locks.push(lockDirectory(directory, loadTryLock));
    }
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }
  return locks;
}
