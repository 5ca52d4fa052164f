import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { readClassFolders } from "../../src/data/folders.ts";
import { readListFile } from "../../src/data/list_file.ts";
import { readManifest, writeManifest } from "../../src/data/manifest.ts";
import { countLabels } from "../../src/data/records.ts";
import { readScut } from "../../src/data/scut.ts";
import { stratifiedSplit } from "../../src/data/split.ts";
import { solidImage, withTempDir, writeScut } from "./fixtures.ts";
import { problem, rejectsWith } from "./helpers.ts";

async function images(dir: string, names: string[]): Promise<void> {
  for (const [i, n] of names.entries()) {
    await Deno.mkdir(join(dir, n, ".."), { recursive: true });
    await Deno.writeFile(join(dir, n), await solidImage([i * 20, 100, 200 - i * 10]));
  }
}

Deno.test("readManifest() reads paths, labels, score and split, reporting bad rows", async () => {
  await withTempDir(async (dir) => {
    await images(dir, ["img/a.jpg", "img/b.jpg", "img/c, d.jpg", "img/e.jpg", "img/f.jpg"]);
    const csv = [
      "Path,beauty,gender,score,split",
      "img/a.jpg,3,F,3.5,train",
      "img/b.jpg,1,M,2.1,test",
      `"img/c, d.jpg",0,F,1.4,val`,
      "img/missing.jpg,2,F,3,train", // line 5: missing image
      "img/e.jpg,2,F", // line 6: wrong cell count
      "img/a.jpg,3,F,3.5,train", // line 7: duplicate
      "img/f.jpg,,,,", // line 8: no label
      "img/e.jpg,4,,x,holdout", // line 9: bad score and split are warnings
    ].join("\r\n") + "\r\n";
    const file = join(dir, "manifest.csv");
    await Deno.writeTextFile(file, csv);
    const d = await readManifest(file);
    assert.deepEqual(d.records.map((r) => basename(r.path)), [
      "a.jpg",
      "b.jpg",
      "c, d.jpg",
      "e.jpg",
    ]);
    assert.equal(d.records[0].path, join(dir, "img/a.jpg"));
    assert.deepEqual(d.classes, { beauty: ["0", "1", "2", "3", "4"], gender: ["F", "M"] });
    assert.deepEqual(d.records.map((r) => r.labels), [
      { beauty: 3, gender: 0 },
      { beauty: 1, gender: 1 },
      { beauty: 0, gender: 0 },
      { beauty: 4 },
    ]);
    assert.deepEqual(d.records.map((r) => r.score), [3.5, 2.1, 1.4, undefined]);
    assert.deepEqual(d.splits, { manifest: { train: [0], val: [2], test: [1] } });
    const line = (text: string) => problem(d.problems, text).line;
    assert.equal(line("CRLF line endings on 9 lines"), 1);
    assert.equal(line(`image "${join(dir, "img/missing.jpg")}" not found`), 5);
    assert.equal(line("expected 5 cells as in the header: current row has 3"), 6);
    assert.equal(line(`"img/a.jpg" listed again (first at line 2)`), 7);
    assert.equal(line(`"img/f.jpg" has no label`), 8);
    assert.equal(line(`score "x" is not a number; score left out`), 9);
    assert.equal(line(`split "holdout" is not one of train, val, test; in no split`), 9);
    assert.deepEqual(d.skips, {
      "image listed but missing": 1,
      "malformed line": 1,
      "duplicate entry": 1,
      "image without label": 1,
    });
  });
});

Deno.test("readManifest() throws for a missing file, an empty file or no path column", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "m.csv");
    await rejectsWith(() => readManifest(file), `Cannot read manifest "${file}": file not found`);
    await Deno.writeTextFile(file, "");
    await rejectsWith(() => readManifest(file), `Cannot read manifest "${file}": file is empty`);
    await Deno.writeTextFile(file, "name,beauty\na.jpg,1\n");
    await rejectsWith(
      () => readManifest(file),
      `Cannot read manifest "${file}": line 1: no path column (one of path, file, filename, ` +
        `image, imagepath): header is "name,beauty"`,
    );
    await Deno.writeTextFile(file, `path,beauty\n"a.jpg,1\n`);
    await rejectsWith(
      () => readManifest(file),
      `Cannot parse CSV file "${file}": line 2: unterminated quoted field`,
    );
  });
});

Deno.test("writeManifest() round-trips a SCUT database with its split", async () => {
  await withTempDir(async (dir) => {
    const names = ["AF1", "AF2", "AM1", "AM2", "CF1", "CM1"];
    const root = await writeScut(join(dir, "scut"), {
      images: names.map((n) => `${n}.jpg`),
      labels: names.map((n, i) => `${n}.jpg ${1 + i * 0.7}`).join("\n") + "\n",
    });
    const scut = await readScut(root);
    const split = stratifiedSplit(scut.records, { seed: 3 });
    const file = join(dir, "out", "manifest.csv");
    await Deno.mkdir(join(dir, "out"));
    await writeManifest(scut, file, split);
    const text = await Deno.readTextFile(file);
    assert.equal(text.split("\n")[0], "path,score,beauty,gender,race,split");
    assert.match(text.split("\n")[1], /^\.\.\/scut\/Images\/AF1\.jpg,1,0,F,A,(train|val|test)$/);
    const back = await readManifest(file);
    assert.deepEqual(back.records.map((r) => r.labels), scut.records.map((r) => r.labels));
    assert.deepEqual(back.records.map((r) => r.score), scut.records.map((r) => r.score));
    assert.deepEqual(back.splits.manifest, split);
  });
});

