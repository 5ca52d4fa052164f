/**
 * Reads each database of a run, checks that every task finds its label there, and fixes
 * the splits (train / val / test, plus train-w / train-p halves for policy learning) —
 * before any training starts, so a config that cannot work fails in seconds. A shipped
 * split without validation (SCUT-FBP5500's "official" 60/40 and "cv1"–"cv5") gets one
 * carved out of its training list, seeded by the run's seed (split.ts trainingSplit);
 * {@link usedSplits} lists the image files of every part for the run's splits.json.
 * @module
 */
import { relative, sep } from "node:path";
import { taskClasses } from "../data/classes.ts";
import { stratifiedSplit, type TrainingSplit, trainingSplit } from "../data/split.ts";
import { readSource } from "../data/source.ts";
import type { Dataset, ImageRecord } from "../data/records.ts";
import type { DatabaseSpec, RunConfig, TaskSpec } from "./run_config.ts";
import { GRADE_CLASSES, recordGrade, recordScore, type TaskKind } from "./task_kinds.ts";

/** One database ready to batch. */
export interface PreparedDatabase {
  name: string;
  dataset: Dataset;
  /** Tasks reading this database, with their label names and kinds (absent: class). */
  tasks: { name: string; label: string; kind?: TaskKind }[];
  train: ImageRecord[];
  val: ImageRecord[];
  test: ImageRecord[];
  /** Halves of `train` for AdaShare's alternating weight / policy epochs. */
  trainW: ImageRecord[];
  trainP: ImageRecord[];
  /** The split behind train / val / test (indices into `dataset.records`). */
  split: TrainingSplit;
}

/** Class names of every task, from its database's class table. */
export type TaskClasses = Record<string, string[]>;

/**
 * Loads and splits every database of the config.
 * @throws {Error} naming the database, task and label when a task has no labels, and
 *   when the batch is larger than a training split
 */
export async function prepareData(
  config: RunConfig,
): Promise<{ databases: PreparedDatabase[]; classes: TaskClasses }> {
  const databases: PreparedDatabase[] = [];
  const classes: TaskClasses = {};
  for (const db of config.databases) {
    const dataset = await readSource(db.source);
    const tasks = config.tasks.filter((t) => t.database === db.name).map((t) => ({
      name: t.name,
      label: t.label,
      ...(t.kind && t.kind !== "class" ? { kind: t.kind } : {}),
    }));
    for (const t of tasks) {
      const spec = config.tasks.find((s) => s.name === t.name)!;
      if ((spec.kind ?? "class") !== "class") {
        classes[t.name] = checkScoreTask(dataset, db, spec);
        addGradeLabels(dataset, spec);
        continue;
      }
      const names = dataset.classes[t.label];
      const labelled = dataset.records.filter((r) => r.labels[t.label] !== undefined).length;
      if (!names || labelled === 0) {
        const have = Object.keys(dataset.classes).map((k) => `"${k}"`).join(", ") || "none";
        throw new Error(
          `Cannot start the run: database "${db.name}" (${db.source}) has no "${t.label}" labels for task "${t.name}": its labels are ${have}`,
        );
      }
      if (names.length < 2) {
        throw new Error(
          `Cannot start the run: label "${t.label}" of database "${db.name}" has ${names.length} class`,
        );
      }
      classes[t.name] = taskClasses(dataset, config.tasks.find((s) => s.name === t.name)!);
    }
    const used = trainingSplit(dataset, db.split ?? "stratified", {
      seed: config.seed,
      labels: tasks.map((t) => t.label),
      valFraction: db.valFraction,
    });
    const { split } = used;
    const pick = (idx: number[]) => idx.map((i) => dataset.records[i]);
    const train = pick(split.train);
    if (train.length < config.batch) {
      throw new Error(
        `Cannot start the run: the training split of database "${db.name}" has ${train.length} images, fewer than the batch of ${config.batch}`,
      );
    }
    if (split.val.length === 0 || split.test.length === 0) {
      throw new Error(
        `Cannot start the run: database "${db.name}" has an empty validation or test split ` +
          `(split "${used.name}": train ${split.train.length}, val ${split.val.length}, ` +
          `test ${split.test.length})`,
      );
    }
    // Policy learning alternates two disjoint halves of train (AdaShare's train1 / train2).
    const halves = stratifiedSplit(train, {
      ratios: [1, 1, 0],
      seed: config.seed + 1,
      by: tasks[0].label,
    });
    databases.push({
      name: db.name,
      dataset,
      tasks,
      train,
      val: pick(split.val),
      test: pick(split.test),
      trainW: halves.train.map((i) => train[i]),
      trainP: halves.val.map((i) => train[i]),
      split: used,
    });
  }
  return { databases, classes };
}

