/**
 * The reference backend: every kernel of the contract (contract.ts, native/include/fbp.h)
 * written as plain loops in TypeScript, with no tricks. It is slow on purpose and is the
 * ground truth the native backends are tested against (the role of tinygrad's
 * ops_python.py and llm.c's train_gpt2.c). With `precision: "f64"` it stores and computes
 * in float64, which makes central finite differences accurate enough to check gradients.
 * Each kernel first checks its arguments against the contract ({@link checkKernelArgs}),
 * as the C libraries do.
 * @module
 */
import type { Backend, MathSettings, Shape4, Storage } from "./backend.ts";
import type { KernelArgs } from "./contract.ts";
import { checkKernelArgs, windowSize } from "./check_args.ts";

type Floats = Float32Array | Float64Array;

/** Reference storage: a plain typed array. */
export class ReferenceStorage implements Storage {
  constructor(readonly data: Floats) {}
  /** Number of floats. */
  get size(): number {
    return this.data.length;
  }
}

function d(s: Storage): Floats {
  return (s as ReferenceStorage).data;
}

/** The data of a nullable storage (null for NULL). */
function dn(s: Storage | null): Floats | null {
  return s ? d(s) : null;
}

/** The hash that decides dropout (documented in fbp.h; identical in every backend). */
export function hashUniform(seed: number, i: number): number {
  let h = (Math.imul(i >>> 0, 0x9e3779b9) + (seed >>> 0)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 8) / 16777216;
}

type ConvArgs = KernelArgs<"conv2d_forward" | "conv2d_backward_data" | "conv2d_backward_weights">;

/**
 * The three convolution kernels (forward, backward data, backward weights) as one walk
 * over the outputs (n, k, p, q) and, for each, the taps inside the input (c, r, t), in the
 * order the sums are taken. With G groups, output channel k reads the Cg = C/G input
 * channels of its group g = ⌊k/(K/G)⌋, and the weight is (K, Cg, R, S). `y` is out
 * (forward) or dout; `x` is inp, or dinp (backward data); `w` is weight, or dweight
 * (backward weights); `b` is bias or dbias (nullable). Gradient outputs must be zeroed by
 * the caller.
 */
function convolve(
  kind: "forward" | "data" | "weights",
  s: ConvArgs,
  y: Floats,
  x: Floats,
  w: Floats,
  b: Floats | null,
): void {
  const { N, C, H, W, K, R, S, G, stride, pad } = s;
  const P = windowSize(H, R, stride, pad), Q = windowSize(W, S, stride, pad);
  const Cg = C / G, Kg = K / G;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c0 = Math.floor(k / Kg) * Cg;
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          const oi = ((n * K + k) * P + p) * Q + q;
          // forward: the accumulated output; backward: the output's gradient
          let acc = kind === "forward" ? (b ? b[k] : 0) : y[oi];
          if (kind === "weights" && b) b[k] += acc;
          for (let c = 0; c < Cg; c++) {
            for (let r = 0; r < R; r++) {
              const h = p * stride - pad + r;
              if (h < 0 || h >= H) continue;
              for (let t = 0; t < S; t++) {
                const ww = q * stride - pad + t;
                if (ww < 0 || ww >= W) continue;
                const xi = ((n * C + c0 + c) * H + h) * W + ww;
                const wi = ((k * Cg + c) * R + r) * S + t;
                if (kind === "forward") acc += x[xi] * w[wi];
                else if (kind === "data") x[xi] += acc * w[wi];
                else w[wi] += acc * x[xi];
              }
            }
          }
          if (kind === "forward") y[oi] = acc;
        }
      }
    }
  }
}

type PoolArgs = KernelArgs<"maxpool2d_forward" | "maxpool2d_backward">;

/**
 * Visits each output with the index of its window's first maximum (-1: all padding). In
 * ceil mode the last windows may extend past the input: only their in-bounds taps count.
 */
