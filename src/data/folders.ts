/**
 * Class folders: `<root>/<class>/<image>`. Every subfolder of the root is a class; its
 * name is the class name (integer names keep their value as the label).
 * @module
 */

import { join } from "node:path";
import { classTable, isOutOfRangeLabel, MAX_CLASSES } from "./classes.ts";
import { isDirectory, isImageName, listDir } from "./fs_util.ts";
import { ProblemLog } from "./problems.ts";
import type { Dataset, ImageRecord } from "./records.ts";

/** Options of {@link readClassFolders}. */
export interface FolderOptions {
  /** Label name the folder names are stored under; default "label". */
  label?: string;
}

/**
 * Reads `<root>/<class>/<image>`; files outside class folders, non-image files and nested
 * folders are skipped and reported.
 * @throws {Error} When `root` is not a folder or has no class folders.
 */
export async function readClassFolders(
  root: string,
  options: FolderOptions = {},
  source = `folders:${root}`,
): Promise<Dataset> {
  const label = options.label ?? "label";
  const log = new ProblemLog();
  if (!(await isDirectory(root))) {
    throw new Error(`Cannot read class folders at "${root}": folder not found`);
  }
  const found: { cls: string; path: string }[] = [];
  const dirs: string[] = [];
  for (const e of await listDir(root)) {
    const path = join(root, e.name);
    if (e.isDirectory || (e.isSymlink && (await isDirectory(path)))) {
      dirs.push(e.name);
      continue;
    }
    if (e.name.startsWith(".")) continue;
    log.skip("file outside class folders", path, undefined, "not in a class folder; ignored");
  }
  if (dirs.length === 0) {
    throw new Error(
      `Cannot read class folders at "${root}": no subfolders: expected <root>/<class>/<image>`,
    );
  }
  for (const cls of [...dirs]) {
    if (isOutOfRangeLabel(cls)) {
      const msg = `class folder "${cls}" is out of range: a label has at most ${MAX_CLASSES} ` +
        `classes; ignored`;
      log.skip("label out of range", join(root, cls), undefined, msg);
      dirs.splice(dirs.indexOf(cls), 1);
      continue;
    }
    let n = 0;
    for (const e of await listDir(join(root, cls))) {
      const path = join(root, cls, e.name);
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) {
        log.skip("nested folder", path, undefined, "folder inside a class folder; ignored");
      } else if (!isImageName(e.name)) {
        log.skip("not an image file", path, undefined, "not a .jpg, .jpeg or .png file; ignored");
      } else {
        found.push({ cls, path });
        n++;
      }
    }
    if (n === 0) log.warn(join(root, cls), undefined, `class "${cls}" has no images`);
  }
  const table = classTable(dirs);
  const records: ImageRecord[] = found.map(({ cls, path }) => ({
    path,
    labels: { [label]: table.index.get(cls)! },
  }));
  return {
    name: "folders",
    source,
    root,
    records,
    classes: { [label]: table.names },
    splits: {},
    problems: log.problems,
    skips: log.skips,
  };
}
