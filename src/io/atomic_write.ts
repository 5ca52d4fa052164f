/**
 * Crash-safe file replacement (issue 8: a kill -9 or a full disk during a checkpoint write
 * must leave the previous checkpoint intact). The bytes go to a temporary file in the same
 * folder (rename is atomic only within one file system), which is fsynced and then renamed
 * over the target; the folder is fsynced so the rename itself survives a power cut.
 * @module
 */

import { basename, dirname, join } from "node:path";

/**
 * Writes `bytes` to `path` atomically: readers see the old file or the new one, never a
 * mix, and on any failure the old file is untouched and the temporary file is removed.
 * A new file gets the old file's permission bits when one existed.
 * @param path the destination file
 * @param bytes the complete new contents
 * @returns when the new file is durably in place
 * @throws {Deno.errors.NotFound} when the folder does not exist, and other I/O errors
 *   (e.g. disk full, or `path` is a folder) after removing the temporary file
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const folder = dirname(path);
  const random = crypto.getRandomValues(new Uint32Array(2)).join("");
  // A dot name with the ".tmp" suffix: hidden, and ignored by the repository's .gitignore.
  const temp = join(folder, `.${basename(path)}.${random}.tmp`);
  let mode: number | undefined;
  try {
    mode = (await Deno.stat(path)).mode ?? undefined;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o666 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    if (mode !== undefined && Deno.build.os !== "windows") await Deno.chmod(temp, mode & 0o7777);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  await syncFolder(folder);
}

/** Fsyncs a folder so a rename in it is durable; a no-op where folders cannot be opened. */
async function syncFolder(folder: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(folder, { read: true });
    await handle.sync();
  } catch {
    // Windows cannot open folders, and some file systems refuse fsync on them: the rename
    // has happened either way; only its durability across a power cut is weaker.
  } finally {
    handle?.close();
  }
}
