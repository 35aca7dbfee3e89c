// The JSON-file backend of the document store: state/meta_metrics.json.
// Safe writes (STYLE rule 5): temp file in the same directory, fsync, rename, fsync the
// directory. A crash at any point leaves either the old or the new file, never a torn one.
import { open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../log/logger";
import { type JsonObject, type LoadResult, type Persistence, UnconfirmedWriteError } from "./store";

/** The key under which the file records when its state was committed (served as-is). */
export const CACHE_TIMESTAMP_KEY = "cache_timestamp";

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

export function createJsonFilePersistence(path: string, log: Logger): Persistence {
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

  async function fsyncDir(): Promise<void> {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  return {
    path,
    async load(): Promise<LoadResult> {
      await removeStaleTemps();
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: null, corruptMovedTo: null };
        throw err;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (!isObject(parsed)) {
        // ? Never overwrite or delete what we cannot read: an operator may need it to
        // reconstruct the guardian state. Move it aside and start from the default.
        const aside = asidePath(path);
        await rename(path, aside);
        await fsyncDir();
        log.error("persisted state corrupt, moved aside", { path, moved_to: aside, bytes: text.length });
        return { state: null, corruptMovedTo: aside };
      }
      const { [CACHE_TIMESTAMP_KEY]: stamp, ...doc } = parsed;
      return { state: { doc, updatedAt: typeof stamp === "string" ? stamp : null }, corruptMovedTo: null };
    },
    async save(state) {
      const text = JSON.stringify({ ...state.doc, [CACHE_TIMESTAMP_KEY]: state.updatedAt });
      const handle = await open(tmp, "w", 0o644);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } catch (err) {
        await handle.close().catch(() => {});
        await unlink(tmp).catch(() => {});
        throw err;
      }
      await handle.close();
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
