/**
 * Softmax over the last dimension, and softmax cross-entropy with optional per-sample
 * weights (one fused kernel pair: stable for confident logits).
 * @module
 */
import { empty, formatShape, type Tensor } from "../tensor/tensor.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";

/**
 * Softmax of `x` along its last dimension (any rank ≥ 1).
 * @throws {RangeError} on a scalar input
 */
export function softmax(x: Tensor): Tensor {
  const op = "softmax";
  const be = sameBackend(op, x);
  if (x.rank < 1) throw new RangeError("Cannot run softmax: input must have rank ≥ 1");
  const cols = x.shape[x.rank - 1], rows = x.size / cols;
  const out = empty(x.shape, { backend: be });
  be.softmaxForward({ out: out.storage, inp: x.storage, rows, cols });
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.softmaxBackward({ dinp: dx.storage, dout: g.storage, out: out.storage, rows, cols });
    return [dx];
  });
}

/** Options of crossEntropy. */
export interface CrossEntropyOptions {
  /** Per-sample weights (N); the loss is (1/N)·Σ wᵢ·CEᵢ. */
  weights?: Tensor | null;
}

/**
 * Mean softmax cross-entropy of `logits` (N, K) against class indices `targets` (N, held
 * as floats). Returns shape [1].
 * @throws {RangeError} on wrong shapes, or (from the kernel) a target outside 0..K−1
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const op = "crossEntropy";
  const weights = opts.weights ?? null;
  const be = sameBackend(op, logits, targets, ...(weights ? [weights] : []));
  checkRank(op, "logits", logits, 2);
  const [N, K] = logits.shape;
  checkShape(op, "targets", targets, [N]);
  if (weights) checkShape(op, "weights", weights, [N]);
  if (N === 0) {
    throw new RangeError(
      `Cannot run crossEntropy: the batch is empty (logits ${formatShape(logits.shape)})`,
    );
  }
  const loss = empty([1], { backend: be });
  const probs = empty([N, K], { backend: be });
  be.crossEntropyForward({
    loss: loss.storage,
    probs: probs.storage,
    logits: logits.storage,
    targets: targets.storage,
    weights: weights?.storage ?? null,
    N,
    K,
  });
  return record(loss, op, [logits], (g) => {
    const dx = empty([N, K], { backend: be });
    be.crossEntropyBackward({
      dlogits: dx.storage,
      dloss: g.storage,
      probs: probs.storage,
      targets: targets.storage,
      weights: weights?.storage ?? null,
      N,
      K,
    });
    return [dx];
  });
}
