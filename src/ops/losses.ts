/**
 * Composite losses written from other ops (no new kernels), each the mean over the N rows
 * of a per-row loss times a per-row weight, `(1/N)·Σᵢ wᵢ·ℓᵢ`, shape [1] — the convention
 * of crossEntropy, so a caller that masks rows (weight 0) rescales by N / (rows kept):
 * - focalLoss: ℓᵢ = (1 − p_t)^γ · (−log p_t), Lin et al. 2017 (arXiv:1708.02002), eq. (4)
 *   without α (class weights are the caller's `weights`);
 * - softTargetKl: ℓᵢ = KL(tᵢ ‖ softmax(xᵢ)) = Σ_c t_c·(log t_c − log p_c);
 * - regressionLoss: ℓᵢ = |xᵢ − yᵢ| (L1) or (xᵢ − yᵢ)² (MSE).
 * Gradients come from the ops they are built of (tests/train/task_kinds_test.ts checks them
 * against finite differences).
 * @module
 */
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { abs, add, affine, exp, log, mul, relu, sub, sum, sumTo } from "./elementwise.ts";
import { checkRank, checkShape, sameBackend } from "./op.ts";
import { crossEntropy } from "./softmax.ts";

/** Per-row weights (N) as a host array: all 1 when absent. */
function rowWeights(op: string, weights: Tensor | null | undefined, n: number): Float32Array {
  if (!weights) return new Float32Array(n).fill(1);
  checkShape(op, "weights", weights, [n]);
  return weights.toArray();
}

/** Smallest 1 − p_t the focal factor takes: log(1 − p_t) stays finite when p_t rounds to 1. */
const FOCAL_EPS = 1e-12;

/** Options of {@link focalLoss}. */
export interface FocalLossOptions {
  /** Focusing parameter γ ≥ 0 (0: plain cross-entropy). */
  gamma: number;
  /** Per-row weights (N); absent: 1. */
  weights?: Tensor | null;
}

/**
 * Mean focal loss of `logits` (N, K) against class indices `targets` (N, held as floats):
 * (1/N)·Σᵢ wᵢ·(1 − p_t)^γ·(−log p_t), p = softmax(logits), t = the row's target. The
 * factor is differentiated too, as in the paper. log p is computed as x − max − log Σ e^(x −
 * max) (the row max a constant: log-softmax does not depend on it), so it is stable for
 * confident logits.
 * @returns shape [1]
 * @throws {RangeError} on wrong shapes, a negative γ or a target outside 0..K−1
 * @example γ = 2, two classes, p_t = 3/4: (1/4)²·ln(4/3)
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadBackend, setDefaultBackend, tensor } from "../../mod.ts";
 * import { focalLoss } from "./losses.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const loss = focalLoss(tensor([0, Math.log(3)], [1, 2]), tensor([1], [1]), { gamma: 2 });
 * assert.ok(Math.abs(loss.item() - Math.log(4 / 3) / 16) < 1e-6);
 * ```
 */
export function focalLoss(logits: Tensor, targets: Tensor, opts: FocalLossOptions): Tensor {
  const op = "focalLoss";
  const be = sameBackend(op, logits, targets);
  checkRank(op, "logits", logits, 2);
  const [n, k] = logits.shape;
  checkShape(op, "targets", targets, [n]);
  if (!(opts.gamma >= 0 && Number.isFinite(opts.gamma))) {
    throw new RangeError(
      `Cannot run focalLoss: gamma must be a number ≥ 0: current value is ${opts.gamma}`,
    );
  }
  const w = rowWeights(op, opts.weights, n);
  const t = targets.toArray(), x = logits.toArray();
  const oneHot = new Float32Array(n * k), rowMax = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = t[i];
    if (!(Number.isInteger(c) && c >= 0 && c < k)) {
      throw new RangeError(
        `Cannot run focalLoss: target ${i} must be a class in 0..${k - 1}: current value is ${c}`,
      );
    }
    oneHot[i * k + c] = 1;
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, x[i * k + j]);
    rowMax[i] = m;
  }
  const z = sub(logits, tensor(rowMax, [n, 1], { backend: be })); // (N, K)
  const logp = sub(z, log(sumTo(exp(z), [n, 1]))); // (N, K) log-softmax
  const logPt = sumTo(mul(logp, tensor(oneHot, [n, k], { backend: be })), [n, 1]); // (N, 1)
  // (1 − p_t)^γ = exp(γ·log(max(1 − p_t, ε))); max(a, ε) = relu(a − ε) + ε.
  const oneMinus = add(relu(affine(exp(logPt), -1, 1 - FOCAL_EPS)), FOCAL_EPS);
  const factor = exp(mul(log(oneMinus), opts.gamma));
  const perRow = mul(mul(factor, logPt), tensor(w, [n, 1], { backend: be })); // −ℓᵢ·wᵢ
  return mul(sum(perRow), -1 / n);
}

