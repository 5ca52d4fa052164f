/**
 * Bounded inputs (issue 20 §5). An `.xlsx` zip bomb (7 MB that inflate to 1 GiB) is
 * refused before anything is inflated when its entries declare their size, and after at
 * most one inflate step when they lie (before: 1.3 GB of memory, 20 s, then "Bug :
 * uncompressed data size mismatch"); malformed sheet XML is one line naming file and
 * sheet (before: an internal TypeError). A 20 MB line in a list, manifest, labels or
 * ratings file is one short line naming file and line (before: the line echoed whole),
 * and a long bad line under the limit is quoted to about 100 characters.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import ExcelJS from "exceljs";
import { readRatings, XLSX_LIMIT_VARIABLE } from "../../src/data/ratings.ts";
import { ProblemLog } from "../../src/data/problems.ts";
import { ZipArchive } from "../../src/io/zip.ts";
import { buildZip, zeroBomb, type ZipFile } from "../io/_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-bounded-" });
const dataTool = new URL("../../tasks/data.ts", import.meta.url).pathname;
const MiB = 2 ** 20;

/** Runs `deno task data ARGS` (without the build step) and returns its exit code and output. */
async function data(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", dataTool, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
    signal: AbortSignal.timeout(120_000), // before the fixes some of these never ended
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Asserts a refusal: exit 1, one line on stderr matching `message`, little output. */
function assertOneLine(r: { code: number; stdout: string; stderr: string }, message: RegExp) {
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stderr.slice(0, 2000)}`);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr.slice(0, 2000)}`);
  assert.match(r.stderr.trim(), message);
  assert.ok(r.stdout.length + r.stderr.length < 1000, `output of ${r.stderr.length} bytes`);
}

/** The entries of a small valid workbook written by exceljs ("Ratings", "Notes"). */
async function workbookEntries(): Promise<ZipFile[]> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet("Ratings");
  ws.addRow(["Filename", "Rating"]);
  ws.addRow(["AF1.jpg", 3]);
  wb.addWorksheet("Notes").addRow(["made by a test"]);
  const zip = ZipArchive.open(new Uint8Array(await wb.xlsx.writeBuffer() as ArrayBuffer));
  const files: ZipFile[] = [];
  for (const name of zip.entries.keys()) {
    files.push({ name, data: await zip.read(name), deflate: true });
  }
  return files;
}
const entries = await workbookEntries();
const SHEET1 = "xl/worksheets/sheet1.xml";
const SHEET2 = "xl/worksheets/sheet2.xml";

/** Writes the workbook with some entries replaced; returns its path. */
async function workbook(name: string, replace: Record<string, Partial<ZipFile>>): Promise<string> {
  const path = join(root, name);
  await Deno.writeFile(
    path,
    await buildZip(entries.map((f) => replace[f.name] ? { ...f, ...replace[f.name] } : f)),
  );
  return path;
}

/** A SCUT-FBP5500 folder with one image and `files` (relative path → bytes or text). */
async function scutDir(name: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(join(dir, "Images"), { recursive: true });
  await Deno.mkdir(join(dir, "train_test_files"), { recursive: true });
  await Deno.writeFile(join(dir, "Images", "AF1.jpg"), new Uint8Array(0));
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === "string") await Deno.writeTextFile(join(dir, file), content);
    else await Deno.writeFile(join(dir, file), content);
  }
  return dir;
}

const bomb = zeroBomb(1024 * MiB);

Deno.test("an xlsx zip bomb is refused before it is inflated, naming file and entry", async () => {
  const honest = await workbook("bomb.xlsx", { [SHEET1]: { deflated: bomb } });
  assert.ok((await Deno.stat(honest)).size < 8 * MiB);
  const dir = await scutDir("scut-bomb", { "train_test_files/All_labels.txt": "AF1.jpg 3.0\n" });
  await Deno.copyFile(honest, join(dir, "All_Ratings.xlsx"));
  const r = await data(["info", `scut:${dir}`]);
  assertOneLine(
    r,
    /^Cannot read ratings file ".*scut-bomb\/All_Ratings\.xlsx": entry "xl\/worksheets\/sheet1\.xml" declares 1073741824 bytes uncompressed, more than the limit of 268435456 bytes \(set FBP_MAX_XLSX_MIB=<MiB> to raise it\)$/,
  );
  assert.ok(r.seconds < 30, `${r.seconds} s`);
});

