/**
 * Reads the per-rater ratings of SCUT-FBP5500: `All_Ratings.xlsx` (via exceljs) or a CSV
 * export of it. The sheet layout differs between copies of the release, so every sheet is
 * searched for a header row holding a file-name column and a `Rating` column; sheets
 * without one are reported and ignored.
 * @module
 */

import ExcelJS from "exceljs";
import { writeStoredZip, ZipArchive } from "../io/zip.ts";
import { WeightsFormatError } from "../io/weights_format_error.ts";
import { parseCsv } from "./csv.ts";
import { type ProblemLog, quote } from "./problems.ts";
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
      // A rating is 1–5 as digits (a spreadsheet may write 3.0): not "1e0", "+3" or "0x3".
      // Anything else is a beauty label error: a task on the beauty grade is refused.
      if (!/^[1-5](\.0*)?$/.test(text)) {
        const msg = `${where}rating ${quote(text)} for ${quote(name)} is not an integer in ` +
          `1–5; row ignored`;
        log.labelError("beauty", file, row.line, msg, "rating outside 1–5");
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
  const zip = await openXlsx(bytes, path);
  const wb = new ExcelJS.Workbook();
  try {
    await loadWorkbook(wb, bytes);
  } catch (e) {
    throw await workbookError(zip, path, e);
  }
  const sheets: Sheet[] = [];
  wb.eachSheet((ws) => {
    const rows: Sheet["rows"] = [];
    try {
      ws.eachRow({ includeEmpty: false }, (row, n) => {
        const values = row.values as ExcelJS.CellValue[];
        // exceljs row values are 1-based: index 0 is always empty.
        rows.push({ line: n, cells: Array.from(values.slice(1), cellText) });
      });
    } catch (e) {
      throw new Error(
        `Cannot read ratings file "${path}": sheet ${quote(ws.name)} is malformed: ${reason(e)}`,
      );
    }
    sheets.push({ name: ws.name, rows });
  });
  return addRatings(path, sheets, log);
}

/**
 * Default of {@link XLSX_LIMIT_VARIABLE}: 256 MiB, over 4× what a workbook of SCUT's 330,000
 * ratings inflates to (57 MB, nearly all of it sheet XML).
 */
export const XLSX_LIMIT_MIB = 256;
/** Environment variable that sets the xlsx limit in MiB (see {@link xlsxLimitBytes}). */
export const XLSX_LIMIT_VARIABLE = "FBP_MAX_XLSX_MIB";

/**
 * Most bytes the entries of an `.xlsx` may declare uncompressed, in all: `FBP_MAX_XLSX_MIB`
 * MiB when set (a positive number), else {@link XLSX_LIMIT_MIB} MiB. exceljs holds a
 * workbook in memory several times over, so this bounds what a ratings file can cost.
 * @throws {Error} when the variable is set to something other than a positive number
 */
export function xlsxLimitBytes(): number {
  let value: string | undefined;
  try {
    value = Deno.env.get(XLSX_LIMIT_VARIABLE);
  } catch {
    value = undefined; // no permission to read the environment: the default
  }
  if (value === undefined || value.trim() === "") return XLSX_LIMIT_MIB * 2 ** 20;
  const mib = Number(value);
  if (!Number.isFinite(mib) || mib <= 0 || mib > 2 ** 32) {
    throw new Error(
      `Cannot use ${XLSX_LIMIT_VARIABLE}: expected a size in MiB between 1 and 4294967296: ` +
        `current value is ${quote(value)}`,
    );
  }
  return Math.floor(mib * 2 ** 20);
}

/**
 * Opens an `.xlsx` as a zip and proves it is not a bomb before exceljs sees it (exceljs
 * inflates every entry whole and only then compares its size): the sizes the entries
 * declare are checked against {@link xlsxLimitBytes}, then every entry is inflated,
 * without being kept, and must give exactly its declared size and CRC-32.
 * @throws {Error} naming the file: not a zip, over the limit, or an entry that lies
 */
async function openXlsx(bytes: Uint8Array, path: string): Promise<ZipArchive> {
  let zip: ZipArchive;
  try {
    zip = ZipArchive.open(bytes, { source: path, what: "ratings file" });
  } catch (e) {
    if (!(e instanceof WeightsFormatError)) throw e;
    throw new Error(`Cannot read ratings file "${path}": not a valid xlsx workbook: ${e.detail}`);
  }
  try {
    zip.checkDeclaredSizes(xlsxLimitBytes(), `set ${XLSX_LIMIT_VARIABLE}=<MiB> to raise it`);
    for (const name of zip.entries.keys()) await zip.verify(name);
  } catch (e) {
    throw e instanceof WeightsFormatError ? new Error(e.message) : e;
  }
  return zip;
}

