/**
 * Labels: one odd value must not change the model (issue 20 §3), and the label-file faults
 * the fuzzer found before (issue 8).
 *
 * Before issue 20 one odd label in a CSV manifest or list file silently reshaped a task:
 * `-1`, `2.5`, `NaN` or `1e0` among class ids became extra text classes, `999` beside 0–4 a
 * 1000-class head, `f` beside `F` a third gender. Now a value that is not a class of its
 * column is a label error naming file, line and value; a class id that leaves classes empty
 * and names that differ only in case or spaces are errors listing the class counts and
 * both spellings; a task may declare its classes (`--task NAME=DB:LABEL:λ:K`, the presets
 * do); SCUT ratings that are not integers 1–5 are beauty label errors. A task on a label
 * with any of these is refused before the run folder exists.
 *
 * Issue 8: integer labels far out of range (a table of 10^11 class names was asked for),
 * repeated or `__proto__` manifest columns, which line of a file is not UTF-8, and what a
 * hand-edited list file with a BOM, CRLF, blank lines and duplicates reads as.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkLabel, MAX_CLASSES, taskClasses } from "../../src/data/classes.ts";
import { readClassFolders } from "../../src/data/folders.ts";
import { readListFile } from "../../src/data/list_file.ts";
import { readManifest } from "../../src/data/manifest.ts";
import type { Dataset } from "../../src/data/records.ts";
import { readScut } from "../../src/data/scut.ts";
import { readSource } from "../../src/data/source.ts";
import { prepareData } from "../../src/train/data_setup.ts";
import { presetConfig } from "../../src/train/presets.ts";
import { RUN_DEFAULTS, type RunConfig } from "../../src/train/run_config.ts";
import { parseTaskFlag } from "../../tasks/_cli/run_args.ts";
import { writeScut } from "../data/fixtures.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-labels-" });
const IMAGES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg", "h.jpg"];
for (const f of IMAGES) await Deno.writeFile(join(root, f), new Uint8Array(1));

/** Writes a manifest `path,<label>` with one row per value (images a.jpg, b.jpg, …). */
async function manifest(name: string, label: string, values: string[]): Promise<string> {
  const file = join(root, name);
  const rows = values.map((v, i) => `${IMAGES[i]},${v}`);
  await Deno.writeTextFile(file, [`path,${label}`, ...rows].join("\n") + "\n");
  return file;
}

/** The message taskClasses() refuses `label` with (fails if it does not refuse). */
function refusal(ds: Dataset, label: string, classes?: number): string {
  try {
    taskClasses(ds, { name: "t", label, classes });
  } catch (e) {
    assert.ok(e instanceof Error && e.constructor === Error, String(e));
    assert.doesNotMatch(e.message, /\n/, "one line");
    return e.message;
  }
  assert.fail(`label "${label}" of ${ds.source} was accepted`);
}

Deno.test("a manifest with one label -1, 2.5, NaN, 1e0 or +2 among class ids is refused naming file, line and value", async () => {
  for (const odd of ["-1", "2.5", "NaN", "1e0", "+2", "0x1", "three"]) {
    const file = await manifest("ids.csv", "grade", ["0", "1", "2", odd, "3", "4"]);
    const ds = await readManifest(file);
    // The odd value is left out of the class table: the head keeps its 5 classes.
    assert.deepEqual(ds.classes.grade, ["0", "1", "2", "3", "4"], odd);
    assert.equal(ds.records.length, 5);
    const msg = refusal(ds, "grade");
    assert.ok(
      msg.startsWith(`Cannot use label "grade" for task "t": ${file}:5: label "grade" is "${odd}"`),
      msg,
    );
    assert.match(msg, odd === "NaN" ? /missing value/ : /expected a class id, an integer ≥ 0/);
  }
});

