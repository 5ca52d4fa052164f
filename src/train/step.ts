/**
 * One training step and one evaluation batch of the multi-task network: each database's
 * batch goes through the path of every task that uses it; the loss is Σ_t λ_t·L_t, L_t the
 * task's own loss by its kind (task_kinds.ts: cross-entropy, class-weighted or focal for
 * class tasks, L1/MSE for score, KL for dist) (+ optional regularisers); one backward.
 * Missing labels (−1, NaN) are masked out of the loss.
 * @module
 */
import { backward } from "../autograd/tape.ts";
import { noGrad } from "../tensor/grad_mode.ts";
import { add, mul } from "../ops/elementwise.ts";
import { softmax } from "../ops/softmax.ts";
import { scope, type Tensor, tensor } from "../tensor/tensor.ts";
import type { Gate } from "../models/basic_block.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { RATING_BINS } from "../data/grade.ts";
import { argmaxRows } from "./metrics.ts";
import {
  decodeScoreOutput,
  PLAIN_CLASS_LOSS,
  type TaskKind,
  type TaskLoss,
  taskStep,
} from "./task_kinds.ts";

/** One database's batch with the integer targets of each of its tasks (−1 = unknown). */
export interface StepBatch {
  /** The database the images come from (selects their path through the network). */
  database: string;
  /** (N, 3, S, S) normalised images. */
  images: Float32Array;
  /** Side S. */
  size: number;
  /**
   * Targets per task name: the class (class tasks) or, for score and dist tasks, the
   * image's grade, which only the implied-grade accuracy reads (−1 = unknown).
   */
  targets: Record<string, Int32Array>;
  /**
   * Values learnt by score and dist tasks (task_kinds.ts), per task name: (N) mean scores
   * or (N·5) rating histograms; NaN where unknown.
   */
  values?: Record<string, Float32Array>;
  /** (N) image files, for messages (optional). */
  paths?: readonly string[];
}

/** Per-task figures of a step. */
export interface TaskStepStats {
  /** The task's loss (unweighted by λ): cross-entropy, focal, L1/MSE or KL by its kind. */
  loss: number;
  correct: number;
  count: number;
}

/** What a step returns. */
export interface StepStats {
  /** Σ λ_t·CE_t (without regularisers). */
  loss: number;
  tasks: Record<string, TaskStepStats>;
}

/**
 * Losses at or above this are divergence, not learning: cross-entropy starts near ln K
 * (1.6 for 5 classes), and 10^6 nats needs logit margins of 10^6, which only a blown-up
 * network gives. Stopping there names the cause (the learning rate) a step or two before
 * the loss overflows to Infinity or NaN.
 */
export const DIVERGED_LOSS = 1e6;

/**
 * A loss that is NaN, infinite or at least {@link DIVERGED_LOSS}, with finite inputs: the
 * run stops with the step and the task named.
 */
export class NonFiniteLossError extends Error {
  constructor(readonly task: string, readonly value: number) {
    super(
      Number.isFinite(value)
        ? `Loss of task "${task}" is ${value.toPrecision(3)}, at least ${DIVERGED_LOSS}`
        : `Loss of task "${task}" is ${value}`,
    );
    this.name = "NonFiniteLossError";
  }
}

/** An input image holds NaN or ±Infinity (checked before the forward pass). */
export class NonFiniteInputError extends Error {
  constructor(
    readonly database: string,
    readonly image: number,
    readonly value: number,
    readonly path?: string,
  ) {
    super(
      `Image ${image}${path ? ` ("${path}")` : ""} of the batch of database "${database}" ` +
        `holds ${value}`,
    );
    this.name = "NonFiniteInputError";
  }
}

/** A batch with no images, or a size that is not whole images / does not match its targets. */
export class BadBatchError extends Error {
  constructor(readonly database: string, detail: string) {
    super(`The batch of database "${database}" ${detail}`);
    this.name = "BadBatchError";
  }
}

/**
 * Number of images of a batch, after checking its sizes and values: a dist task's target
 * values are n·5 (a rating histogram an image), every other task's n.
 */