function maxpoolWalk(s: PoolArgs, x: Floats, visit: (oi: number, xi: number) => void): void {
  const { N, C, H, W, kernel, stride, pad, ceil } = s;
  const P = windowSize(H, kernel, stride, pad, ceil);
  const Q = windowSize(W, kernel, stride, pad, ceil);
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        let best = -Infinity, arg = -1;
        for (let r = 0; r < kernel; r++) {
          const h = p * stride - pad + r;
          if (h < 0 || h >= H) continue;
          for (let t = 0; t < kernel; t++) {
            const w = q * stride - pad + t;
            if (w < 0 || w >= W) continue;
            const j = (nc * H + h) * W + w;
            if (arg < 0 || x[j] > best) {
              best = x[j];
              arg = j;
            }
          }
        }
        visit((nc * P + p) * Q + q, arg);
      }
    }
  }
}

/** Strides of a row-major 4-D shape, 0 along its dims of size 1 (which broadcast). */
function strides(s: Shape4): number[] {
  return [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1].map((v, i) => s[i] === 1 ? 0 : v);
}

/** Row softmax of `x` (rows × cols) into `o`. */
function softmaxRows(o: Floats, x: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c] - max);
    for (let c = 0; c < cols; c++) o[r * cols + c] = Math.exp(x[r * cols + c] - max) / sum;
  }
}

/** Batch-norm normalisation with given statistics (the inference forward). */
function batchnormApply(a: KernelArgs<"batchnorm_forward_infer">): void {
  const { N, C, H, W, eps } = a;
  const o = d(a.out), x = d(a.inp), g = d(a.weight), b = d(a.bias), m = d(a.mean), v = d(a.var);
  const HW = H * W;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const inv = 1 / Math.sqrt(v[c] + eps);
      for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        o[j] = (x[j] - m[c]) * inv * g[c] + b[c];
      }
    }
  }
}

/** Options of the reference backend. */
export interface ReferenceOptions {
  /** Storage precision: "f32" (default, like the native backends) or "f64". */
  precision?: "f32" | "f64";
}

/** Slow, exact pure-TypeScript implementation of the kernel table. */
export class ReferenceBackend implements Backend {
  readonly name = "reference";
  /** Storage precision: "f32" (default) or "f64" (for gradient checks). */
  readonly precision: "f32" | "f64";

  /** Creates a reference backend; `options.precision` defaults to "f32". */
  constructor(options: ReferenceOptions = {}) {
    this.precision = options.precision ?? "f32";
  }

  alloc(n: number): Storage {
    return new ReferenceStorage(
      this.precision === "f64" ? new Float64Array(n) : new Float32Array(n),
    );
  }
  free(_s: Storage): void {}
  copyIn(dst: Storage, src: Float32Array): void {
    d(dst).set(src);
  }
  /** Copies out as float32 (the public dtype); `copyOut64` keeps float64 precision. */
  copyOut(src: Storage): Float32Array {
    return Float32Array.from(d(src));
  }
  /** Copies out without rounding to float32. */
  copyOut64(src: Storage): Float64Array {
    return Float64Array.from(d(src));
  }
  /** Copies float64 values in without rounding (f64 precision only keeps them). */
  copyIn64(dst: Storage, src: Float64Array): void {
    d(dst).set(src);
  }
  sync(): void {}
  releaseCache(): void {} // JS arrays: the garbage collector owns freed memory
  /** Always fp32 (or f64 storage) and deterministic: plain loops in a fixed order. */
  math: Readonly<MathSettings> = { precision: "fp32", deterministic: false };
  setMath(math: MathSettings): void {
    if (math.precision !== "fp32") {
      throw new Error(
        `Cannot compute in ${math.precision} on the reference backend: it computes in fp32`,
      );
    }
    this.math = { ...math };
  }

