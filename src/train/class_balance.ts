/**
 * Class balance for imbalanced labels (SCUT-FBP5500's grade 5 is rare), `--balance`:
 * - `none`: plain cross-entropy, the loader's shuffled epochs;
 * - `weights`: cross-entropy with inverse-frequency class weights from the training
 *   split's counts, w_c = N / (K′·n_c) (N labelled training images, n_c of class c, K′
 *   classes that have images), so the mean weight over the training images is 1 and the
 *   loss keeps the scale of plain cross-entropy; a class without training images gets 1;
 * - `sampler`: class-balanced training draws (src/data/balanced_order.ts) for the first
 *   class task (in `--task` order) of each database — its other tasks see those draws as
 *   they come; the losses are plain cross-entropy;
 * - `focal`: focal loss (1 − p_t)^γ·CE with `--focal-gamma` γ (default 2).
 * Only class tasks are balanced; score and dist tasks keep their losses.
 * @module
 */
import type { ImageRecord } from "../data/records.ts";
import { type Balance, BALANCES } from "./option_names.ts";
import type { RunConfig } from "./run_config.ts";
import { PLAIN_CLASS_LOSS, type TaskLoss } from "./task_kinds.ts";

// The option names live in a leaf module the config and the CLI read; re-exported here.
export { type Balance, BALANCES };

/**
 * Inverse-frequency class weights w_c = N / (K′·n_c) from the labels of the training
 * images (N labelled images, n_c of class c, K′ the classes with images); a class
 * without images gets 1.
 * @param labels the training images' labels (negative: no label, left out)
 * @param classes the number of classes K
 * @returns K weights, index = class; their mean over the labelled images is 1
 * @example 3 images of class 0, 1 of class 1: N = 4, K′ = 2
 * ```ts
 * import assert from "node:assert/strict";
 * import { inverseFrequencyWeights } from "./class_balance.ts";
 * assert.deepEqual(inverseFrequencyWeights([0, 0, 0, 1, -1], 3), [4 / 6, 2, 1]);
 * ```
 */
export function inverseFrequencyWeights(labels: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c < 0) continue;
    if (!(Number.isInteger(c) && c < classes)) {
      throw new RangeError(
        `Cannot weigh classes: label ${i} must be a class in 0..${
          classes - 1
        }: current value is ${c}`,
      );
    }
    counts[c]++;
    n++;
  }
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? n / (present * c) : 1));
}

/**
 * The label whose classes the sampler balances in a database: that of its first class
 * task in the config's order; undefined when the run does not use the sampler or the
 * database has no class task.
 */
export function samplerLabel(config: RunConfig, database: string): string | undefined {
  if (config.balance !== "sampler") return undefined;
  return config.tasks.find((t) => t.database === database && (t.kind ?? "class") === "class")
    ?.label;
}

/**
 * Each task's loss spec for the run (task_kinds.ts TaskLoss): the kind, and for class
 * tasks the balance — class weights from the training split of the task's database, or
 * focal γ.
 * @param train the training records of each database, by database name
 * @param classes the class names of each task
 */
export function taskLosses(
  config: RunConfig,
  train: Readonly<Record<string, readonly ImageRecord[]>>,
  classes: Readonly<Record<string, readonly string[]>>,
): Record<string, TaskLoss> {
  const out: Record<string, TaskLoss> = {};
  for (const t of config.tasks) {
    const kind = t.kind ?? "class";
    if (kind === "score") out[t.name] = { kind, loss: config.scoreLoss };
    else if (kind === "dist") out[t.name] = { kind };
    else if (config.balance === "weights") {
      const labels = (train[t.database] ?? []).map((r) => r.labels[t.label] ?? -1);
      out[t.name] = {
        kind,
        classWeights: inverseFrequencyWeights(labels, classes[t.name].length),
      };
    } else if (config.balance === "focal") out[t.name] = { kind, focalGamma: config.focalGamma };
    else out[t.name] = PLAIN_CLASS_LOSS;
  }
  return out;
}
