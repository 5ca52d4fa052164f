/**
 * What a training run produces (written as `metrics.json` in the run folder) and what the
 * reports, sweeps and comparisons read. Accuracies and F1 scores are fractions 0–1.
 * @module
 */
import type { ModelSummary } from "../models/summary.ts";

/** Classification metrics of one task on one split. */
export interface TaskMetrics {
  /** Fraction of correct predictions. */
  accuracy: number;
  /** Unweighted mean of per-class F1. */
  f1_macro: number;
  /** Per-class F1 weighted by class support (the paper's "F1"). */
  f1_weighted: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Class names, index = label. */
  classes: string[];
  /** Number of images evaluated. */
  count: number;
}

/**
 * Metrics of a score or dist task (src/train/task_kinds.ts) on one split: the
 * classification figures of the grade its prediction implies (accuracy, F1 and the
 * confusion over grades 0–4, against the images' own grades), plus the predicted score
 * (dist: the expected rating) against the raters' mean score on the 1–5 scale: Pearson
 * correlation `pc`, mean absolute error `mae`, root-mean-square error `rmse`.
 */
export interface ScoreTaskMetrics extends TaskMetrics {
  /** The task's kind. */
  kind: "score" | "dist";
  /** Pearson correlation of predicted and mean scores (0 when either is constant). */
  pc: number;
  /** Mean absolute error of the predicted score. */
  mae: number;
  /** Root-mean-square error of the predicted score. */
  rmse: number;
}

/** Metrics of any task: a class task's TaskMetrics, or a score / dist task's. */
export type AnyTaskMetrics = TaskMetrics | ScoreTaskMetrics;

/**
 * Whether a task's metrics are a score or dist task's (they carry `pc`, `mae`, `rmse`).
 * @param m metrics from a result
 * @returns true for ScoreTaskMetrics
 */
export function isScoreMetrics(m: AnyTaskMetrics | undefined): m is ScoreTaskMetrics {
  return m !== undefined && typeof (m as Partial<ScoreTaskMetrics>).pc === "number";
}

/** One line of the training history (`log.jsonl` holds the same objects). */
export interface HistoryEntry {
  /** "warmup" | "policy-weights" | "policy-logits" | "retrain" | "baseline" */
  stage: string;
  /** Epoch within the stage, from 1. */
  epoch: number;
  /** Mean training loss of the epoch (task loss, without regularisers). */
  loss: number;
  /** Images the epoch trained on, every database's (absent in older results). */
  images?: number;
  /**
   * Per task: training accuracy over the epoch's batches, validation accuracy, and
   * (optional) the task's mean training loss, which the loss plot draws when present.
   * Score and dist tasks: the accuracies are of the grade their prediction implies, and
   * `valPc` is the validation Pearson correlation.
   */
  tasks: Record<
    string,
    { trainAccuracy?: number; valAccuracy?: number; loss?: number; valPc?: number }
  >;
  /** Seconds since the run started. */
  seconds: number;
  /** Gumbel temperature (policy stages). */
  tau?: number;
  /** Policy stages: p(execute) per task and block at the end of the epoch. */
  policyProbabilities?: Record<string, number[]>;
  /**
   * Adaptive task weights (`--task-weights` other than fixed): the mean over the epoch's
   * steps of the weight each step gave each task (uncertainty: exp(−log σ²)).
   */
  taskWeights?: Record<string, number>;
}

/** Wall time of one stage. */
export interface StageTime {
  /** Stage group: "warmup", "policy", "retrain" or "baseline". */
  stage: string;
  /** Epochs the stage ran (a policy epoch's weight and logit halves count once). */
  epochs: number;
  /** Seconds of training steps (validation not included). */
  seconds: number;
  /** Seconds of the validation after each epoch (absent in runs made before it was kept apart). */
  validationSeconds?: number;
}

/** The result of one run. */
export interface RunResult {
  /** Run name (folder name). */
  name: string;
  /** Run folder. */
  out: string;
  /** "adashare" (the method) or "baseline" (single task, no policy). */
  method: "adashare" | "baseline";
  /** The trunk architecture (absent in results written before `--arch`: "resnet18"). */
  arch?: string;
  /** Names of the gated blocks, the policy's columns (absent: ResNet18's layer1.0 …). */
  gates?: string[];
  /** Parameters and GFLOPs (multiply-adds) per image of the trained network. */
  model?: ModelSummary;
  /**
   * Training throughput: images trained per second of training steps, over the whole
   * run (absent in results written before it was recorded).
   */
  trainImagesPerSecond?: number;
  /** Whether AFF was on. */
  aff: boolean;
  /**
   * The BN copies the run used ("per-database", "per-task" or "shared"; `--bn auto`
   * resolved). Absent in results written before it was recorded.
   */
  bn?: string;
  /**
   * The backend and math the run's last part ran on (`--device`, `--precision`,
   * `--deterministic`). Absent in results written before it was recorded.
   */
  device?: { backend: string; precision: string; deterministic: boolean };
  /** Task weights λ by task name. */
  lambdas: Record<string, number>;
  /**
   * How the task losses were weighted (`--task-weights`) and the weights at the end of the
   * run (fixed: λ). Absent in results written before adaptive task weights.
   */
  taskWeights?: TaskWeightsResult;
  /** Batch size. */
  batch: number;
  /**
   * Per task: test metrics (a score or dist task's are ScoreTaskMetrics, with `pc`, `mae`,
   * `rmse`), training-split accuracy, and the train − test accuracy gap (score and dist
   * tasks: of the implied grade).
   */
  tasks: Record<
    string,
    { test: AnyTaskMetrics; val?: AnyTaskMetrics; train: { accuracy: number }; gap: number }
  >;
  /** Final hard policy: task → 1 (execute) / 0 (skip) per block. */
  policy: Record<string, number[]>;
  /**
   * AdaShare runs: the learnt p(execute) per task and block (softmax of the policy
   * logits) that the final policy was drawn from.
   */
  policyProbabilities?: Record<string, number[]>;
  /** Wall time per stage. */
  stages: StageTime[];
  /** Training wall time in seconds, all stages, without validation. */
  trainSeconds: number;
  /** Wall time of the per-epoch validation, all stages. */
  validationSeconds?: number;
  /** Per-epoch history. */
  history: HistoryEntry[];
}

/** The task-weight scheme of a run and where its weights ended (RunResult.taskWeights). */
export interface TaskWeightsResult {
  /** "fixed", "uncertainty", "gradnorm" or "dwa". */
  scheme: string;
  /** The weights after the last step, by task. */
  final: Record<string, number>;
  /** Adam rate of the learnt schemes' values. */
  lr?: number;
  /** GradNorm's α. */
  alpha?: number;
  /** DWA's temperature. */
  temperature?: number;
}