/**
 * Checks that a score or dist task finds its targets in a database — mean scores in 1–5
 * (score), the raters' histograms (dist: SCUT-FBP5500 folders with All_Ratings) — and
 * returns its grade names (the implied grade's classes).
 * @throws {Error} naming the task, the database and what is missing or out of range
 */
function checkScoreTask(dataset: Dataset, db: DatabaseSpec, t: TaskSpec): string[] {
  const where = `database "${db.name}" (${db.source})`;
  if (t.kind === "dist") {
    if (!dataset.records.some((r) => r.ratingHistogram)) {
      throw new Error(
        `Cannot start the run: task "${t.name}" (kind dist) learns the raters' rating ` +
          `histogram, and ${where} has none: expected a SCUT-FBP5500 folder with ` +
          `All_Ratings.xlsx or All_Ratings.csv (a manifest has no per-rater ratings). ` +
          `Hint: use kind score for the mean rating`,
      );
    }
    return [...GRADE_CLASSES];
  }
  const scored = dataset.records.filter((r) => recordScore(r) !== undefined);
  if (scored.length === 0) {
    throw new Error(
      `Cannot start the run: task "${t.name}" (kind score) learns the mean rating, and ` +
        `${where} has no scores: expected a manifest "score" column or SCUT-FBP5500's ` +
        `All_labels.txt`,
    );
  }
  const bad = scored.find((r) => !(recordScore(r)! >= 1 && recordScore(r)! <= 5));
  if (bad) {
    throw new Error(
      `Cannot start the run: task "${t.name}" (kind score) learns mean ratings on the ` +
        `scale 1–5: image "${bad.path}" of ${where} has score ${recordScore(bad)}`,
    );
  }
  return [...GRADE_CLASSES];
}

/**
 * Gives the records that have a score or dist task's target (a mean score; a histogram)
 * their grade as the task's label (`score` / `ratings`, task_kinds.ts recordGrade): batches
 * then carry it as the task's class target, which the implied-grade accuracy is measured
 * against, and splits stratify by it — on SCUT-FBP5500 the same grades as its `beauty`
 * label, so class, score and dist tasks on beauty train and test on the same images.
 */
export function addGradeLabels(dataset: Dataset, t: Pick<TaskSpec, "kind" | "label">): void {
  for (const r of dataset.records) {
    const has = t.kind === "dist" ? r.ratingHistogram !== undefined : recordScore(r) !== undefined;
    const g = has ? recordGrade(r) : -1;
    if (g >= 0) r.labels[t.label] = g;
  }
}

/** The images one database of a run used: what `splits.json` holds per database. */
export interface UsedSplit {
  /** The source spec read. */
  source: string;
  /** The folder the file names are relative to (the source's root). */
  root: string;
  /** Split name: "stratified", "official", "cv1", … */
  split: string;
  /** How validation was made when the source ships none: share of its train list, labels. */
  carvedValidation?: { fraction: number; stratifiedBy: string[] };
  /** Image file names relative to `root` ("/"-separated), in record order. */
  train: string[];
  val: string[];
  test: string[];
}

/**
 * Per database, the image files of the train / val / test parts a run used, as a JSON-able
 * object (the run folder's `splits.json`), so a result can be traced to its images and a
 * split repeated elsewhere.
 * @param databases the run's prepared databases (prepareData)
 * @returns an object keyed by database name
 * @example
 * ```ts ignore
 * const { databases } = await prepareData(config);
 * await writeJsonAtomic(join(config.out, "splits.json"), usedSplits(databases));
 * ```
 */
export function usedSplits(databases: readonly PreparedDatabase[]): Record<string, UsedSplit> {
  const out: Record<string, UsedSplit> = {};
  for (const db of databases) {
    const { dataset, split } = db;
    const files = (idx: readonly number[]) =>
      idx.map((i) => relative(dataset.root, dataset.records[i].path).split(sep).join("/"));
    out[db.name] = {
      source: dataset.source,
      root: dataset.root,
      split: split.name,
      ...(split.carved
        ? {
          carvedValidation: { fraction: split.carved.fraction, stratifiedBy: split.carved.by },
        }
        : {}),
      train: files(split.split.train),
      val: files(split.split.val),
      test: files(split.split.test),
    };
  }
  return out;
}
