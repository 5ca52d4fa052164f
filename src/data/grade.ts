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
