/**
 * The label-file faults the fuzzer found, pinned as examples (issue 8): integer labels far
 * out of range (a table of 10^11 class names was asked for: RangeError "Invalid array
 * length", or minutes and gigabytes for 10^8), repeated or `__proto__` manifest columns,
 * and which line of a file is not UTF-8. Plus what a hand-edited list file with a BOM, CRLF,
 * blank lines and duplicates reads as: every oddity reported with its line, skips counted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAX_CLASSES } from "../../src/data/classes.ts";
import { readClassFolders } from "../../src/data/folders.ts";
import { readListFile } from "../../src/data/list_file.ts";
import { readManifest } from "../../src/data/manifest.ts";
import { readScut } from "../../src/data/scut.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-labels-" });
for (const f of ["a.jpg", "b.jpg", "c.jpg"]) await Deno.writeFile(join(root, f), new Uint8Array(1));

Deno.test("readListFile() skips labels out of range and counts every skip", async () => {
  const file = join(root, "list.txt");
  await Deno.writeTextFile(
    file,
    "\uFEFFa.jpg 1\r\n\r\nb.jpg 99999999999\r\na.jpg 2\r\nc.jpg -1\r\nc.jpg 4\r\n",
  );
  const ds = await readListFile(file);
  assert.deepEqual(ds.records.map((r) => [r.path, r.labels.label]), [
    [join(root, "a.jpg"), 1],
    [join(root, "c.jpg"), 4],
  ]);
  assert.equal(ds.classes.label.length, 5);
  assert.deepEqual(ds.skips, { "label out of range": 1, "duplicate entry": 1, "bad label": 1 });
  const at = (line: number) => ds.problems.find((p) => p.line === line)?.message;
  assert.match(at(3)!, new RegExp(`label 99999999999 is out of range: .* ${MAX_CLASSES} classes`));
  assert.match(at(4)!, /"a\.jpg" listed again \(first at line 1\)/);
  assert.match(at(5)!, /label "-1" is not a non-negative integer/);
  assert.ok(ds.problems.some((p) => /CRLF line endings on 6 lines/.test(p.message)));
  assert.ok(ds.problems.some((p) => p.line === 2 && /1 line blank/.test(p.message)));
});

Deno.test("readManifest() skips out-of-range labels and refuses repeated or __proto__ columns", async () => {
  const file = join(root, "m.csv");
  await Deno.writeTextFile(file, "path,grade\na.jpg,4294967296\nb.jpg,3\n");
  const ds = await readManifest(file);
  assert.deepEqual(ds.classes.grade, ["0", "1", "2", "3"]);
  assert.deepEqual(ds.skips, { "label out of range": 1 });
  assert.equal(ds.problems[0].line, 2);
  await Deno.writeTextFile(file, "path,grade,grade\na.jpg,1,2\n");
  await assert.rejects(
    readManifest(file),
    /Cannot read manifest ".*m\.csv": line 1: column "grade" appears twice \(columns 2 and 3\)/,
  );
  await Deno.writeTextFile(file, "path,__proto__\na.jpg,1\n");
  await assert.rejects(readManifest(file), /line 1: "__proto__" cannot be a label name/);
});

Deno.test("readClassFolders() ignores a class folder named beyond the class limit", async () => {
  const dir = join(root, "folders");
  for (const cls of ["0", "2", "100000000"]) {
    await Deno.mkdir(join(dir, cls), { recursive: true });
    await Deno.writeFile(join(dir, cls, "x.jpg"), new Uint8Array(1));
  }
  const ds = await readClassFolders(dir);
  assert.deepEqual(ds.classes.label, ["0", "1", "2"]);
  assert.equal(ds.records.length, 2);
  assert.deepEqual(ds.skips, { "label out of range": 1 });
});

Deno.test("readScut() names the line of a labels file that is not UTF-8", async () => {
  const dir = join(root, "scut");
  await Deno.mkdir(join(dir, "Images"), { recursive: true });
  await Deno.mkdir(join(dir, "train_test_files"));
  const labels = join(dir, "train_test_files", "All_labels.txt");
  await Deno.writeFile(
    labels,
    new Uint8Array([...new TextEncoder().encode("AF1.jpg 3.1\nAF2.jpg 2"), 0xff, 0x0a]),
  );
  await assert.rejects(
    readScut(dir),
    new RegExp(`Cannot read labels file ".*All_labels\\.txt": line 2: it is not UTF-8 text`),
  );
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
