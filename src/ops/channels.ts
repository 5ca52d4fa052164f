/**
 * Ops over the channel dimension of NCHW tensors: concatenation and split along C
 * (DenseNet, Inception, ShuffleNetV2's `chunk(2, dim=1)`), torchvision's channel shuffle,
 * LayerNorm over the channels of each position (ConvNeXt's LayerNorm2d) and stochastic
 * depth (torchvision.ops.stochastic_depth, mode "row"). The moves are `channel_copy`
 * kernel calls (fbp.h): one per input, part or group; their gradients are the same copies
 * the other way.
 * @module
 */
import { empty, formatShape, ones, type Tensor, zeros } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/grad_mode.ts";
import type { Backend, Storage } from "../backend/backend.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";
import { mul } from "./elementwise.ts";

/** Where one channel_copy call moves its `cn` channels (off + j·step, j < cn). */
interface ChannelMove {
  outOff: number;
  outStep: number;
  inOff: number;
  inStep: number;
  cn: number;
}

/** out (N, Co, HW) ← inp (N, Ci, HW) for one move; nothing when the move is empty. */
function channelCopy(
  be: Backend,
  out: Storage,
  inp: Storage,
  sizes: { N: number; Co: number; Ci: number; HW: number },
  m: ChannelMove,
): void {
  if (m.cn === 0 || sizes.N * sizes.HW === 0) return;
  be.channelCopy({
    out,
    inp,
    ...sizes,
    out_off: m.outOff,
    out_step: m.outStep,
    in_off: m.inOff,
    in_step: m.inStep,
    cn: m.cn,
    accumulate: false,
  });
}

/** The same move with out and inp swapped (its adjoint, for the backward). */
function reversed(m: ChannelMove): ChannelMove {
  return { outOff: m.inOff, outStep: m.inStep, inOff: m.outOff, inStep: m.outStep, cn: m.cn };
}

/**
 * Concatenates NCHW tensors along the channels (`torch.cat(xs, dim=1)`): every input must
 * have the same N, H and W. A single tensor is returned as it is.
 * @throws {RangeError} when no tensor is given, one is not rank 4, or N, H or W differ
 * @example Two 1-channel maps make one 2-channel map
 * ```ts
 * import { setDefaultBackend, tensor } from "../tensor/tensor.ts";
 * import { ReferenceBackend } from "../backend/reference.ts";
 * import { concatChannels } from "./channels.ts";
 * setDefaultBackend(new ReferenceBackend());
 * const a = tensor([1, 2], [1, 1, 1, 2]), b = tensor([3, 4], [1, 1, 1, 2]);
 * const out = concatChannels([a, b]);
 * if (out.shape[1] !== 2 || out.toArray()[2] !== 3) throw new Error("unexpected result");
 * ```
 */
export function concatChannels(xs: readonly Tensor[]): Tensor {
  const op = "concatChannels";
  if (xs.length === 0) throw new RangeError(`Cannot run ${op}: no tensors given`);
  const be = sameBackend(op, ...xs);
  xs.forEach((x, i) => checkRank(op, `input ${i}`, x, 4));
  const [N, , H, W] = xs[0].shape;
  xs.forEach((x, i) => {
    if (x.shape[0] !== N || x.shape[2] !== H || x.shape[3] !== W) {
      throw new RangeError(
        `Cannot run ${op}: input ${i} of shape ${formatShape(x.shape)} differs from input 0 ${
          formatShape(xs[0].shape)
        } outside the channels (N, H, W must agree)`,
      );
    }
  });
  if (xs.length === 1) return xs[0];
  const Cs = xs.map((x) => x.shape[1]), C = Cs.reduce((a, c) => a + c, 0), HW = H * W;
  const moves: ChannelMove[] = [];
  let at = 0;
  for (const c of Cs) {
    moves.push({ outOff: at, outStep: 1, inOff: 0, inStep: 1, cn: c });
    at += c;
  }
  const out = empty([N, C, H, W], { backend: be });
  xs.forEach((x, i) =>
    channelCopy(be, out.storage, x.storage, { N, Co: C, Ci: Cs[i], HW }, moves[i])
  );
  return record(out, op, xs, (g, needs) =>
    xs.map((x, i) => {
      if (!needs[i]) return null;
      const dx = empty(x.shape, { backend: be });
      channelCopy(be, dx.storage, g.storage, { N, Co: Cs[i], Ci: C, HW }, reversed(moves[i]));
      return dx;
    }), []);
}

