import assert from "node:assert/strict";
import { formatCsv, parseCsv } from "../../src/data/csv.ts";
import { ProblemLog } from "../../src/data/problems.ts";
import { splitLines } from "../../src/data/text_lines.ts";

Deno.test("parseCsv() reads quoted fields with commas, quotes and newlines", () => {
  const log = new ProblemLog();
  const rows = parseCsv(`\ufeffa,b,c\n"x, y","say ""hi""","two\nlines"\n\n 1 ,2,3`, "f.csv", log);
  assert.deepEqual(rows, [
    { line: 1, cells: ["a", "b", "c"] },
    { line: 2, cells: ["x, y", `say "hi"`, "two\nlines"] },
    { line: 5, cells: ["1", "2", "3"] },
  ]);
  assert.deepEqual(log.problems, [{
    file: "f.csv",
    line: 5,
    message: "leading or trailing whitespace in 1 row; ignored",
  }]);
});

Deno.test("parseCsv() takes a semicolon or tab delimiter from the header", () => {
  const log = new ProblemLog();
  assert.deepEqual(parseCsv("path;beauty\na,b.jpg;3\n", "f", log).map((r) => r.cells), [
    ["path", "beauty"],
    ["a,b.jpg", "3"],
  ]);
  assert.deepEqual(parseCsv("path\tbeauty\r\nx.jpg\t1\r\n", "f", log).map((r) => r.cells), [
    ["path", "beauty"],
    ["x.jpg", "1"],
  ]);
  assert.equal(log.problems[0].message, "CRLF line endings on 2 lines; read as LF");
});

Deno.test("formatCsv() output parses back to the same cells", () => {
  const rows = [["path", "note"], ["a b/c,d.jpg", `he said "x"`], [" lead", "multi\nline"]];
  const back = parseCsv(formatCsv(rows), "f", new ProblemLog()).map((r) => r.cells);
  assert.deepEqual(back, rows);
});

Deno.test("splitLines() reports CRLF, whitespace and blank lines once each", () => {
  const log = new ProblemLog();
  const lines = splitLines("a 1\r\n\r\n b 2 \r\nc 3", "l.txt", log);
  assert.deepEqual(lines, [{ line: 1, text: "a 1" }, { line: 3, text: "b 2" }, {
    line: 4,
    text: "c 3",
  }]);
  assert.deepEqual(log.problems.map((p) => [p.line, p.message]), [
    [1, "CRLF line endings on 3 lines; read as LF"],
    [3, "leading or trailing whitespace on 1 line; ignored"],
    [2, "1 line blank; ignored"],
  ]);
});
