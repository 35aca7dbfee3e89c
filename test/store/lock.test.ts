// The state-directory lock (issue 9) in one process: flock locks belong to the open file
// description, so a second lockDirectory() here conflicts exactly as a second process does.
// Other processes and kill -9: test/e2e/lock.test.ts.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import {
  DirectoryLockedError,
  LOCK_FILE_NAME,
  LockUnavailableError,
  lockDirectories,
  lockDirectory,
} from "../../src/store/lock";
import { tempDir } from "../helpers";

function lockError(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error("expected the lock to be refused");
}

describe("lockDirectory", () => {
  test("a held lock refuses a second one, naming the directory and the holder's pid", () => {
    using dir = tempDir();
    const lock = lockDirectory(dir.path);
    const lockFile = join(dir.path, LOCK_FILE_NAME);
    expect(readFileSync(lockFile, "utf8")).toBe(`${process.pid}\n`);
    const err = lockError(() => lockDirectory(dir.path));
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect(err).toMatchObject({ directory: dir.path, lockFile, holderPid: process.pid });
    lock.release();
    // Released: the next one takes it at once, and the file is left in place.
    lockDirectory(dir.path).release();
  });

  test("a stale pid left by a dead holder is replaced by the new holder's", async () => {
    using dir = tempDir();
    await Bun.write(join(dir.path, LOCK_FILE_NAME), "999999999\n");
    const lock = lockDirectory(dir.path);
    expect(readFileSync(join(dir.path, LOCK_FILE_NAME), "utf8")).toBe(`${process.pid}\n`);
    lock.release();
  });

  test("without flock start-up cannot lock: LockUnavailableError, never an unlocked start", () => {
    using dir = tempDir();
    const noFlock = () => {
      throw new Error("dlopen failed");
    };
    const err = lockError(() => lockDirectory(dir.path, noFlock));
    expect(err).toBeInstanceOf(LockUnavailableError);
    expect((err as Error).message).toContain("dlopen failed");
  });

  test("a flock failure other than 'held' is LockUnavailableError too", () => {
    using dir = tempDir();
    const failing = () => () => {
      throw new Error("flock failed (errno 37)");
    };
    expect(lockError(() => lockDirectory(dir.path, failing))).toBeInstanceOf(LockUnavailableError);
  });
});

describe("lockDirectories", () => {
  test("one directory named twice or through a symlink is locked once", () => {
    using dir = tempDir();
    const state = join(dir.path, "state");
    mkdirSync(state);
    symlinkSync(state, join(dir.path, "link"));
    const locks = lockDirectories([state, state, join(dir.path, "link")]);
    expect(locks.map((l) => l.directory)).toEqual([state]);
    for (const lock of locks) lock.release();
  });

  test("when a later directory is held, the ones already taken are released", () => {
    using dir = tempDir();
    const [a, b] = [join(dir.path, "a"), join(dir.path, "b")];
    mkdirSync(a);
    mkdirSync(b);
    const other = lockDirectory(b);
    expect(lockError(() => lockDirectories([a, b]))).toBeInstanceOf(DirectoryLockedError);
    lockDirectory(a).release();
    other.release();
  });
});
