/**
 * The CUDA fixes of issue 16 that need a device (skipped elsewhere, with the reason):
 * batch-norm statistics in the CPU backend's convention on identical batches, per-database
 * slices included (DAB calls the kernel once per slice); math settings (fp32 convolutions
 * and cuBLAS matrix products really are FMA float32, tf32 uses TF32 in cuBLAS on sm_80+,
 * bf16 refused); `deterministic` repeats convolution gradients and reductions bit for bit,
 * in one process (where the cached cuDNN plan is reused) and in a second process (which
 * picks its algorithms afresh); the allocator's memory figures and fbp_release_cache
 * dropping cuDNN's workspace. tasks/gpu_check.sh runs it; its training check compares two
 * whole --deterministic trainings in separate processes as well.
 *
 * Float32 results are compared as llm.c's validate_result does, with a tolerance that
 * scales with the reduction: |got − want| ≤ atol + k·ε·Σ|aᵢ·bᵢ| per output (ε = 2⁻²³, the
 * sum over the terms that output adds up). FFT and Winograd convolutions err with the size
 * of the terms, not of the result, so a flat tolerance either misses TF32 or fails them.
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

/** Conv backward-weights and BN backward on fixed data: every output, as float32 arrays. */
function gradients(b: Backend): Record<string, Float32Array> {
  const N = 16,
    C = 64,
    K = 64,
    H = 28,
    W = 28,
    s = { N, C, H, W, K, R: 3, S: 3, G: 1, stride: 1, pad: 1 };
  const x = rand(N * C * H * W, 1), dy = rand(N * K * H * W, 2);
  return runOn(b, {
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
}

/** SHA-256 (hex) of the gradients' bits under deterministic math of `precision`. */
export async function gradientDigest(b: CudaBackend, precision: "fp32" | "tf32") {
  const before = b.math;
  b.setMath({ precision, deterministic: true });
  try {
    const g = gradients(b);
    const parts = Object.keys(g).sort().map((k) => new Uint8Array(g[k].buffer));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
    return Array.from(h, (v) => v.toString(16).padStart(2, "0")).join("");
  } finally {
    b.setMath(before);
  }
}

test("deterministic math repeats convolution and batch-norm gradients bit for bit", async (b) => {
  for (const precision of ["fp32", "tf32"] as const) {
    const first = await gradientDigest(b, precision), second = await gradientDigest(b, precision);
    assert.equal(second, first, `two ${precision} runs of the same gradients differ`);
  }
});

test("deterministic gradients are equal in a second process (plans chosen afresh)", async (b) => {
  // The child imports this file (its Deno.test calls do nothing outside `deno test`) and
  // prints the digests it gets with its own CUDA context and cuDNN plans.
  const lock = Deno.env.get("FBP_DENO_LOCK");
  const script = `import { gradientDigest } from ${JSON.stringify(import.meta.url)};
    import { cudaForTests } from ${JSON.stringify(new URL("../backends.ts", import.meta.url).href)};
    const { backend } = await cudaForTests();
    console.log(JSON.stringify({ fp32: await gradientDigest(backend!, "fp32"),
      tf32: await gradientDigest(backend!, "tf32") }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--cached-only", "--no-check", ...(lock ? [`--lock=${lock}`] : []), script],
    env: { FBP_REQUIRE_CUDA: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const child = JSON.parse(text.split("\n").pop()!);
  assert.equal(child.fp32, await gradientDigest(b, "fp32"), "fp32 differs across processes");
  assert.equal(child.tf32, await gradientDigest(b, "tf32"), "tf32 differs across processes");
});

/** ε of float32 (2⁻²³). */
const EPS32 = 2 ** -23;

/**
 * Outputs whose error is over atol + k·ε·Σ|aᵢ·bᵢ| (`bound`: that absolute sum per output,
 * the same computation on |a| and |b| in double), and the worst error ÷ (ε·bound).
 */
function overScaledTolerance(
  got: Float32Array,
  want: Float32Array,
  bound: Float32Array,
  k: number,
  atol = 1e-6,
) {
  let over = 0, worst = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= atol + k * EPS32 * bound[i])) over++;
    worst = Math.max(worst, err / (EPS32 * Math.max(bound[i], 1e-30)));
  }
  return { over, worst, count: got.length };
}

const abs = (a: Float32Array) => a.map(Math.abs);

test("fp32 convolutions are float32 FMA math (no TF32 rounding); bf16 is refused", (b) => {
  // 256 input channels, 3×3: 2304-term sums. TF32 (10-bit mantissa) errs ~1e-5 of Σ|x·w|
  // (≈ 85 ε); float32 stays within a few ε of it, FFT and Winograd algorithms included.
  const N = 4,
    C = 256,
    K = 32,
    H = 14,
    W = 14,
    s = { N, C, H, W, K, R: 3, S: 3, G: 1, stride: 1, pad: 1 };
  const x = rand(N * C * H * W, 7), w = rand(K * C * 9, 8, -0.05, 0.05);
  const conv = (xs: Float32Array, ws: Float32Array) => ({
    inputs: { x: xs, w: ws },
    outputs: { y: N * K * H * W },
    run: (be: Backend, t: Record<string, Storage>) =>
      be.conv2dForward({ out: t.y, inp: t.x, weight: t.w, bias: null, ...s }),
  });
  b.setMath({ precision: "fp32", deterministic: false });
  const got = runOn(b, conv(x, w)).y, want = runOn(ref64, conv(x, w)).y;
  const bound = runOn(ref64, conv(abs(x), abs(w))).y;
  const r = overScaledTolerance(got, want, bound, 32);
  assert.equal(
    r.over,
    0,
    `fp32 conv: ${r.over} of ${r.count} outputs over 1e-6 + 32·ε·Σ|x·w| (worst ${
      r.worst.toFixed(1)
    }·ε·Σ|x·w|; TF32 errs ~85)`,
  );
  assert.throws(
    () => b.setMath({ precision: "bf16", deterministic: false }),
    /bf16 is not implemented for CUDA/,
  );
});

test("cuBLAS follows --precision: fp32 is FMA float32, tf32 rounds to TF32 (sm_80+)", (b) => {
  // (64 × 2048) · (2048 × 64)ᵀ: 2048-term sums. float32 sgemm errs ~√2048·ε of a term;
  // TF32 rounds each input to 10 bits (~5e-4), ~40 times past 4·ε·Σ|x·w|.
  const N = 64, I = 2048, O = 64;
  const x = rand(N * I, 21), w = rand(O * I, 22);
  const linear = (xs: Float32Array, ws: Float32Array) => ({
    inputs: { x: xs, w: ws },
    outputs: { y: N * O },
    run: (be: Backend, t: Record<string, Storage>) =>
      be.linearForward({ out: t.y, inp: t.x, weight: t.w, bias: null, N, I, O }),
  });
  const want = runOn(ref64, linear(x, w)).y, bound = runOn(ref64, linear(abs(x), abs(w))).y;
  b.setMath({ precision: "fp32", deterministic: false });
  const fp32 = overScaledTolerance(runOn(b, linear(x, w)).y, want, bound, 4);
  assert.equal(
    fp32.over,
    0,
    `fp32 sgemm: ${fp32.over} of ${fp32.count} outputs over 4·ε·Σ|x·w| (worst ${
      fp32.worst.toFixed(2)
    }·ε·Σ|x·w|)`,
  );
  const sm = Number(/\(sm_(\d+),/.exec(b.info)?.[1] ?? "0");
  if (sm >= 80) {
    b.setMath({ precision: "tf32", deterministic: false });
    const tf32 = overScaledTolerance(runOn(b, linear(x, w)).y, want, bound, 4);
    assert.ok(
      tf32.over > tf32.count / 2,
      `tf32 sgemm on sm_${sm}: only ${tf32.over} of ${tf32.count} outputs past float32's ` +
        `error (worst ${tf32.worst.toFixed(1)}·ε·Σ|x·w|): TF32 tensor cores are not in use`,
    );
  }
});

test("releaseCache also frees cuDNN's workspace; the next convolution takes it again", (b) => {
  // A timed search then a plan that keeps a workspace (a 3×3 conv of 64 channels at 56×56
  // picks one on every GPU we know; a plan needing none shows as no change, still passing).
  const s = { N: 8, C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, G: 1, stride: 1, pad: 1 };
  const c = {
    inputs: { x: rand(8 * 64 * 56 * 56, 31), w: rand(64 * 64 * 9, 32, -0.1, 0.1) },
    outputs: { y: 8 * 64 * 56 * 56 },
    run: (be: Backend, t: Record<string, Storage>) =>
      be.conv2dForward({ out: t.y, inp: t.x, weight: t.w, bias: null, ...s }),
  };
  b.setMath({ precision: "fp32", deterministic: false });
  b.releaseCache();
  const base = b.memory().inUseMiB; // what other test files still hold, no workspace
  runOn(b, c);
  b.releaseCache();
  const released = b.memory();
  assert.equal(released.cachedMiB, 0);
  assert.equal(released.inUseMiB, base, "the workspace stayed in use after releaseCache");
  runOn(b, c); // the cached plan: no search, its workspace allocated again
  b.releaseCache();
  assert.equal(b.memory().inUseMiB, base);
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