/** Loads an xlsx into `wb` (exceljs's typings want a Node Buffer; it only reads the bytes). */
async function loadWorkbook(wb: ExcelJS.Workbook, bytes: Uint8Array): Promise<void> {
  await wb.xlsx.load(bytes as unknown as ExcelJS.Buffer);
}

/** An error's message for a user: one line, at most 100 characters of it. */
function reason(e: unknown): string {
  const text = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").trim();
  // exceljs's own TypeErrors ("Cannot read properties of undefined") say nothing useful.
  if (e instanceof TypeError || e instanceof RangeError || text === "") {
    return "its XML is not a worksheet exceljs can read";
  }
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** exceljs's name pattern of worksheet parts (the ones it parses as sheets). */
const SHEET_PART = /^xl\/worksheets\/sheet\d+\.xml$/;
/** What a sheet under suspicion is replaced with while another one is tried alone. */
const EMPTY_SHEET = new TextEncoder().encode(
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
    "<sheetData/></worksheet>",
);

/**
 * The error for a workbook exceljs could not load, naming the sheet at fault: each
 * worksheet is tried alone (the others replaced by an empty sheet) and the first that
 * fails on its own is named, with its zip entry. Without a single culprit (a broken
 * workbook.xml, styles or shared strings), the message names the workbook.
 */
async function workbookError(zip: ZipArchive, path: string, cause: unknown): Promise<Error> {
  const parts = [...zip.entries.keys()].filter((n) => SHEET_PART.test(n));
  const contents = new Map<string, Uint8Array>();
  for (const name of zip.entries.keys()) contents.set(name, await zip.read(name));
  /** Loads the workbook with every sheet but `suspect` emptied; the error, if any. */
  const tryAlone = async (suspect?: string): Promise<unknown> => {
    const alone = writeStoredZip(
      [...contents].map(([name, data]) => ({
        name,
        data: SHEET_PART.test(name) && name !== suspect ? EMPTY_SHEET : data,
      })),
    );
    try {
      await loadWorkbook(new ExcelJS.Workbook(), alone);
    } catch (e) {
      return e ?? new Error("unknown error");
    }
    return undefined;
  };
  // The sheets are only to blame when the workbook loads without any of them.
  if (parts.length > 0 && await tryAlone() === undefined) {
    const names = await sheetNames(zip);
    for (const suspect of parts) {
      const e = await tryAlone(suspect);
      if (e !== undefined) {
        const sheet = names.get(suspect);
        const which = sheet === undefined ? quote(suspect) : `${quote(sheet)} (${suspect})`;
        return new Error(
          `Cannot read ratings file "${path}": sheet ${which} is malformed: ${reason(e)}`,
        );
      }
    }
  }
  return new Error(
    `Cannot read ratings file "${path}": not a valid xlsx workbook: ${reason(cause)}`,
  );
}

/**
 * Sheet names by worksheet part ("xl/worksheets/sheet1.xml" → "Ratings"), read from
 * xl/workbook.xml and its relationships; empty when they cannot be read.
 */
async function sheetNames(zip: ZipArchive): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const text = async (name: string) =>
    zip.has(name) ? new TextDecoder().decode(await zip.read(name)) : "";
  const targets = new Map<string, string>();
  for (
    const tag of (await text("xl/_rels/workbook.xml.rels")).match(/<Relationship\b[^>]*>/g) ?? []
  ) {
    const id = xmlAttribute(tag, "Id"), target = xmlAttribute(tag, "Target");
    if (id === undefined || target === undefined) continue;
    targets.set(id, target.startsWith("/") ? target.slice(1) : `xl/${target}`);
  }
  for (const tag of (await text("xl/workbook.xml")).match(/<(?:\w+:)?sheet\b[^>]*>/g) ?? []) {
    const name = xmlAttribute(tag, "name"), id = xmlAttribute(tag, "(?:\\w+:)?id");
    const part = id === undefined ? undefined : targets.get(id);
    if (name !== undefined && part !== undefined) names.set(part, name);
  }
  return names;
}

/** The value of attribute `name` (a regular expression source) in an XML start tag. */
function xmlAttribute(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`).exec(tag);
  if (!m) return undefined;
  const entities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return (m[1] ?? m[2]).replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (all, e: string) => {
    if (e[0] !== "#") return entities[e] ?? all;
    const code = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : Number(e.slice(1));
    return code <= 0x10ffff ? String.fromCodePoint(code) : all;
  });
}
