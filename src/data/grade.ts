/**
 * The beauty grade of SCUT-FBP5500 as the paper defines it: the rating (1–5) that most
 * raters gave, minus 1, so grades are 0–4.
 * @module
 */

/** How a grade was decided: a clear majority, a tie, or the mean score alone. */
export type GradeRule = "mode" | "tie" | "mean";

/** A beauty grade and the rule that decided it. */
export interface Grade {
  /** 0–4. */
  grade: number;
  /** How it was decided. */
  rule: GradeRule;
}

/**
 * Returns the grade for one image from its integer ratings (1–5).
 *
 * A tie between ratings goes to the tied rating nearest `mean` (the image's mean score;
 * the ratings' own mean when omitted); a tie that is still exact (mean 3 between 2 and 4)
 * goes to the lower rating, so the rule is deterministic. With no ratings the grade is
 * `round(mean) − 1` (rule "mean"), which callers must report.
 * @throws {RangeError} When there are neither ratings nor a finite mean, or a rating is outside 1–5.
 * @example Most raters gave 4
 * ```ts
 * import assert from "node:assert/strict";
 * import { beautyGrade } from "./grade.ts";
 * assert.equal(beautyGrade([4, 4, 3, 5]).grade, 3);
 * ```
 */
export function beautyGrade(ratings: readonly number[], mean?: number): Grade {
  if (ratings.length === 0) {
    if (mean === undefined || !Number.isFinite(mean)) {
      throw new RangeError("Cannot compute beauty grade: no ratings and no mean score");
    }
    return { grade: Math.min(4, Math.max(0, Math.round(mean) - 1)), rule: "mean" };
  }
  const counts = [0, 0, 0, 0, 0];
  let sum = 0;
  for (const r of ratings) {
    if (!Number.isInteger(r) || r < 1 || r > 5) {
      throw new RangeError(`Cannot compute beauty grade: rating ${r} is outside 1–5`);
    }
    counts[r - 1]++;
    sum += r;
  }
  const m = mean ?? sum / ratings.length;
  const top = Math.max(...counts);
  const tied = [1, 2, 3, 4, 5].filter((r) => counts[r - 1] === top);
  let best = tied[0];
  for (const r of tied) if (Math.abs(r - m) < Math.abs(best - m)) best = r;
  return { grade: best - 1, rule: tied.length > 1 ? "tie" : "mode" };
}

/** Rating bins of SCUT-FBP5500: ratings 1–5, bin r − 1. */
export const RATING_BINS = 5;

/**
 * The raters' histogram of one image: the fraction of its ratings that gave 1, 2, … 5.
 * @param ratings integer ratings 1–5 (at least one)
 * @returns 5 fractions summing to 1, index = rating − 1
 * @throws {RangeError} When there are no ratings or a rating is outside 1–5.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ratingHistogram } from "./grade.ts";
 * assert.deepEqual(ratingHistogram([4, 4, 3, 5]), [0, 0, 0.25, 0.5, 0.25]);
 * ```
 */
export function ratingHistogram(ratings: readonly number[]): number[] {
  if (ratings.length === 0) {
    throw new RangeError("Cannot compute a rating histogram: no ratings");
  }
  const counts = new Array<number>(RATING_BINS).fill(0);
  for (const r of ratings) {
    if (!Number.isInteger(r) || r < 1 || r > RATING_BINS) {
      throw new RangeError(`Cannot compute a rating histogram: rating ${r} is outside 1–5`);
    }
    counts[r - 1]++;
  }
  return counts.map((c) => c / ratings.length);
}

/**
 * The grade {@link beautyGrade} gives, from a histogram of the ratings (fractions or counts
 * per rating 1–5) instead of the ratings: the most frequent rating − 1, a tie going to the
 * tied rating nearest `mean` (the histogram's own mean when omitted), then to the lower.
 * Applied to a predicted distribution it is the grade the dataset's rule gives that
 * distribution.
 * @param histogram 5 values ≥ 0, index = rating − 1
 * @param mean the image's mean score (for ties)
 * @returns the grade 0–4
 * @throws {RangeError} When the histogram does not have 5 values.
 * @example A tie between 3 and 4 goes to the one nearer the mean
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradeFromHistogram } from "./grade.ts";
 * assert.equal(gradeFromHistogram([0, 0, 0.4, 0.4, 0.2]), 3); // mean 3.8: rating 4
 * ```
 */
export function gradeFromHistogram(histogram: ArrayLike<number>, mean?: number): number {
  if (histogram.length !== RATING_BINS) {
    throw new RangeError(
      `Cannot compute a grade from a histogram: expected ${RATING_BINS} bins, current length is ${histogram.length}`,
    );
  }
  let top = -Infinity, total = 0, weighted = 0;
  for (let b = 0; b < RATING_BINS; b++) {
    top = Math.max(top, histogram[b]);
    total += histogram[b];
    weighted += (b + 1) * histogram[b];
  }
  const m = mean ?? (total > 0 ? weighted / total : 3);
  let best = -1;
  for (let b = 0; b < RATING_BINS; b++) {
    if (histogram[b] !== top) continue;
    if (best < 0 || Math.abs(b + 1 - m) < Math.abs(best + 1 - m)) best = b;
  }
  return Math.max(0, best);
}
