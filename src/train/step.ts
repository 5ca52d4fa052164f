/**
 * One training step and one evaluation batch of the multi-task network: each database's
 * batch goes through the path of every task that uses it; the loss is Σ_t λ_t·CE_t
 * (+ optional regularisers); one backward. Missing labels (−1) are masked out of the loss.
 * @module
 */
import { backward } from "../autograd/tape.ts";
import { noGrad } from "../tensor/grad_mode.ts";
import { add, mul } from "../ops/elementwise.ts";
import { crossEntropy, softmax } from "../ops/softmax.ts";
import { scope, type Tensor, tensor } from "../tensor/tensor.ts";
import type { Gate } from "../models/basic_block.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { argmaxRows } from "./metrics.ts";

/** One database's batch with the integer targets of each of its tasks (−1 = unknown). */
export interface StepBatch {
  /** The database the images come from (selects their path through the network). */
  database: string;
  /** (N, 3, S, S) normalised images. */
  images: Float32Array;
  /** Side S. */
  size: number;
  /** Targets per task name. */
  targets: Record<string, Int32Array>;
  /** (N) image files, for messages (optional). */
  paths?: readonly string[];
}

/** Per-task figures of a step. */
export interface TaskStepStats {
  /** Cross-entropy (unweighted by λ). */
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

/** Number of images of a batch, after checking its sizes and values. */
function checkBatch(b: StepBatch): number {
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

function maskedTargets(t: Int32Array, backend: Tensor["backend"]) {
  const targets = new Float32Array(t.length), weights = new Float32Array(t.length);
  let valid = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] >= 0) {
      targets[i] = t[i];
      weights[i] = 1;
      valid++;
    }
  }
  return {
    targets: tensor(targets, [t.length], { backend }),
    weights: valid === t.length ? null : tensor(weights, [t.length], { backend }),
    valid,
  };
}

function countCorrect(pred: Int32Array, t: Int32Array): number {
  let c = 0;
  for (let i = 0; i < t.length; i++) if (t[i] >= 0 && pred[i] === t[i]) c++;
  return c;
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
    const backend = net.conv1.weight.backend;
    let total: Tensor | null = null;
    const tasks: Record<string, TaskStepStats> = {};
    const lossTensors: [string, Tensor][] = [];
    const sizes = batches.map(checkBatch);
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
        const t = b.targets[task];
        const { targets, weights, valid } = maskedTargets(t, backend);
        if (valid === 0) continue;
        // Mean over the labelled images only: the kernel divides by N.
        const ce = mul(crossEntropy(logits, targets, { weights }), n / valid);
        lossTensors.push([task, ce]);
        const term = mul(ce, opts.lambdas[task] ?? 1);
        total = total ? add(total, term) : term;
        const pred = argmaxRows(logits.toArray(), n, logits.shape[1]);
        tasks[task] = { loss: 0, correct: countCorrect(pred, t), count: valid };
      }
    }
    let loss = 0;
    for (const [task, ce] of lossTensors) {
      const v = ce.item();
      if (!(Math.abs(v) < DIVERGED_LOSS)) throw new NonFiniteLossError(task, v);
      tasks[task].loss = v;
      loss += (opts.lambdas[task] ?? 1) * v;
    }
    if (!total) return { loss: 0, tasks };
    const extra = opts.extraLoss?.();
    if (extra) {
      const v = extra.item();
      if (!(Math.abs(v) < DIVERGED_LOSS)) throw new NonFiniteLossError("policy regularisers", v);
      total = add(total, extra);
    }
    backward(total);
    return { loss, tasks };
  });
}

/** Eval-mode predictions of every task of one database's batch. */
export function predictBatch(
  net: MultiTaskNet,
  images: Float32Array,
  size: number,
  database: string,
  opts: { gates: ReadonlyMap<string, readonly Gate[]>; tasks: readonly string[] },
): Map<string, { predictions: Int32Array; probabilities: Float32Array; classes: number }> {
  return noGrad(() =>
    scope(() => {
      const n = images.length / (3 * size * size);
      const x = tensor(images, [n, 3, size, size], { backend: net.conv1.weight.backend });
      const out = new Map<
        string,
        { predictions: Int32Array; probabilities: Float32Array; classes: number }
      >();
      for (
        const [task, logits] of net.forward(x, database, { gates: opts.gates, tasks: opts.tasks })
      ) {
        const k = logits.shape[1];
        const values = logits.toArray();
        const probabilities = softmax(logits).toArray();
        out.set(task, { predictions: argmaxRows(values, n, k), probabilities, classes: k });
      }
      return out;
    })
  );
}
