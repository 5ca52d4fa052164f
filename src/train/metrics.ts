/**
 * Classification metrics of one task: accuracy, macro-F1, weighted-F1 and the confusion
 * matrix, computed exactly as scikit-learn's `accuracy_score`, `f1_score(average="macro",
 * zero_division=0)` and `f1_score(average="weighted", zero_division=0)` with the default
 * `labels=None`, and `confusion_matrix` (rows = true class, columns = predicted class).
 * @module
 */
import type { TaskMetrics } from "./result.ts";

/**
 * Streaming confusion matrix: add batches of predictions and labels, then read the metrics.
 * A negative true label marks an image without this task's label (the loaders' convention)
 * and is left out.
 */
export class ConfusionAccumulator {
  /** Class names, index = label. */
  readonly classes: readonly string[];
  /** (K, K) counts, row-major: counts[true * K + predicted]. */
  readonly #counts: Float64Array;

  /**
   * Starts an empty K×K matrix, K = the number of classes.
   * @param classes class names, index = label
   * @throws {RangeError} when there are no classes
   */
  constructor(classes: readonly string[]) {
    if (classes.length === 0) {
      throw new RangeError("Cannot count a confusion matrix: the class list is empty");
    }
    this.classes = [...classes];
    this.#counts = new Float64Array(classes.length * classes.length);
  }

  /**
   * Adds one batch.
   * @param predicted predicted class per image
   * @param actual true class per image (negative: no label, skipped)
   * @throws {RangeError} when the lengths differ or a class is not an integer in [0, K)
   */
  add(predicted: ArrayLike<number>, actual: ArrayLike<number>): void {
    if (predicted.length !== actual.length) {
      throw new RangeError(
        `Cannot add predictions: ${predicted.length} predictions for ${actual.length} labels`,
      );
    }
    const k = this.classes.length;
    for (let i = 0; i < actual.length; i++) {
      const a = actual[i], p = predicted[i];
      if (a < 0) continue;
      if (!Number.isInteger(a) || a >= k) {
        throw new RangeError(
          `Cannot add label at index ${i}: expected an integer in [0, ${k}), current value is ${a}`,
        );
      }
      if (!Number.isInteger(p) || p < 0 || p >= k) {
        throw new RangeError(
          `Cannot add prediction at index ${i}: expected an integer in [0, ${k}), current value is ${p}`,
        );
      }
      this.#counts[a * k + p]++;
    }
  }

