// The JSON-file backend of the document store: state/meta_metrics.json.
// Safe writes (STYLE rule 5): temp file in the same directory, fsync, rename, fsync the
// directory. A crash at any point leaves either the old or the new file, never a torn one.
import { constants } from "node:fs";
import { copyFile, link, lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncFd, writeFd } from "./fd-io";
import { createFdReserve } from "./fd-reserve";
import { objectJson } from "./json-text";
import {
  CACHE_TIMESTAMP_KEY,
  type JsonObject,
  type LoadResult,
  type Persistence,
  UnconfirmedWriteError,
} from "./store";

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Where a corrupt file at `path` is moved: `<path>.corrupt-20251103T220000123Z` (sortable,
 * safe in a file name). Shared by every store that keeps what it cannot read.
 */
export function asidePath(path: string, date = new Date()): string {
  return `${path}.corrupt-${date.toISOString().replace(/[-:.]/g, "")}`;
}

/**
 * The state file is not a regular file: a symlink (a write would replace it with a regular
 * file; a dangling one would pass for a first start and serve "not paused"), a FIFO (a read
 * would wait for a writer for ever), a directory or a device. Start-up stops (exit 1).
 */
export class StateFileTypeError extends Error {
  constructor(path: string, what: string) {
    super(`state file ${path} is ${what}, not a regular file: replace it with a regular file or remove it`);
    this.name = "StateFileTypeError";
  }
}

/** The state file's text; null when there is none. Throws StateFileTypeError for anything but a regular file. */
async function readStateFile(path: string): Promise<string | null> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  if (info.isSymbolicLink()) throw new StateFileTypeError(path, "a symlink");
  if (!info.isFile()) throw new StateFileTypeError(path, info.isFIFO() ? "a FIFO" : "not a regular file");
  // ? Non-blocking and no-follow: the path may have been swapped since lstat; a FIFO opened
  // this way does not wait for a writer, and fstat then refuses it.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    if (!(await handle.stat()).isFile()) throw new StateFileTypeError(path, "not a regular file");
    return await handle.readFile("utf8");
  } finally {
    await handle.close().catch(() => {});
  }
}

export function createJsonFilePersistence(path: string): Persistence {
  const dir = dirname(path);
  // ? One temp name per process: saves are serialised by the store. Temp files left by
  // crashed runs (other pids) are removed at load: they never hold acknowledged state.
  const tmpPrefix = `.${basename(path)}.tmp-`;
  const tmp = join(dir, `${tmpPrefix}${process.pid}`);

  async function removeStaleTemps(): Promise<void> {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(tmpPrefix)) await unlink(join(dir, name)).catch(() => {});
    }
  }

  // ? The write must not fail for lack of descriptors (a connection flood, issue 15 item 8):
  // the directory's descriptor is held open, and the temp file may use a spare.
  const reserve = createFdReserve(dir);
  const fsyncDir = () => reserve.syncDir();

  return {
    path,
    async load(): Promise<LoadResult> {
      await removeStaleTemps();
      const text = await readStateFile(path);
      if (text === null) return { state: null, corrupt: null };
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (!isObject(parsed)) {
        // ? Never overwrite or delete what we cannot read (an operator may need it to
        // reconstruct the guardian state), and leave it at its path until a write can
        // replace it (keepAside): moved away first, a restart would find no file, take it
        // for a first start and serve "not paused". The words never quote the content.
        const corrupt = `${parsed === undefined ? "not valid JSON" : "not a JSON object"} (${text.length} bytes)`;
        return { state: null, corrupt };
      }
      const { [CACHE_TIMESTAMP_KEY]: stamp, ...doc } = parsed;
      return { state: { doc, updatedAt: typeof stamp === "string" ? stamp : null }, corrupt: null };
    },
    async keepAside() {
      const aside = asidePath(path);
      try {
        // ? A second name for the same file: needs no space for its content (the disk may
        // be full, which is often why we are here), and `path` keeps it meanwhile.
        await link(path, aside);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw err;
        // A filesystem without hard links: a copy, made durable.
        await copyFile(path, aside, constants.COPYFILE_EXCL);
        const handle = await open(aside, "r+");
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await fsyncDir();
      return aside;
    },
    async save(state) {
      // ? Each value's text is made once and shared with the served document and the live
      // stream (json-text.ts): only the keys are written anew.
      const text = objectJson({ ...state.doc, [CACHE_TIMESTAMP_KEY]: state.updatedAt });
      const fd = reserve.open(tmp, "w", 0o644);
      try {
        await writeFd(fd, text);
        await fsyncFd(fd);
      } catch (err) {
        reserve.close(fd);
        await unlink(tmp).catch(() => {});
        throw err;
      }
      reserve.close(fd);
      await rename(tmp, path);
      // ? From here the new state is the file: a failure is "unconfirmed", not "unchanged".
      // One retry: a transient EMFILE/EINTR should not cost the batch its 200.
      try {
        await fsyncDir().catch(fsyncDir);
      } catch (err) {
        throw new UnconfirmedWriteError(`directory fsync failed after rename: ${(err as Error).message}`, err);
      }
    },
  };
}