function checkBatch(b: StepBatch, losses?: Readonly<Record<string, TaskLoss>>): number {
  const per = 3 * b.size * b.size;
  if (b.images.length === 0) throw new BadBatchError(b.database, "is empty (0 images)");
  const n = b.images.length / per;
  if (!Number.isInteger(n)) {
    throw new BadBatchError(
      b.database,
      `holds ${b.images.length} values, not a whole number of 3×${b.size}×${b.size} images`,
    );
  }
  for (const [task, t] of Object.entries(b.targets)) {
    if (t.length !== n) {
      throw new BadBatchError(b.database, `has ${n} images but ${t.length} targets of "${task}"`);
    }
  }
  for (const [task, v] of Object.entries(b.values ?? {})) {
    const kind = losses?.[task]?.kind ?? "class";
    const want = kind === "dist" ? n * RATING_BINS : n;
    if (v.length !== want) {
      throw new BadBatchError(
        b.database,
        `has ${n} images but ${v.length} target values of ${kind} task "${task}": expected ${want}${
          kind === "dist" ? ` (${RATING_BINS} rating bins an image)` : " (one an image)"
        }`,
      );
    }
  }
  for (let i = 0; i < b.images.length; i++) {
    const v = b.images[i];
    // v - v is NaN exactly for NaN and ±Infinity: one comparison per value on the fast path.
    if (v - v !== 0) {
      const image = Math.floor(i / per);
      throw new NonFiniteInputError(b.database, image, v, b.paths?.[image]);
    }
  }
  return n;
}

/**
 * A step's per-task losses (unweighted, one scalar tensor each, in the order the step
 * computed them) made into what is differentiated: the hook runs backward itself, so a
 * scheme may run one pass per task (GradNorm). Called inside the step's scope, after every
 * loss was checked to be finite.
 */
export interface LossWeighting {
  /**
   * Runs backward from the weighted losses plus `extra` (the regularisers, or null).
   * @param losses task name and loss tensor of each task the step trained
   */
  backward(losses: readonly (readonly [string, Tensor])[], extra: Tensor | null): void;
}

/**
 * Σ_t w_t·L_t (+ extra), summed in the order of `losses` (a task without a weight: 1): the
 * fixed-λ step's loss, built exactly as it always was (the same ops in the same order).
 * @param losses task name and loss tensor of each task
 * @param weights w_t per task name
 * @param extra a term added last (the regularisers), or null
 */
export function weightedLoss(
  losses: readonly (readonly [string, Tensor])[],
  weights: Readonly<Record<string, number>>,
  extra: Tensor | null = null,
): Tensor {
  let total: Tensor | null = null;
  for (const [task, l] of losses) {
    const term = mul(l, weights[task] ?? 1);
    total = total ? add(total, term) : term;
  }
  if (!total) throw new RangeError("Cannot weight the task losses: no task loss given");
  return extra ? add(total, extra) : total;
}

/** Options of trainStep. */
export interface TrainStepOptions {
  /** λ per task. */
  lambdas: Readonly<Record<string, number>>;
  /** Gates per task, built inside the step's scope (soft gates are tensors). */
  gates: () => ReadonlyMap<string, readonly Gate[]>;
  /** Seed of the dropout masks of this step. */
  dropoutSeed: number;
  /** Extra loss terms (policy regularisers), built inside the step's scope. */
  extraLoss?: () => Tensor | null;
  /**
   * How the per-task losses make the loss that is differentiated (task_weights.ts:
   * uncertainty, GradNorm, DWA); absent: Σ_t λ_t·L_t (+ extraLoss), one backward. The
   * step's reported `loss` is Σ_t λ_t·L_t with `lambdas` either way.
   */
  weighting?: LossWeighting;
  /**
   * How each task's loss is computed (task_kinds.ts: its kind, class balancing, the score
   * loss); a task without an entry is a class task with plain cross-entropy.
   */
  losses?: Readonly<Record<string, TaskLoss>>;
}

/**
 * Forward, loss and backward of one step (gradients land in the parameters' `.grad`;
 * the caller steps the optimiser).
 * @throws {BadBatchError} for an empty batch or one whose sizes disagree (before forward)
 * @throws {NonFiniteInputError} when an input holds NaN or ±Infinity (before forward)
 * @throws {NonFiniteLossError} when a task's loss is NaN, infinite or at least
 *   {@link DIVERGED_LOSS} (before backward)
 */
