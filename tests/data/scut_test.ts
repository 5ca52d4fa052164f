import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { readScut } from "../../src/data/scut.ts";
import { countLabels } from "../../src/data/records.ts";
import { ratingRows, type ScutSpec, withTempDir, writeScut } from "./fixtures.ts";
import { problem, rejectsWith } from "./helpers.ts";

const LABELS = [
  "AF1.jpg 3.000000",
  "AF2.jpg 3.800000",
  "AF3.jpg 3.000000  ", // trailing spaces
  "AM1.jpg 2.600000",
  "AM2.jpg 4.600000",
  "CF1.jpg 3.666667",
  "CF2.jpg 7.2", // score outside 1–5
  "CM1.jpg 4.0",
  "CM2.jpg", // malformed
  "AF9.jpg 3.1", // listed, no image
  "AF1.jpg 2.8", // duplicate
  "X1.jpg 3.0", // name without gender/race
].map((l) => l + "\r\n").join("") + "CM2.jpg abc"; // malformed, no final newline

const IMAGES = [
  "AF1.jpg",
  "AF2.jpg",
  "AF3.jpg",
  "AM1.jpg",
  "AM2.jpg",
  "CF1.jpg",
  "CF2.jpg",
  "CM1.jpg",
  "CM2.jpg",
  "CM3.jpg", // not in the labels file
  "X1.jpg",
];

const RATINGS = {
  "AF1.jpg": [2, 3, 3, 3, 4], // mode 3 → grade 2
  "AF2.jpg": [3, 3, 4, 4, 5], // tie 3/4, mean 3.8 → 4 → grade 3
  "AF3.jpg": [2, 2, 4, 4, 3], // tie 2/4, mean exactly 3 → lower → grade 1
  "AM1.jpg": [2, 2, 3, 3], // tie 2/3, labels-file mean 2.6 (not 2.5) → 3 → grade 2
  "CF1.jpg": [5, 5, 1], // grade 4
  "CM1.jpg": [4, 4, 4, 4], // grade 3
  "X1": [3], // stem without extension → grade 2
  "AF99.jpg": [3, 3], // unknown image
};

function spec(ratings: ScutSpec["ratings"]): ScutSpec {
  return {
    images: IMAGES,
    labels: LABELS,
    ratings,
    official: {
      train: "AF1.jpg 3.0\nAF2.jpg 3.8\nAF3.jpg 3.0\nAM1.jpg 2.6\nCF1.jpg 3.666667\n",
      test: "AM2.jpg 4.6\nCM1.jpg 4.0\nX1.jpg 3.0\nAF1.jpg 3.0\nCF2.jpg 7.2\n",
    },
    folds: [{
      train: "AF1.jpg 3\nAF2.jpg 3.8\nAF3.jpg 3\nAM1.jpg 2.6\nAM2.jpg 4.6\nCF1.jpg 3.67\n",
      test: "CM1.jpg 4\nX1.jpg 3\n",
    }],
  };
}

const XLSX: ScutSpec["ratings"] = [
  { name: "Info", rows: [["SCUT-FBP5500 ratings"], ["60 raters"]] },
  {
    name: "Ratings",
    rows: [
      ["All ratings"],
      ["Rater", "Filename", "Rating", "original Rating"],
      ...ratingRows(RATINGS),
      [7, "AF1.jpg", 7, 7],
      [8, null, 3, 3],
    ],
  },
];

const GRADES = { AF1: 2, AF2: 3, AF3: 1, AM1: 2, AM2: 4, CF1: 4, CM1: 3, X1: 2 };

function grades(d: Awaited<ReturnType<typeof readScut>>): Record<string, number> {
  return Object.fromEntries(
    d.records.map((r) => [basename(r.path).replace(/\.jpg$/, ""), r.labels.beauty]),
  );
}

