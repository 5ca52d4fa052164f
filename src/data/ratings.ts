/**
 * Reads the per-rater ratings of SCUT-FBP5500: `All_Ratings.xlsx` (via exceljs) or a CSV
 * export of it. The sheet layout differs between copies of the release, so every sheet is
 * searched for a header row holding a file-name column and a `Rating` column; sheets
 * without one are reported and ignored.
 * @module
 */

import ExcelJS from "exceljs";
import { parseCsv } from "./csv.ts";
import type { ProblemLog } from "./problems.ts";
import { readFileOrThrow } from "./text_lines.ts";

/** The ratings of one image and where its first rating was found. */
export interface RatingEntry {
  /** Integer ratings 1–5 in file order. */
  ratings: number[];
  /** 1-based row (xlsx) or line (CSV) of the first rating. */
  line: number;
  /** Worksheet of the first rating (xlsx only). */
  sheet?: string;
}

/** Ratings keyed by image stem (file name without extension: "AF1"). */
export type RatingsTable = Map<string, RatingEntry>;

const FILE_HEADERS = new Set(["filename", "file", "image", "imagename", "img"]);
const normHeader = (s: string) => s.toLowerCase().replace(/[^a-z]/g, "");

/** Stem of a file name: "Images/AF1.jpg" → "AF1". */
export function imageStem(name: string): string {
  const base = name.replace(/^.*[\\/]/, "");
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Finds the file-name and rating columns in a header row, or undefined. */
function headerColumns(cells: readonly string[]): { file: number; rating: number } | undefined {
  const names = cells.map(normHeader);
  const file = names.findIndex((n) => FILE_HEADERS.has(n));
  const rating = names.indexOf("rating");
  return file >= 0 && rating >= 0 ? { file, rating } : undefined;
}

/** Text of an exceljs cell value (numbers, strings, rich text, formulas, hyperlinks). */
function cellText(v: ExcelJS.CellValue): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") {
    if ("richText" in v) return v.richText.map((t) => t.text).join("");
    if ("result" in v) return cellText(v.result as ExcelJS.CellValue);
    if ("text" in v) return String(v.text);
    if (v instanceof Date) return v.toISOString();
    return "";
  }
  return String(v).trim();
}

interface Sheet {
  name?: string;
  rows: { line: number; cells: string[] }[];
}

function addRatings(file: string, sheets: Sheet[], log: ProblemLog): RatingsTable {
  const table: RatingsTable = new Map();
  let found = false;
  for (const sheet of sheets) {
    const where = sheet.name === undefined ? "" : `sheet "${sheet.name}": `;
    // The header is searched for in the first rows only; a title row may precede it.
    const headerAt = sheet.rows.slice(0, 10).findIndex((r) => headerColumns(r.cells));
    if (headerAt < 0) {
      const first = sheet.rows[0]?.line;
      log.warn(file, first, `${where}no header with a file-name and a "Rating" column; ignored`);
      continue;
    }
    found = true;
    const cols = headerColumns(sheet.rows[headerAt].cells)!;
    for (const row of sheet.rows.slice(headerAt + 1)) {
      const name = row.cells[cols.file] ?? "";
      const text = row.cells[cols.rating] ?? "";
      if (name === "" && text === "") continue;
      if (name === "") {
        log.skip("rating without file name", file, row.line, `${where}no file name; row ignored`);
        continue;
      }
      const r = Number(text);
      if (text === "" || !Number.isInteger(r) || r < 1 || r > 5) {
        const msg = `${where}rating "${text}" for "${name}" is not an integer in 1–5; row ignored`;
        log.skip("rating outside 1–5", file, row.line, msg);
        continue;
      }
      const key = imageStem(name);
      const entry = table.get(key);
      if (entry) entry.ratings.push(r);
      else table.set(key, { ratings: [r], line: row.line, sheet: sheet.name });
    }
  }
  if (!found) {
    throw new Error(
      `Cannot read ratings file "${file}": no sheet has a header with a file-name column ` +
        `(Filename, File, Image) and a "Rating" column`,
    );
  }
  return table;
}

/**
 * Reads ratings from an `.xlsx` workbook or a `.csv` export, keyed by image stem.
 * Bad rows are skipped and reported to `log` with their row (xlsx) or line (CSV).
 * @throws {Error} When the file cannot be read or no sheet has the needed columns.
 */
export async function readRatings(path: string, log: ProblemLog): Promise<RatingsTable> {
  const bytes = await readFileOrThrow(path, "ratings file");
  if (/\.csv$/i.test(path)) {
    const text = new TextDecoder().decode(bytes);
    return addRatings(path, [{ rows: parseCsv(text, path, log) }], log);
  }
  const wb = new ExcelJS.Workbook();
  try {
    // exceljs's typings want a Node Buffer; it only reads the bytes.
    await wb.xlsx.load(bytes as unknown as ExcelJS.Buffer);
  } catch (e) {
    throw new Error(`Cannot read ratings file "${path}": not a valid xlsx workbook: ${e}`);
  }
  const sheets: Sheet[] = [];
  wb.eachSheet((ws) => {
    const rows: Sheet["rows"] = [];
    ws.eachRow({ includeEmpty: false }, (row, n) => {
      const values = row.values as ExcelJS.CellValue[];
      // exceljs row values are 1-based: index 0 is always empty.
      rows.push({ line: n, cells: Array.from(values.slice(1), cellText) });
    });
    sheets.push({ name: ws.name, rows });
  });
  return addRatings(path, sheets, log);
}
