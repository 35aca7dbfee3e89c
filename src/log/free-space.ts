// A free-space floor on one filesystem: the log (logger.ts) and the history recorder
// (modules/history/recorder.ts) both keep out of the room the document needs, and ask the
// filesystem the same way. The floor is crossed downwards below `minFree` and upwards at
// `resumeAt` or more (hysteresis: a disk hovering at the floor does not flap).
import { statfsSync, statSync } from "node:fs";

/** Free bytes for an unprivileged writer on the filesystem holding `dir`; null when it cannot be asked. */
export function freeBytes(dir: string): number | null {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return null;
  }
}

/** Whether `a` and `b` (existing paths) sit on one filesystem; false when either cannot be asked. */
export function sameFilesystem(a: string, b: string): boolean {
  try {
    return statSync(a).dev === statSync(b).dev;
  } catch {
    return false;
  }
}

export interface SpaceFloor {
  /** True since free space went under the floor, until it came back to resumeAt. */
  readonly low: boolean;
  /** Free bytes at the last check; null before the first or when the filesystem cannot be asked. */
  readonly free: number | null;
  /**
   * Asks the filesystem; returns true when this check crossed the floor (either way: read
   * `low`). An unanswerable filesystem changes nothing.
   */
  check(): boolean;
}

export function spaceFloor(dir: string, minFree: number, resumeAt = minFree): SpaceFloor {
  let low = false;
  let free: number | null = null;
  return {
    get low() {
      return low;
    },
    get free() {
      return free;
    },
    check() {
      free = freeBytes(dir);
      if (free === null) return false;
      const next = low ? free < resumeAt : free < minFree;
      if (next === low) return false;
      low = next;
      return true;
    },
  };
}
