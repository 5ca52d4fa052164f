/**
 * Class folders: `<root>/<class>/<image>`. Every subfolder of the root is a class; its
 * name is the class name (integer names keep their value as the label).
 * @module
 */

import { join } from "node:path";
import { labelColumn } from "./classes.ts";
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
 * folders are skipped and reported, hidden entries (".git") ignored. A folder named
 * neither like a class id nor like a class name of the others (`-1` or `2.5` beside `0`,
 * `1`; `NA`) is a label error: its images are left out and a task on the label is refused
 * (see classes.ts), as is a class folder without images.
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
    if (e.name.startsWith(".")) continue;
    if (e.isDirectory || (e.isSymlink && (await isDirectory(path)))) {
      dirs.push(e.name);
      continue;
    }
    log.skip("file outside class folders", path, undefined, "not in a class folder; ignored");
  }
  if (dirs.length === 0) {
    throw new Error(
      `Cannot read class folders at "${root}": no subfolders: expected <root>/<class>/<image>`,
    );
  }
  // Folder names are the labels: ids or names; a folder named neither is a label error.
  const col = labelColumn(label, dirs.map((d) => ({ value: d, file: join(root, d) })));
  for (const [i, cls] of dirs.entries()) {
    const bad = col.bad.get(i);
    if (bad) {
      log.labelError(
        label,
        join(root, cls),
        undefined,
        `${bad.message}; folder ignored`,
        bad.reason,
      );
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
  const records: ImageRecord[] = found.map(({ cls, path }) => ({
    path,
    labels: { [label]: col.table.index.get(cls)! },
  }));
  return {
    name: "folders",
    source,
    root,
    records,
    classes: { [label]: col.table.names },
    splits: {},
    problems: log.problems,
    skips: log.skips,
    classOrigins: { [label]: col.origins },
  };
}
