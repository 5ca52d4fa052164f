/**
 * An image's mean score (1–5) for score and dist tasks, in one place for the loader that
 * feeds training, the evaluation and the data checks: its `score`, else the expected
 * rating of its rating histogram.
 * @module
 */
import { RATING_BINS } from "./grade.ts";
import type { ImageRecord } from "./records.ts";

/**
 * The expected rating Σ r·p_r of a histogram over ratings 1–5.
 * @param histogram counts (or probabilities) of ratings 1–5
 * @returns the expected rating; NaN for an empty histogram
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedRating } from "./mean_score.ts";
 * assert.equal(expectedRating([0, 0, 1, 1, 0]), 3.5);
 * ```
 */
export function expectedRating(histogram: ArrayLike<number>): number {
  let s = 0, total = 0;
  for (let b = 0; b < RATING_BINS; b++) {
    s += (b + 1) * histogram[b];
    total += histogram[b];
  }
  return total > 0 ? s / total : NaN;
}

/**
 * A record's mean score for score and dist tasks: its score, else its histogram's mean.
 * @param r the record
 * @returns the mean score; undefined when the record has neither
 */
export function recordScore(r: ImageRecord): number | undefined {
  return r.score ?? (r.ratingHistogram ? expectedRating(r.ratingHistogram) : undefined);
}
