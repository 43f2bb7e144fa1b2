/**
 * Atomic file writes: a temporary file in the same directory (a dot name, so
 * the mirror route never serves it), fsync, rename. A reader sees the old
 * file or the new one, never a part; a crash leaves at most a temporary file.
 * `commitTemporary` is the write-fsync-rename step alone (the disk cache
 * uses it with its own temporary directory and names).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";

const TMP_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  await commitTemporary(tmp, file, (fh) => fh.writeFile(data));
}

/**
 * Creates `tmp` (it must not exist), fills it with `write`, fsyncs, closes,
 * runs `beforeRename` and renames it to `file`; on any failure the temporary
 * file is removed and the error passed on.
 */
export async function commitTemporary(
  tmp: string,
  file: string,
  write: (fh: FileHandle) => Promise<void>,
  beforeRename?: () => Promise<void>,
): Promise<void> {
  const fh = await open(tmp, "wx", 0o644);
  try {
    await write(fh);
    await fh.datasync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await beforeRename?.();
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Deletes temporary files that interrupted writes left in `dir` (not recursive). */
export async function removeStaleTemporaries(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => TMP_RE.test(n)).map((n) => unlink(path.join(dir, n)).catch(() => undefined)));
}
