/**
 * Private text helpers of the tables and the report: GitHub-flavoured Markdown tables and
 * RFC 4180 CSV.
 * @module
 */

/** Column alignment of a Markdown table. */
export type Align = "left" | "right" | "center";

/** The alignment of a table of figures: its first column (the row's label) left, the rest right. */
export function labelThenFigures(header: readonly string[]): Align[] {
  return header.map((_, i) => (i === 0 ? "left" : "right"));
}

/** Escapes what would break a table cell: pipes and line breaks. */
export function escapeCell(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("|", "\\|").replace(/\r?\n/g, " ");
}

/**
 * A Markdown table. Cells are escaped; pass already-formatted text.
 * @param header column titles
 * @param align one alignment per column
 * @param rows cells per row, as many as the header
 * @returns the table's lines joined with "\n", without a trailing newline
 */
export function markdownTable(
  header: readonly string[],
  align: readonly Align[],
  rows: readonly (readonly string[])[],
): string {
  const rule = align.map((a) => (a === "right" ? "--:" : a === "center" ? ":-:" : "---"));
  const line = (cells: readonly string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  return [line(header), `|${rule.join("|")}|`, ...rows.map(line)].join("\n");
}

/** Quotes a CSV field when it holds a comma, a quote or a line break. */
function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * CSV text with a header line and "\n" line ends, ending with a newline.
 * @param header column names
 * @param rows values per row (numbers unrounded; an absent value is an empty field)
 * @returns the CSV text
 */
export function csvText(
  header: readonly string[],
  rows: readonly (readonly (string | number | undefined)[])[],
): string {
  const line = (cells: readonly (string | number | undefined)[]) =>
    cells.map((c) => (c === undefined ? "" : csvField(c))).join(",");
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
