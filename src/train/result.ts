/**
 * What a training run produces (written as `metrics.json` in the run folder) and what the
 * reports, sweeps and comparisons read. Accuracies and F1 scores are fractions 0–1.
 * @module
 */

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

/** One line of the training history (`log.jsonl` holds the same objects). */
export interface HistoryEntry {
  /** "warmup" | "policy-weights" | "policy-logits" | "retrain" | "baseline" */
  stage: string;
  /** Epoch within the stage, from 1. */
  epoch: number;
  /** Mean training loss of the epoch (task loss, without regularisers). */
  loss: number;
  /**
   * Per task: training accuracy over the epoch's batches, validation accuracy, and
   * (optional) the task's mean training cross-entropy, which the loss plot draws when present.
   */
  tasks: Record<string, { trainAccuracy?: number; valAccuracy?: number; loss?: number }>;
  /** Seconds since the run started. */
  seconds: number;
  /** Gumbel temperature (policy stages). */
  tau?: number;
  /** Policy stages: p(execute) per task and block at the end of the epoch. */
  policyProbabilities?: Record<string, number[]>;
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
  /** Batch size. */
  batch: number;
  /** Per task: test metrics, training-split accuracy, and the train − test accuracy gap. */
  tasks: Record<
    string,
    { test: TaskMetrics; val?: TaskMetrics; train: { accuracy: number }; gap: number }
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