Deno.test("an xlsx entry that inflates past its declared size stops at once", async () => {
  // The directory says 900 bytes; the data inflates to 1 GiB.
  const lying = await workbook("lying.xlsx", { [SHEET1]: { deflated: { ...bomb, size: 900 } } });
  const t0 = performance.now();
  await assert.rejects(
    readRatings(lying, new ProblemLog()),
    {
      message: `Cannot read ratings file "${lying}": entry "xl/worksheets/sheet1.xml" inflates ` +
        `to more than its declared 900 bytes`,
    },
  );
  // One inflate step, not the gigabyte (which takes seconds).
  assert.ok(performance.now() - t0 < 5000);
  const memory = Deno.memoryUsage();
  assert.ok(memory.rss < 1024 * MiB, `rss ${memory.rss}`);
});

Deno.test("xlsx entries that declare too much together are refused; the limit is adjustable", async () => {
  // Three entries of 100 MiB each: each under the limit, 300 MiB in all.
  const third = zeroBomb(100 * MiB);
  const many = await workbook("many.xlsx", {
    "docProps/app.xml": { deflated: third },
    "docProps/core.xml": { deflated: third },
    "xl/theme/theme1.xml": { deflated: third },
  });
  await assert.rejects(
    readRatings(many, new ProblemLog()),
    /entries declare 3145\d+ bytes uncompressed in all, more than the limit of 268435456 bytes/,
  );
  const good = await workbook("good.xlsx", {});
  try {
    Deno.env.set(XLSX_LIMIT_VARIABLE, "0.001"); // 1048 bytes: less than this workbook
    await assert.rejects(
      readRatings(good, new ProblemLog()),
      /declares \d+ bytes uncompressed, more than the limit of 1048 bytes \(set FBP_MAX_XLSX_MIB/,
    );
    Deno.env.set(XLSX_LIMIT_VARIABLE, "lots");
    await assert.rejects(
      readRatings(good, new ProblemLog()),
      {
        message: "Cannot use FBP_MAX_XLSX_MIB: expected a size in MiB between 1 and 4294967296: " +
          'current value is "lots"',
      },
    );
    Deno.env.set(XLSX_LIMIT_VARIABLE, "1");
    assert.deepEqual((await readRatings(good, new ProblemLog())).get("AF1")?.ratings, [3]);
  } finally {
    Deno.env.delete(XLSX_LIMIT_VARIABLE);
  }
  assert.deepEqual((await readRatings(good, new ProblemLog())).get("AF1")?.ratings, [3]);
});

Deno.test("malformed sheet XML is one line naming the file and the sheet", async () => {
  const sheet2 = new TextDecoder().decode(entries.find((f) => f.name === SHEET2)!.data);
  const sheet1 = new TextDecoder().decode(entries.find((f) => f.name === SHEET1)!.data);
  const text = (s: string) => ({ data: new TextEncoder().encode(s) });
  const cases: [string, Record<string, Partial<ZipFile>>, RegExp][] = [
    // Each of these was a TypeError from inside exceljs.
    [
      "truncated",
      { [SHEET2]: text(sheet2.slice(0, sheet2.length / 2)) },
      /sheet "Notes" \(xl\/worksheets\/sheet2\.xml\) is malformed: its XML is not a worksheet/,
    ],
    [
      "empty",
      { [SHEET1]: text("") },
      /sheet "Ratings" \(xl\/worksheets\/sheet1\.xml\) is malformed/,
    ],
    [
      "shared string out of range",
      { [SHEET1]: text(sheet1.replace(/<v>\d+<\/v>/, "<v>999</v>")) },
      /sheet "Ratings" \(xl\/worksheets\/sheet1\.xml\) is malformed/,
    ],
    // Parser errors keep their position.
    [
      "not XML",
      { [SHEET2]: text("not xml at all <<<>>>") },
      /sheet "Notes" \(xl\/worksheets\/sheet2\.xml\) is malformed: 1:19: disallowed character/,
    ],
    [
      "bad row number",
      { [SHEET1]: text(sheet1.replace('<row r="1"', '<row r="abc"')) },
      /sheet "Ratings" \(xl\/worksheets\/sheet1\.xml\) is malformed: Invalid row number/,
    ],
  ];
  for (const [what, replace, message] of cases) {
    const path = await workbook(`${what.replaceAll(" ", "-")}.xlsx`, replace);
    await assert.rejects(readRatings(path, new ProblemLog()), (e: Error) => {
      assert.ok(e.message.startsWith(`Cannot read ratings file "${path}": `), e.message);
      assert.match(e.message, message, what);
      assert.ok(!e.message.includes("\n") && e.message.length < 400, e.message);
      return true;
    });
  }
  // A workbook part that is no sheet: the workbook is named.
  const broken = await workbook("broken-styles.xlsx", { "xl/styles.xml": text("<<<") });
  await assert.rejects(
    readRatings(broken, new ProblemLog()),
    /^Error: Cannot read ratings file ".*broken-styles\.xlsx": not a valid xlsx workbook: /,
  );
});

/** 20 MB of one line, without spaces or separators. */
const HUGE = "x".repeat(20 * MiB);

Deno.test("a 20 MB line in a list, manifest, labels or ratings file is one short error", async () => {
  const list = join(root, "huge-list.txt");
  await Deno.writeTextFile(list, `a.jpg 0\n${HUGE} 1\nb.jpg 1\n`);
  const manifest = join(root, "huge-manifest.csv");
  await Deno.writeTextFile(manifest, `path,beauty\na.jpg,1\nb.jpg,2\n${HUGE},3\n`);
  const quoted = join(root, "huge-quoted.csv");
  await Deno.writeTextFile(quoted, `path,beauty\n"a.jpg,1\n${HUGE}\n`);
  const labels = await scutDir("scut-huge-labels", {
    "train_test_files/All_labels.txt": `AF1.jpg 3.0\n${HUGE}\n`,
  });
  const ratings = await scutDir("scut-huge-ratings", {
    "train_test_files/All_labels.txt": "AF1.jpg 3.0\n",
    "All_Ratings.csv": `Filename,Rating\nAF1.jpg,3\n${HUGE},4\n`,
  });
  const long = "is 20971522 characters long: expected at most 1048576 \\(one entry per line";
  const cases: [string, RegExp][] = [
    [`list:${list}`, new RegExp(`Cannot read list file ".*huge-list\\.txt": line 2 ${long}`)],
    [
      `csv:${manifest}`,
      /Cannot parse CSV file ".*huge-manifest\.csv": line 4 is more than 1048576 characters long/,
    ],
    [
      `csv:${quoted}`,
      /Cannot parse CSV file ".*huge-quoted\.csv": line 2 is more than 1048576 characters long: expected at most 1048576 \(is a quoted field not closed\?\)$/,
    ],
    [
      `scut:${labels}`,
      /Cannot read labels file ".*All_labels\.txt": line 2 is 20971520 characters long/,
    ],
    [
      `scut:${ratings}`,
      /Cannot parse CSV file ".*All_Ratings\.csv": line 3 is more than 1048576 characters long/,
    ],
  ];
  for (const [source, message] of cases) {
    const r = await data(["info", source]);
    assertOneLine(r, message);
  }
});

Deno.test("a long bad line under the limit is quoted to about 100 characters", async () => {
  const long = "y".repeat(200_000);
  const list = join(root, "long-list.txt");
  await Deno.writeTextFile(list, `${long}\n`); // no label: a malformed line
  const labels = await scutDir("scut-long-labels", {
    "train_test_files/All_labels.txt": `AF1.jpg 3.0\n${long}\n`,
  });
  for (const source of [`list:${list}`, `scut:${labels}`]) {
    const r = await data(["info", source]);
    const output = r.stdout + r.stderr;
    assert.ok(output.length < 4000, `${source}: ${output.length} bytes of output`);
    assert.ok(!output.includes("y".repeat(200)), `${source}: the line is quoted whole`);
  }
});

Deno.test("devices, pipes and huge files given as label files are refused without reading", async () => {
  const sparse = join(root, "sparse.csv");
  const file = await Deno.open(sparse, { create: true, write: true });
  await file.truncate(300 * MiB); // 300 MiB that take no disk
  file.close();
  const cases: [string, RegExp][] = [
    // Before: /dev/zero was read until memory ran out, a FIFO blocked forever.
    ["list:/dev/zero", /^Cannot read list file "\/dev\/zero": it is not a regular file/],
    ["csv:/dev/zero", /^Cannot read manifest "\/dev\/zero": it is not a regular file/],
    [
      `csv:${sparse}`,
      /^Cannot read manifest ".*sparse\.csv": it is 314572800 bytes: expected at most 268435456$/,
    ],
  ];
  const fifo = join(root, "fifo.txt");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output().catch(() => undefined);
  if (made?.success) {
    cases.push([`list:${fifo}`, /^Cannot read list file ".*fifo\.txt": it is not a regular file/]);
  }
  for (const [source, message] of cases) {
    const r = await data(["info", source]);
    assertOneLine(r, message);
    assert.ok(r.seconds < 60, `${source}: ${r.seconds} s`);
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