Deno.test("readClassFolders() reads <root>/<class>/<image> and reports stray files", async () => {
  await withTempDir(async (dir) => {
    await images(dir, ["0/a.jpg", "0/b.png", "2/c.jpg", "2/d.JPG", "2/e.jpeg", "4/f.jpg"]);
    await Deno.writeTextFile(join(dir, "README.txt"), "hello");
    await Deno.writeTextFile(join(dir, "2", "notes.txt"), "x");
    await Deno.mkdir(join(dir, "2", "sub"));
    await Deno.mkdir(join(dir, "3"));
    const d = await readClassFolders(dir);
    assert.deepEqual(d.classes, { label: ["0", "1", "2", "3", "4"] });
    assert.deepEqual(countLabels(d.records, d.classes), {
      label: { "0": 2, "1": 0, "2": 3, "3": 0, "4": 1 },
    });
    assert.deepEqual(d.skips, {
      "file outside class folders": 1,
      "not an image file": 1,
      "nested folder": 1,
    });
    assert.equal(problem(d.problems, "not in a class folder").file, join(dir, "README.txt"));
    assert.equal(
      problem(d.problems, "not a .jpg, .jpeg or .png file").file,
      join(dir, "2", "notes.txt"),
    );
    assert.equal(problem(d.problems, `class "3" has no images`).file, join(dir, "3"));
    // Non-integer class names are numbered in sorted order.
    await withTempDir(async (dir2) => {
      await images(dir2, ["ugly/a.jpg", "beautiful/b.jpg", "plain/c.jpg"]);
      const d2 = await readClassFolders(dir2, { label: "look" });
      assert.deepEqual(d2.classes, { look: ["beautiful", "plain", "ugly"] });
      assert.deepEqual(d2.records.map((r) => r.labels.look), [0, 1, 2]);
    });
    await rejectsWith(
      () => readClassFolders(join(dir, "nope")),
      `Cannot read class folders at "${join(dir, "nope")}": folder not found`,
    );
    await rejectsWith(
      () => readClassFolders(join(dir, "3")),
      "no subfolders: expected <root>/<class>/<image>",
    );
  });
});

Deno.test("readListFile() reads <path> <int label> lines with an optional image root", async () => {
  await withTempDir(async (dir) => {
    await images(dir, ["imgs/a 1.jpg", "imgs/b.jpg", "imgs/c.jpg", "imgs/d.jpg"]);
    const text = [
      "a 1.jpg 3", // space in the path
      "b.jpg 0  ", // trailing spaces
      "c.jpg x", // bad label
      "justone", // malformed
      "b.jpg 1", // duplicate
      "",
      "missing.jpg 2", // missing image
      "d.jpg -1", // negative label
    ].join("\n") + "\n";
    const file = join(dir, "train.txt");
    await Deno.writeTextFile(file, text);
    const d = await readListFile(file, { imageRoot: join(dir, "imgs") });
    assert.deepEqual(d.records.map((r) => [basename(r.path), r.labels.label]), [["a 1.jpg", 3], [
      "b.jpg",
      0,
    ]]);
    assert.deepEqual(d.classes, { label: ["0", "1", "2", "3"] });
    const line = (t: string) => problem(d.problems, t).line;
    assert.equal(line("leading or trailing whitespace on 1 line"), 2);
    const badId = `expected a class id, an integer ≥ 0 written in digits`;
    assert.equal(line(`label "label" is "x": ${badId}`), 3);
    assert.equal(line(`expected "<path> <int label>": current line is "justone"`), 4);
    assert.equal(line(`"b.jpg" listed again (first at line 2)`), 5);
    assert.equal(line("1 line blank; ignored"), 6);
    assert.equal(line(`image "${join(dir, "imgs", "missing.jpg")}" not found`), 7);
    assert.equal(line(`label "label" is "-1": ${badId}`), 8);
    assert.deepEqual(d.skips, {
      "bad label": 2,
      "malformed line": 1,
      "duplicate entry": 1,
      "image listed but missing": 1,
    });
    // Without a root, paths are relative to the list file's folder.
    await Deno.writeTextFile(file, "imgs/b.jpg 2\n");
    assert.deepEqual((await readListFile(file)).records, [{
      path: join(dir, "imgs", "b.jpg"),
      labels: { label: 2 },
    }]);
    await rejectsWith(
      () => readListFile(join(dir, "none.txt")),
      `Cannot read list file "${join(dir, "none.txt")}": file not found`,
    );
  });
});