  fillForward(a: KernelArgs<"fill_forward">): void {
    if (!checkKernelArgs("fill_forward", a)) return;
    d(a.out).fill(a.value, 0, a.n);
  }
  copyForward(a: KernelArgs<"copy_forward">): void {
    if (!checkKernelArgs("copy_forward", a)) return;
    const { out_off, in_off, n, accumulate } = a;
    const o = d(a.out), x = d(a.inp);
    for (let i = 0; i < n; i++) {
      o[out_off + i] = accumulate ? o[out_off + i] + x[in_off + i] : x[in_off + i];
    }
  }

  conv2dForward(a: KernelArgs<"conv2d_forward">): void {
    if (!checkKernelArgs("conv2d_forward", a)) return;
    convolve("forward", a, d(a.out), d(a.inp), d(a.weight), dn(a.bias));
  }
  conv2dBackwardData(a: KernelArgs<"conv2d_backward_data">): void {
    if (!checkKernelArgs("conv2d_backward_data", a)) return;
    const dx = d(a.dinp);
    dx.fill(0, 0, a.N * a.C * a.H * a.W);
    convolve("data", a, d(a.dout), dx, d(a.weight), null);
  }
  conv2dBackwardWeights(a: KernelArgs<"conv2d_backward_weights">): void {
    if (!checkKernelArgs("conv2d_backward_weights", a)) return;
    const dw = d(a.dweight), db = dn(a.dbias);
    dw.fill(0, 0, a.K * (a.C / a.G) * a.R * a.S);
    if (db) db.fill(0, 0, a.K);
    convolve("weights", a, d(a.dout), d(a.inp), dw, db);
  }