Deno.test("readScut() reads labels, grades, gender and race with exact counts", async () => {
  await withTempDir(async (dir) => {
    const d = await readScut(await writeScut(dir, spec(XLSX)));
    assert.equal(d.records.length, 8);
    assert.deepEqual(grades(d), GRADES);
    const af1 = d.records[0];
    assert.deepEqual(af1, {
      path: join(dir, "Images", "AF1.jpg"),
      labels: { race: 0, gender: 0, beauty: 2 },
      score: 3,
      // Ratings 2, 3, 3, 3, 4: the raters' histogram over ratings 1–5.
      ratingHistogram: [0, 0.2, 0.6, 0.2, 0],
    });
    assert.deepEqual(d.records.find((r) => r.path.endsWith("CM1.jpg"))!.labels, {
      race: 1,
      gender: 1,
      beauty: 3,
    });
    assert.deepEqual(countLabels(d.records, d.classes), {
      beauty: { "0": 0, "1": 1, "2": 3, "3": 2, "4": 2 },
      gender: { F: 4, M: 3 },
      race: { A: 5, C: 2 },
    });
    assert.deepEqual(d.classes, {
      beauty: ["0", "1", "2", "3", "4"],
      gender: ["F", "M"],
      race: ["A", "C"],
    });
  });
});

Deno.test("readScut() reports every mismatch with file and line and counts skips", async () => {
  await withTempDir(async (dir) => {
    const d = await readScut(await writeScut(dir, spec(XLSX)));
    const labels = join(dir, "train_test_files", "All_labels.txt");
    const ratings = join(dir, "All_Ratings.xlsx");
    const at = (text: string) => {
      const p = problem(d.problems, text);
      return [basename(p.file), p.line, p.skipped ?? false];
    };
    assert.deepEqual(at("CRLF line endings on 12 lines"), ["All_labels.txt", 1, false]);
    assert.deepEqual(at("leading or trailing whitespace on 1 line"), ["All_labels.txt", 3, false]);
    assert.deepEqual(at("score 7.2 is outside 1–5"), ["All_labels.txt", 7, true]);
    assert.deepEqual(at(`expected "<file> <mean score>": current line is "CM2.jpg"`), [
      "All_labels.txt",
      9,
      true,
    ]);
    assert.deepEqual(at(`score "abc" is not a number`), ["All_labels.txt", 13, true]);
    assert.deepEqual(at(`AF9.jpg" not found`), ["All_labels.txt", 10, true]);
    assert.deepEqual(at(`"AF1.jpg" listed again (first at line 1)`), ["All_labels.txt", 11, true]);
    assert.deepEqual(at(`name "X1.jpg" does not start with AF, AM, CF or CM`), [
      "All_labels.txt",
      12,
      false,
    ]);
    assert.deepEqual(at("not listed in"), ["CM3.jpg", undefined, true]);
    // Ratings: sheet and row of each bad row (title on row 1, header on row 2, 27 good rows).
    assert.deepEqual(at(`sheet "Info": no header`), ["All_Ratings.xlsx", 1, false]);
    assert.deepEqual(at(`sheet "Ratings": 2 ratings for unknown image "AF99"`), [
      "All_Ratings.xlsx",
      30,
      true,
    ]);
    assert.deepEqual(at(`rating "7" for "AF1.jpg" is not an integer in 1–5`), [
      "All_Ratings.xlsx",
      32,
      true,
    ]);
    assert.deepEqual(at("no file name"), ["All_Ratings.xlsx", 33, true]);
    assert.deepEqual(at(`no ratings for "AM2"`), ["All_Ratings.xlsx", undefined, false]);
    assert.match(
      problem(d.problems, "disagree with the mean score").message,
      /^ratings of 1 image disagree .*"AM1": mean of 4 ratings is 2\.5000, labels file says 2\.6/,
    );
    // Splits: an image in both parts stays in train; an unknown name is skipped.
    assert.deepEqual(at(`"AF1.jpg" is also in`), ["test.txt", undefined, true]);
    assert.deepEqual(at(`"CF2.jpg" is not a labelled image`), ["test.txt", 5, true]);
    assert.deepEqual(d.skips, {
      "score outside 1–5": 1,
      "malformed line": 2,
      "image listed but missing": 1,
      "duplicate entry": 1,
      "image without label": 1,
      "rating outside 1–5": 1,
      "rating without file name": 1,
      "ratings of unknown image": 1,
      "image in two splits": 1,
      "split entry for unknown image": 1,
    });
    assert.ok(
      d.problems.every((p) => p.file === labels || p.file === ratings || p.file.includes(dir)),
    );
  });
});

