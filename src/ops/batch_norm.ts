/**
 * Batch normalisation over (N, H, W) per channel: training mode normalises with the
 * batch statistics and updates the running ones (PyTorch's rule: momentum 0.1, unbiased
 * variance in the running estimate); evaluation mode uses the running statistics.
 * @module
 */
import { empty, type Tensor } from "../tensor/tensor.ts";
import type { NchwSizes } from "../backend/backend.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";
import { add, exp, log, mul, sub, sumTo } from "./elementwise.ts";
import { reshape } from "./shape.ts";

/** Options of batchNorm. */
export interface BatchNormOptions {
  /** Running mean (C), updated in place in training mode. */
  runningMean: Tensor;
  /** Running variance (C), updated in place in training mode. */
  runningVar: Tensor;
  /** Use batch statistics (true) or the running ones (false). */
  training: boolean;
  /** Weight of the new batch statistic in the running average (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/**
 * Normalises `x` (N, C, H, W) per channel and applies `weight`·x̂ + `bias` (both (C)).
 * @throws {RangeError} on wrong ranks or channel counts
 */
export function batchNorm(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  opts: BatchNormOptions,
): Tensor {
  const op = "batchNorm";
  const { runningMean, runningVar, training } = opts;
  const momentum = opts.momentum ?? 0.1, eps = opts.eps ?? 1e-5;
  const be = sameBackend(op, x, weight, bias, runningMean, runningVar);
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape;
  for (
    const [what, t] of [["weight", weight], ["bias", bias], ["running mean", runningMean], [
      "running variance",
      runningVar,
    ]] as const
  ) checkShape(op, what, t, [C]);
  const s: NchwSizes = { N, C, H, W };
  const out = empty(x.shape, { backend: be });
  if (!training) {
    be.batchnormForwardInfer({
      out: out.storage,
      inp: x.storage,
      weight: weight.storage,
      bias: bias.storage,
      mean: runningMean.storage,
      var: runningVar.storage,
      ...s,
      eps,
    });
    // Statistics are constants here: gradients reach x, weight and bias only.
    return record(out, op, [x, weight, bias], (g, needs) => {
      // y = γ·(x − μ)·inv + β: dx = dy·γ·inv, dγ = Σ dy·(x − μ)·inv, dβ = Σ dy.
      const col = [C, 1, 1];
      const inv = reshape(exp(mul(log(add(runningVar, eps)), -0.5)), col);
      const xhat = mul(sub(x, reshape(runningMean, col)), inv);
      return [
        needs[0] ? mul(g, reshape(mul(weight, reshape(inv, [C])), col)) : null,
        reshape(sumTo(mul(g, xhat), col), [C]),
        reshape(sumTo(g, col), [C]),
      ];
    }, [x, weight]); // the running statistics are persistent buffers, not graph tensors
  }
  const count = N * H * W;
  if (count < 2) {
    throw new RangeError(
      `Cannot run batchNorm in training mode: expected more than 1 value per channel, got input of shape [${x.shape}]`,
    );
  }
  const mean = empty([C], { backend: be }), variance = empty([C], { backend: be });
  be.batchnormForwardTrain({
    out: out.storage,
    mean: mean.storage,
    var: variance.storage,
    inp: x.storage,
    weight: weight.storage,
    bias: bias.storage,
    ...s,
    eps,
  });
  updateRunning(runningMean, mean, momentum, 1);
  updateRunning(runningVar, variance, momentum, count / (count - 1));
  return record(out, op, [x, weight, bias], (g) => {
    const dx = empty(x.shape, { backend: be });
    const dw = empty([C], { backend: be }), db = empty([C], { backend: be });
    be.batchnormBackward({
      dinp: dx.storage,
      dweight: dw.storage,
      dbias: db.storage,
      dout: g.storage,
      inp: x.storage,
      mean: mean.storage,
      var: variance.storage,
      weight: weight.storage,
      ...s,
      eps,
    });
    return [dx, dw, db];
  }, [x, weight, mean, variance]);
}

/** running ← (1 − m)·running + m·correction·batch, in place. */
function updateRunning(running: Tensor, batch: Tensor, m: number, correction: number): void {
  const be = running.backend, C = running.size;
  const a = be.alloc(C), b = be.alloc(C);
  be.scaleForward({ out: a, inp: running.storage, alpha: 1 - m, beta: 0, n: C });
  be.scaleForward({ out: b, inp: batch.storage, alpha: m * correction, beta: 0, n: C });
  const shape = [1, 1, 1, C] as const;
  be.binaryForward({ out: running.storage, a, b, aShape: shape, bShape: shape, op: "add" });
  be.free(a);
  be.free(b);
}