  batchnormForwardTrain(a: KernelArgs<"batchnorm_forward_train">): void {
    if (!checkKernelArgs("batchnorm_forward_train", a)) return;
    const { N, C, H, W } = a;
    const x = d(a.inp), m = d(a.mean), v = d(a.var);
    const HW = H * W, count = N * HW;
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < HW; i++) sum += x[(n * C + c) * HW + i];
      }
      const mu = sum / count;
      let sq = 0;
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < HW; i++) {
          const e = x[(n * C + c) * HW + i] - mu;
          sq += e * e;
        }
      }
      m[c] = mu;
      v[c] = sq / count;
    }
    batchnormApply(a);
  }
  batchnormForwardInfer(a: KernelArgs<"batchnorm_forward_infer">): void {
    if (!checkKernelArgs("batchnorm_forward_infer", a)) return;
    batchnormApply(a);
  }
  batchnormBackward(a: KernelArgs<"batchnorm_backward">): void {
    if (!checkKernelArgs("batchnorm_backward", a)) return;
    const { N, C, H, W, eps } = a;
    const dx = d(a.dinp), dg = d(a.dweight), db = d(a.dbias), dy = d(a.dout), x = d(a.inp);
    const m = d(a.mean), v = d(a.var), g = d(a.weight);
    const HW = H * W, count = N * HW;
    for (let c = 0; c < C; c++) {
      const inv = 1 / Math.sqrt(v[c] + eps);
      let sumDy = 0, sumDyXhat = 0;
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < HW; i++) {
          const j = (n * C + c) * HW + i;
          sumDy += dy[j];
          sumDyXhat += dy[j] * (x[j] - m[c]) * inv;
        }
      }
      dg[c] = sumDyXhat;
      db[c] = sumDy;
      // dx = γ·inv/M · (M·dy − Σdy − x̂·Σ(dy·x̂)), the standard batch-stat gradient.
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < HW; i++) {
          const j = (n * C + c) * HW + i;
          const xhat = (x[j] - m[c]) * inv;
          dx[j] = g[c] * inv / count * (count * dy[j] - sumDy - xhat * sumDyXhat);
        }
      }
    }
  }

  maxpool2dForward(a: KernelArgs<"maxpool2d_forward">): void {
    if (!checkKernelArgs("maxpool2d_forward", a)) return;
    const o = d(a.out), x = d(a.inp);
    maxpoolWalk(a, x, (oi, xi) => {
      o[oi] = xi < 0 ? -Infinity : x[xi];
    });
  }
  maxpool2dBackward(a: KernelArgs<"maxpool2d_backward">): void {
    if (!checkKernelArgs("maxpool2d_backward", a)) return;
    const dx = d(a.dinp), dy = d(a.dout), x = d(a.inp);
    dx.fill(0, 0, a.N * a.C * a.H * a.W);
    maxpoolWalk(a, x, (oi, xi) => {
      if (xi >= 0) dx[xi] += dy[oi];
    });
  }
  avgpoolGlobalForward(a: KernelArgs<"avgpool_global_forward">): void {
    if (!checkKernelArgs("avgpool_global_forward", a)) return;
    const o = d(a.out), x = d(a.inp), HW = a.H * a.W;
    for (let nc = 0; nc < a.N * a.C; nc++) {
      let sum = 0;
      for (let i = 0; i < HW; i++) sum += x[nc * HW + i];
      o[nc] = sum / HW;
    }
  }
  avgpoolGlobalBackward(a: KernelArgs<"avgpool_global_backward">): void {
    if (!checkKernelArgs("avgpool_global_backward", a)) return;
    const dx = d(a.dinp), dy = d(a.dout), HW = a.H * a.W;
    for (let nc = 0; nc < a.N * a.C; nc++) {
      for (let i = 0; i < HW; i++) dx[nc * HW + i] = dy[nc] / HW;
    }
  }

  linearForward(a: KernelArgs<"linear_forward">): void {
    if (!checkKernelArgs("linear_forward", a)) return;
    const { N, I, O } = a;
    const o = d(a.out), x = d(a.inp), w = d(a.weight), b = dn(a.bias);
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < O; j++) {
        let acc = b ? b[j] : 0;
        for (let i = 0; i < I; i++) acc += x[n * I + i] * w[j * I + i];
        o[n * O + j] = acc;
      }
    }
  }
  linearBackward(a: KernelArgs<"linear_backward">): void {
    if (!checkKernelArgs("linear_backward", a)) return;
    const { N, I, O } = a;
    const dy = d(a.dout), x = d(a.inp), w = d(a.weight), dw = d(a.dweight);
    const dx = dn(a.dinp), db = dn(a.dbias);
    if (dx) {
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < I; i++) {
          let acc = 0;
          for (let j = 0; j < O; j++) acc += dy[n * O + j] * w[j * I + i];
          dx[n * I + i] = acc;
        }
      }
    }
    for (let j = 0; j < O; j++) {
      for (let i = 0; i < I; i++) {
        let acc = 0;
        for (let n = 0; n < N; n++) acc += dy[n * O + j] * x[n * I + i];
        dw[j * I + i] = acc;
      }
    }
    if (db) {
      for (let j = 0; j < O; j++) {
        let acc = 0;
        for (let n = 0; n < N; n++) acc += dy[n * O + j];
        db[j] = acc;
      }
    }
  }

  unaryForward(a: KernelArgs<"unary_forward">): void {
    if (!checkKernelArgs("unary_forward", a)) return;
    const o = d(a.out), x = d(a.inp);
    for (let i = 0; i < a.n; i++) {
      const v = x[i];
      switch (a.op) {
        case "relu":
          o[i] = v < 0 ? 0 : v; // NaN propagates (as in PyTorch), so guards see it
          break;
        case "sigmoid":
          o[i] = 1 / (1 + Math.exp(-v));
          break;
        case "log":
          o[i] = Math.log(v);
          break;
        case "abs":
          o[i] = Math.abs(v);
          break;
        case "exp":
          o[i] = Math.exp(v);
          break;
        case "silu":
          o[i] = v / (1 + Math.exp(-v));
          break;
        case "hardswish":
          o[i] = v * hard01(v);
          break;
        case "hardsigmoid":
          o[i] = hard01(v);
          break;
        case "gelu":
          o[i] = v * normalCdf(v);
          break;
        case "relu6": {
          const r = v < 0 ? 0 : v; // NaN propagates
          o[i] = r > 6 ? 6 : r;
          break;
        }
      }
    }
  }
  unaryBackward(a: KernelArgs<"unary_backward">): void {
    if (!checkKernelArgs("unary_backward", a)) return;
    // Only the operand the derivative needs is given (checkKernelArgs saw to it).
    const dx = d(a.dinp), dy = d(a.dout), x = dn(a.inp)!, y = dn(a.out)!;
    for (let i = 0; i < a.n; i++) {
      switch (a.op) {
        case "relu":
          dx[i] = x[i] > 0 ? dy[i] : 0;
          break;
        case "sigmoid":
          dx[i] = dy[i] * y[i] * (1 - y[i]);
          break;
        case "log":
          dx[i] = dy[i] / x[i];
          break;
        case "abs":
          dx[i] = x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0;
          break;
        case "exp":
          dx[i] = dy[i] * y[i];
          break;
        case "silu": {
          const s = 1 / (1 + Math.exp(-x[i]));
          dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
          break;
        }
        case "hardswish": // (2x + 3)/6 on [−3, 3): −0.5 at −3 as in PyTorch; 1 from 3
          dx[i] = x[i] < -3 ? 0 : x[i] < 3 ? dy[i] * (x[i] / 3 + 0.5) : dy[i];
          break;
        case "hardsigmoid":
          dx[i] = x[i] > -3 && x[i] < 3 ? dy[i] / 6 : 0;
          break;
        case "gelu": // Φ(x) + x·φ(x)
          dx[i] = dy[i] *
            (normalCdf(x[i]) + x[i] * Math.exp(-0.5 * x[i] * x[i]) / Math.sqrt(2 * Math.PI));
          break;
        case "relu6":
          dx[i] = x[i] > 0 && x[i] < 6 ? dy[i] : 0;
          break;
      }
    }
  }
  scaleForward(a: KernelArgs<"scale_forward">): void {
    if (!checkKernelArgs("scale_forward", a)) return;
    const { alpha, beta } = a;
    const o = d(a.out), x = d(a.inp);
    for (let i = 0; i < a.n; i++) o[i] = alpha * x[i] + beta;
  }
  binaryForward(a: KernelArgs<"binary_forward">): void {
    if (!checkKernelArgs("binary_forward", a)) return;
    const { aShape, bShape, op } = a;
    const o = d(a.out), x = d(a.a), y = d(a.b);
    const os = aShape.map((v, i) => Math.max(v, bShape[i]));
    const [a0, a1, a2, a3] = strides(aShape), [b0, b1, b2, b3] = strides(bShape);
    let j = 0;
    for (let i0 = 0; i0 < os[0]; i0++) {
      for (let i1 = 0; i1 < os[1]; i1++) {
        for (let i2 = 0; i2 < os[2]; i2++) {
          for (let i3 = 0; i3 < os[3]; i3++) {
            const u = x[i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3];
            const v = y[i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3];
            o[j++] = op === "add" ? u + v : op === "sub" ? u - v : op === "mul" ? u * v : u / v;
          }
        }
      }
    }
  }
  sumToForward(a: KernelArgs<"sum_to_forward">): void {
    if (!checkKernelArgs("sum_to_forward", a)) return;
    const { inShape: is } = a;
    const o = d(a.out), x = d(a.inp), [s0, s1, s2, s3] = strides(a.outShape);
    const acc = new Float64Array(o.length);
    let j = 0;
    for (let i0 = 0; i0 < is[0]; i0++) {
      for (let i1 = 0; i1 < is[1]; i1++) {
        for (let i2 = 0; i2 < is[2]; i2++) {
          for (let i3 = 0; i3 < is[3]; i3++) acc[i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3] += x[j++];
        }
      }
    }
    o.set(acc);
  }
  broadcastForward(a: KernelArgs<"broadcast_forward">): void {
    if (!checkKernelArgs("broadcast_forward", a)) return;
    const { outShape: os } = a;
    const o = d(a.out), x = d(a.inp), [s0, s1, s2, s3] = strides(a.inShape);
    let j = 0;
    for (let i0 = 0; i0 < os[0]; i0++) {
      for (let i1 = 0; i1 < os[1]; i1++) {
        for (let i2 = 0; i2 < os[2]; i2++) {
          for (let i3 = 0; i3 < os[3]; i3++) o[j++] = x[i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3];
        }
      }
    }
  }
  softmaxForward(a: KernelArgs<"softmax_forward">): void {
    if (!checkKernelArgs("softmax_forward", a)) return;
    softmaxRows(d(a.out), d(a.inp), a.rows, a.cols);
  }
  softmaxBackward(a: KernelArgs<"softmax_backward">): void {
    if (!checkKernelArgs("softmax_backward", a)) return;
    const { rows, cols } = a;
    const dx = d(a.dinp), dy = d(a.dout), y = d(a.out);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * y[r * cols + c];
      for (let c = 0; c < cols; c++) {
        dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
      }
    }
  }

  channelCopy(a: KernelArgs<"channel_copy">): void {
    if (!checkKernelArgs("channel_copy", a)) return;
    const { N, Co, Ci, HW, out_off, out_step, in_off, in_step, cn, accumulate } = a;
    const o = d(a.out), x = d(a.inp);
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < cn; j++) {
        const oi = (n * Co + out_off + j * out_step) * HW;
        const xi = (n * Ci + in_off + j * in_step) * HW;
        for (let i = 0; i < HW; i++) o[oi + i] = accumulate ? o[oi + i] + x[xi + i] : x[xi + i];
      }
    }
  }
  layernormChannelsForward(a: KernelArgs<"layernorm_channels_forward">): void {
    if (!checkKernelArgs("layernorm_channels_forward", a)) return;
    const { N, C, HW, eps } = a;
    const o = d(a.out), m = d(a.mean), r = d(a.rstd), x = d(a.inp), w = d(a.weight);
    const b = d(a.bias);
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const at = (c: number) => (n * C + c) * HW + i;
        let sum = 0;
        for (let c = 0; c < C; c++) sum += x[at(c)];
        const mu = sum / C;
        let sq = 0;
        for (let c = 0; c < C; c++) sq += (x[at(c)] - mu) ** 2;
        const rs = 1 / Math.sqrt(sq / C + eps);
        m[n * HW + i] = mu;
        r[n * HW + i] = rs;
        for (let c = 0; c < C; c++) o[at(c)] = (x[at(c)] - mu) * rs * w[c] + b[c];
      }
    }
  }
  layernormChannelsBackward(a: KernelArgs<"layernorm_channels_backward">): void {
    if (!checkKernelArgs("layernorm_channels_backward", a)) return;
    const { N, C, HW } = a;
    const dx = d(a.dinp), dw = d(a.dweight), db = d(a.dbias), dy = d(a.dout), x = d(a.inp);
    const m = d(a.mean), r = d(a.rstd), w = d(a.weight);
    const sw = new Float64Array(C), sb = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const at = (c: number) => (n * C + c) * HW + i;
        const mu = m[n * HW + i], rs = r[n * HW + i];
        // dx = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)) with g = dy·w, x̂ = (x − mean)·rstd.
        let sg = 0, sgx = 0;
        for (let c = 0; c < C; c++) {
          const xhat = (x[at(c)] - mu) * rs, g = dy[at(c)] * w[c];
          sg += g;
          sgx += g * xhat;
          sw[c] += dy[at(c)] * xhat;
          sb[c] += dy[at(c)];
        }
        for (let c = 0; c < C; c++) {
          const xhat = (x[at(c)] - mu) * rs;
          dx[at(c)] = rs * (dy[at(c)] * w[c] - sg / C - xhat * sgx / C);
        }
      }
    }
    dw.set(sw);
    db.set(sb);
  }

  affFuseForward(a: KernelArgs<"aff_fuse_forward">): void {
    if (!checkKernelArgs("aff_fuse_forward", a)) return;
    const { scale } = a;
    const o = d(a.out), sv = d(a.S), fv = d(a.F), l = d(a.L), g = d(a.G);
    const HW = a.H * a.W, n = a.N * a.C * HW;
    for (let i = 0; i < n; i++) {
      const w = 1 / (1 + Math.exp(-(l[i] + g[Math.floor(i / HW)])));
      const v = scale * (fv[i] + w * (sv[i] - fv[i]));
      o[i] = v < 0 ? 0 : v; // NaN propagates, as relu
    }
  }
  affFuseBackward(a: KernelArgs<"aff_fuse_backward">): void {
    if (!checkKernelArgs("aff_fuse_backward", a)) return;
    const { scale } = a;
    const ds = d(a.dS), df = d(a.dF), dl = d(a.dL), dg = d(a.dG), dy = d(a.dout);
    const sv = d(a.S), fv = d(a.F), l = d(a.L), g = d(a.G);
    const HW = a.H * a.W;
    for (let nc = 0; nc < a.N * a.C; nc++) {
      let sum = 0;
      for (let j = 0; j < HW; j++) {
        const i = nc * HW + j;
        const w = 1 / (1 + Math.exp(-(l[i] + g[nc])));
        const diff = sv[i] - fv[i];
        const v = scale * (fv[i] + w * diff);
        const dd = v > 0 ? scale * dy[i] : 0;
        ds[i] = dd * w;
        df[i] = dd * (1 - w);
        dl[i] = dd * diff * w * (1 - w);
        sum += dl[i];
      }
      dg[nc] = sum;
    }
  }

  crossEntropyForward(a: KernelArgs<"cross_entropy_forward">): void {
    if (!checkKernelArgs("cross_entropy_forward", a)) return;
    const { N, K } = a;
    const x = d(a.logits), t = d(a.targets), w = dn(a.weights);
    softmaxRows(d(a.probs), x, N, K);
    let sum = 0;
    for (let n = 0; n < N; n++) {
      const k = checkTarget(t[n], n, K);
      // log-softmax from the logits directly: log(probs) underflows for confident rows.
      let max = -Infinity;
      for (let c = 0; c < K; c++) max = Math.max(max, x[n * K + c]);
      let z = 0;
      for (let c = 0; c < K; c++) z += Math.exp(x[n * K + c] - max);
      sum += (w ? w[n] : 1) * (Math.log(z) + max - x[n * K + k]);
    }
    d(a.loss)[0] = sum / N;
  }
  crossEntropyBackward(a: KernelArgs<"cross_entropy_backward">): void {
    if (!checkKernelArgs("cross_entropy_backward", a)) return;
    const { N, K } = a;
    const dx = d(a.dlogits), g = d(a.dloss)[0], p = d(a.probs), t = d(a.targets);
    const w = dn(a.weights);
    for (let n = 0; n < N; n++) {
      const k = checkTarget(t[n], n, K);
      const scale = g * (w ? w[n] : 1) / N;
      for (let c = 0; c < K; c++) {
        dx[n * K + c] = scale * (p[n * K + c] - (c === k ? 1 : 0));
      }
    }
  }

  dropoutForward(a: KernelArgs<"dropout_forward">): void {
    if (!checkKernelArgs("dropout_forward", a)) return;
    const { n, seed } = a;
    const o = d(a.out), m = d(a.mask), x = d(a.inp);
    // The ABI passes p as float32; native kernels round 1/(1−p) to float32 once.
    const pf = Math.fround(a.p);
    const keepScale = Math.fround(1 / (1 - pf));
    for (let i = 0; i < n; i++) {
      m[i] = hashUniform(seed, i) >= pf ? keepScale : 0;
      o[i] = x[i] * m[i];
    }
  }

  adamwUpdate(a: KernelArgs<"adamw_update">): void {
    if (!checkKernelArgs("adamw_update", a)) return;
    const { lr, beta1, beta2, eps, weight_decay, step } = a;
    const w = d(a.param), mm = d(a.m), vv = d(a.v), g = d(a.grad);
    const c1 = 1 - Math.pow(beta1, step), c2 = 1 - Math.pow(beta2, step);
    for (let i = 0; i < a.n; i++) {
      w[i] *= 1 - lr * weight_decay;
      mm[i] = beta1 * mm[i] + (1 - beta1) * g[i];
      vv[i] = beta2 * vv[i] + (1 - beta2) * g[i] * g[i];
      w[i] -= lr * (mm[i] / c1) / (Math.sqrt(vv[i] / c2) + eps);
    }
  }
}

