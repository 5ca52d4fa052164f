/** Metrics against hand-computed values and values printed in scikit-learn's documentation. */
import assert from "node:assert/strict";
import {
  argmaxRows,
  classificationMetrics,
  ConfusionAccumulator,
  metricsFromConfusion,
} from "../../src/train/metrics.ts";

function close(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);
}

const K5 = ["c0", "c1", "c2", "c3", "c4"];

// Hand-computed case covering every sklearn corner:
//   class 0: tp 2, 5 predicted, support 4 → F1 = 2·2/(5+4) = 4/9
//   class 1: tp 2, 4 predicted, support 3 → F1 = 4/7
//   class 2: support 3, never predicted   → F1 0, counts in macro
//   class 3: predicted once, no support   → F1 0, counts in macro, weight 0 in weighted
//   class 4: neither                      → left out of macro (sklearn's unique_labels)
const ACTUAL = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
const PREDICTED = [0, 0, 1, 3, 1, 1, 0, 1, 0, 0];

Deno.test("classificationMetrics() matches hand-computed sklearn semantics", () => {
  const m = classificationMetrics(PREDICTED, ACTUAL, K5);
  assert.deepEqual(m.count, 10);
  close(m.accuracy, 0.4);
  close(m.f1_macro, (4 / 9 + 4 / 7) / 4); // 16/63
  close(m.f1_weighted, (4 * 4 / 9 + 3 * 4 / 7) / 10); // 22/63
  assert.deepEqual(m.confusion, [
    [2, 1, 0, 1, 0],
    [1, 2, 0, 0, 0],
    [2, 1, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  assert.deepEqual(m.classes, K5);
});

Deno.test("classificationMetrics() reproduces the values in sklearn's f1_score documentation", () => {
  // sklearn.metrics.f1_score docstring: y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1]
  // → macro 0.26666…, weighted 0.26666…, per class [0.8, 0, 0]; accuracy 1/3.
  const m = classificationMetrics([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2], ["a", "b", "c"]);
  close(m.f1_macro, 0.26666666666666666);
  close(m.f1_weighted, 0.26666666666666666);
  close(m.accuracy, 1 / 3);
});

Deno.test("classificationMetrics() scores perfect and empty input", () => {
  const perfect = classificationMetrics([1, 0, 1], [1, 0, 1], ["x", "y", "z"]);
  assert.deepEqual([perfect.accuracy, perfect.f1_macro, perfect.f1_weighted], [1, 1, 1]);
  const empty = classificationMetrics([], [], ["x", "y"]);
  assert.deepEqual([empty.accuracy, empty.f1_macro, empty.f1_weighted, empty.count], [0, 0, 0, 0]);
  assert.deepEqual(empty.confusion, [[0, 0], [0, 0]]);
});

Deno.test("classificationMetrics() rejects mismatched lengths and out-of-range classes", () => {
  assert.throws(() => classificationMetrics([0], [0, 1], ["a", "b"]), {
    name: "RangeError",
    message: /1 predictions for 2 labels/,
  });
  assert.throws(() => classificationMetrics([0, 2], [0, 1], ["a", "b"]), {
    name: "RangeError",
    message: /prediction at index 1/,
  });
  assert.throws(() => classificationMetrics([0, 1], [0, 1.5], ["a", "b"]), {
    name: "RangeError",
    message: /current value is 1\.5/,
  });
  assert.throws(() => classificationMetrics([], [], []), {
    name: "RangeError",
    message: /class list is empty/,
  });
});

Deno.test("ConfusionAccumulator streams batches and skips unlabelled images", () => {
  const acc = new ConfusionAccumulator(K5);
  acc.add(PREDICTED.slice(0, 4), ACTUAL.slice(0, 4));
  acc.add(new Int32Array([4, ...PREDICTED.slice(4)]), new Int32Array([-1, ...ACTUAL.slice(4)]));
  assert.deepEqual(acc.metrics(), classificationMetrics(PREDICTED, ACTUAL, K5));
});

Deno.test("metricsFromConfusion() rejects a matrix of the wrong size", () => {
  assert.throws(() => metricsFromConfusion([[1, 0]], ["a", "b"]), {
    name: "RangeError",
    message: /must be 2 × 2/,
  });
});

Deno.test("argmaxRows() takes the first maximum per row, NaN first as numpy", () => {
  const logits = new Float32Array([1, 3, 3, -1, -2, -5, NaN, 0, 9, 2, NaN, 7]);
  assert.deepEqual(Array.from(argmaxRows(logits, 4, 3)), [1, 0, 0, 1]);
  assert.throws(() => argmaxRows(logits, 5, 3), {
    name: "RangeError",
    message: /expected 5 × 3 values/,
  });
});
