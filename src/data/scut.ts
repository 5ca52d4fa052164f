/**
 * Reader for SCUT-FBP5500 in its archive layout (DESIGN.md §5):
 *
 * ```
 * <root>/Images/{AF,AM,CF,CM}<n>.jpg
 * <root>/All_Ratings.xlsx                  (or All_Ratings.csv; optional)
 * <root>/train_test_files/All_labels.txt   <file> <mean score>
 * <root>/train_test_files/split_of_60%training and 40%testing/{train,test}.txt
 * <root>/train_test_files/5_folders_cross_validations_files/cross_validation_<k>/{train,test}_<k>.txt
 * ```
 *
 * Labels per image: `beauty` (grade 0–4, see grade.ts), `gender` (F=0, M=1, second
 * letter of the name), `race` (A=0, C=1, first letter), and the mean score.
 * @module
 */

import { join } from "node:path";
import { beautyGrade, ratingHistogram } from "./grade.ts";
import { findEntry, isDirectory, isImageName, listDir } from "./fs_util.ts";
import { ProblemLog, quote } from "./problems.ts";
import { imageStem, type RatingsTable, readRatings } from "./ratings.ts";
import { type Dataset, type ImageRecord, SCUT_CLASSES, type Split } from "./records.ts";
import { readTextLines } from "./text_lines.ts";

const NAME = /^([AC])([FM])\d+$/;

interface Labelled {
  name: string;
  score: number;
  line: number;
}

/**
 * Parses `<file> <mean score>` lines; bad lines are skipped and reported. `mentioned`
 * collects the stem of every line, good or bad, so an image whose line was bad is not
 * reported a second time as unlabelled.
 */
async function readLabelFile(
  path: string,
  log: ProblemLog,
  mentioned: Set<string>,
): Promise<Labelled[]> {
  const out: Labelled[] = [];
  const seen = new Map<string, number>();
  for (const { line, text } of await readTextLines(path, "labels file", log)) {
    const parts = text.split(/\s+/);
    mentioned.add(imageStem(parts[0]));
    if (parts.length !== 2) {
      const msg = `expected "<file> <mean score>": current line is ${quote(text)}`;
      log.skip("malformed line", path, line, msg);
      continue;
    }
    const [name, s] = parts;
    const score = Number(s);
    // The mean score decides the beauty grade (of an image without ratings, and in ties):
    // a score that is not a decimal number in 1–5 is a beauty label error.
    if (!/^\d+(\.\d*)?$|^\.\d+$/.test(s)) {
      const msg = `score ${quote(s)} is not a number: expected a mean score in 1–5 such as 3.25`;
      log.labelError("beauty", path, line, msg, "malformed line");
      continue;
    }
    if (score < 1 || score > 5) {
      log.labelError("beauty", path, line, `score ${s} is outside 1–5`, "score outside 1–5");
      continue;
    }
    const first = seen.get(name);
    if (first !== undefined) {
      log.skip("duplicate entry", path, line, `"${name}" listed again (first at line ${first})`);
      continue;
    }
    seen.set(name, line);
    out.push({ name, score, line });
  }
  return out;
}

/** Reads one split file, returning record indices; unknown names are skipped. */
async function readSplitFile(
  path: string,
  index: Map<string, number>,
  log: ProblemLog,
): Promise<number[]> {
  const out: number[] = [];
  const seen = new Set<number>();
  for (const { line, text } of await readTextLines(path, "split file", log)) {
    const name = text.split(/\s+/)[0];
    const i = index.get(name);
    if (i === undefined) {
      const msg = `"${name}" is not a labelled image; ignored`;
      log.skip("split entry for unknown image", path, line, msg);
    } else if (seen.has(i)) {
      log.skip("duplicate entry", path, line, `"${name}" listed twice; ignored`);
    } else {
      seen.add(i);
      out.push(i);
    }
  }
  return out;
}

/** Reads a train/test pair into a split; an image in both stays in train only. */
async function readSplitPair(
  trainFile: string,
  testFile: string,
  index: Map<string, number>,
  log: ProblemLog,
): Promise<Split> {
  const train = await readSplitFile(trainFile, index, log);
  const inTrain = new Set(train);
  const test: number[] = [];
  for (const i of await readSplitFile(testFile, index, log)) {
    if (inTrain.has(i)) {
      const name = [...index].find(([, j]) => j === i)![0];
      const msg = `"${name}" is also in "${trainFile}"; kept in train only`;
      log.skip("image in two splits", testFile, undefined, msg);
    } else test.push(i);
  }
  return { train, val: [], test };
}