/**
 * Splits an NCHW tensor along the channels into parts of `sizes` channels (the inverse of
 * {@link concatChannels}; ShuffleNetV2's `x.chunk(2, dim=1)` is
 * `splitChannels(x, [C/2, C/2])`). Each part is its own op: its gradient is zero outside
 * its channels, and the tape sums the parts' gradients.
 * @throws {RangeError} when x is not rank 4 or the sizes are not non-negative integers
 *   summing to the channel count
 */
export function splitChannels(x: Tensor, sizes: readonly number[]): Tensor[] {
  const op = "splitChannels";
  const be = sameBackend(op, x);
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape, HW = H * W;
  const total = sizes.reduce((a, s) => a + s, 0);
  if (sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== C) {
    throw new RangeError(
      `Cannot run ${op}: sizes [${
        sizes.join(", ")
      }] must be non-negative integers summing to the ${C} channels of input ${
        formatShape(x.shape)
      }`,
    );
  }
  let at = 0;
  return sizes.map((s) => {
    const m: ChannelMove = { outOff: 0, outStep: 1, inOff: at, inStep: 1, cn: s };
    at += s;
    const out = empty([N, s, H, W], { backend: be });
    channelCopy(be, out.storage, x.storage, { N, Co: s, Ci: C, HW }, m);
    return record(out, op, [x], (g) => {
      const dx = zeros(x.shape, { backend: be });
      channelCopy(be, dx.storage, g.storage, { N, Co: C, Ci: s, HW }, reversed(m));
      return [dx];
    }, []);
  });
}

/**
 * torchvision's `channel_shuffle(x, groups)` (ShuffleNet): the channels viewed as
 * (groups, C/groups), transposed to (C/groups, groups) and flattened, so output channel
 * j·groups + i is input channel i·(C/groups) + j. One strided copy per group; the backward
 * applies the inverse permutation. With one group it returns x itself.
 * @throws {RangeError} when x is not rank 4 or groups is not a positive divisor of C
 */
export function channelShuffle(x: Tensor, groups: number): Tensor {
  const op = "channelShuffle";
  const be = sameBackend(op, x);
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape, HW = H * W;
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new RangeError(
      `Cannot run ${op}: groups must be a positive integer dividing the ${C} channels of input ${
        formatShape(x.shape)
      }: current value is ${groups}`,
    );
  }
  if (groups === 1) return x;
  const per = C / groups, sizes = { N, Co: C, Ci: C, HW };
  const moves = Array.from({ length: groups }, (_, i): ChannelMove => ({
    outOff: i,
    outStep: groups,
    inOff: i * per,
    inStep: 1,
    cn: per,
  }));
  const out = empty(x.shape, { backend: be });
  for (const m of moves) channelCopy(be, out.storage, x.storage, sizes, m);
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    for (const m of moves) channelCopy(be, dx.storage, g.storage, sizes, reversed(m));
    return [dx];
  }, []);
}

/**
 * LayerNorm over the channels at every position of an NCHW tensor, as ConvNeXt's
 * LayerNorm2d does it (permute to NHWC, `F.layer_norm` over C, permute back):
 * out[n,c,h,w] = (x − mean)/sqrt(var + eps)·weight[c] + bias[c], with the mean and the
 * biased variance of x[n,:,h,w]. Gradients reach x, weight and bias.
 * @param weight the scale (C)
 * @param bias the shift (C)
 * @param eps added to the variance (ConvNeXt uses 1e-6; `F.layer_norm`'s default is 1e-5)
 * @throws {RangeError} on a wrong rank or parameter shape, or a negative or non-finite eps
 */
