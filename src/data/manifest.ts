/**
 * Manifest CSV: a header row, one path column (`path`, `file`, `filename` or `image`),
 * an optional `score` column, an optional `split` column (`train`/`val`/`test`, read as
 * the split "manifest"), and one column per label. Relative paths are relative to the
 * CSV file's folder.
 * @module
 */

import { dirname, isAbsolute, join, relative } from "node:path";
import { labelColumn } from "./classes.ts";
import { formatCsv, parseCsv } from "./csv.ts";
import { listedImageProblem } from "./fs_util.ts";
import { ProblemLog, quote } from "./problems.ts";
import type { ClassOrigin, Dataset, ImageRecord, Split } from "./records.ts";
import { readFileOrThrow } from "./text_lines.ts";

const PATH_COLUMNS = ["path", "file", "filename", "image", "imagepath"];
const SPLITS = ["train", "val", "test"] as const;

/**
 * Reads a manifest CSV. Rows with a missing image, a wrong cell count, a duplicate path
 * or no label are skipped and reported with their line. Each label column holds class ids
 * (integers ≥ 0 written in digits) or class names; a value that is neither (`-1`, `2.5`,
 * `NaN` among ids, a number among names) is a label error naming its line: the value is
 * left out, and a task on that label is refused (see classes.ts).
 * @throws {Error} When the file cannot be read, is empty, or has no path column.
 */
