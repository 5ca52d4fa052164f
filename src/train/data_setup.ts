/**
 * Reads each database of a run, checks that every task finds its label there, and fixes
 * the splits (train / val / test, plus train-w / train-p halves for policy learning) —
 * before any training starts, so a config that cannot work fails in seconds.
 * @module
 */
import { taskClasses } from "../data/classes.ts";
import { chooseSplit, stratifiedSplit } from "../data/split.ts";
import { readSource } from "../data/source.ts";
import type { Dataset, ImageRecord } from "../data/records.ts";
import type { RunConfig } from "./run_config.ts";

/** One database ready to batch. */
export interface PreparedDatabase {
  name: string;
  dataset: Dataset;
  /** Tasks reading this database, with their label names. */
  tasks: { name: string; label: string }[];
  train: ImageRecord[];
  val: ImageRecord[];
  test: ImageRecord[];
  /** Halves of `train` for AdaShare's alternating weight / policy epochs. */
  trainW: ImageRecord[];
  trainP: ImageRecord[];
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
    }));
    for (const t of tasks) {
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
    const split = chooseSplit(dataset, db.split ?? "stratified", {
      seed: config.seed,
      by: tasks[0].label,
    });
    const pick = (idx: number[]) => idx.map((i) => dataset.records[i]);
    const train = pick(split.train);
    if (train.length < config.batch) {
      throw new Error(
        `Cannot start the run: the training split of database "${db.name}" has ${train.length} images, fewer than the batch of ${config.batch}`,
      );
    }
    if (split.val.length === 0 || split.test.length === 0) {
      throw new Error(
        `Cannot start the run: database "${db.name}" has an empty validation or test split`,
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
    });
  }
  return { databases, classes };
}