  /**
   * The metrics of everything added so far.
   * @returns accuracy, F1 scores and confusion[true][predicted]
   */
  metrics(): TaskMetrics {
    const k = this.classes.length;
    const confusion = Array.from(
      { length: k },
      (_, t) => Array.from(this.#counts.subarray(t * k, (t + 1) * k)),
    );
    return metricsFromConfusion(confusion, this.classes);
  }
}

/**
 * Metrics from a confusion matrix. Empty input gives 0 everywhere (scikit-learn raises).
 *
 * F1 per class is 2·tp / (2·tp + fp + fn), 0 when that denominator is 0 (`zero_division=0`).
 * Macro-F1 averages over the classes that occur among the true labels or the predictions
 * (scikit-learn's `unique_labels(y_true, y_pred)`): a class never predicted but present
 * counts with F1 0, a predicted class without support counts with F1 0, and a class absent
 * from both is left out. Weighted-F1 weights each class by its support, so classes without
 * support add nothing.
 * @param confusion confusion[true][predicted] counts, K × K
 * @param classes class names, index = label
 * @returns the task's metrics
 * @throws {RangeError} when the matrix is not K × K
 */
export function metricsFromConfusion(
  confusion: readonly (readonly number[])[],
  classes: readonly string[],
): TaskMetrics {
  const k = classes.length;
  if (confusion.length !== k || confusion.some((row) => row.length !== k)) {
    throw new RangeError(
      `Cannot compute metrics: the confusion matrix must be ${k} × ${k} for ${k} classes`,
    );
  }
  let count = 0, correct = 0, macroSum = 0, present = 0, weightedSum = 0;
  for (let c = 0; c < k; c++) {
    let support = 0, predictedAs = 0;
    for (let j = 0; j < k; j++) {
      support += confusion[c][j];
      predictedAs += confusion[j][c];
    }
    const tp = confusion[c][c];
    const denominator = support + predictedAs; // = 2·tp + fp + fn
    const f1 = denominator === 0 ? 0 : (2 * tp) / denominator;
    count += support;
    correct += tp;
    if (support > 0 || predictedAs > 0) {
      macroSum += f1;
      present++;
    }
    weightedSum += support * f1;
  }
  return {
    accuracy: count === 0 ? 0 : correct / count,
    f1_macro: present === 0 ? 0 : macroSum / present,
    f1_weighted: count === 0 ? 0 : weightedSum / count,
    confusion: confusion.map((row) => [...row]),
    classes: [...classes],
    count,
  };
}

/**
 * Metrics of one task from predicted and true classes (see metricsFromConfusion for the
 * exact F1 semantics). Negative true labels are left out.
 * @param predicted predicted class per image
 * @param actual true class per image
 * @param classes class names, index = label
 * @returns accuracy, macro-F1, weighted-F1, confusion[true][predicted], classes and count
 * @throws {RangeError} when the lengths differ or a class is out of range
 * @example Two classes
 * ```ts
 * import assert from "node:assert/strict";
 * import { classificationMetrics } from "./metrics.ts";
 * const m = classificationMetrics([0, 1, 1], [0, 1, 0], ["a", "b"]);
 * assert.equal(m.accuracy, 2 / 3);
 * assert.deepEqual(m.confusion, [[1, 1], [0, 1]]);
 * ```
 */
export function classificationMetrics(
  predicted: ArrayLike<number>,
  actual: ArrayLike<number>,
  classes: string[],
): TaskMetrics {
  const acc = new ConfusionAccumulator(classes);
  acc.add(predicted, actual);
  return acc.metrics();
}

/**
 * Index of the largest value in each row; ties take the lowest index and the first NaN wins
 * (as `numpy.argmax`).
 * @param logits (rows, cols) row-major scores
 * @param rows number of rows
 * @param cols number of columns
 * @returns (rows) the winning column per row
 * @throws {RangeError} when the length is not rows × cols or cols is 0
 */
export function argmaxRows(logits: Float32Array, rows: number, cols: number): Int32Array {
  if (cols < 1 || logits.length !== rows * cols) {
    throw new RangeError(
      `Cannot take row argmax: expected ${rows} × ${cols} values, current length is ${logits.length}`,
    );
  }
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let best = 0, bestValue = logits[base];
    // NaN wins and stops the scan, as in numpy: a NaN logit should not hide behind a number.
    for (let c = 1; c < cols && bestValue === bestValue; c++) {
      const v = logits[base + c];
      if (v > bestValue || v !== v) {
        best = c;
        bestValue = v;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Pearson correlation, mean absolute and root-mean-square error of predicted scores. */
export interface ScoreFigures {
  /** Pearson correlation (0 when predictions or targets are constant, or n < 2). */
  pc: number;
  /** Mean |predicted − actual|. */
  mae: number;
  /** √(mean (predicted − actual)²). */
  rmse: number;
}

/**
 * Regression figures of predicted against actual scores, in float64: Pearson's
 * r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)²·Σ(y−ȳ)²) (scipy.stats.pearsonr; 0 where it is undefined:
 * a constant side or fewer than 2 pairs), MAE and RMSE. Pairs whose actual value is not
 * finite (no target) are left out.
 * @param predicted predicted score per image
 * @param actual true score per image (NaN: unknown)
 * @returns pc, mae, rmse (0, 0, 0 for no pairs)
 * @throws {RangeError} when the lengths differ
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scoreFigures } from "./metrics.ts";
 * const m = scoreFigures([1, 2, 3], [1, 3, 2]);
 * assert.ok(Math.abs(m.pc - 0.5) < 1e-12);
 * assert.ok(Math.abs(m.mae - 2 / 3) < 1e-12);
 * ```
 */
export function scoreFigures(
  predicted: ArrayLike<number>,
  actual: ArrayLike<number>,
): ScoreFigures {
  if (predicted.length !== actual.length) {
    throw new RangeError(
      `Cannot compute score figures: ${predicted.length} predictions for ${actual.length} scores`,
    );
  }
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < actual.length; i++) {
    if (!Number.isFinite(actual[i])) continue;
    xs.push(predicted[i]);
    ys.push(actual[i]);
  }
  const n = xs.length;
  if (n === 0) return { pc: 0, mae: 0, rmse: 0 };
  let mx = 0, my = 0, abs = 0, sq = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i] / n;
    my += ys[i] / n;
    abs += Math.abs(xs[i] - ys[i]);
    sq += (xs[i] - ys[i]) ** 2;
  }
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const pc = sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
  return { pc: Math.max(-1, Math.min(1, pc)), mae: abs / n, rmse: Math.sqrt(sq / n) };
}