export async function readManifest(file: string, source = `csv:${file}`): Promise<Dataset> {
  const log = new ProblemLog();
  const text = new TextDecoder().decode(await readFileOrThrow(file, "manifest"));
  const rows = parseCsv(text, file, log);
  if (rows.length === 0) throw new Error(`Cannot read manifest "${file}": file is empty`);
  const header = rows[0].cells;
  const norm = header.map((h) => h.toLowerCase().replace(/[^a-z]/g, ""));
  const pathCol = norm.findIndex((h) => PATH_COLUMNS.includes(h));
  if (pathCol < 0) {
    throw new Error(
      `Cannot read manifest "${file}": line ${rows[0].line}: no path column ` +
        `(one of ${PATH_COLUMNS.join(", ")}): header is ${quote(header.join(","))}`,
    );
  }
  const scoreCol = norm.indexOf("score");
  const splitCol = norm.indexOf("split");
  const labelCols = header.map((_, i) => i).filter((i) =>
    i !== pathCol && i !== scoreCol && i !== splitCol && header[i] !== ""
  );
  // A repeated label column would silently overwrite the first; "__proto__" would replace
  // the class table object's prototype instead of adding a label.
  const firstCol = new Map<string, number>();
  for (const c of labelCols) {
    const name = header[c];
    const where = `Cannot read manifest "${file}": line ${rows[0].line}`;
    if (name === "__proto__") throw new Error(`${where}: "__proto__" cannot be a label name`);
    if (firstCol.has(name)) {
      throw new Error(
        `${where}: column "${name}" appears twice (columns ${firstCol.get(name)! + 1} and ${
          c + 1
        })`,
      );
    }
    firstCol.set(name, c);
  }
  const root = dirname(file);
  const kept: { line: number; cells: string[]; path: string }[] = [];
  const seen = new Map<string, number>();
  for (const { line, cells } of rows.slice(1)) {
    if (cells.length !== header.length) {
      const msg =
        `expected ${header.length} cells as in the header: current row has ${cells.length}`;
      log.skip("malformed line", file, line, msg);
      continue;
    }
    const p = cells[pathCol];
    const path = isAbsolute(p) ? p : join(root, p);
    if (p === "") {
      log.skip("malformed line", file, line, "path is empty");
    } else if (seen.has(path)) {
      log.skip(
        "duplicate entry",
        file,
        line,
        `"${p}" listed again (first at line ${seen.get(path)})`,
      );
    } else if (labelCols.every((c) => cells[c] === "")) {
      seen.set(path, line);
      log.skip("image without label", file, line, `"${p}" has no label`);
    } else {
      const problem = await listedImageProblem(path);
      seen.set(path, line);
      if (problem !== null) {
        log.skip("image listed but missing", file, line, problem);
        continue;
      }
      kept.push({ line, cells, path });
    }
  }
  // Each label column is ids or names; a value that is neither is a label error.
  const classes: Record<string, string[]> = {};
  const classOrigins: Record<string, (ClassOrigin | undefined)[]> = {};
  const columns = labelCols.map((c) => {
    const filled = [...kept.keys()].filter((i) => kept[i].cells[c] !== "");
    const cells = filled.map((i) => ({ value: kept[i].cells[c], file, line: kept[i].line }));
    const col = labelColumn(header[c], cells);
    classes[header[c]] = col.table.names;
    classOrigins[header[c]] = col.origins;
    const bad = new Map([...col.bad].map(([j, b]) => [filled[j], b]));
    return { c, name: header[c], index: col.table.index, bad };
  });
  const records: ImageRecord[] = [];
  const split: Split = { train: [], val: [], test: [] };
  let hasSplit = false;
  for (const [i, { line, cells, path }] of kept.entries()) {
    const rec: ImageRecord = { path, labels: {} };
    for (const col of columns) {
      if (cells[col.c] !== "" && !col.bad.has(i)) {
        rec.labels[col.name] = col.index.get(cells[col.c])!;
      }
    }
    // A row left with no label is skipped, under the reason of its first bad value.
    const none = Object.keys(rec.labels).length === 0;
    columns.filter((col) => col.bad.has(i)).forEach((col, k) => {
      const { reason, message } = col.bad.get(i)!;
      log.labelError(col.name, file, line, message, none && k === 0 ? reason : undefined);
    });
    if (none) continue;
    if (scoreCol >= 0 && cells[scoreCol] !== "") {
      const s = Number(cells[scoreCol]);
      if (Number.isFinite(s)) rec.score = s;
      else log.warn(file, line, `score ${quote(cells[scoreCol])} is not a number; score left out`);
    }
    if (splitCol >= 0) {
      const v = cells[splitCol].toLowerCase() as typeof SPLITS[number];
      if (SPLITS.includes(v)) {
        split[v].push(records.length);
        hasSplit = true;
      } else {
        const msg = `split ${quote(cells[splitCol])} is not one of ${
          SPLITS.join(", ")
        }; in no split`;
        log.warn(file, line, msg);
      }
    }
    records.push(rec);
  }
  return {
    name: "csv",
    source,
    root,
    records,
    classes,
    splits: hasSplit ? { manifest: split } : {},
    problems: log.problems,
    skips: log.skips,
    classOrigins,
  };
}

/**
 * Writes `dataset` as a manifest CSV at `file` (paths relative to its folder, labels as
 * class names, plus a `split` column when `split` is given). Reading it back with
 * {@link readManifest} gives the same labels when class names sort in index order.
 */
export async function writeManifest(
  dataset: Pick<Dataset, "records" | "classes">,
  file: string,
  split?: Split,
): Promise<void> {
  const names = Object.keys(dataset.classes);
  const hasScore = dataset.records.some((r) => r.score !== undefined);
  const where = new Map<number, string>();
  if (split) { for (const k of SPLITS) for (const i of split[k]) where.set(i, k); }
  const header = ["path", ...(hasScore ? ["score"] : []), ...names, ...(split ? ["split"] : [])];
  const rows = dataset.records.map((r, i) => [
    relative(dirname(file), r.path),
    ...(hasScore ? [r.score === undefined ? "" : String(r.score)] : []),
    ...names.map((n) => (r.labels[n] === undefined ? "" : dataset.classes[n][r.labels[n]])),
    ...(split ? [where.get(i) ?? ""] : []),
  ]);
  await Deno.writeTextFile(file, formatCsv([header, ...rows]));
}
