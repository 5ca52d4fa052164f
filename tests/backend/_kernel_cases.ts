/**
 * The kernel cases every native backend runs against the pure-TypeScript reference backend
 * (tests/backend/cpu_kernels_test.ts for the CPU, tests/backend/cuda_test.ts for CUDA), on
 * awkward shapes (batch 1, 1×1 spatial, non-square, stride 2 with odd sizes, channel counts
 * that are not multiples of 8, 1×1/3×3/7×7 kernels, with and without bias).
 *
 * Tolerances are |got − ref| <= atol + rtol·|ref| per element, stated per kernel family in
 * {@link CPU_TOLERANCES}: the reference accumulates in float64, the native backends in
 * float32 in another order, so reductions over k terms differ by a few k·2⁻²⁴ relative.
 * A backend whose library may legitimately round differently (cuDNN's FFT and Winograd
 * convolutions) passes its own, stated where it calls {@link kernelTests}.
 * @module
 */
import assert from "node:assert/strict";
import type {
  Backend,
  ConvSizes,
  NchwSizes,
  PoolSizes,
  Shape4,
  Storage,
} from "../../src/backend/backend.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { windowSize } from "../../src/backend/check_args.ts";

const ref = new ReferenceBackend();

/** Deterministic uniform values in [lo, hi). */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = lo + ((x >>> 0) / 4294967296) * (hi - lo);
  }
  return a;
}

/** Tensors a kernel reads (`inputs`), overwrites (`outputs`: sizes) or updates (`inouts`). */
export interface Case {
  inputs?: Record<string, Float32Array>;
  outputs?: Record<string, number>;
  inouts?: Record<string, Float32Array>;
  run(b: Backend, t: Record<string, Storage>): void;
}

/** Runs a case on one backend; outputs start as NaN so unwritten elements fail. */
export function runOn(b: Backend, c: Case): Record<string, Float32Array> {
  const t: Record<string, Storage> = {};
  const put = (name: string, data: Float32Array) => {
    t[name] = b.alloc(data.length);
    b.copyIn(t[name], data);
  };
  for (const [k, v] of Object.entries(c.inputs ?? {})) put(k, v);
  for (const [k, v] of Object.entries(c.inouts ?? {})) put(k, v);
  for (const [k, n] of Object.entries(c.outputs ?? {})) put(k, new Float32Array(n).fill(NaN));
  c.run(b, t);
  const res: Record<string, Float32Array> = {};
  for (const k of [...Object.keys(c.outputs ?? {}), ...Object.keys(c.inouts ?? {})]) {
    res[k] = b.copyOut(t[k]);
  }
  for (const s of Object.values(t)) b.free(s);
  return res;
}

/** Asserts |got − want| <= atol + rtol·|want| elementwise (NaN matches NaN). */
export function assertClose(
  label: string,
  got: Float32Array,
  want: Float32Array,
  atol: number,
  rtol: number,
  backend = "backend",
): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue; // also equal infinities
    const tol = atol + rtol * Math.abs(w);
    if (!(Math.abs(g - w) <= tol)) {
      assert.fail(
        `${label}[${i}]: ${backend} ${g} vs reference ${w} (|diff| ${Math.abs(g - w)} > ${tol})`,
      );
    }
  }
}

/** `compare(case, atol, rtol, only?)`: runs a case on `target()` and on the reference. */
function comparer(target: () => Backend) {
  return (c: Case, atol: number, rtol: number, only?: string[]): void => {
    const b = target();
    const got = runOn(b, c), want = runOn(ref, c);
    for (const k of only ?? Object.keys(want)) assertClose(k, got[k], want[k], atol, rtol, b.name);
  };
}

function outSize(x: number, k: number, stride: number, pad: number): number {
  return Math.floor((x + 2 * pad - k) / stride) + 1;
}

/** A tolerance |got − ref| <= atol + rtol·|ref|. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Tolerances of the kernel families whose native implementation comes from a library. */
export interface Tolerances {
  /** Convolution forward and backward-data. */
  conv: Tolerance;
  /** Convolution backward-weights (sums over N·P·Q). */
  convWeights: Tolerance;
  batchnorm: Tolerance;
  batchnormBackward: Tolerance;
  linear: Tolerance;
}

/** The tolerances the CPU backend meets (and the default). */
export const CPU_TOLERANCES: Tolerances = {
  // float32 accumulation over C·R·S (up to 576) terms of magnitude ≤ 1; 3×3 stride-1
  // forward and backward-data run as Winograd F(4×4, 3×3), whose transforms round at up
  // to ~1e-6 of the terms' absolute sum (≈ 144 here): measured max |diff| 2.7e-5.
  conv: { atol: 1e-4, rtol: 1e-4 },
  convWeights: { atol: 2e-4, rtol: 1e-4 },
  // Statistics over ≤ 800 values, normalised outputs of magnitude ~3.
  batchnorm: { atol: 1e-4, rtol: 1e-4 },
  batchnormBackward: { atol: 1e-3, rtol: 1e-3 },
  // float32 GEMM accumulation over up to 512 terms.
  linear: { atol: 3e-5, rtol: 1e-4 },
};

