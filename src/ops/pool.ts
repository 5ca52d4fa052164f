/**
 * Pooling: square-window max pooling (the ResNet stem's 3×3/2, GoogLeNet's ceil-mode
 * windows), square-window average pooling (DenseNet's transitions) and global average
 * pooling (the heads' input).
 * @module
 */
import { empty, formatShape, full, type Tensor } from "../tensor/tensor.ts";
import type { ConvSizes, PoolSizes } from "../backend/backend.ts";
import { windowSize } from "../backend/check_args.ts";
import { checkRank, record, sameBackend } from "./op.ts";

/** Options of maxPool2d. */
export interface MaxPoolOptions {
  /** Window size (default 3). */
  kernel?: number;
  /** Stride (default 2). */
  stride?: number;
  /** Padding, counted as −∞ (default 1). */
  padding?: number;
  /**
   * PyTorch's ceil_mode (default false): the output size is rounded up, less one when the
   * last window would start in the right padding; windows past the input take the max of
   * their elements inside it.
   */
  ceilMode?: boolean;
}

/**
 * Max pooling of `x` (N, C, H, W); the gradient goes to the first maximum of each window.
 * @throws {RangeError} on a wrong rank or an empty output
 */
export function maxPool2d(x: Tensor, opts: MaxPoolOptions = {}): Tensor {
  const op = "maxPool2d";
  const be = sameBackend(op, x);
  checkRank(op, "input", x, 4);
  const kernel = opts.kernel ?? 3, stride = opts.stride ?? 2, pad = opts.padding ?? 1;
  const ceil = opts.ceilMode ?? false;
  const [N, C, H, W] = x.shape;
  if (pad * 2 > kernel) {
    throw new RangeError(`Cannot run maxPool2d: padding ${pad} exceeds half the window ${kernel}`);
  }
  const P = windowSize(H, kernel, stride, pad, ceil);
  const Q = windowSize(W, kernel, stride, pad, ceil);
  if (P < 1 || Q < 1) {
    throw new RangeError(
      `Cannot run maxPool2d: input ${formatShape(x.shape)} is smaller than window ${kernel}`,
    );
  }
  const s: PoolSizes = { N, C, H, W, kernel, stride, pad, ceil };
  const out = empty([N, C, P, Q], { backend: be });
  be.maxpool2dForward({ out: out.storage, inp: x.storage, ...s });
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.maxpool2dBackward({ dinp: dx.storage, dout: g.storage, inp: x.storage, ...s });
    return [dx];
  }, [x]);
}

/** Options of avgPool2d. */
export interface AvgPoolOptions {
  /** Window size (square). */
  kernel: number;
  /** Stride (default: the window size). */
  stride?: number;
}

/**
 * Average pooling of `x` (N, C, H, W) over square windows without padding, output size
 * rounded down (PyTorch's AvgPool2d(kernel, stride), e.g. DenseNet's transition 2×2/2).
 * A composite of the convolution kernels: a depthwise convolution (groups = C) with the
 * constant weight 1/kernel²; the gradient goes to `x` only. The constant weight is made
 * again by the backward rule, so nothing is kept between the passes.
 * @returns (N, C, P, Q) with P = ⌊(H − kernel)/stride⌋ + 1
 * @throws {RangeError} on a wrong rank, an invalid window or an input smaller than it
 */
export function avgPool2d(x: Tensor, opts: AvgPoolOptions): Tensor {
  const op = "avgPool2d";
  const be = sameBackend(op, x);
  checkRank(op, "input", x, 4);
  const kernel = opts.kernel, stride = opts.stride ?? opts.kernel;
  if (!(Number.isInteger(kernel) && kernel >= 1 && Number.isInteger(stride) && stride >= 1)) {
    throw new RangeError(`Cannot run avgPool2d: kernel ${kernel} and stride ${stride} are invalid`);
  }
  const [N, C, H, W] = x.shape;
  const P = windowSize(H, kernel, stride, 0), Q = windowSize(W, kernel, stride, 0);
  if (P < 1 || Q < 1) {
    throw new RangeError(
      `Cannot run avgPool2d: input ${formatShape(x.shape)} is smaller than window ${kernel}`,
    );
  }
  const s: ConvSizes = { N, C, H, W, K: C, R: kernel, S: kernel, G: C, stride, pad: 0 };
  const weight = () => full([C, 1, kernel, kernel], 1 / (kernel * kernel), { backend: be });
  const out = empty([N, C, P, Q], { backend: be });
  const w = weight();
  try {
    be.conv2dForward({ out: out.storage, inp: x.storage, weight: w.storage, bias: null, ...s });
  } finally {
    w.dispose();
  }
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    const w = weight();
    try {
      be.conv2dBackwardData({ dinp: dx.storage, dout: g.storage, weight: w.storage, ...s });
    } finally {
      w.dispose();
    }
    return [dx];
  }, []);
}

/**
 * Mean over H×W: (N, C, H, W) → (N, C).
 * @throws {RangeError} on a wrong rank
 */
export function globalAvgPool(x: Tensor): Tensor {
  const op = "globalAvgPool";
  const be = sameBackend(op, x);
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape;
  const out = empty([N, C], { backend: be });
  be.avgpoolGlobalForward({ out: out.storage, inp: x.storage, N, C, H, W });
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.avgpoolGlobalBackward({ dinp: dx.storage, dout: g.storage, N, C, H, W });
    return [dx];
  }, []);
}