/** min(max(x + 3, 0), 6)/6, with NaN propagating (hardsigmoid, and hardswish's factor). */
function hard01(x: number): number {
  const t = x + 3 < 0 ? 0 : x + 3;
  return (t > 6 ? 6 : t) / 6;
}

/** Φ(x), the standard normal CDF, as erfc(−x/√2)/2: accurate in both tails. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

const SQRT_PI = 1.7724538509055160;
/** Where erf/erfc switch from the series to the continued fraction. */
const ERF_SPLIT = 2;

/** e^(−x²) without the rounding of x²: x = hi + lo with hi of 24 bits, so hi² is exact. */
function expMinusSquare(x: number): number {
  const hi = Math.fround(x), lo = x - hi;
  return Math.exp(-hi * hi) * Math.exp(-lo * (x + hi));
}

/** erf(x) = 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)): positive terms, no cancellation. */
function erfSeries(x: number): number {
  const x2 = 2 * x * x;
  let term = x, sum = x;
  for (let n = 0; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= x2 / (2 * n + 3);
    sum += term;
  }
  return (2 / SQRT_PI) * expMinusSquare(x) * sum;
}

/**
 * erfc(x) for x ≥ ERF_SPLIT: e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), the
 * continued fraction evaluated by the modified Lentz method (≤ 70 terms here).
 */