/** One named check of a backend against the reference. */
export interface KernelTest {
  name: string;
  fn: () => void;
}

export const convCases: [string, ConvSizes, boolean][] = [
  [
    "batch 1 and 1x1 spatial",
    { N: 1, C: 3, H: 1, W: 1, K: 5, R: 1, S: 1, G: 1, stride: 1, pad: 0 },
    true,
  ],
  [
    "stride 2 odd sizes",
    { N: 2, C: 3, H: 9, W: 7, K: 10, R: 3, S: 3, G: 1, stride: 2, pad: 1 },
    false,
  ],
  [
    "7x7 stride 2 stem",
    { N: 2, C: 3, H: 15, W: 13, K: 12, R: 7, S: 7, G: 1, stride: 2, pad: 3 },
    true,
  ],
  ["channels not a multiple of 8", {
    N: 3,
    C: 13,
    H: 6,
    W: 5,
    K: 11,
    R: 3,
    S: 3,
    G: 1,
    stride: 1,
    pad: 1,
  }, true],
  [
    "1x1 stride 2 downsample",
    { N: 2, C: 12, H: 7, W: 9, K: 20, R: 1, S: 1, G: 1, stride: 2, pad: 0 },
    false,
  ],
  [
    "non-square kernel",
    { N: 2, C: 4, H: 6, W: 5, K: 6, R: 3, S: 1, G: 1, stride: 1, pad: 0 },
    true,
  ],
  [
    "kernel covering the input",
    { N: 2, C: 16, H: 3, W: 3, K: 9, R: 3, S: 3, G: 1, stride: 1, pad: 0 },
    false,
  ],
  [
    "64 channels 3x3",
    { N: 2, C: 64, H: 8, W: 8, K: 64, R: 3, S: 3, G: 1, stride: 1, pad: 1 },
    true,
  ],
  // Grouped convolutions: weight (K, C/G, R, S); G = C = K is depthwise.
  ["2 groups", { N: 2, C: 4, H: 7, W: 6, K: 6, R: 3, S: 3, G: 2, stride: 1, pad: 1 }, true],
  [
    "depthwise 3x3 stride 2 pad 1",
    { N: 2, C: 5, H: 9, W: 8, K: 5, R: 3, S: 3, G: 5, stride: 2, pad: 1 },
    true,
  ],
  [
    "depthwise 7x7 pad 3 on 9x9",
    { N: 2, C: 20, H: 9, W: 9, K: 20, R: 7, S: 7, G: 20, stride: 1, pad: 3 },
    false,
  ],
  [
    "depthwise 3x3 32 channels",
    { N: 2, C: 32, H: 10, W: 10, K: 32, R: 3, S: 3, G: 32, stride: 1, pad: 1 },
    true,
  ],
  [
    "depthwise with channel multiplier 2",
    { N: 2, C: 4, H: 6, W: 7, K: 8, R: 3, S: 3, G: 4, stride: 1, pad: 1 },
    false,
  ],
  ["1x1 3 groups", { N: 2, C: 9, H: 5, W: 7, K: 12, R: 1, S: 1, G: 3, stride: 1, pad: 0 }, true],
];

export function convTests(
  target: () => Backend,
  s: ConvSizes,
  bias: boolean,
  seed: number,
  tol: Tolerances = CPU_TOLERANCES,
) {
  const compare = comparer(target);
  const P = outSize(s.H, s.R, s.stride, s.pad), Q = outSize(s.W, s.S, s.stride, s.pad);
  const nx = s.N * s.C * s.H * s.W, nw = s.K * (s.C / s.G) * s.R * s.S, ny = s.N * s.K * P * Q;
  return {
    forward: () =>
      compare(
        {
          inputs: { x: rand(nx, seed), w: rand(nw, seed + 1), b: rand(s.K, seed + 2) },
          outputs: { y: ny },
          run: (b, t) =>
            b.conv2dForward({ out: t.y, inp: t.x, weight: t.w, bias: bias ? t.b : null, ...s }),
        },
        tol.conv.atol,
        tol.conv.rtol,
      ),
    backwardData: () =>
      compare(
        {
          inputs: { dy: rand(ny, seed + 3), w: rand(nw, seed + 1) },
          outputs: { dx: nx },
          run: (b, t) => b.conv2dBackwardData({ dinp: t.dx, dout: t.dy, weight: t.w, ...s }),
        },
        tol.conv.atol,
        tol.conv.rtol,
      ),
    backwardWeights: () =>
      compare(
        {
          inputs: { dy: rand(ny, seed + 3), x: rand(nx, seed) },
          outputs: { dw: nw, db: s.K },
          run: (b, t) =>
            b.conv2dBackwardWeights({
              dweight: t.dw,
              dbias: bias ? t.db : null,
              dout: t.dy,
              inp: t.x,
              ...s,
            }),
        },
        tol.convWeights.atol,
        tol.convWeights.rtol,
        bias ? ["dw", "db"] : ["dw"],
      ),
  };
}

