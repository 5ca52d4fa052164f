/**
 * The CUDA fixes of issue 16 that need a device (skipped elsewhere, with the reason):
 * batch-norm statistics in the CPU backend's convention on identical batches, per-database
 * slices included (DAB calls the kernel once per slice); math settings (fp32 really is
 * FMA float32, bf16 refused); `deterministic` repeats convolution gradients and
 * reductions bit for bit; the allocator's memory figures. tasks/gpu_check.sh runs it.
 * @module
 */
import assert from "node:assert/strict";
import type { Backend, Storage } from "../../src/backend/backend.ts";
import type { CudaBackend } from "../../src/backend/cuda.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { cudaForTests } from "../backends.ts";
import { assertClose, rand, runOn } from "./_kernel_cases.ts";

const { backend: cuda, reason } = await cudaForTests();
const skipped = cuda === null;
const suffix = skipped ? ` (skipped: ${reason.replace(/[:(].*$/s, "").trim()})` : "";
/** Ground truth in double precision. */
const ref64 = new ReferenceBackend({ precision: "f64" });

/** The CPU backend where it loads (a GPU host may lack oneDNN), else null. */
async function cpuOrNull(): Promise<Backend | null> {
  try {
    const { loadCpuBackend } = await import("../../src/backend/cpu.ts");
    return await loadCpuBackend();
  } catch {
    return null;
  }
}

function test(name: string, fn: (b: CudaBackend) => void | Promise<void>) {
  Deno.test({
    name: `cuda: ${name}${suffix}`,
    ignore: skipped,
    async fn() {
      const b = cuda!;
      const before = b.math;
      try {
        await fn(b);
      } finally {
        b.setMath(before);
      }
    },
  });
}

/** Batch-norm training forward of one (N,C,H,W) slice: out, mean, var. */
function bnTrain(b: Backend, x: Float32Array, N: number, C: number, H: number, W: number) {
  return runOn(b, {
    inputs: { inp: x, weight: rand(C, 5, 0.5, 1.5), bias: rand(C, 6) },
    outputs: { out: x.length, mean: C, var: C },
    run: (be, t) =>
      be.batchnormForwardTrain({
        out: t.out,
        mean: t.mean,
        var: t.var,
        inp: t.inp,
        weight: t.weight,
        bias: t.bias,
        N,
        C,
        H,
        W,
        eps: 1e-5,
      }),
  });
}

test("batch-norm statistics match the CPU convention on awkward data and DAB slices", async (b) => {
  const cpu = await cpuOrNull();
  const N = 6, C = 5, H = 7, W = 9, plane = H * W;
  // Channel 0: |mean| >> std (one-pass cancellation); 1: tiny variance (below eps, where
  // 1/invstd² − eps loses it); 2: constant; 3: plain; 4: a single outlier.
  const x = new Float32Array(N * C * plane);
  const noise = rand(x.length, 11);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < plane; i++) {
        const k = (n * C + c) * plane + i, u = noise[k];
        x[k] = [1000 + u * 1e-2, 0.5 + u * 1e-4, 3, u, i === 0 && n === 0 ? 50 : u][c];
      }
    }
  }
  // The whole batch, then per-database slices of 2 and 4 images (as DAB calls it).
  const slices: [number, number][] = [[0, 6], [0, 2], [2, 6]];
  for (const [lo, hi] of slices) {
    const part = x.slice(lo * C * plane, hi * C * plane), n = hi - lo;
    const got = bnTrain(b, part, n, C, H, W), want = bnTrain(ref64, part, n, C, H, W);
    const label = `slice ${lo}..${hi}`;
    assertClose(`${label} mean`, got.mean, want.mean, 1e-6, 1e-6, "cuda");
    // Biased variance, exact to float rounding of the double sums even when tiny.
    assertClose(`${label} var`, got.var, want.var, 1e-10, 1e-4, "cuda");
    assertClose(`${label} out`, got.out, want.out, 1e-4, 1e-4, "cuda");
    if (cpu) {
      const c = bnTrain(cpu, part, n, C, H, W);
      // The running estimates (PyTorch's rule, src/ops/batch_norm.ts) start from these.
      assertClose(`${label} mean vs cpu`, got.mean, c.mean, 1e-6, 1e-6, "cuda");
      assertClose(`${label} var vs cpu`, got.var, c.var, 1e-10, 1e-5, "cuda");
    }
  }
});