Deno.test("readScut() reads the official split and cross-validation folds", async () => {
  await withTempDir(async (dir) => {
    const d = await readScut(await writeScut(dir, spec(XLSX)));
    const names = (idx: number[]) => idx.map((i) => basename(d.records[i].path));
    assert.deepEqual(Object.keys(d.splits), ["official", "cv1"]);
    assert.deepEqual(names(d.splits.official.train), [
      "AF1.jpg",
      "AF2.jpg",
      "AF3.jpg",
      "AM1.jpg",
      "CF1.jpg",
    ]);
    assert.deepEqual(names(d.splits.official.test), ["AM2.jpg", "CM1.jpg", "X1.jpg"]);
    assert.deepEqual(d.splits.official.val, []);
    assert.deepEqual(names(d.splits.cv1.test), ["CM1.jpg", "X1.jpg"]);
    assert.equal(d.splits.cv1.train.length, 6);
  });
});

Deno.test("readScut() reads a CSV export of the ratings like the xlsx", async () => {
  await withTempDir(async (dir) => {
    const csv = "Rater,Filename,Rating,original Rating\n" +
      ratingRows(RATINGS).map((r) => r.join(",")).join("\n") + "\n";
    const d = await readScut(await writeScut(dir, spec(csv)));
    assert.deepEqual(grades(d), GRADES);
    assert.deepEqual(
      [problem(d.problems, "unknown image").line, problem(d.problems, "unknown image").file],
      [29, join(dir, "All_Ratings.csv")],
    );
  });
});

Deno.test("readScut() without ratings uses round(mean) − 1 and says so", async () => {
  await withTempDir(async (dir) => {
    const d = await readScut(await writeScut(dir, spec(undefined)));
    assert.deepEqual(grades(d), { AF1: 2, AF2: 3, AF3: 2, AM1: 2, AM2: 4, CF1: 3, CM1: 3, X1: 2 });
    const p = problem(d.problems, "no All_Ratings.xlsx or All_Ratings.csv");
    assert.equal(
      p.message,
      "no All_Ratings.xlsx or All_Ratings.csv: beauty grades of all 8 images are " +
        "round(mean score) − 1, not the most-given rating − 1 the paper uses",
    );
    assert.equal(basename(p.file), "All_labels.txt");
  });
});

Deno.test("readScut() throws for a missing folder, Images/, labels file or ratings header", async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(
      () => readScut(join(dir, "nope")),
      `Cannot read SCUT-FBP5500 at "${join(dir, "nope")}": folder not found`,
    );
    await rejectsWith(
      () => readScut(dir),
      `Cannot read SCUT-FBP5500 at "${dir}": no "Images" folder in it`,
    );
    await Deno.mkdir(join(dir, "Images"));
    await rejectsWith(() => readScut(dir), "no train_test_files/All_labels.txt");
    await writeScut(dir, {
      images: ["AF1.jpg"],
      labels: "AF1.jpg 3\n",
      ratings: [{ name: "S", rows: [["File", "Score"], ["AF1.jpg", 3]] }],
    });
    await rejectsWith(
      () => readScut(dir),
      `Cannot read ratings file "${join(dir, "All_Ratings.xlsx")}": no sheet has a header`,
    );
    await Deno.writeTextFile(join(dir, "All_Ratings.xlsx"), "not a zip");
    await rejectsWith(() => readScut(dir), "not a valid xlsx workbook");
  });
});