/** Where fold `k`'s lists are: the fold's folder and its train and test files (if found). */
async function foldFiles(
  cv: string,
  k: number,
): Promise<{ fold?: string; train?: string; test?: string }> {
  const fold = await findEntry(cv, `cross_validation_${k}`, "dir");
  if (!fold) return {};
  return {
    fold,
    train: await findEntry(fold, `train_${k}.txt`),
    test: await findEntry(fold, `test_${k}.txt`),
  };
}

/** The folder of the 5 cross-validation folds inside train_test_files, if there is one. */
function findFoldsDir(ttDir: string): Promise<string | undefined> {
  return findEntry(ttDir, /^5_folders?_cross_validations?_files$/i, "dir");
}

/** Reads the official 60/40 split and the 5 cross-validation folds that are present. */
async function readSplits(
  dir: string,
  index: Map<string, number>,
  log: ProblemLog,
): Promise<Record<string, Split>> {
  const splits: Record<string, Split> = {};
  const official = await findEntry(dir, /^split_of_60%\s*training and 40%\s*testing$/i, "dir");
  if (official) {
    const train = await findEntry(official, "train.txt");
    const test = await findEntry(official, "test.txt");
    if (train && test) splits.official = await readSplitPair(train, test, index, log);
    else log.warn(official, undefined, "train.txt or test.txt is missing; split not read");
  }
  const cv = await findFoldsDir(dir);
  for (let k = 1; cv && k <= 5; k++) {
    const { fold, train, test } = await foldFiles(cv, k);
    if (!fold) continue;
    if (train && test) splits[`cv${k}`] = await readSplitPair(train, test, index, log);
    else log.warn(fold, undefined, `train_${k}.txt or test_${k}.txt is missing; fold not read`);
  }
  return splits;
}

/**
 * The cross-validation folds (1–5) whose train and test lists are present under `root`,
 * found without reading the database (so a sweep over folds can check its plan at once).
 * @param root the folder holding Images/ and train_test_files/
 * @returns fold numbers in ascending order; `[]` when there are none
 * @throws {Error} naming `root` when that folder does not exist (a typo would otherwise
 * read as a database without folds)
 */
export async function scutFolds(root: string): Promise<number[]> {
  if (!(await isDirectory(root))) {
    throw new Error(
      `Cannot find the cross-validation folds of SCUT-FBP5500 at "${root}": folder not found\n` +
        `Hint: scut:<dir> names the folder that holds Images/ and train_test_files/`,
    );
  }
  const tt = await findEntry(root, "train_test_files", "dir");
  const cv = tt && await findFoldsDir(tt);
  const out: number[] = [];
  for (let k = 1; cv && k <= 5; k++) {
    const { train, test } = await foldFiles(cv, k);
    if (train && test) out.push(k);
  }
  return out;
}

/** Adds beauty grades from ratings (or round(mean) − 1, reported) to the records. */
function addGrades(
  records: ImageRecord[],
  stems: string[],
  ratings: RatingsTable | undefined,
  ratingsFile: string,
  labelsFile: string,
  log: ProblemLog,
): void {
  let mismatch = 0;
  let firstMismatch = "";
  records.forEach((r, i) => {
    const entry = ratings?.get(stems[i]);
    if (ratings && !entry) {
      log.warn(ratingsFile, undefined, `no ratings for "${stems[i]}"; grade is round(mean) − 1`);
    }
    const list = entry?.ratings ?? [];
    r.labels.beauty = beautyGrade(list, r.score).grade;
    if (list.length > 0) r.ratingHistogram = ratingHistogram(list);
    if (list.length > 0) {
      const m = list.reduce((a, b) => a + b, 0) / list.length;
      if (Math.abs(m - r.score!) > 0.01 && mismatch++ === 0) {
        firstMismatch = `"${stems[i]}": mean of ${list.length} ratings is ${m.toFixed(4)}, ` +
          `labels file says ${r.score}`;
      }
    }
  });
  if (!ratings) {
    log.warn(
      labelsFile,
      undefined,
      `no All_Ratings.xlsx or All_Ratings.csv: beauty grades of all ${records.length} images ` +
        `are round(mean score) − 1, not the most-given rating − 1 the paper uses`,
    );
  }
  if (mismatch > 0) {
    log.warn(
      ratingsFile,
      undefined,
      `ratings of ${mismatch} image${mismatch === 1 ? "" : "s"} disagree with the mean ` +
        `score (first: ${firstMismatch}); grades use the ratings, ties the mean score`,
    );
  }
  if (ratings) {
    const known = new Set(stems);
    for (const [stem, e] of ratings) {
      if (known.has(stem)) continue;
      const where = e.sheet === undefined ? "" : `sheet "${e.sheet}": `;
      const msg = `${where}${e.ratings.length} ratings for unknown image "${stem}"; ignored`;
      log.skip("ratings of unknown image", ratingsFile, e.line, msg);
    }
  }
}

