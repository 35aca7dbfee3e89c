// Descriptors kept back for the durable write (issue 15 item 8). A flood of idle TCP
// connections can take every descriptor the process may open; the guardian's pause must
// still be written. The write needs two: the state directory (its fsync after the rename),
// held open for the life of the process, and the temp file, opened through a spare
// descriptor that is given up only when an open fails for lack of descriptors.
//
// ? Everything here is synchronous on purpose: Bun accepts connections on the main thread,
// so between closing the spare and the open that takes its place no accept can run and take
// the freed number. The same holds for closing the temp file and taking the spare back.
import { closeSync, openSync } from "node:fs";
import { fsyncFd } from "./fd-io";

/** Errors that mean "no descriptor left" (the process's limit, or the system's). */
const OUT_OF_DESCRIPTORS = new Set(["EMFILE", "ENFILE"]);

/** What a spare descriptor holds: a file that always exists and costs nothing to keep open. */
const SPARE_PATH = "/dev/null";

export interface FdReserve {
  /**
   * Opens `path` (openSync's flags and mode) and returns the descriptor. When the process is
   * out of descriptors, gives up the spare and tries once more; the spare is taken back at
   * `close`. Any other error, or a second failure, is thrown as it is.
   */
  open(path: string, flags: string, mode?: number): number;
  /** Closes a descriptor from `open`, and takes the spare back if `open` used it. */
  close(fd: number): void;
  /** fsyncs the directory through its descriptor, held open from the first call on. */
  syncDir(): Promise<void>;
}

function outOfDescriptors(err: unknown): boolean {
  return OUT_OF_DESCRIPTORS.has((err as NodeJS.ErrnoException).code ?? "");
}

function takeSpare(): number | null {
  try {
    return openSync(SPARE_PATH, "r");
  } catch {
    // ? No spare now (already out of descriptors): the next `close` tries again.
    return null;
  }
}

export function createFdReserve(dir: string): FdReserve {
  let spare = takeSpare();
  let dirFd: number | null = null;
  try {
    // ? At creation (start-up, before any flood): the directory exists by then in the
    // service. Where it does not yet, the first syncDir opens it.
    dirFd = openSync(dir, "r");
  } catch {
    dirFd = null;
  }

  function open(path: string, flags: string, mode?: number): number {
    try {
      return openSync(path, flags, mode);
    } catch (err) {
      if (!outOfDescriptors(err) || spare === null) throw err;
      closeSync(spare);
      spare = null;
      return openSync(path, flags, mode);
    }
  }

  return {
    open,
    close(fd) {
      closeSync(fd);
      spare ??= takeSpare();
    },
    async syncDir() {
      dirFd ??= open(dir, "r");
      // ? If the open above used the spare, the directory keeps it for good; a spare is
      // taken back with the next closed descriptor.
      spare ??= takeSpare();
      await fsyncFd(dirFd);
    },
  };
}