Deno.test("a list file with one label -1, 2.5, NaN or 1e0 is refused naming file, line and value", async () => {
  const file = join(root, "ids.txt");
  for (const odd of ["-1", "2.5", "NaN", "1e0"]) {
    await Deno.writeTextFile(file, `a.jpg 0\nb.jpg 1\nc.jpg ${odd}\nd.jpg 2\n`);
    const ds = await readListFile(file);
    assert.deepEqual(ds.classes.label, ["0", "1", "2"]);
    assert.deepEqual(ds.skips, { "bad label": 1 });
    assert.match(refusal(ds, "label"), new RegExp(`${file}:3: label "label" is "${odd}"`));
  }
});

Deno.test("a class id that leaves classes empty (999 beside 0–4) is refused listing the class counts", async () => {
  const file = await manifest("gap.csv", "grade", ["0", "1", "2", "999", "3", "4", "1"]);
  const ds = await readManifest(file);
  const msg = refusal(ds, "grade");
  assert.equal(
    msg,
    `Cannot use label "grade" for task "t": ${file}:5: label "grade" is 999, which leaves 994 ` +
      `of its 1000 classes empty (0: 1, 1: 2, 2: 1, 3: 1, 4: 1, 5–998: none, 999: 1): ` +
      `expected class ids 0..K−1 with every class used, or a declared class count K ` +
      `(--task NAME=DB:LABEL:λ:K)`,
  );
  // Ids that start at 1 are named as such.
  const one = await readManifest(await manifest("one.csv", "grade", ["1", "2", "3", "4", "5"]));
  assert.match(
    refusal(one, "grade"),
    /leaves 1 of its 6 classes empty \(0: none, 1: 1, .*start at 1/,
  );
  // A list file and class folders: the same rule.
  await Deno.writeTextFile(join(root, "gap.txt"), "a.jpg 0\nb.jpg 1\nc.jpg 7\n");
  assert.match(
    refusal(await readListFile(join(root, "gap.txt")), "label"),
    /gap\.txt:3: label "label" is 7, which leaves 5 of its 8 classes empty \(0: 1, 1: 1, 2–6: none, 7: 1\)/,
  );
  // Beyond MAX_CLASSES the value is refused by itself (no 10^11-entry table is built).
  const huge = await readManifest(await manifest("huge.csv", "grade", ["0", "99999999999", "1"]));
  assert.deepEqual(huge.classes.grade, ["0", "1"]);
  assert.match(
    refusal(huge, "grade"),
    new RegExp(
      `huge\\.csv:3: label "grade" is "99999999999": expected a class id below ${MAX_CLASSES}`,
    ),
  );
});

Deno.test("text labels that differ only in case or surrounding spaces are refused naming both spellings", async () => {
  const file = await manifest("case.csv", "gender", ["F", "M", "F", "f", "M", "F"]);
  const ds = await readManifest(file);
  assert.equal(
    refusal(ds, "gender"),
    `Cannot use label "gender" for task "t": ${file}:5: label "gender" is written "F" (3) and ` +
      `"f" (1), which differ only in case or surrounding spaces: expected one spelling per class`,
  );
  // A quoted cell keeps its spaces: " M" is the same class as "M".
  await Deno.writeTextFile(file, 'path,gender\na.jpg,F\nb.jpg,M\nc.jpg," M"\nd.jpg,F\n');
  assert.match(refusal(await readManifest(file), "gender"), /:4: .*"M" \(1\) and " M" \(1\)/);
  // A number among names, or a spreadsheet's "NA", is not a class.
  await Deno.writeTextFile(file, "path,gender\na.jpg,F\nb.jpg,M\nc.jpg,1\nd.jpg,NA\n");
  const mixed = await readManifest(file);
  assert.deepEqual(mixed.classes.gender, ["F", "M"]);
  const errors = checkLabel(mixed, "gender").errors.map((p) => `${p.line}: ${p.message}`);
  assert.deepEqual(errors, [
    `4: label "gender" is "1", a number in a column of class names ("F", "M"): expected a name`,
    `5: label "gender" is "NA", which reads as a missing value: leave the cell empty for an ` +
    `unknown label`,
  ]);
});

Deno.test("--task NAME=DB:LABEL:λ:K declares a task's classes and every label is checked against it", async () => {
  assert.deepEqual(parseTaskFlag("beauty=scut:beauty:1:5"), {
    name: "beauty",
    database: "scut",
    label: "beauty",
    lambda: 1,
    classes: 5,
  });
  assert.deepEqual(parseTaskFlag("g=db:gender::2"), {
    name: "g",
    database: "db",
    label: "gender",
    lambda: 1,
    classes: 2,
  });
  assert.deepEqual(parseTaskFlag("beauty=scut:beauty:0.5"), {
    name: "beauty",
    database: "scut",
    label: "beauty",
    lambda: 0.5,
  });
  for (
    const [flag, why] of [
      ["b=db:beauty:1:1", `class count "1" is not an integer from 2 to ${MAX_CLASSES}`],
      ["b=db:beauty:1:5.5", `KIND "5.5" is not class, score, dist or a class count K`],
      ["b=db:beauty:1:", `KIND "" is not class, score, dist or a class count K`],
      ["b=db:beauty:-1:5", `λ "-1" is not a number ≥ 0`],
      ["b=db:beauty: :5", `λ " " is not a number ≥ 0`],
      ["b=db:beauty:1:5:9", "expected NAME=DB:LABEL[:λ[:KIND]]"],
      ["b=db:beauty:5", "λ 5 looks like a class count: write b=db:beauty::5"],
    ]
  ) {
    assert.throws(
      () => parseTaskFlag(flag),
      (e: Error) => e.message.startsWith(`Cannot parse --task "${flag}": ${why}`),
      flag,
    );
  }
  // Ids: below K; fewer ids than K give K classes (empty ones are then allowed).
  const ids = await readManifest(await manifest("k.csv", "grade", ["0", "1", "3", "1"]));
  assert.match(
    refusal(ids, "grade"),
    /k\.csv:4: label "grade" is 3, which leaves 1 of its 4 classes empty/,
  );
  assert.deepEqual(taskClasses(ids, { name: "t", label: "grade", classes: 5 }), [
    "0",
    "1",
    "2",
    "3",
    "4",
  ]);
  assert.match(
    refusal(ids, "grade", 3),
    /k\.csv:4: label "grade" is 3: expected a class id below 3 \(3 classes declared; 1 image with ids ≥ 3\)/,
  );
  // Names: exactly K.
  const names = await readManifest(await manifest("kn.csv", "gender", ["F", "M", "X", "M"]));
  assert.deepEqual(taskClasses(names, { name: "t", label: "gender", classes: 3 }), ["F", "M", "X"]);
  assert.match(
    refusal(names, "gender", 2),
    /kn\.csv:4: label "gender" has 3 classes \(F: 1, M: 2, X: 1\): expected the 2 declared/,
  );
  // The presets declare theirs: beauty 5 grades, gender 2.
  for (const name of ["default", "paper-scut", "paper-lsafbd"] as const) {
    const tasks = presetConfig(name, { scut: "scut:x", lsafbd: "list:y" }).tasks;
    assert.deepEqual(tasks.map((t) => [t.name, t.classes]), [["beauty", 5], ["gender", 2]], name);
  }
});

/** A one-task run config on `source` (enough for prepareData). */
function config(source: string, task: Partial<RunConfig["tasks"][number]> = {}): RunConfig {
  return {
    ...RUN_DEFAULTS,
    name: "t",
    out: join(root, "never"),
    batch: 2,
    databases: [{ name: "m", source }],
    tasks: [{ name: "grade", database: "m", label: "grade", lambda: 1, ...task }],
  };
}

Deno.test("the data set-up refuses a manifest with one label -1, 999 or 2.5 naming that value", async () => {
  for (
    const [odd, why] of [["-1", `is "-1"`], ["999", "is 999, which leaves"], ["2.5", `is "2.5"`]]
  ) {
    const file = await manifest("run.csv", "grade", ["0", "1", "2", "3", "4", odd, "2", "3"]);
    await assert.rejects(
      prepareData(config(`csv:${file}`)),
      (e: Error) => e.message.includes(`${file}:7: label "grade" ${why}`),
    );
  }
  // A declared count the labels exceed.
  const file = await manifest("run.csv", "grade", ["0", "1", "2", "3", "4", "5", "2", "3"]);
  await assert.rejects(
    prepareData(config(`csv:${file}`, { classes: 5 })),
    /run\.csv:7: label "grade" is 5: expected a class id below 5/,
  );
});

Deno.test("deno task train refuses a manifest with a label 999 and leaves no run folder", async () => {
  const file = await manifest("cli.csv", "grade", ["0", "1", "2", "3", "4", "999", "2", "3"]);
  const out = join(root, "cli-run");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../tasks/train.ts", import.meta.url).pathname,
      "--db",
      `m=csv:${file}`,
      "--task",
      "grade=m:grade",
      "--image-size",
      "32",
      "--widths",
      "4,4,8,8",
      "--batch",
      "2",
      "--out",
      out,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 1, err);
  assert.match(err, new RegExp(`${file}:7: label "grade" is 999, which leaves 994 of its 1000`));
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("SCUT ratings outside 1–5 or not integers, and mean scores that are not numbers in 1–5, refuse the beauty task naming file, row and value", async () => {
  const dir = join(root, "scut-ratings");
  const names = ["AF1", "AF2", "AM1", "AM2"];
  const good = names.flatMap((n) => [[`${n}.jpg`, 3], [`${n}.jpg`, 4]]);
  for (const odd of ["7", "0", "2.5", "1e0", "+3", "", "abc"]) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await writeScut(dir, {
      images: names.map((n) => `${n}.jpg`),
      labels: names.map((n) => `${n}.jpg 3.5`).join("\n") + "\n",
      ratings: "Filename,Rating\n" + [...good, ["AF2.jpg", odd]].map((r) => r.join(",")).join("\n"),
    });
    const ds = await readScut(dir);
    const ratings = join(dir, "All_Ratings.csv");
    assert.match(
      refusal(ds, "beauty", 5),
      new RegExp(
        `${ratings}:10: rating "${odd.replace("+", "\\+")}" for "AF2.jpg" is not an integer in 1–5`,
      ),
      odd,
    );
    assert.deepEqual(taskClasses(ds, { name: "g", label: "gender", classes: 2 }), ["F", "M"]);
  }
  // "3.0" is a rating a spreadsheet export may write.
  await Deno.remove(dir, { recursive: true });
  await writeScut(dir, {
    images: names.map((n) => `${n}.jpg`),
    labels: "AF1.jpg 3.5\nAF2.jpg 7.2\nAM1.jpg 1e0\nAM2.jpg 2.5\n",
    ratings: "Filename,Rating\n" + [...good, ["AM2.jpg", "3.0"]].map((r) => r.join(",")).join("\n"),
  });
  const ds = await readScut(dir);
  const labels = join(dir, "train_test_files", "All_labels.txt");
  assert.deepEqual(
    checkLabel(ds, "beauty", 5).errors.map((p) => `${p.file}:${p.line}: ${p.message}`),
    [
      `${labels}:2: score 7.2 is outside 1–5`,
      `${labels}:3: score "1e0" is not a number: expected a mean score in 1–5 such as 3.25`,
    ],
  );
});

Deno.test("readListFile() reports labels out of range and counts every skip", async () => {
  const file = join(root, "list.txt");
  await Deno.writeTextFile(
    file,
    "\uFEFFa.jpg 1\r\n\r\nb.jpg 99999999999\r\na.jpg 2\r\nc.jpg -1\r\nc.jpg 4\r\nd.jpg 0\r\n",
  );
  const ds = await readListFile(file);
  assert.deepEqual(ds.records.map((r) => [r.path, r.labels.label]), [
    [join(root, "a.jpg"), 1],
    [join(root, "d.jpg"), 0],
  ]);
  assert.equal(ds.classes.label.length, 2);
  assert.deepEqual(ds.skips, { "label out of range": 1, "duplicate entry": 2, "bad label": 1 });
  const at = (line: number) => ds.problems.find((p) => p.line === line)?.message;
  assert.match(
    at(3)!,
    new RegExp(`label "label" is "99999999999": expected a class id below ${MAX_CLASSES}`),
  );
  assert.match(at(4)!, /"a\.jpg" listed again \(first at line 1\)/);
  assert.match(at(5)!, /label "label" is "-1": expected a class id/);
  assert.match(at(6)!, /"c\.jpg" listed again \(first at line 5\)/);
  assert.ok(ds.problems.some((p) => /CRLF line endings on 7 lines/.test(p.message)));
  assert.ok(ds.problems.some((p) => p.line === 2 && /1 line blank/.test(p.message)));
});

Deno.test("readManifest() refuses out-of-range labels and repeated or __proto__ columns", async () => {
  const file = join(root, "m.csv");
  await Deno.writeTextFile(file, "path,grade\na.jpg,4294967296\nb.jpg,3\n");
  const ds = await readManifest(file);
  assert.deepEqual(ds.classes.grade, ["0", "1", "2", "3"]);
  assert.deepEqual(ds.skips, { "label out of range": 1 });
  assert.equal(ds.problems[0].line, 2);
  assert.match(refusal(ds, "grade"), /m\.csv:2: label "grade" is "4294967296"/);
  await Deno.writeTextFile(file, "path,grade,grade\na.jpg,1,2\n");
  await assert.rejects(
    readManifest(file),
    /Cannot read manifest ".*m\.csv": line 1: column "grade" appears twice \(columns 2 and 3\)/,
  );
  await Deno.writeTextFile(file, "path,__proto__\na.jpg,1\n");
  await assert.rejects(readManifest(file), /line 1: "__proto__" cannot be a label name/);
});

Deno.test("readClassFolders() refuses class folders named beyond the class limit, odd or empty", async () => {
  const dir = join(root, "folders");
  for (const cls of ["0", "1", "2", "100000000", ".git"]) {
    await Deno.mkdir(join(dir, cls), { recursive: true });
    await Deno.writeFile(join(dir, cls, "x.jpg"), new Uint8Array(1));
  }
  const ds = await readClassFolders(dir);
  assert.deepEqual(ds.classes.label, ["0", "1", "2"]);
  assert.equal(ds.records.length, 3);
  assert.deepEqual(ds.skips, { "label out of range": 1 });
  assert.match(refusal(ds, "label"), /folders\/100000000: label "label" is "100000000"/);
  await Deno.remove(join(dir, "100000000"), { recursive: true });
  assert.deepEqual(taskClasses(await readClassFolders(dir), { name: "t", label: "label" }), [
    "0",
    "1",
    "2",
  ]);
  // An empty class folder is an empty class: refused unless the task declares it.
  await Deno.mkdir(join(dir, "3"));
  const empty = await readClassFolders(dir);
  assert.match(
    refusal(empty, "label"),
    /leaves 1 of its 4 classes empty \(0: 1, 1: 1, 2: 1, 3: none\)/,
  );
  assert.equal(taskClasses(empty, { name: "t", label: "label", classes: 4 }).length, 4);
});

Deno.test("SCUT-FBP5500 and synthetic class tables are fixed: empty grades are no error", async () => {
  const ds = await readSource(`synthetic:dir=${join(root, "syn")},count=6,size=32,seed=3`);
  assert.deepEqual(checkLabel(ds, "beauty").errors, []);
  assert.deepEqual(taskClasses(ds, { name: "b", label: "beauty", classes: 5 }).length, 5);
  assert.match(refusal(ds, "beauty", 4), /label "beauty" .*4 classes declared|more than the 4/);
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