/**
 * Reads SCUT-FBP5500 from `root`, the folder holding `Images/`.
 * @throws {Error} When `Images/` or `All_labels.txt` is missing or unreadable.
 */
export async function readScut(root: string, source = `scut:${root}`): Promise<Dataset> {
  const log = new ProblemLog();
  const imagesDir = await findEntry(root, "Images", "dir");
  if (!imagesDir) {
    const why = (await isDirectory(root)) ? `no "Images" folder in it` : "folder not found";
    throw new Error(
      `Cannot read SCUT-FBP5500 at "${root}": ${why}\n` +
        `Hint: scut:<dir> names the folder that holds Images/ and train_test_files/`,
    );
  }
  const files = new Map<string, string>(); // stem → file name
  for (const e of await listDir(imagesDir)) {
    if (!e.isDirectory && isImageName(e.name)) files.set(imageStem(e.name), e.name);
  }
  const ttDir = await findEntry(root, "train_test_files", "dir");
  const labelsFile = ttDir && (await findEntry(ttDir, "All_labels.txt"));
  if (!labelsFile) {
    throw new Error(
      `Cannot read SCUT-FBP5500 at "${root}": no train_test_files/All_labels.txt`,
    );
  }
  const records: ImageRecord[] = [];
  const stems: string[] = [];
  const index = new Map<string, number>();
  const listed = new Set<string>();
  for (const { name, score, line } of await readLabelFile(labelsFile, log, listed)) {
    const stem = imageStem(name);
    const file = files.get(stem);
    if (file === undefined || (file !== name && name.includes("."))) {
      const other = file === undefined ? "" : ` (there is "${file}")`;
      const msg = `image "${join(imagesDir, name)}" not found${other}`;
      log.skip("image listed but missing", labelsFile, line, msg);
      continue;
    }
    const labels: Record<string, number> = {};
    const m = NAME.exec(stem);
    if (m) {
      labels.race = m[1] === "A" ? 0 : 1;
      labels.gender = m[2] === "F" ? 0 : 1;
    } else {
      const msg = `name "${name}" does not start with AF, AM, CF or CM: gender and race unknown`;
      log.warn(labelsFile, line, msg);
    }
    index.set(name, records.length);
    if (name !== file) index.set(file, records.length);
    records.push({ path: join(imagesDir, file), labels, score });
    stems.push(stem);
  }
  for (const [stem, file] of files) {
    if (!listed.has(stem)) {
      const msg = `not listed in "${labelsFile}"; ignored`;
      log.skip("image without label", join(imagesDir, file), undefined, msg);
    }
  }
  const ratingsFile = (await findEntry(root, "All_Ratings.xlsx")) ??
    (await findEntry(root, "All_Ratings.csv"));
  const ratings = ratingsFile ? await readRatings(ratingsFile, log) : undefined;
  addGrades(records, stems, ratings, ratingsFile ?? "", labelsFile, log);
  const splits = await readSplits(ttDir!, index, log);
  return {
    name: "scut",
    source,
    root,
    records,
    classes: {
      beauty: [...SCUT_CLASSES.beauty],
      gender: [...SCUT_CLASSES.gender],
      race: [...SCUT_CLASSES.race],
    },
    splits,
    problems: log.problems,
    skips: log.skips,
  };
}
