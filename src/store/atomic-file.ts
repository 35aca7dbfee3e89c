// Durable writes and removals of small files other processes read (the guardian's pause
// file, issue 11). Safe writes (STYLE rule 5): a temp file in the same directory, fsync,
// rename, fsync of the directory; a reader (the smart trader, the hive, our own watcher)
// finds the old file or the new one, never a half-written one, and a power loss after the
// promise resolves cannot undo it.
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `text`, durably. Resolves once file and directory are fsynced; on a
 * rejection before the rename the file at `path` is unchanged (the temp file is removed).
 * Creates the directory when missing. Concurrent calls for one path must be serialised by
 * the caller (one temp name per process and path).
 */
export async function writeFileDurably(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
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
  await syncDirectory(dir);
}

/** Removes `path` durably (a missing file is not an error). Resolves once the directory is fsynced. */
export async function removeFileDurably(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  await syncDirectory(dirname(path));
}
