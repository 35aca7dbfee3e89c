// The free-space floor the log and history share, on a real tmpfs: under the floor it is
// low, and it comes back only at resumeAt (hysteresis), each crossing reported once.
import { expect, test } from "bun:test";
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeBytes, sameFilesystem, spaceFloor } from "../../src/log/free-space";
import { tempDir } from "../helpers";
import { canMount, mountTmpfs } from "../tmpfs";

const MB = 1024 * 1024;

test.skipIf(!canMount)("low under minFree, back only at resumeAt; check() says when it crossed", () => {
  using home = tempDir();
  const dir = join(home.path, "disk");
  using _disk = mountTmpfs(dir, "8m");
  expect(sameFilesystem(dir, home.path)).toBe(false);
  const floor = spaceFloor(dir, 3 * MB, 4 * MB);
  expect(floor.check()).toBe(false);
  expect(floor.low).toBe(false);
  expect(floor.free).toBe(freeBytes(dir));

  const chunk = Buffer.alloc(64 * 1024, 1);
  const files: string[] = [];
  const fillTo = (bytes: number) => {
    while ((freeBytes(dir) as number) >= bytes) {
      const path = join(dir, `f${files.length}`);
      writeFileSync(path, chunk);
      files.push(path);
    }
  };
  const freeTo = (bytes: number) => {
    while ((freeBytes(dir) as number) < bytes) unlinkSync(files.pop() as string);
  };

  fillTo(2.5 * MB);
  expect(floor.check()).toBe(true);
  expect(floor.low).toBe(true);
  expect(floor.check()).toBe(false);
  // Above the floor but under resumeAt: still low.
  freeTo(3.5 * MB);
  expect(floor.check()).toBe(false);
  expect(floor.low).toBe(true);
  freeTo(4 * MB);
  expect(floor.check()).toBe(true);
  expect(floor.low).toBe(false);
});

test("a filesystem that cannot be asked changes nothing", () => {
  const floor = spaceFloor("/nonexistent/neolight", 1);
  expect(floor.check()).toBe(false);
  expect(floor.low).toBe(false);
  expect(floor.free).toBeNull();
  expect(sameFilesystem("/nonexistent/a", "/")).toBe(false);
});
