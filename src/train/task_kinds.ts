/**
 * What a task learns, by kind:
 * - `class` (default): a K-class softmax head trained with cross-entropy on an integer
 *   label (optionally class-balanced: class_balance.ts);
 * - `score`: one output regressing the raters' mean score (1–5), L1 or MSE
 *   (`--score-loss`). The head predicts the score on the normalised scale z = (s − 3) / 2
 *   (1–5 → −1…1): a fresh head, whose outputs start near 0, then starts at the scale's
 *   middle, and the loss is of the order of a cross-entropy, so λ weighs the tasks alike.
 *   The predicted score is 3 + 2z, clamped to 1–5;
 * - `dist`: five outputs, softmax = the predicted histogram of the raters' ratings 1–5,
 *   trained with KL(target ‖ predicted) against the image's histogram (SCUT-FBP5500's
 *   All_Ratings).
 * Score and dist tasks report PC, MAE and RMSE of the predicted score against the mean
 * rating (dist: its expected rating Σ r·p_r), and the grade their prediction implies (the
 * dataset's rule: score → round(score) − 1, the grade SCUT's reader gives an image without
 * ratings; dist → the most probable rating − 1, ties to the one nearest the expected
 * rating, the most-given-rating rule of grade.ts applied to the predicted histogram)
 * against the image's own grade (its histogram's, else round(mean) − 1), as accuracy and
 * F1 over the grades 0–4.
 * @module
 */
import { gradeFromHistogram, RATING_BINS } from "../data/grade.ts";
import { expectedRating, recordScore } from "../data/mean_score.ts";
import type { ImageRecord } from "../data/records.ts";
import { mul } from "../ops/elementwise.ts";
import { focalLoss, regressionLoss, softTargetKl } from "../ops/losses.ts";
import { crossEntropy } from "../ops/softmax.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { argmaxRows } from "./metrics.ts";
import {
  DIST_LABEL,
  SCORE_LABEL,
  SCORE_LOSSES,
  type ScoreLoss,
  TASK_KINDS,
  type TaskKind,
} from "./option_names.ts";

// The mean score lives with the data (the loader reads it too); re-exported for callers here.
export { expectedRating, recordScore };
// The option names live in a leaf module the config and the CLI read; re-exported here.
export { DIST_LABEL, SCORE_LABEL, SCORE_LOSSES, type ScoreLoss, TASK_KINDS, type TaskKind };

/** Grade names of score and dist tasks (grade = rating − 1, as SCUT-FBP5500's beauty). */
export const GRADE_CLASSES: readonly string[] = ["0", "1", "2", "3", "4"];

/**
 * The number of head outputs of a task.
 * @param kind the task's kind
 * @param classes the classes of a class task (ignored for the others)
 * @returns classes for class, 1 for score, 5 for dist
 */
export function headOutputs(kind: TaskKind | undefined, classes: number): number {
  return kind === "score" ? 1 : kind === "dist" ? RATING_BINS : classes;
}

/** A mean score on the head's scale: (s − 3) / 2. */
export function normaliseScore(score: number): number {
  return (score - 3) / 2;
}

/** A head output as a score: 3 + 2z, clamped to the rating scale 1–5. */
export function scoreFromOutput(z: number): number {
  return Math.min(5, Math.max(1, 3 + 2 * z));
}

/** The grade a predicted score implies: round(score) − 1 (scores clamped to 1–5). */
export function gradeFromScore(score: number): number {
  return Math.round(Math.min(5, Math.max(1, score))) - 1;
}

/**
 * A record's own grade for score and dist tasks: the grade of its rating histogram (ties to
 * the mean score), else round(mean score) − 1, else −1 (unknown).
 */
export function recordGrade(r: ImageRecord): number {
  if (r.ratingHistogram) return gradeFromHistogram(r.ratingHistogram, r.score);
  return r.score === undefined ? -1 : gradeFromScore(r.score);
}

/** How one task's loss is computed in a training step (built once per run). */
export type TaskLoss =
  | {
    kind: "class";
    /**
     * Per-class weights of the cross-entropy (balance "weights"), index = class; absent:
     * every class 1.
     */
    classWeights?: readonly number[];
    /** Focal loss with this γ (balance "focal"); absent: cross-entropy. */
    focalGamma?: number;
  }
  | { kind: "score"; loss: ScoreLoss }
  | { kind: "dist" };

/** The loss of a class task without balancing: plain cross-entropy. */
export const PLAIN_CLASS_LOSS: TaskLoss = { kind: "class" };