/** Conv backward-weights, BN backward and a sum, run twice: equal bit for bit? */
function gradientsTwice(b: Backend): boolean {
  const N = 16,
    C = 64,
    K = 64,
    H = 28,
    W = 28,
    s = { N, C, H, W, K, R: 3, S: 3, stride: 1, pad: 1 };
  const x = rand(N * C * H * W, 1), dy = rand(N * K * H * W, 2);
  const once = () =>
    runOn(b, {
      inputs: { x, dy, w: rand(C, 3, 0.5, 1.5), mean: rand(C, 4), var: rand(C, 5, 0.5, 2) },
      outputs: { dw: K * C * 9, dx: x.length, dg: C, db: C },
      run: (be, t) => {
        be.conv2dBackwardWeights({ dweight: t.dw, dbias: null, dout: t.dy, inp: t.x, ...s });
        be.batchnormBackward({
          dinp: t.dx,
          dweight: t.dg,
          dbias: t.db,
          dout: t.x,
          inp: t.dy,
          mean: t.mean,
          var: t.var,
          weight: t.w,
          N,
          C,
          H,
          W,
          eps: 1e-5,
        });
      },
    });
  const a = once(), c = once();
  return Object.keys(a).every((k) => a[k].every((v, i) => Object.is(v, c[k][i])));
}

test("deterministic math repeats convolution and batch-norm gradients bit for bit", (b) => {
  b.setMath({ precision: "fp32", deterministic: true });
  assert.ok(gradientsTwice(b), "two runs of the same gradients differ");
  b.setMath({ precision: "tf32", deterministic: true });
  assert.ok(gradientsTwice(b), "two tf32 runs of the same gradients differ");
});

test("fp32 convolutions are float32 FMA math (no TF32 rounding); bf16 is refused", (b) => {
  // 256 input channels, 3×3: 2304-term sums. TF32 (10-bit mantissa) errs ~1e-3 of the
  // terms' scale; float32 FMA stays ~1e-5.
  const N = 4,
    C = 256,
    K = 32,
    H = 14,
    W = 14,
    s = { N, C, H, W, K, R: 3, S: 3, stride: 1, pad: 1 };
  const c = {
    inputs: { x: rand(N * C * H * W, 7), w: rand(K * C * 9, 8, -0.05, 0.05) },
    outputs: { y: N * K * H * W },
    run: (be: Backend, t: Record<string, Storage>) =>
      be.conv2dForward({ out: t.y, inp: t.x, weight: t.w, bias: null, ...s }),
  };
  b.setMath({ precision: "fp32", deterministic: false });
  const got = runOn(b, c).y, want = runOn(ref64, c).y;
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst < 1e-4, `fp32 conv max |diff| ${worst} (TF32-sized errors are ~3e-4..1e-3)`);
  assert.throws(
    () => b.setMath({ precision: "bf16", deterministic: false }),
    /bf16 is not implemented for CUDA/,
  );
});

test("the allocator reports in-use, cached and peak memory; releaseCache resets the peak", (b) => {
  b.releaseCache();
  const start = b.memory();
  const big = b.alloc(64 << 20); // 256 MiB
  const during = b.memory();
  assert.ok(during.inUseMiB >= start.inUseMiB + 256, JSON.stringify({ start, during }));
  assert.ok(during.peakMiB >= during.inUseMiB);
  b.free(big);
  const freed = b.memory();
  assert.ok(freed.cachedMiB >= 256 && freed.peakMiB >= during.inUseMiB);
  b.releaseCache();
  const after = b.memory();
  assert.equal(after.cachedMiB, 0);
  assert.equal(after.peakMiB, after.inUseMiB);
});
