/**
 * The reference backend: every kernel of native/include/fbp.h written as plain loops in
 * TypeScript, with no tricks. It is slow on purpose and is the ground truth the native
 * backends are tested against (the role of tinygrad's ops_python.py and llm.c's
 * train_gpt2.c). With `precision: "f64"` it stores and computes in float64, which makes
 * central finite differences accurate enough to check gradients.
 * @module
 */
import type {
  AdamWHyper,
  Backend,
  BinaryOpName,
  ConvSizes,
  NchwSizes,
  PoolSizes,
  Shape4,
  Storage,
  UnaryOpName,
} from "./backend.ts";

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

function outSize(x: number, k: number, stride: number, pad: number): number {
  return Math.floor((x + 2 * pad - k) / stride) + 1;
}

function strides(s: Shape4): [number, number, number, number] {
  return [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
}

/** Options of the reference backend. */
export interface ReferenceOptions {
  /** Storage precision: "f32" (default, like the native backends) or "f64". */
  precision?: "f32" | "f64";
}

/** Slow, exact pure-TypeScript implementation of the kernel table. */
export class ReferenceBackend implements Backend {
  readonly name = "reference";
  readonly precision: "f32" | "f64";

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

  fill(out: Storage, value: number, n: number): void {
    d(out).fill(value, 0, n);
  }
  copy(
    out: Storage,
    outOffset: number,
    inp: Storage,
    inOffset: number,
    n: number,
    accumulate: boolean,
  ): void {
    const o = d(out), x = d(inp);
    for (let i = 0; i < n; i++) {
      o[outOffset + i] = accumulate ? o[outOffset + i] + x[inOffset + i] : x[inOffset + i];
    }
  }

  conv2dForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    s: ConvSizes,
  ): void {
    const { N, C, H, W, K, R, S, stride, pad } = s;
    const P = outSize(H, R, stride, pad), Q = outSize(W, S, stride, pad);
    const o = d(out), x = d(inp), w = d(weight), b = bias ? d(bias) : null;
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        for (let p = 0; p < P; p++) {
          for (let q = 0; q < Q; q++) {
            let acc = b ? b[k] : 0;
            for (let c = 0; c < C; c++) {
              for (let r = 0; r < R; r++) {
                const h = p * stride - pad + r;
                if (h < 0 || h >= H) continue;
                for (let t = 0; t < S; t++) {
                  const ww = q * stride - pad + t;
                  if (ww < 0 || ww >= W) continue;
                  acc += x[((n * C + c) * H + h) * W + ww] * w[((k * C + c) * R + r) * S + t];
                }
              }
            }
            o[((n * K + k) * P + p) * Q + q] = acc;
          }
        }
      }
    }
  }
  conv2dBackwardData(dinp: Storage, dout: Storage, weight: Storage, s: ConvSizes): void {
    const { N, C, H, W, K, R, S, stride, pad } = s;
    const P = outSize(H, R, stride, pad), Q = outSize(W, S, stride, pad);
    const dx = d(dinp), dy = d(dout), w = d(weight);
    dx.fill(0, 0, N * C * H * W);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        for (let p = 0; p < P; p++) {
          for (let q = 0; q < Q; q++) {
            const g = dy[((n * K + k) * P + p) * Q + q];
            for (let c = 0; c < C; c++) {
              for (let r = 0; r < R; r++) {
                const h = p * stride - pad + r;
                if (h < 0 || h >= H) continue;
                for (let t = 0; t < S; t++) {
                  const ww = q * stride - pad + t;
                  if (ww < 0 || ww >= W) continue;
                  dx[((n * C + c) * H + h) * W + ww] += g * w[((k * C + c) * R + r) * S + t];
                }
              }
            }
          }
        }
      }
    }
  }
  conv2dBackwardWeights(
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    s: ConvSizes,
  ): void {
    const { N, C, H, W, K, R, S, stride, pad } = s;
    const P = outSize(H, R, stride, pad), Q = outSize(W, S, stride, pad);
    const dw = d(dweight), dy = d(dout), x = d(inp);
    dw.fill(0, 0, K * C * R * S);
    const db = dbias ? d(dbias) : null;
    if (db) db.fill(0, 0, K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        for (let p = 0; p < P; p++) {
          for (let q = 0; q < Q; q++) {
            const g = dy[((n * K + k) * P + p) * Q + q];
            if (db) db[k] += g;
            for (let c = 0; c < C; c++) {
              for (let r = 0; r < R; r++) {
                const h = p * stride - pad + r;
                if (h < 0 || h >= H) continue;
                for (let t = 0; t < S; t++) {
                  const ww = q * stride - pad + t;
                  if (ww < 0 || ww >= W) continue;
                  dw[((k * C + c) * R + r) * S + t] += g * x[((n * C + c) * H + h) * W + ww];
                }
              }
            }
          }
        }
      }
    }
  }

  batchnormForwardTrain(
    out: Storage,
    mean: Storage,
    variance: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const { N, C, H, W } = s;
    const x = d(inp), m = d(mean), v = d(variance);
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
    this.batchnormForwardInfer(out, inp, weight, bias, mean, variance, s, eps);
  }
  batchnormForwardInfer(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    mean: Storage,
    variance: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const { N, C, H, W } = s;
    const o = d(out), x = d(inp), g = d(weight), b = d(bias), m = d(mean), v = d(variance);
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
  batchnormBackward(
    dinp: Storage,
    dweight: Storage,
    dbias: Storage,
    dout: Storage,
    inp: Storage,
    mean: Storage,
    variance: Storage,
    weight: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const { N, C, H, W } = s;
    const dx = d(dinp), dg = d(dweight), db = d(dbias), dy = d(dout), x = d(inp);
    const m = d(mean), v = d(variance), g = d(weight);
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

  maxpool2dForward(out: Storage, inp: Storage, s: PoolSizes): void {
    const o = d(out), x = d(inp);
    this.#maxpoolWalk(s, x, (oi, xi) => {
      o[oi] = xi < 0 ? -Infinity : x[xi];
    });
  }
  maxpool2dBackward(dinp: Storage, dout: Storage, inp: Storage, s: PoolSizes): void {
    const dx = d(dinp), dy = d(dout), x = d(inp);
    dx.fill(0, 0, s.N * s.C * s.H * s.W);
    this.#maxpoolWalk(s, x, (oi, xi) => {
      if (xi >= 0) dx[xi] += dy[oi];
    });
  }
  /** Visits each output with the index of its window's first maximum (-1: all padding). */
  #maxpoolWalk(s: PoolSizes, x: Floats, visit: (oi: number, xi: number) => void): void {
    const { N, C, H, W, kernel, stride, pad } = s;
    const P = outSize(H, kernel, stride, pad), Q = outSize(W, kernel, stride, pad);
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
  avgpoolGlobalForward(out: Storage, inp: Storage, s: NchwSizes): void {
    const o = d(out), x = d(inp), HW = s.H * s.W;
    for (let nc = 0; nc < s.N * s.C; nc++) {
      let sum = 0;
      for (let i = 0; i < HW; i++) sum += x[nc * HW + i];
      o[nc] = sum / HW;
    }
  }
  avgpoolGlobalBackward(dinp: Storage, dout: Storage, s: NchwSizes): void {
    const dx = d(dinp), dy = d(dout), HW = s.H * s.W;
    for (let nc = 0; nc < s.N * s.C; nc++) {
      for (let i = 0; i < HW; i++) dx[nc * HW + i] = dy[nc] / HW;
    }
  }

  linearForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    N: number,
    I: number,
    O: number,
  ): void {
    const o = d(out), x = d(inp), w = d(weight), b = bias ? d(bias) : null;
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < O; j++) {
        let acc = b ? b[j] : 0;
        for (let i = 0; i < I; i++) acc += x[n * I + i] * w[j * I + i];
        o[n * O + j] = acc;
      }
    }
  }
  linearBackward(
    dinp: Storage | null,
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    weight: Storage,
    N: number,
    I: number,
    O: number,
  ): void {
    const dy = d(dout), x = d(inp), w = d(weight), dw = d(dweight);
    if (dinp) {
      const dx = d(dinp);
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
    if (dbias) {
      const db = d(dbias);
      for (let j = 0; j < O; j++) {
        let acc = 0;
        for (let n = 0; n < N; n++) acc += dy[n * O + j];
        db[j] = acc;
      }
    }
  }

  unaryForward(out: Storage, inp: Storage, n: number, op: UnaryOpName): void {
    const o = d(out), x = d(inp);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      switch (op) {
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
      }
    }
  }
  unaryBackward(
    dinp: Storage,
    dout: Storage,
    inp: Storage,
    out: Storage,
    n: number,
    op: UnaryOpName,
  ): void {
    const dx = d(dinp), dy = d(dout), x = d(inp), y = d(out);
    for (let i = 0; i < n; i++) {
      switch (op) {
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
      }
    }
  }
  scale(out: Storage, inp: Storage, alpha: number, beta: number, n: number): void {
    const o = d(out), x = d(inp);
    for (let i = 0; i < n; i++) o[i] = alpha * x[i] + beta;
  }
  binaryForward(
    out: Storage,
    a: Storage,
    b: Storage,
    aShape: Shape4,
    bShape: Shape4,
    op: BinaryOpName,
  ): void {
    const o = d(out), x = d(a), y = d(b);
    const os = aShape.map((v, i) => Math.max(v, bShape[i])) as unknown as Shape4;
    const as = strides(aShape), bs = strides(bShape);
    let j = 0;
    for (let i0 = 0; i0 < os[0]; i0++) {
      for (let i1 = 0; i1 < os[1]; i1++) {
        for (let i2 = 0; i2 < os[2]; i2++) {
          for (let i3 = 0; i3 < os[3]; i3++) {
            const ai = (aShape[0] === 1 ? 0 : i0 * as[0]) + (aShape[1] === 1 ? 0 : i1 * as[1]) +
              (aShape[2] === 1 ? 0 : i2 * as[2]) + (aShape[3] === 1 ? 0 : i3);
            const bi = (bShape[0] === 1 ? 0 : i0 * bs[0]) + (bShape[1] === 1 ? 0 : i1 * bs[1]) +
              (bShape[2] === 1 ? 0 : i2 * bs[2]) + (bShape[3] === 1 ? 0 : i3);
            const u = x[ai], v = y[bi];
            o[j++] = op === "add" ? u + v : op === "sub" ? u - v : op === "mul" ? u * v : u / v;
          }
        }
      }
    }
  }
  sumTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    const o = d(out), x = d(inp), os = strides(outShape);
    const acc = new Float64Array(o.length);
    let j = 0;
    for (let i0 = 0; i0 < inShape[0]; i0++) {
      for (let i1 = 0; i1 < inShape[1]; i1++) {
        for (let i2 = 0; i2 < inShape[2]; i2++) {
          for (let i3 = 0; i3 < inShape[3]; i3++) {
            const oi = (outShape[0] === 1 ? 0 : i0 * os[0]) +
              (outShape[1] === 1 ? 0 : i1 * os[1]) + (outShape[2] === 1 ? 0 : i2 * os[2]) +
              (outShape[3] === 1 ? 0 : i3);
            acc[oi] += x[j++];
          }
        }
      }
    }
    o.set(acc);
  }
  broadcastTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    const o = d(out), x = d(inp), is = strides(inShape);
    let j = 0;
    for (let i0 = 0; i0 < outShape[0]; i0++) {
      for (let i1 = 0; i1 < outShape[1]; i1++) {
        for (let i2 = 0; i2 < outShape[2]; i2++) {
          for (let i3 = 0; i3 < outShape[3]; i3++) {
            o[j++] = x[
              (inShape[0] === 1 ? 0 : i0 * is[0]) + (inShape[1] === 1 ? 0 : i1 * is[1]) +
              (inShape[2] === 1 ? 0 : i2 * is[2]) + (inShape[3] === 1 ? 0 : i3)
            ];
          }
        }
      }
    }
  }
  softmaxForward(out: Storage, inp: Storage, rows: number, cols: number): void {
    const o = d(out), x = d(inp);
    for (let r = 0; r < rows; r++) {
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c] - max);
      for (let c = 0; c < cols; c++) o[r * cols + c] = Math.exp(x[r * cols + c] - max) / sum;
    }
  }
  softmaxBackward(
    dinp: Storage,
    dout: Storage,
    out: Storage,
    rows: number,
    cols: number,
  ): void {
    const dx = d(dinp), dy = d(dout), y = d(out);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * y[r * cols + c];
      for (let c = 0; c < cols; c++) {
        dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
      }
    }
  }

  affFuseForward(
    out: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void {
    const o = d(out), sv = d(S), fv = d(F), l = d(L), g = d(G);
    const HW = s.H * s.W, n = s.N * s.C * HW;
    for (let i = 0; i < n; i++) {
      const w = 1 / (1 + Math.exp(-(l[i] + g[Math.floor(i / HW)])));
      const v = scale * (fv[i] + w * (sv[i] - fv[i]));
      o[i] = v < 0 ? 0 : v; // NaN propagates, as relu
    }
  }
  affFuseBackward(
    dS: Storage,
    dF: Storage,
    dL: Storage,
    dG: Storage,
    dout: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void {
    const ds = d(dS), df = d(dF), dl = d(dL), dg = d(dG), dy = d(dout);
    const sv = d(S), fv = d(F), l = d(L), g = d(G);
    const HW = s.H * s.W;
    for (let nc = 0; nc < s.N * s.C; nc++) {
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

  crossEntropyForward(
    loss: Storage,
    probs: Storage,
    logits: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void {
    this.softmaxForward(probs, logits, N, K);
    const x = d(logits), t = d(targets), w = weights ? d(weights) : null;
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
    d(loss)[0] = sum / N;
  }
  crossEntropyBackward(
    dlogits: Storage,
    dloss: Storage,
    probs: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void {
    const dx = d(dlogits), g = d(dloss)[0], p = d(probs), t = d(targets);
    const w = weights ? d(weights) : null;
    for (let n = 0; n < N; n++) {
      const k = checkTarget(t[n], n, K);
      const scale = g * (w ? w[n] : 1) / N;
      for (let c = 0; c < K; c++) {
        dx[n * K + c] = scale * (p[n * K + c] - (c === k ? 1 : 0));
      }
    }
  }

  dropoutForward(
    out: Storage,
    mask: Storage,
    inp: Storage,
    n: number,
    p: number,
    seed: number,
  ): void {
    const o = d(out), m = d(mask), x = d(inp);
    // The ABI passes p as float32; native kernels round 1/(1−p) to float32 once.
    const pf = Math.fround(p);
    const keepScale = Math.fround(1 / (1 - pf));
    for (let i = 0; i < n; i++) {
      m[i] = hashUniform(seed, i) >= pf ? keepScale : 0;
      o[i] = x[i] * m[i];
    }
  }

  adamwUpdate(
    param: Storage,
    m: Storage,
    v: Storage,
    grad: Storage,
    n: number,
    h: AdamWHyper,
    step: number,
  ): void {
    const w = d(param), mm = d(m), vv = d(v), g = d(grad);
    const c1 = 1 - Math.pow(h.beta1, step), c2 = 1 - Math.pow(h.beta2, step);
    for (let i = 0; i < n; i++) {
      w[i] *= 1 - h.lr * h.weightDecay;
      mm[i] = h.beta1 * mm[i] + (1 - h.beta1) * g[i];
      vv[i] = h.beta2 * vv[i] + (1 - h.beta2) * g[i] * g[i];
      w[i] -= h.lr * (mm[i] / c1) / (Math.sqrt(vv[i] / c2) + h.eps);
    }
  }
}

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
