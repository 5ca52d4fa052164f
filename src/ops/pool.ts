/**
 * Pooling: square-window max pooling (the ResNet stem's 3×3/2) and global average
 * pooling (the heads' input).
 * @module
 */
import { empty, formatShape, type Tensor } from "../tensor/tensor.ts";
import type { PoolSizes } from "../backend/backend.ts";
import { checkRank, record, sameBackend } from "./op.ts";

/** Options of maxPool2d. */
export interface MaxPoolOptions {
  /** Window size (default 3). */
  kernel?: number;
  /** Stride (default 2). */
  stride?: number;
  /** Padding, counted as −∞ (default 1). */
  padding?: number;
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
  const [N, C, H, W] = x.shape;
  if (pad * 2 > kernel) {
    throw new RangeError(`Cannot run maxPool2d: padding ${pad} exceeds half the window ${kernel}`);
  }
  const P = Math.floor((H + 2 * pad - kernel) / stride) + 1;
  const Q = Math.floor((W + 2 * pad - kernel) / stride) + 1;
  if (P < 1 || Q < 1) {
    throw new RangeError(
      `Cannot run maxPool2d: input ${formatShape(x.shape)} is smaller than window ${kernel}`,
    );
  }
  const s: PoolSizes = { N, C, H, W, kernel, stride, pad };
  const out = empty([N, C, P, Q], { backend: be });
  be.maxpool2dForward({ out: out.storage, inp: x.storage, ...s });
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.maxpool2dBackward({ dinp: dx.storage, dout: g.storage, inp: x.storage, ...s });
    return [dx];
  }, [x]);
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
