/**
 * One training step and one evaluation batch of the multi-task network: each database's
 * batch goes through the path of every task that uses it; the loss is Σ_t λ_t·CE_t
 * (+ optional regularisers); one backward. Missing labels (−1) are masked out of the loss.
 * @module
 */
import { backward } from "../autograd/tape.ts";
import { noGrad } from "../autograd/grad_mode.ts";
import { add, mul } from "../ops/elementwise.ts";
import { crossEntropy, softmax } from "../ops/softmax.ts";
import { scope, type Tensor, tensor } from "../tensor/tensor.ts";
import type { Gate } from "../models/basic_block.ts";
import type { MultiTaskNet } from "../models/network.ts";

/** One database's batch with the integer targets of each of its tasks (−1 = unknown). */
export interface StepBatch {
  database: string;
  /** (N, 3, S, S) normalised images. */
  images: Float32Array;
  /** Side S. */
  size: number;
  /** Targets per task name. */
  targets: Record<string, Int32Array>;
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

/** A loss that is NaN or infinite: the run stops with the step and the task named. */
export class NonFiniteLossError extends Error {
  constructor(readonly task: string, readonly value: number) {
    super(`Loss of task "${task}" is ${value}`);
    this.name = "NonFiniteLossError";
  }
}

/** Index of the largest value per row of (rows, cols) logits. */
export function argmaxRows(logits: Float32Array, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[r * cols + c] > logits[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
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
 * @throws {NonFiniteLossError} when a task's loss is NaN or infinite (before backward)
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
    const gates = opts.gates();
    for (const b of batches) {
      const n = b.images.length / (3 * b.size * b.size);
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
      if (!Number.isFinite(v)) throw new NonFiniteLossError(task, v);
      tasks[task].loss = v;
      loss += (opts.lambdas[task] ?? 1) * v;
    }
    if (!total) return { loss: 0, tasks };
    const extra = opts.extraLoss?.();
    if (extra) {
      const v = extra.item();
      if (!Number.isFinite(v)) throw new NonFiniteLossError("policy regularisers", v);
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
