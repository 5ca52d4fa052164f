/**
 * List files, as LSAFBD-style releases ship them: one `<path> <int label>` per line.
 * The path may contain spaces (the label is the last field). Relative paths are
 * relative to the image root: the list file's folder unless one is given.
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { labelColumn } from "./classes.ts";
import { listedImageProblem } from "./fs_util.ts";
import { ProblemLog, quote } from "./problems.ts";
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
 * Reads a list file; malformed lines, duplicates and missing images are skipped and
 * reported with their line. A label that is not a class id (an integer ≥ 0 written in
 * digits, below MAX_CLASSES) is a label error naming its line: the line is skipped and a
 * task on the label is refused (see classes.ts).
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
  const entries: { line: number; path: string; value: string }[] = [];
  const seen = new Map<string, number>();
  for (const { line, text } of await readTextLines(file, "list file", log)) {
    const m = /^(.*\S)\s+(\S+)$/.exec(text);
    if (!m) {
      const msg = `expected "<path> <int label>": current line is ${quote(text)}`;
      log.skip("malformed line", file, line, msg);
      continue;
    }
    const [, p, value] = m;
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
    const problem = await listedImageProblem(path);
    if (problem !== null) {
      log.skip("image listed but missing", file, line, problem);
      continue;
    }
    entries.push({ line, path, value });
  }
  // Every label of a list file is a class id; a value that is not is a label error.
  const col = labelColumn(
    label,
    entries.map((e) => ({ value: e.value, file, line: e.line })),
    "ids",
  );
  const records: ImageRecord[] = [];
  entries.forEach(({ line, path, value }, i) => {
    const bad = col.bad.get(i);
    if (bad) log.labelError(label, file, line, bad.message, bad.reason);
    else records.push({ path, labels: { [label]: col.table.index.get(value)! } });
  });
  return {
    name: "list",
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