export function trainStep(
  net: MultiTaskNet,
  batches: readonly StepBatch[],
  opts: TrainStepOptions,
): StepStats {
  return scope(() => {
    const backend = net.backend;
    const tasks: Record<string, TaskStepStats> = {};
    const lossTensors: [string, Tensor][] = [];
    const sizes = batches.map((b) => checkBatch(b, opts.losses));
    const gates = opts.gates();
    for (const [k, b] of batches.entries()) {
      const n = sizes[k];
      const x = tensor(b.images, [n, 3, b.size, b.size], { backend });
      const outs = net.forward(x, b.database, {
        training: true,
        gates,
        dropoutSeed: opts.dropoutSeed,
        tasks: Object.keys(b.targets),
      });
      for (const [task, logits] of outs) {
        // The task's own loss by its kind (mean over the images that have its target).
        const part = taskStep(
          logits,
          { classes: b.targets[task], values: b.values?.[task] },
          opts.losses?.[task] ?? PLAIN_CLASS_LOSS,
        );
        if (!part) continue;
        const ce = part.loss;
        lossTensors.push([task, ce]);
        tasks[task] = { loss: 0, correct: part.correct, count: part.count };
      }
    }
    let loss = 0;
    for (const [task, ce] of lossTensors) {
      const v = ce.item();
      if (!(Math.abs(v) < DIVERGED_LOSS)) throw new NonFiniteLossError(task, v);
      tasks[task].loss = v;
      loss += (opts.lambdas[task] ?? 1) * v;
    }
    if (lossTensors.length === 0) return { loss: 0, tasks };
    const extra = opts.extraLoss?.() ?? null;
    if (extra) {
      const v = extra.item();
      if (!(Math.abs(v) < DIVERGED_LOSS)) throw new NonFiniteLossError("policy regularisers", v);
    }
    if (opts.weighting) opts.weighting.backward(lossTensors, extra);
    else backward(weightedLoss(lossTensors, opts.lambdas, extra));
    return { loss, tasks };
  });
}

/** One task's eval-mode predictions for a batch (see {@link predictBatch}). */
export interface BatchPrediction {
  /** The task's kind (task_kinds.ts). */
  kind: TaskKind;
  /** (N) the class (argmax), or for score and dist tasks the grade their prediction implies. */
  predictions: Int32Array;
  /**
   * (N, classes) softmax of the head's outputs: class probabilities, or a dist task's
   * predicted rating histogram (ratings 1–5); a score task's single output gives 1.
   */
  probabilities: Float32Array;
  /** Outputs of the head per image (classes; 1 for score, 5 for dist). */
  classes: number;
  /** Score and dist tasks: (N) the predicted mean score 1–5 (dist: the expected rating). */
  scores?: Float32Array;
}

/** Eval-mode predictions of every task of one database's batch. */
export function predictBatch(
  net: MultiTaskNet,
  images: Float32Array,
  size: number,
  database: string,
  opts: { gates: ReadonlyMap<string, readonly Gate[]>; tasks: readonly string[] },
): Map<string, BatchPrediction> {
  return noGrad(() =>
    scope(() => {
      const n = images.length / (3 * size * size);
      const x = tensor(images, [n, 3, size, size], { backend: net.backend });
      const out = new Map<string, BatchPrediction>();
      for (
        const [task, logits] of net.forward(x, database, { gates: opts.gates, tasks: opts.tasks })
      ) {
        const k = logits.shape[1];
        const values = logits.toArray();
        const probabilities = softmax(logits).toArray();
        const kind = net.task(task).kind ?? "class";
        if (kind === "class") {
          out.set(task, { kind, predictions: argmaxRows(values, n, k), probabilities, classes: k });
          continue;
        }
        const predictions = new Int32Array(n), scores = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const d = decodeScoreOutput(kind, values, i);
          predictions[i] = d.grade;
          scores[i] = d.score;
        }
        out.set(task, { kind, predictions, probabilities, classes: k, scores });
      }
      return out;
    })
  );
}
