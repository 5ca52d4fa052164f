import assert from "node:assert/strict";
import { beautyGrade } from "../../src/data/grade.ts";
import { throwsWith } from "./helpers.ts";

Deno.test("beautyGrade() is the most-given rating minus 1", () => {
  assert.deepEqual(beautyGrade([4, 4, 3, 5]), { grade: 3, rule: "mode" });
  assert.deepEqual(beautyGrade([1, 1, 1, 5, 5]), { grade: 0, rule: "mode" });
  assert.deepEqual(beautyGrade([5]), { grade: 4, rule: "mode" });
});

Deno.test("beautyGrade() breaks a tie toward the mean score", () => {
  // Tie between 3 and 4: the mean decides, whichever side it is on.
  assert.deepEqual(beautyGrade([3, 3, 4, 4, 5], 3.8), { grade: 3, rule: "tie" });
  assert.deepEqual(beautyGrade([3, 3, 4, 4, 1], 3.0), { grade: 2, rule: "tie" });
  // The given mean (the labels file's) wins over the ratings' own mean (2.5 here).
  assert.deepEqual(beautyGrade([2, 2, 3, 3], 2.6), { grade: 2, rule: "tie" });
  assert.deepEqual(beautyGrade([2, 2, 3, 3], 2.4), { grade: 1, rule: "tie" });
  // Without a mean the ratings' mean is used: (1+3+5)/3 = 3 → rating 3.
  assert.deepEqual(beautyGrade([1, 3, 5]), { grade: 2, rule: "tie" });
  // Equidistant tie (mean 3 between 2 and 4) goes to the lower rating.
  assert.deepEqual(beautyGrade([2, 2, 4, 4], 3), { grade: 1, rule: "tie" });
});

Deno.test("beautyGrade() without ratings is round(mean) − 1", () => {
  assert.deepEqual(beautyGrade([], 2.5), { grade: 2, rule: "mean" });
  assert.deepEqual(beautyGrade([], 2.49), { grade: 1, rule: "mean" });
  assert.deepEqual(beautyGrade([], 1.0), { grade: 0, rule: "mean" });
  assert.deepEqual(beautyGrade([], 5.0), { grade: 4, rule: "mean" });
});

Deno.test("beautyGrade() throws for bad ratings or no data", () => {
  throwsWith(() => beautyGrade([]), "Cannot compute beauty grade: no ratings and no mean score");
  throwsWith(() => beautyGrade([3, 6]), "Cannot compute beauty grade: rating 6 is outside 1–5");
  throwsWith(() => beautyGrade([2.5]), "rating 2.5 is outside 1–5");
});