/**
 * Every kernel of native/include/fbp.h on `target()` against the reference backend. The
 * backend is fetched when a test runs, so a suite can be registered (and reported as
 * ignored) where the backend cannot load.
 */
export function kernelTests(
  target: () => Backend,
  tol: Tolerances = CPU_TOLERANCES,
): KernelTest[] {
  const tests: KernelTest[] = [];
  const add = (name: string, fn: () => void) => tests.push({ name, fn });
  const compare = comparer(target);
  const label = () => target().name;

  // ---- memory ----------------------------------------------------------------------------

  add("copyIn/copyOut round trip", () => {
    const b = target();
    for (const n of [1, 7, 3_000_001]) {
      const x = rand(n, n), s = b.alloc(n);
      b.copyIn(s, x);
      assert.deepEqual(b.copyOut(s), x);
      b.free(s);
    }
  });

  add("fill matches reference", () => {
    for (const n of [1, 1000, 100_003]) {
      compare(
        { outputs: { out: n }, run: (b, t) => b.fillForward({ out: t.out, value: -2.5, n }) },
        0,
        0,
      );
    }
  });

  add("copy matches reference with offsets, set and accumulate", () => {
    for (const accumulate of [false, true]) {
      for (const n of [5, 70_001]) {
        compare(
          {
            inputs: { inp: rand(n + 9, 1) },
            inouts: { out: rand(n + 4, 2) },
            run: (b, t) =>
              b.copyForward({ out: t.out, out_off: 3, inp: t.inp, in_off: 7, n, accumulate }),
          },
          0,
          0,
        );
      }
    }
  });

  // ---- convolution -----------------------------------------------------------------------

  // ---- convolution -------------------------------------------------------------------------

  convCases.forEach(([name, s, bias], i) => {
    const t = convTests(target, s, bias, 10 * i + 1, tol);
    const b = bias ? "with bias" : "without bias";
    add(`conv2d_forward matches reference for ${name} (${b})`, t.forward);
    add(`conv2d_backward_data matches reference for ${name}`, t.backwardData);
    add(`conv2d_backward_weights matches reference for ${name} (${b})`, t.backwardWeights);
  });

  // ---- batch normalization -----------------------------------------------------------------

  // [name, sizes, range of x]; the default range has a non-zero mean.
  const bnCases: [string, NchwSizes, [number, number]?][] = [
    ["odd sizes", { N: 2, C: 3, H: 4, W: 5 }],
    ["batch 1 with 13 channels", { N: 1, C: 13, H: 7, W: 3 }],
    ["1x1 spatial", { N: 4, C: 10, H: 1, W: 1 }],
    ["one value per channel", { N: 1, C: 3, H: 1, W: 1 }],
    ["larger planes", { N: 3, C: 20, H: 17, W: 15 }],
    // Above the native threshold for running with a thread team.
    ["more values than one thread's share", { N: 4, C: 24, H: 20, W: 19 }],
    // |mean| ≫ std: a float32 one-pass variance (Σx² − (Σx)²/m) loses every digit here.
    ["mean far from zero", { N: 2, C: 5, H: 6, W: 7 }, [999, 1001]],
  ];
  const EPS = 1e-5;

  bnCases.forEach(([name, s, range], i) => {
    const n = s.N * s.C * s.H * s.W, seed = 100 + 10 * i;
    const x = rand(n, seed, ...(range ?? [-1.5, 2.5]));
    const g = rand(s.C, seed + 1, 0.5, 1.5), beta = rand(s.C, seed + 2);
    const forwardTrain: Case = {
      inputs: { x, g, beta },
      outputs: { y: n, mean: s.C, variance: s.C },
      run: (b, t) =>
        b.batchnormForwardTrain({
          out: t.y,
          mean: t.mean,
          var: t.variance,
          inp: t.x,
          weight: t.g,
          bias: t.beta,
          ...s,
          eps: EPS,
        }),
    };
    add(`batchnorm_forward_train matches reference for ${name}`, () => {
      compare(forwardTrain, tol.batchnorm.atol, tol.batchnorm.rtol);
    });
    add(`batchnorm_forward_infer matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x, g, beta, mean: rand(s.C, seed + 3), variance: rand(s.C, seed + 4, 0.1, 2) },
          outputs: { y: n },
          run: (b, t) =>
            b.batchnormForwardInfer({
              out: t.y,
              inp: t.x,
              weight: t.g,
              bias: t.beta,
              mean: t.mean,
              var: t.variance,
              ...s,
              eps: EPS,
            }),
        },
        tol.batchnorm.atol,
        tol.batchnorm.rtol,
      );
    });
    add(`batchnorm_backward matches reference for ${name}`, () => {
      // Statistics from the reference forward, as the autograd tape would pass them.
      const stats = runOn(ref, forwardTrain);
      compare(
        {
          inputs: { dy: rand(n, seed + 5), x, mean: stats.mean, variance: stats.variance, g },
          outputs: { dx: n, dg: s.C, db: s.C },
          run: (b, t) =>
            b.batchnormBackward({
              dinp: t.dx,
              dweight: t.dg,
              dbias: t.db,
              dout: t.dy,
              inp: t.x,
              mean: t.mean,
              var: t.variance,
              weight: t.g,
              ...s,
              eps: EPS,
            }),
        },
        tol.batchnormBackward.atol,
        tol.batchnormBackward.rtol,
      );
    });
  });

  // ---- pooling -----------------------------------------------------------------------------

  // (N, C, H, W, kernel, stride, pad, ceil mode)
  const pool = (
    N: number,
    C: number,
    H: number,
    W: number,
    kernel: number,
    stride: number,
    pad: number,
    ceil = false,
  ): PoolSizes => ({ N, C, H, W, kernel, stride, pad, ceil });
  const poolCases: [string, PoolSizes][] = [
    ["3x3 stride 2 pad 1 odd sizes", pool(2, 3, 7, 9, 3, 2, 1)],
    ["1x1 spatial", pool(1, 5, 1, 1, 1, 1, 0)],
    ["2x2 stride 2", pool(2, 2, 6, 5, 2, 2, 0)],
    ["3x3 stride 1 pad 1 (overlapping)", pool(1, 11, 5, 8, 3, 1, 1)],
    ["windows of only padding", pool(1, 2, 3, 3, 2, 1, 2)],
    ["stem-sized", pool(2, 16, 56, 56, 3, 2, 1)],
    // Ceil mode (PyTorch's ceil_mode): the last windows extend past the input.
    ["3x3 stride 2 ceil on 10x10", pool(2, 3, 10, 10, 3, 2, 0, true)],
    ["3x3 stride 2 ceil on 7x9 (as floor)", pool(2, 3, 7, 9, 3, 2, 0, true)],
    ["3x3 stride 2 ceil on 8x11", pool(1, 4, 8, 11, 3, 2, 0, true)],
    ["2x2 stride 2 ceil on 5x5", pool(2, 3, 5, 5, 2, 2, 0, true)],
    ["3x3 stride 1 pad 1 ceil", pool(1, 5, 5, 8, 3, 1, 1, true)],
    ["3x3 stride 2 pad 1 ceil on 6x8", pool(2, 3, 6, 8, 3, 2, 1, true)],
    ["3x3 stride 3 pad 1 ceil (no window starts in the padding)", pool(1, 2, 5, 8, 3, 3, 1, true)],
    ["stem-sized ceil", pool(2, 16, 56, 56, 3, 2, 0, true)],
  ];

  poolCases.forEach(([name, s], i) => {
    const n = s.N * s.C * s.H * s.W;
    const P = windowSize(s.H, s.kernel, s.stride, s.pad, s.ceil);
    const Q = windowSize(s.W, s.kernel, s.stride, s.pad, s.ceil);
    // Few distinct values, so windows have ties and "first maximum wins" is exercised.
    const x = rand(n, 200 + i, -2, 2).map((v) => Math.round(v));
    add(`maxpool2d_forward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x },
          outputs: { y: s.N * s.C * P * Q },
          run: (b, t) => b.maxpool2dForward({ out: t.y, inp: t.x, ...s }),
        },
        0,
        0,
      );
    });
    add(`maxpool2d_backward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x, dy: rand(s.N * s.C * P * Q, 300 + i) },
          outputs: { dx: n },
          run: (b, t) => b.maxpool2dBackward({ dinp: t.dx, dout: t.dy, inp: t.x, ...s }),
        },
        1e-6,
        1e-6,
      );
    });
  });

  const avgCases: [string, NchwSizes][] = [
    ["odd sizes", { N: 2, C: 3, H: 4, W: 5 }],
    ["1x1 everything", { N: 1, C: 1, H: 1, W: 1 }],
    ["7x7 planes", { N: 3, C: 70, H: 7, W: 7 }],
  ];
  avgCases.forEach(([name, s], i) => {
    const n = s.N * s.C * s.H * s.W;
    add(`avgpool_global_forward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x: rand(n, 400 + i) },
          outputs: { y: s.N * s.C },
          run: (b, t) => b.avgpoolGlobalForward({ out: t.y, inp: t.x, ...s }),
        },
        1e-6,
        1e-6,
      );
    });
    add(`avgpool_global_backward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { dy: rand(s.N * s.C, 500 + i) },
          outputs: { dx: n },
          run: (b, t) => b.avgpoolGlobalBackward({ dinp: t.dx, dout: t.dy, ...s }),
        },
        0,
        1e-7,
      );
    });
  });

  // ---- linear ------------------------------------------------------------------------------

  const linearCases: [string, number, number, number, boolean][] = [
    ["1x1x1", 1, 1, 1, true],
    ["odd sizes without bias", 5, 7, 3, false],
    ["head 33x512 -> 5", 33, 512, 5, true],
    ["wide output", 4, 17, 300, true],
  ];
  linearCases.forEach(([name, N, I, O, bias], i) => {
    const x = rand(N * I, 600 + i), w = rand(O * I, 610 + i), bv = rand(O, 620 + i);
    add(`linear_forward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x, w, bv },
          outputs: { y: N * O },
          run: (b, t) =>
            b.linearForward({ out: t.y, inp: t.x, weight: t.w, bias: bias ? t.bv : null, N, I, O }),
        },
        tol.linear.atol,
        tol.linear.rtol,
      );
    });
    add(`linear_backward matches reference for ${name}`, () => {
      for (const withDinp of [true, false]) {
        compare(
          {
            inputs: { x, w, dy: rand(N * O, 630 + i) },
            outputs: { dx: N * I, dw: O * I, db: O },
            run: (b, t) =>
              b.linearBackward({
                dinp: withDinp ? t.dx : null,
                dweight: t.dw,
                dbias: bias ? t.db : null,
                dout: t.dy,
                inp: t.x,
                weight: t.w,
                N,
                I,
                O,
              }),
          },
          tol.linear.atol,
          tol.linear.rtol,
          [...(withDinp ? ["dx"] : []), "dw", ...(bias ? ["db"] : [])],
        );
      }
    });
  });

  // ---- elementwise -------------------------------------------------------------------------

  const SIZES = [1, 1001, 100_003]; // the last one is parallel on every backend
  for (const op of ["relu", "sigmoid", "log", "abs", "exp"] as const) {
    const input = (n: number, seed: number) => {
      const x = op === "log" ? rand(n, seed, 0.01, 5) : rand(n, seed, -4, 4);
      if (op !== "log" && n > 3) x[0] = x[3] = 0; // gradient at 0
      return x;
    };
    // libm float functions are within a few ulp of the float64 results.
    const rtol = op === "relu" || op === "abs" ? 0 : 1e-6;
    add(`unary_forward ${op} matches reference`, () => {
      for (const n of SIZES) {
        compare(
          {
            inputs: { x: input(n, n) },
            outputs: { y: n },
            run: (b, t) => b.unaryForward({ out: t.y, inp: t.x, n, op }),
          },
          1e-7,
          rtol,
        );
      }
    });
    add(`unary_backward ${op} matches reference`, () => {
      for (const n of SIZES) {
        const x = input(n, n);
        const y = runOn(ref, {
          inputs: { x },
          outputs: { y: n },
          run: (b, t) => b.unaryForward({ out: t.y, inp: t.x, n, op }),
        }).y;
        compare(
          {
            inputs: { x, y, dy: rand(n, n + 1) },
            outputs: { dx: n },
            run: (b, t) => b.unaryBackward({ dinp: t.dx, dout: t.dy, inp: t.x, out: t.y, n, op }),
          },
          1e-7,
          1e-6,
        );
      }
    });
  }

  // ---- unary functions of the vision models (silu … relu6) ---------------------------------

  // Values at and beside the kinks (−3, 0, 3, 6), silu's minimum, large |x|, NaN.
  const f = Math.fround;
  const SPECIAL = [-3, 3, 0, 6, f(-3 - 2.5e-7), f(-3 + 2.5e-7), f(3 - 2.5e-7), f(3 + 2.5e-7)]
    .concat([f(-1e-7), f(1e-7), f(6 - 5e-7), f(6 + 5e-7), -1.2784645, -6, -8, 8, 10, -10])
    .concat([20, -20, 50, -50, 88, -88, 100, -100, NaN]);
  for (const op of ["silu", "hardswish", "hardsigmoid", "gelu", "relu6"] as const) {
    const input = (n: number, seed: number) => {
      const x = rand(n, seed, -8, 8);
      if (n > SPECIAL.length) x.set(SPECIAL);
      return x;
    };
    add(`unary_forward ${op} matches reference at kinks and large |x|`, () => {
      for (const n of SIZES) {
        compare(
          {
            inputs: { x: input(n, n + 5) },
            outputs: { y: n },
            run: (b, t) => b.unaryForward({ out: t.y, inp: t.x, n, op }),
          },
          1e-7,
          2e-6,
        );
      }
    });
    add(`unary_backward ${op} matches reference at kinks and large |x|`, () => {
      for (const n of SIZES) {
        compare(
          {
            inputs: { x: input(n, n + 5), dy: rand(n, n + 6) },
            outputs: { dx: n },
            // These ops read inp only (out is optional for them).
            run: (b, t) => b.unaryBackward({ dinp: t.dx, dout: t.dy, inp: t.x, out: null, n, op }),
          },
          2e-7,
          2e-6,
        );
      }
    });
  }

  // ---- channels: channel_copy and layernorm over channels ----------------------------------

  // [label, N, Co, Ci, HW, out_off, out_step, in_off, in_step, cn, accumulate]
  const copyCases: [string, ...number[], boolean][] = [
    ["concat part at an offset", 2, 7, 3, 5, 4, 1, 0, 1, 3, false],
    ["split part from an offset", 3, 2, 5, 1, 0, 1, 3, 1, 2, false],
    ["shuffle group 1 of 3 (out step)", 2, 6, 6, 7, 1, 3, 2, 1, 2, false],
    ["inverse shuffle (in step)", 2, 6, 6, 7, 2, 1, 1, 3, 2, false],
    ["accumulate with both steps", 2, 6, 7, 3, 1, 2, 0, 3, 3, true],
    ["nothing to copy (cn 0)", 2, 3, 3, 4, 0, 1, 0, 1, 0, false],
    ["large, parallel", 4, 64, 32, 1000, 16, 1, 0, 1, 32, false],
    ["large strided accumulate", 3, 48, 24, 999, 1, 2, 0, 1, 24, true],
  ];
  copyCases.forEach(([name, ...v], i) => {
    const [N, Co, Ci, HW, out_off, out_step, in_off, in_step, cn] = v as number[];
    const accumulate = v[9] as boolean;
    add(`channel_copy matches reference exactly: ${name}`, () => {
      compare(
        {
          inputs: { x: rand(N * Ci * HW, 1500 + i) },
          // Prefilled: channels the call does not touch must keep their values.
          inouts: { y: rand(N * Co * HW, 1550 + i) },
          run: (b, t) =>
            b.channelCopy({
              out: t.y,
              inp: t.x,
              N,
              Co,
              Ci,
              HW,
              out_off,
              out_step,
              in_off,
              in_step,
              cn,
              accumulate,
            }),
        },
        0,
        0,
      );
    });
  });

  // [label, N, C, HW, eps, input range, atol of out]: C = 1 (variance 0), odd C, positions
  // across the CPU loops' 128-position blocks, a mean far from 0 (two-pass variance), a
  // parallel size.
  const lnCases: [string, number, number, number, number, [number, number], number?][] = [
    ["C 1", 2, 1, 3, 1e-5, [-1, 1]],
    ["C 3", 1, 3, 5, 1e-6, [-1, 1]],
    ["C 7 HW 5 N 2", 2, 7, 5, 1e-6, [-2, 2]],
    ["HW 1", 4, 5, 1, 1e-5, [-1, 1]],
    ["HW 130 (two blocks)", 1, 64, 130, 1e-6, [-1, 1]],
    // A float32 mean near 100 rounds by up to ulp(100)/2 ≈ 4e-6, times rstd ≈ 3.5 and w.
    ["mean 100, std 0.3", 2, 9, 11, 1e-6, [99.5, 100.5], 5e-5],
    ["parallel", 2, 96, 300, 1e-6, [-3, 3]],
  ];
  lnCases.forEach(([name, N, C, HW, eps, [lo, hi], atol = 1e-5], i) => {
    const n = N * C * HW, seed = 1600 + 10 * i;
    const inputs = {
      x: rand(n, seed, lo, hi),
      w: rand(C, seed + 1, 0.5, 1.5),
      b: rand(C, seed + 2),
    };
    const forward: Case = {
      inputs,
      outputs: { y: n, mean: N * HW, rstd: N * HW },
      run: (b, t) =>
        b.layernormChannelsForward({
          out: t.y,
          mean: t.mean,
          rstd: t.rstd,
          inp: t.x,
          weight: t.w,
          bias: t.b,
          N,
          C,
          HW,
          eps,
        }),
    };
    add(`layernorm_channels_forward matches reference: ${name}`, () => {
      // float statistics over C values: rstd within ~C ulp; out of magnitude ~3.
      compare(forward, 1e-5, 1e-5, ["mean"]);
      compare(forward, 1e-5, 1e-4, ["rstd"]);
      compare(forward, atol, 1e-4, ["y"]);
    });
    add(`layernorm_channels_backward matches reference: ${name}`, () => {
      const stats = runOn(ref, forward);
      const c: Case = {
        inputs: { ...inputs, dy: rand(n, seed + 3), mean: stats.mean, rstd: stats.rstd },
        outputs: { dx: n, dw: C, db: C },
        run: (b, t) =>
          b.layernormChannelsBackward({
            dinp: t.dx,
            dweight: t.dw,
            dbias: t.db,
            dout: t.dy,
            inp: t.x,
            mean: t.mean,
            rstd: t.rstd,
            weight: t.w,
            N,
            C,
            HW,
          }),
      };
      compare(c, 2e-5, 1e-4, ["dx"]);
      compare(c, 1e-4, 1e-4, ["dw", "db"]); // sums over N·HW terms
    });
  });

  add("scale matches reference", () => {
    for (const n of SIZES) {
      compare(
        {
          inputs: { x: rand(n, 700) },
          outputs: { y: n },
          run: (b, t) => b.scaleForward({ out: t.y, inp: t.x, alpha: -1.75, beta: 0.5, n }),
        },
        1e-7,
        1e-7,
      );
    }
  });

  const size = (s: Shape4) => s[0] * s[1] * s[2] * s[3];
  const binaryCases: [string, Shape4, Shape4][] = [
    ["same shapes", [2, 3, 4, 5], [2, 3, 4, 5]],
    ["per-channel b", [2, 3, 4, 5], [1, 3, 1, 1]],
    ["per-channel a", [1, 3, 1, 1], [2, 3, 4, 5]],
    ["both broadcast", [2, 1, 4, 1], [1, 3, 1, 5]],
    ["last dim broadcast", [2, 3, 4, 1], [2, 3, 4, 7]],
    ["scalar b", [3, 1, 2, 7], [1, 1, 1, 1]],
    ["scalar a", [1, 1, 1, 1], [3, 1, 2, 7]],
    ["large per-channel", [8, 64, 16, 16], [1, 64, 1, 1]],
    ["large per-sample", [8, 64, 16, 16], [8, 64, 1, 1]],
  ];
  for (const op of ["add", "sub", "mul", "div"] as const) {
    add(`binary_forward ${op} matches reference for broadcast shapes`, () => {
      binaryCases.forEach(([name, as, bs], i) => {
        const os = as.map((v, k) => Math.max(v, bs[k]));
        const b = rand(size(bs), 800 + i);
        if (op === "div") b.forEach((v, k) => b[k] = v >= 0 ? v + 0.5 : v - 0.5);
        try {
          compare(
            {
              inputs: { a: rand(size(as), 810 + i), b },
              outputs: { y: os[0] * os[1] * os[2] * os[3] },
              run: (be, t) =>
                be.binaryForward({ out: t.y, a: t.a, b: t.b, aShape: as, bShape: bs, op }),
            },
            0,
            1e-7,
          );
        } catch (err) {
          throw new Error(`${name}: ${(err as Error).message}`);
        }
      });
    });
  }

  const reduceCases: [string, Shape4, Shape4][] = [
    ["to channels", [2, 3, 4, 5], [1, 3, 1, 1]],
    ["to per-sample channels", [2, 3, 4, 5], [2, 3, 1, 1]],
    ["to a scalar", [2, 3, 4, 5], [1, 1, 1, 1]],
    ["to the last dim", [2, 3, 4, 5], [1, 1, 1, 5]],
    ["to dims 0 and 2", [2, 3, 4, 5], [2, 1, 4, 1]],
    ["identity", [2, 3, 4, 5], [2, 3, 4, 5]],
    ["large to channels", [32, 64, 14, 14], [1, 64, 1, 1]],
    ["large to a scalar", [16, 32, 14, 14], [1, 1, 1, 1]],
    ["wide rows", [3, 2, 2, 600], [1, 2, 1, 600]],
  ];
  add("sum_to matches reference", () => {
    reduceCases.forEach(([name, is, os], i) => {
      try {
        // Double accumulation on both sides: only the final rounding differs.
        compare(
          {
            inputs: { x: rand(size(is), 900 + i) },
            outputs: { y: size(os) },
            run: (b, t) => b.sumToForward({ out: t.y, inp: t.x, inShape: is, outShape: os }),
          },
          1e-6,
          1e-6,
        );
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`);
      }
    });
  });
  add("broadcast_to matches reference", () => {
    reduceCases.forEach(([name, big, small], i) => {
      try {
        compare(
          {
            inputs: { x: rand(size(small), 950 + i) },
            outputs: { y: size(big) },
            run: (b, t) =>
              b.broadcastForward({ out: t.y, inp: t.x, inShape: small, outShape: big }),
          },
          0,
          0,
        );
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`);
      }
    });
  });

  const softmaxCases: [string, number, number, number][] = [
    ["1x1", 1, 1, 0],
    ["7x5", 7, 5, 0],
    ["large logits", 4, 9, 80],
    ["300x200 (parallel)", 300, 200, 0],
  ];
  softmaxCases.forEach(([name, rows, cols, offset], i) => {
    const x = rand(rows * cols, 1000 + i, offset - 6, offset + 6);
    add(`softmax_forward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { x },
          outputs: { y: rows * cols },
          run: (b, t) => b.softmaxForward({ out: t.y, inp: t.x, rows, cols }),
        },
        1e-7,
        1e-5,
      );
    });
    add(`softmax_backward matches reference for ${name}`, () => {
      const y = runOn(ref, {
        inputs: { x },
        outputs: { y: rows * cols },
        run: (b, t) => b.softmaxForward({ out: t.y, inp: t.x, rows, cols }),
      }).y;
      compare(
        {
          inputs: { y, dy: rand(rows * cols, 1010 + i) },
          outputs: { dx: rows * cols },
          run: (b, t) => b.softmaxBackward({ dinp: t.dx, dout: t.dy, out: t.y, rows, cols }),
        },
        1e-7,
        1e-5,
      );
    });
  });

  // ---- loss --------------------------------------------------------------------------------

  const ceCases: [string, number, number, boolean, number][] = [
    ["one sample one class", 1, 1, false, 0],
    ["7x5 with weights", 7, 5, true, 0],
    ["7x5 without weights", 7, 5, false, 0],
    ["confident logits", 6, 4, true, 40],
  ];
  ceCases.forEach(([name, N, K, weighted, spread], i) => {
    const logits = rand(N * K, 1100 + i, -3 - spread, 3 + spread);
    const targets = Float32Array.from({ length: N }, (_, n) => (n * 7 + i) % K);
    const weights = rand(N, 1120 + i, 0.2, 2);
    add(`cross_entropy_forward matches reference for ${name}`, () => {
      compare(
        {
          inputs: { logits, targets, weights },
          outputs: { loss: 1, probs: N * K },
          run: (b, t) =>
            b.crossEntropyForward({
              loss: t.loss,
              probs: t.probs,
              logits: t.logits,
              targets: t.targets,
              weights: weighted ? t.weights : null,
              N,
              K,
            }),
        },
        1e-6,
        1e-5,
      );
    });
    add(`cross_entropy_backward matches reference for ${name}`, () => {
      const probs = runOn(ref, {
        inputs: { logits },
        outputs: { probs: N * K },
        run: (b, t) => b.softmaxForward({ out: t.probs, inp: t.logits, rows: N, cols: K }),
      }).probs;
      compare(
        {
          inputs: { probs, targets, weights, dloss: Float32Array.of(0.7) },
          outputs: { dlogits: N * K },
          run: (b, t) =>
            b.crossEntropyBackward({
              dlogits: t.dlogits,
              dloss: t.dloss,
              probs: t.probs,
              targets: t.targets,
              weights: weighted ? t.weights : null,
              N,
              K,
            }),
        },
        1e-7,
        1e-6,
      );
    });
  });

  // ---- dropout and optimizer ---------------------------------------------------------------

  function dropoutCase(n: number, p: number, seed: number): Case {
    return {
      inputs: { x: rand(n, 1200) },
      outputs: { y: n, mask: n },
      run: (b, t) => b.dropoutForward({ out: t.y, mask: t.mask, inp: t.x, n, p, seed }),
    };
  }

  add("dropout_forward matches reference exactly (shared hash)", () => {
    // p exact in float32: identical keep decisions, scale and products.
    const cases = [[1000, 0.5, 42], [100_003, 0.25, 7], [17, 0, 3], [33, 0.875, 0xffffffff]];
    for (const [n, p, seed] of cases) compare(dropoutCase(n, p, seed), 0, 0);
  });

  add("dropout_forward matches reference within 2 ulp for p not exact in float32", () => {
    // The ABI passes p as a float; the reference computes 1/(1-p) from the float64 p.
    for (const [n, p, seed] of [[1000, 0.1, 1], [100_003, 0.9, 2]]) {
      const c = dropoutCase(n, p, seed);
      const got = runOn(target(), c), want = runOn(ref, c);
      assert.deepEqual(got.mask.map((v) => v === 0 ? 0 : 1), want.mask.map((v) => v === 0 ? 0 : 1));
      assertClose("mask", got.mask, want.mask, 0, 2.4e-7, label()); // 1 ulp
      assertClose("y", got.y, want.y, 0, 4.8e-7, label()); // + the product rounding
    }
  });

  add("adamw_update matches reference over several steps", () => {
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    for (const n of [1, 1001, 100_003]) {
      compare(
        {
          inputs: { g1: rand(n, 1300), g2: rand(n, 1301, -3, 3) },
          inouts: { w: rand(n, 1302), m: new Float32Array(n), v: new Float32Array(n) },
          run: (b, t) => {
            for (let step = 1; step <= 10; step++) {
              b.adamwUpdate({
                param: t.w,
                m: t.m,
                v: t.v,
                grad: step % 2 ? t.g1 : t.g2,
                n,
                ...h,
                step,
              });
            }
          },
        },
        1e-6,
        1e-5,
      );
    }
  });
  // ---- attentional feature fusion --------------------------------------------------------

  const affShapes: NchwSizes[] = [
    { N: 1, C: 1, H: 1, W: 1 },
    { N: 2, C: 3, H: 5, W: 7 },
    { N: 3, C: 13, H: 4, W: 1 },
    { N: 2, C: 64, H: 33, W: 33 },
  ];
  affShapes.forEach((s, i) => {
    for (const scale of [2, 1]) {
      const n = s.N * s.C * s.H * s.W, nc = s.N * s.C, seed = 1400 + 10 * i;
      const inputs = {
        S: rand(n, seed, -2, 2),
        F: rand(n, seed + 1, -2, 2),
        L: rand(n, seed + 2, -3, 3),
        G: rand(nc, seed + 3),
      };
      const shape = `${s.N}x${s.C}x${s.H}x${s.W}`;
      add(`aff_fuse_forward matches reference for ${shape} scale ${scale}`, () => {
        compare(
          {
            inputs,
            outputs: { y: n },
            run: (b, t) =>
              b.affFuseForward({ out: t.y, S: t.S, F: t.F, L: t.L, G: t.G, scale, ...s }),
          },
          1e-5,
          1e-4,
        );
      });
      add(`aff_fuse_backward matches reference for ${shape} scale ${scale}`, () => {
        const c: Case = {
          inputs: { ...inputs, dy: rand(n, seed + 4) },
          outputs: { dS: n, dF: n, dL: n, dG: nc },
          run: (b, t) =>
            b.affFuseBackward({
              dS: t.dS,
              dF: t.dF,
              dL: t.dL,
              dG: t.dG,
              dout: t.dy,
              S: t.S,
              F: t.F,
              L: t.L,
              G: t.G,
              scale,
              ...s,
            }),
        };
        compare(c, 1e-5, 1e-4, ["dS", "dF", "dL"]);
        compare(c, 1e-4, 1e-4, ["dG"]); // a sum over H·W terms
      });
    }
  });

  return tests;
}