/**
 * Mean KL divergence KL(t ‖ softmax(logits)) of `logits` (N, K) from target distributions
 * `probs` (N, K, rows summing to 1): (1/N)·Σᵢ wᵢ·Σ_c t_ic·(log t_ic − log p_ic) (0·log 0 =
 * 0). Built as Σ_c crossEntropy(logits, c, weights wᵢ·t_ic) plus the targets' constant
 * entropy term, so log p comes from the fused, stable cross-entropy kernel.
 * @returns shape [1]
 * @throws {RangeError} on wrong shapes or a negative target
 */
export function softTargetKl(
  logits: Tensor,
  probs: Tensor,
  opts: { weights?: Tensor | null } = {},
): Tensor {
  const op = "softTargetKl";
  const be = sameBackend(op, logits, probs);
  checkRank(op, "logits", logits, 2);
  const [n, k] = logits.shape;
  checkShape(op, "probs", probs, [n, k]);
  const w = rowWeights(op, opts.weights, n);
  const p = probs.toArray();
  let entropyTerm = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      const v = p[i * k + c];
      if (!(v >= 0)) {
        throw new RangeError(
          `Cannot run softTargetKl: target (${i}, ${c}) must be a probability ≥ 0: current value is ${v}`,
        );
      }
      if (v > 0) entropyTerm += w[i] * v * Math.log(v);
    }
  }
  let total: Tensor | null = null;
  for (let c = 0; c < k; c++) {
    const wc = new Float32Array(n);
    for (let i = 0; i < n; i++) wc[i] = w[i] * p[i * k + c];
    const ce = crossEntropy(logits, tensor(new Float32Array(n).fill(c), [n], { backend: be }), {
      weights: tensor(wc, [n], { backend: be }),
    });
    total = total ? add(total, ce) : ce;
  }
  return add(total!, entropyTerm / n);
}

/** Options of {@link regressionLoss}. */
export interface RegressionLossOptions {
  /** "l1": |x − y|; "mse": (x − y)². */
  kind: "l1" | "mse";
  /** Per-row weights (N); absent: 1. */
  weights?: Tensor | null;
}

/**
 * Mean L1 or squared error of predictions `pred` (N, 1) against `target` (N, 1):
 * (1/N)·Σᵢ wᵢ·ℓ(predᵢ − targetᵢ).
 * @returns shape [1]
 * @throws {RangeError} on wrong shapes
 */
export function regressionLoss(pred: Tensor, target: Tensor, opts: RegressionLossOptions): Tensor {
  const op = "regressionLoss";
  const be = sameBackend(op, pred, target);
  checkRank(op, "pred", pred, 2);
  const n = pred.shape[0];
  checkShape(op, "pred", pred, [n, 1]);
  checkShape(op, "target", target, [n, 1]);
  const w = rowWeights(op, opts.weights, n);
  const d = sub(pred, target);
  const per = opts.kind === "l1" ? abs(d) : mul(d, d);
  return mul(sum(mul(per, tensor(w, [n, 1], { backend: be }))), 1 / n);
}