export function layerNormChannels(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): Tensor {
  const op = "layerNormChannels";
  const be = sameBackend(op, x, weight, bias);
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape, HW = H * W;
  checkShape(op, "weight", weight, [C]);
  checkShape(op, "bias", bias, [C]);
  if (!(eps >= 0 && Number.isFinite(eps))) {
    throw new RangeError(
      `Cannot run ${op}: eps must be finite and >= 0: current value is ${eps}`,
    );
  }
  const out = empty(x.shape, { backend: be });
  if (x.size === 0) return out;
  const mean = empty([N, H, W], { backend: be }), rstd = empty([N, H, W], { backend: be });
  be.layernormChannelsForward({
    out: out.storage,
    mean: mean.storage,
    rstd: rstd.storage,
    inp: x.storage,
    weight: weight.storage,
    bias: bias.storage,
    N,
    C,
    HW,
    eps,
  });
  const result = record(out, op, [x, weight, bias], (g) => {
    const dx = empty(x.shape, { backend: be });
    const dw = empty([C], { backend: be }), db = empty([C], { backend: be });
    be.layernormChannelsBackward({
      dinp: dx.storage,
      dweight: dw.storage,
      dbias: db.storage,
      dout: g.storage,
      inp: x.storage,
      mean: mean.storage,
      rstd: rstd.storage,
      weight: weight.storage,
      N,
      C,
      HW,
    });
    return [dx, dw, db];
  }, [x, weight, mean, rstd]);
  if (!result.node) {
    mean.dispose();
    rstd.dispose();
  }
  return result;
}

/**
 * Stochastic depth (torchvision.ops.stochastic_depth with mode "row"): in training, each
 * sample of the batch (dimension 0) is kept with probability 1 − p and scaled by 1/(1 − p),
 * or zeroed; the identity (x itself) when not training or p = 0, zeros when p = 1.
 *
 * The per-sample mask is dropout's (`dropout_forward` on N ones): sample n is kept when the
 * counter hash of (seed, n) in fbp.h is at least p, the hash every backend computes the same
 * way, so a seed gives the same mask on every backend and run (PyTorch draws it from its
 * global generator instead). The gradient is the mask times the output's gradient.
 * @param x a tensor of rank 1 to 4, samples along dimension 0
 * @param p the probability of dropping a sample, in [0, 1]
 * @param training whether to drop (true) or pass x through (false)
 * @param seed a 32-bit seed; one per call site and step keeps masks independent
 * @throws {RangeError} when p is outside [0, 1] or x has rank 0 or above 4
 */
export function stochasticDepth(x: Tensor, p: number, training: boolean, seed: number): Tensor {
  const op = "stochasticDepth";
  const be = sameBackend(op, x);
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`Cannot run ${op}: probability must be in [0, 1]: current value is ${p}`);
  }
  if (x.rank < 1 || x.rank > 4) {
    throw new RangeError(
      `Cannot run ${op}: input must have rank 1 to 4: current shape is ${formatShape(x.shape)}`,
    );
  }
  if (!training || p === 0) return x;
  if (p === 1) return mul(x, 0);
  const N = x.shape[0], shape = [N, ...x.shape.slice(1).map(() => 1)];
  const mask = empty(shape, { backend: be });
  const unit = ones(shape, { backend: be }), scratch = empty(shape, { backend: be });
  be.dropoutForward({
    out: mask.storage,
    mask: scratch.storage,
    inp: unit.storage,
    n: N,
    p,
    seed: seed >>> 0,
  });
  unit.dispose();
  scratch.dispose();
  // Recorded here rather than by mul, so the backward keeps only the mask, not x.
  const out = noGrad(() => mul(x, mask));
  const result = record(out, op, [x], (g) => [mul(g, mask)], [mask]);
  if (!result.node) mask.dispose();
  return result;
}
