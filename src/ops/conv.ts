/**
 * 2-D convolution (NCHW input, (K, C/groups, R, S) weight; groups = C = K is depthwise)
 * with native forward and both backward kernels.
 * @module
 */
import { empty, formatShape, type Tensor } from "../tensor/tensor.ts";
import type { ConvSizes } from "../backend/backend.ts";
import { addMacs } from "./mac_meter.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";

/** Options of conv2d. */
export interface Conv2dOptions {
  /** Per-output-channel bias (K). */
  bias?: Tensor | null;
  /** Stride in both directions (default 1). */
  stride?: number;
  /** Zero padding on every side (default 0). */
  padding?: number;
  /**
   * Groups (default 1): C and K must be multiples of it; output channels k·K/groups … of
   * group k read input channels k·C/groups …; groups = C = K is a depthwise convolution.
   */
  groups?: number;
}

/**
 * Convolves `x` (N, C, H, W) with `weight` (K, C/groups, R, S).
 * @returns (N, K, P, Q) with P = (H + 2·padding − R)/stride + 1
 * @throws {RangeError} on wrong ranks, channel mismatch, C or K not multiples of groups, or
 * an empty output
 */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = "conv2d";
  const bias = opts.bias ?? null;
  const stride = opts.stride ?? 1, pad = opts.padding ?? 0, G = opts.groups ?? 1;
  const be = sameBackend(op, x, weight, ...(bias ? [bias] : []));
  checkRank(op, "input", x, 4);
  checkRank(op, "weight", weight, 4);
  const [N, C, H, W] = x.shape;
  const [K, Cw, R, S] = weight.shape;
  if (!(Number.isInteger(G) && G >= 1)) {
    throw new RangeError(`Cannot run conv2d: groups ${G} is not a whole number >= 1`);
  }
  if (C % G !== 0 || K % G !== 0) {
    throw new RangeError(
      `Cannot run conv2d: input ${formatShape(x.shape)} has ${C} channels and weight ${
        formatShape(weight.shape)
      } ${K} output channels; both must be multiples of groups ${G}`,
    );
  }
  if (Cw * G !== C) {
    const expects = G === 1 ? `${Cw}` : `${Cw}·${G} = ${Cw * G}`;
    throw new RangeError(
      `Cannot run conv2d: weight ${formatShape(weight.shape)} expects ${expects} input channels${
        G === 1 ? "" : ` in ${G} groups`
      }, input ${formatShape(x.shape)} has ${C}`,
    );
  }
  if (!(Number.isInteger(stride) && stride >= 1 && Number.isInteger(pad) && pad >= 0)) {
    throw new RangeError(`Cannot run conv2d: stride ${stride} and padding ${pad} are invalid`);
  }
  if (bias) checkShape(op, "bias", bias, [K]);
  const P = Math.floor((H + 2 * pad - R) / stride) + 1;
  const Q = Math.floor((W + 2 * pad - S) / stride) + 1;
  if (P < 1 || Q < 1) {
    throw new RangeError(
      `Cannot run conv2d: input ${
        formatShape(x.shape)
      } is smaller than kernel ${R}×${S} with padding ${pad}`,
    );
  }
  const s: ConvSizes = { N, C, H, W, K, R, S, G, stride, pad };
  const out = empty([N, K, P, Q], { backend: be });
  addMacs(N * K * P * Q * (C / s.G) * R * S);
  be.conv2dForward({
    out: out.storage,
    inp: x.storage,
    weight: weight.storage,
    bias: bias?.storage ?? null,
    ...s,
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, op, inputs, (g, needs) => {
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x.shape, { backend: be });
      be.conv2dBackwardData({ dinp: dx.storage, dout: g.storage, weight: weight.storage, ...s });
    }
    if (needs[1] || (bias && needs[2])) {
      dw = empty(weight.shape, { backend: be });
      db = bias ? empty([K], { backend: be }) : null;
      be.conv2dBackwardWeights({
        dweight: dw.storage,
        dbias: db?.storage ?? null,
        dout: g.storage,
        inp: x.storage,
        ...s,
      });
    }
    return bias ? [dx, dw, db] : [dx, dw];
  }, [x, weight]);
}