/**
 * One task's targets in a step's batch: the integer class or grade per image (−1 =
 * unknown), and for score / dist tasks the values learnt (score: (N) mean scores 1–5;
 * dist: (N, 5) histograms; NaN = unknown).
 */
export interface TaskTargets {
  /** (N) class (class task) or the image's grade (score / dist: for the grade accuracy). */
  classes: Int32Array;
  /** Score: (N) mean rating; dist: (N·5) histograms row-major; NaN where unknown. */
  values?: Float32Array;
}

/** One task's part of a training step. */
export interface TaskStepResult {
  /** Mean loss over the images that have the target (unweighted by λ), shape [1]. */
  loss: Tensor;
  /** Images whose (implied) class is right, and images counted. */
  correct: number;
  count: number;
}

/**
 * The loss of one task on one batch and its (implied-)class hits: images without the
 * target (−1 / NaN) are left out of both; null when no image of the batch has it.
 * @param logits (N, outputs) the head's outputs
 * @throws {Error} when a score or dist task's batch has no values
 */
export function taskStep(
  logits: Tensor,
  targets: TaskTargets,
  spec: TaskLoss,
): TaskStepResult | null {
  const backend = logits.backend;
  const [n, k] = logits.shape;
  const out = logits.toArray();
  const weights = new Float32Array(n);
  let valid = 0, correct = 0;
  if (spec.kind === "class") {
    const t = targets.classes;
    const cls = new Float32Array(n);
    const pred = argmaxRows(out, n, k);
    for (let i = 0; i < n; i++) {
      if (t[i] < 0) continue;
      cls[i] = t[i];
      weights[i] = spec.classWeights?.[t[i]] ?? 1;
      valid++;
      if (pred[i] === t[i]) correct++;
    }
    if (valid === 0) return null;
    const targetT = tensor(cls, [n], { backend });
    const allOne = valid === n && !spec.classWeights;
    const w = allOne ? null : tensor(weights, [n], { backend });
    // Mean over the labelled images only: the ops divide by N.
    const loss = spec.focalGamma !== undefined
      ? focalLoss(logits, targetT, { gamma: spec.focalGamma, weights: w })
      : crossEntropy(logits, targetT, { weights: w });
    return { loss: mul(loss, n / valid), correct, count: valid };
  }
  const values = targets.values;
  if (!values) {
    throw new Error(`Cannot compute a ${spec.kind} loss: the batch holds no target values`);
  }
  const width = spec.kind === "score" ? 1 : RATING_BINS;
  const target = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    const row = values.subarray(i * width, (i + 1) * width);
    if (row.some((v) => !Number.isFinite(v))) continue;
    weights[i] = 1;
    valid++;
    if (spec.kind === "score") target[i] = normaliseScore(row[0]);
    else target.set(row, i * width);
    const g = targets.classes[i];
    const implied = spec.kind === "score"
      ? gradeFromScore(scoreFromOutput(out[i]))
      : gradeFromHistogram(softmaxRow(out, i, k));
    if (g >= 0 && implied === g) correct++;
  }
  if (valid === 0) return null;
  const w = tensor(weights, [n], { backend });
  const loss = spec.kind === "score"
    ? regressionLoss(logits, tensor(target, [n, 1], { backend }), { kind: spec.loss, weights: w })
    : softTargetKl(logits, tensor(target, [n, width], { backend }), { weights: w });
  let count = 0;
  for (let i = 0; i < n; i++) if (weights[i] > 0 && targets.classes[i] >= 0) count++;
  return { loss: mul(loss, n / valid), correct, count };
}

/** Softmax of one row of (rows, k) logits, in float64. */
export function softmaxRow(x: ArrayLike<number>, row: number, k: number): number[] {
  let m = -Infinity;
  for (let c = 0; c < k; c++) m = Math.max(m, x[row * k + c]);
  const e = Array.from({ length: k }, (_, c) => Math.exp(x[row * k + c] - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * A score or dist head's prediction for one image: the score (1–5), the histogram (dist)
 * and the implied grade.
 * @param outputs (rows, k) head outputs
 */
export function decodeScoreOutput(
  kind: "score" | "dist",
  outputs: ArrayLike<number>,
  row: number,
): { score: number; grade: number; histogram?: number[] } {
  if (kind === "score") {
    const score = scoreFromOutput(outputs[row]);
    return { score, grade: gradeFromScore(score) };
  }
  const histogram = softmaxRow(outputs, row, RATING_BINS);
  return { score: expectedRating(histogram), grade: gradeFromHistogram(histogram), histogram };
}
