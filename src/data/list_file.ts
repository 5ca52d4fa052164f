/**
 * List files, as LSAFBD-style releases ship them: one `<path> <int label>` per line.
 * The path may contain spaces (the label is the last field). Relative paths are
 * relative to the image root: the list file's folder unless one is given.
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { isOutOfRangeLabel, MAX_CLASSES } from "./classes.ts";
import { isFile } from "./fs_util.ts";
import { ProblemLog } from "./problems.ts";
import type { Dataset, ImageRecord } from "./records.ts";
import { readTextLines } from "./text_lines.ts";

/** Options of {@link readListFile}. */
export interface ListOptions {
  /** Folder that relative paths are relative to; default: the list file's folder. */
  imageRoot?: string;
  /** Label name the integers are stored under; default "label". */
  label?: string;
}

/**
 * Reads a list file; malformed lines, bad labels, duplicates and missing images are
 * skipped and reported with their line.
 * @throws {Error} When the list file cannot be read.
 */
export async function readListFile(
  file: string,
  options: ListOptions = {},
  source = `list:${file}`,
): Promise<Dataset> {
  const label = options.label ?? "label";
  const root = options.imageRoot ?? dirname(file);
  const log = new ProblemLog();
  const records: ImageRecord[] = [];
  const seen = new Map<string, number>();
  let max = -1;
  for (const { line, text } of await readTextLines(file, "list file", log)) {
    const m = /^(.*\S)\s+(\S+)$/.exec(text);
    if (!m) {
      const msg = `expected "<path> <int label>": current line is "${text}"`;
      log.skip("malformed line", file, line, msg);
      continue;
    }
    const [, p, value] = m;
    if (!/^\d+$/.test(value)) {
      log.skip("bad label", file, line, `label "${value}" is not a non-negative integer`);
      continue;
    }
    if (isOutOfRangeLabel(value)) {
      const msg = `label ${value} is out of range: a label has at most ${MAX_CLASSES} classes`;
      log.skip("label out of range", file, line, msg);
      continue;
    }
    const path = isAbsolute(p) ? p : join(root, p);
    if (seen.has(path)) {
      log.skip(
        "duplicate entry",
        file,
        line,
        `"${p}" listed again (first at line ${seen.get(path)})`,
      );
      continue;
    }
    seen.set(path, line);
    if (!(await isFile(path))) {
      log.skip("image listed but missing", file, line, `image "${path}" not found`);
      continue;
    }
    const v = Number(value);
    max = Math.max(max, v);
    records.push({ path, labels: { [label]: v } });
  }
  return {
    name: "list",
    source,
    root,
    records,
    classes: { [label]: Array.from({ length: max + 1 }, (_, i) => String(i)) },
    splits: {},
    problems: log.problems,
    skips: log.skips,
  };
}
