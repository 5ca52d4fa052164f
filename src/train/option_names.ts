/**
 * The names of the task and loss options (`--task … :KIND`, `--balance`, `--score-loss`)
 * and the labels score and dist tasks read, with no imports: the run config and the CLI
 * validate against them without loading the tensor stack that task_kinds.ts and
 * class_balance.ts (which re-export them) need.
 * @module
 */

/** The kinds of task: a class label, the mean score, the raters' rating histogram. */
export const TASK_KINDS = ["class", "score", "dist"] as const;
/** What a task learns (see task_kinds.ts). */
export type TaskKind = typeof TASK_KINDS[number];

/** The label a score task reads: the records' mean score. */
export const SCORE_LABEL = "score";
/** The label a dist task reads: the records' rating histogram. */
export const DIST_LABEL = "ratings";

/** The loss functions of `--score-loss`. */
export const SCORE_LOSSES = ["l1", "mse"] as const;
/** `--score-loss`: L1 (|error|) or MSE (error²) on the normalised score. */
export type ScoreLoss = typeof SCORE_LOSSES[number];

/** The `--balance` options (see class_balance.ts). */
export const BALANCES = ["none", "weights", "sampler", "focal"] as const;
/** A `--balance` option. */
export type Balance = typeof BALANCES[number];