function erfcFraction(x: number): number {
  if (x > 27.3) return 0; // below the smallest double
  let f = x, c = x, dd = 0;
  for (let k = 1; k < 1000; k++) {
    dd = 1 / (x + (k / 2) * dd);
    c = x + (k / 2) / c;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return expMinusSquare(x) / (SQRT_PI * f);
}

/**
 * The error function, to a relative error of about 1e-15 (JavaScript has no Math.erf): the
 * series for |x| < 2, else 1 − erfc(|x|) with the sign of x.
 */
export function erf(x: number): number {
  if (Math.abs(x) < ERF_SPLIT) return x === 0 ? x : erfSeries(x);
  if (Number.isNaN(x)) return x;
  const c = erfcFraction(Math.abs(x));
  return x > 0 ? 1 - c : c - 1;
}

/**
 * The complementary error function 1 − erf(x), to a relative error below 1e-12 where it
 * does not underflow: 1 − erf(x) for |x| < 2, the continued fraction beyond (2 − that for
 * x ≤ −2).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return x;
  if (Math.abs(x) < ERF_SPLIT) return 1 - erfSeries(x);
  const c = erfcFraction(Math.abs(x));
  return x > 0 ? c : 2 - c;
}

/** The class index of a cross-entropy target, or a RangeError (a data check C also makes). */
function checkTarget(t: number, n: number, K: number): number {
  if (!Number.isInteger(t) || t < 0 || t >= K) {
    throw new RangeError(
      `Cannot compute cross-entropy: target of sample ${n} is ${t}, expected an integer in 0..${
        K - 1
      }`,
    );
  }
  return t;
}
