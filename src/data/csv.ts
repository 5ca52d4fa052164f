/**
 * A small RFC 4180 CSV reader and writer (quoted fields, embedded commas, quotes and
 * newlines). The delimiter is taken from the header line: comma, tab or semicolon,
 * whichever occurs most, since spreadsheet exports in some locales use semicolons.
 * @module
 */

import type { ProblemLog } from "./problems.ts";
import { lineTooLongError, MAX_LINE_LENGTH } from "./text_lines.ts";

/** One CSV record with the 1-based line it starts on. */
export interface CsvRow {
  line: number;
  cells: string[];
}

function pickDelimiter(text: string): string {
  const end = text.indexOf("\n");
  // A header past the line limit is refused by the parser; do not split megabytes here.
  const head = text.slice(0, Math.min(end < 0 ? text.length : end, MAX_LINE_LENGTH + 1));
  let best = ",";
  let bestCount = -1;
  for (const d of [",", "\t", ";"]) {
    const n = head.split(d).length - 1;
    if (n > bestCount) [best, bestCount] = [d, n];
  }
  return best;
}

/**
 * Parses CSV text into rows; blank lines are skipped, unquoted cells trimmed, and CRLF
 * endings and trimmed whitespace reported once each to `log`.
 * @throws {Error} `Cannot parse CSV file "f": line N: unterminated quoted field`, or a
 *   record (a line, or several joined by a quoted field) longer than
 *   {@link MAX_LINE_LENGTH}, refused as soon as it passes the limit
 */
export function parseCsv(text: string, file: string, log: ProblemLog): CsvRow[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const delim = pickDelimiter(text);
  const rows: CsvRow[] = [];
  let line = 1;
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let wasQuoted = false;
  let rowLine = 1;
  let rowStart = 0;
  let crlf = 0, crlfFirst = 0, space = 0, spaceFirst = 0;
  let rowHasSpace = false;
  const endCell = () => {
    if (!wasQuoted) {
      const t = cell.trim();
      if (t !== cell) rowHasSpace = true;
      cell = t;
    }
    cells.push(cell);
    cell = "";
    wasQuoted = false;
  };
  const endRow = () => {
    endCell();
    if (rowHasSpace && (space++ === 0)) spaceFirst = rowLine;
    if (!(cells.length === 1 && cells[0] === "")) rows.push({ line: rowLine, cells });
    cells = [];
    rowHasSpace = false;
  };
  for (let i = 0; i < text.length; i++) {
    if (i - rowStart > MAX_LINE_LENGTH + 1) { // + 1: a CR before the LF
      const hint = quoted ? "is a quoted field not closed?" : undefined;
      throw lineTooLongError(`Cannot parse CSV file "${file}"`, rowLine, undefined, hint);
    }
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === "\n") line++;
        cell += ch;
      }
    } else if (ch === '"' && cell.trim() === "") {
      quoted = true;
      wasQuoted = true;
      cell = "";
    } else if (ch === delim) {
      endCell();
    } else if (ch === "\r" && text[i + 1] === "\n") {
      if (crlf++ === 0) crlfFirst = line;
    } else if (ch === "\n") {
      endRow();
      line++;
      rowLine = line;
      rowStart = i + 1;
    } else {
      cell += ch;
    }
  }
  if (quoted) {
    throw new Error(`Cannot parse CSV file "${file}": line ${rowLine}: unterminated quoted field`);
  }
  if (cell !== "" || cells.length > 0) endRow();
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  if (crlf) log.warn(file, crlfFirst, `CRLF line endings on ${n(crlf, "line")}; read as LF`);
  if (space) {
    log.warn(file, spaceFirst, `leading or trailing whitespace in ${n(space, "row")}; ignored`);
  }
  return rows;
}

function quote(cell: string): string {
  return /[",\n\r]|^\s|\s$/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

/** Formats rows as comma-separated CSV with LF endings, quoting where needed. */
export function formatCsv(rows: readonly (readonly string[])[]): string {
  return rows.map((r) => r.map(quote).join(",")).join("\n") + "\n";
}
