/**
 * The CUDA backend.
 *
 * Where a device is present: every kernel against the reference backend on the shared
 * awkward shapes of tests/backend/_kernel_cases.ts, and the library's error paths. Where
 * none is (CI, these machines), those cases are registered as ignored with the reason in
 * their names, so they show as skipped, not passed.
 *
 * Always: the library builds with nvcc where nvcc exists, it loads without a GPU driver
 * and exports every function of native/include/fbp.h, loading the backend without a
 * device reports "no CUDA device" and the call that said so, and `loadBackend("auto")`
 * then falls back to the CPU and says so once.
 * @module
 */
import assert from "node:assert/strict";
import { CudaUnavailableError, FBP_ABI_SYMBOLS } from "../../src/backend/cuda.ts";
import { loadBackend } from "../../src/backend/load.ts";
import {
  buildCudaLibrary,
  CUDA_LIBRARY_PATH,
  findNvcc,
  REPO_ROOT,
} from "../../tasks/_build/native_build.ts";
import { cudaForTests } from "../backends.ts";
import { CPU_TOLERANCES, kernelTests, rand, type Tolerances } from "./_kernel_cases.ts";
import { assertBadSizesRefused } from "./_bad_calls.ts";

const nvcc = await findNvcc();
const { backend: cuda, reason } = await cudaForTests();
const skipped = cuda === null;
/** "no CUDA device", "cannot open libcudnn.so.9", …: the reason up to its details. */
const shortReason = reason.replace(/[:(].*$/s, "").trim();

/**
 * cuDNN picks the fastest algorithm per shape; its FFT and Winograd convolutions round
 * differently from a direct sum, with errors that scale with Σ|x·w| over the C·R·S (up to
 * 576) terms rather than with each output. Everything else meets the CPU tolerances.
 */
const CUDA_TOLERANCES: Tolerances = {
  ...CPU_TOLERANCES,
  conv: { atol: 5e-4, rtol: 1e-3 },
  convWeights: { atol: 2e-3, rtol: 1e-3 },
};

// ---- every kernel against the reference (device only) ----------------------------------

const suffix = skipped ? ` (skipped: ${shortReason})` : "";
for (const t of kernelTests(() => cuda!, CUDA_TOLERANCES)) {
  Deno.test({ name: `cuda: ${t.name}${suffix}`, ignore: skipped, fn: t.fn });
}

Deno.test({
  name: `cuda: backend info names the device, cuDNN 9, cuBLAS 12/13, math and memory${suffix}`,
  ignore: skipped,
  fn() {
    assert.equal(cuda!.name, "cuda");
    assert.match(
      cuda!.info,
      new RegExp(
        "^cuda: .+ \\(sm_\\d+, .*cuDNN 9\\.\\d+\\.\\d+, cuBLAS 1[23]\\.\\d+\\.\\d+, " +
          "math (fp32|tf32), deterministic (on|off); " +
          "memory MiB: in use [\\d.]+, cached [\\d.]+, peak [\\d.]+$",
      ),
    );
  },
});

Deno.test({
  name: `cuda: a target out of range throws the library's message${suffix}`,
  ignore: skipped,
  fn() {
    const b = cuda!;
    const t = { loss: b.alloc(1), probs: b.alloc(6), logits: b.alloc(6), targets: b.alloc(2) };
    b.copyIn(t.logits, rand(6, 1));
    b.copyIn(t.targets, Float32Array.of(1, 3));
    const ce = { targets: t.targets, weights: null, N: 2, K: 3 };
    assert.throws(
      () => b.crossEntropyForward({ ...ce, loss: t.loss, probs: t.probs, logits: t.logits }),
      new RegExp(
        '^Error: Cannot run kernel "cross_entropy_forward": loss\\.cu:\\d+: ' +
          ".*target of sample 1 is 3, expected an integer in 0\\.\\.2",
      ),
    );
    b.copyIn(t.targets, Float32Array.of(0.5, 1));
    assert.throws(
      () => b.crossEntropyBackward({ ...ce, dlogits: t.probs, dloss: t.loss, probs: t.probs }),
      /cross_entropy_backward.*target of sample 0 is 0\.5/,
    );
    for (const s of Object.values(t)) b.free(s);
  },
});

Deno.test({
  name: `cuda: bad sizes and freed storages throw instead of crashing${suffix}`,
  ignore: skipped,
  fn() {
    const b = cuda!;
    assertBadSizesRefused(b);
    const y = b.alloc(16);
    b.free(y);
    b.free(y); // freeing twice is harmless
    assert.throws(
      () => b.fillForward({ out: y, value: 1, n: 4 }),
      /fill_forward: argument 'out' is NULL/,
    );
  },
});

Deno.test({
  name: `cuda: a training-sized step reuses device memory and keeps results${suffix}`,
  ignore: skipped,
  fn() {
    // Allocate, use and free the same sizes repeatedly (as a training step does): the
    // caching allocator hands the blocks back, and results stay right.
    const b = cuda!;
    const n = 32 * 64 * 56 * 56;
    const x = rand(n, 7);
    for (let step = 0; step < 3; step++) {
      const a = b.alloc(n), o = b.alloc(n);
      b.copyIn(a, x);
      b.scaleForward({ out: o, inp: a, alpha: 2, beta: 1, n });
      const got = b.copyOut(o);
      for (const i of [0, 1, n >> 1, n - 1]) assert.equal(got[i], Math.fround(2 * x[i] + 1));
      b.free(a);
      b.free(o);
    }
  },
});

// ---- loading without a device (always) -------------------------------------------------

Deno.test({
  name: 'loadBackend("cuda") reports why CUDA cannot run here, naming the failing call',
  ignore: !skipped,
  async fn() {
    await assert.rejects(() => loadBackend("cuda"), (err: Error) => {
      assert.ok(err instanceof CudaUnavailableError, `${err.name}: ${err.message}`);
      assert.match(err.message, /^Cannot load the CUDA backend: /);
      if (nvcc) {
        // The library is built; it loads without a driver and fbp_init says why.
        assert.match(
          err.message,
          new RegExp(
            "runtime\\.cu:\\d+: (no CUDA device: cudaGetDeviceCount (returned \\d+ \\(.+\\)|" +
              "found 0 devices)|Cannot open cu(DNN|BLAS)|" +
              "Cannot use (cu(DNN|BLAS) |\\S+ as cu(DNN|BLAS)))",
          ),
        );
      } else {
        assert.match(err.message, /nvcc was not found/);
      }
      return true;
    });
  },
});

Deno.test({
  name: 'loadBackend("auto") falls back to the CPU without a device and says so once',
  ignore: !skipped,
  async fn() {
    const notes: string[] = [];
    const onNote = (m: string) => notes.push(m);
    const first = await loadBackend("auto", { onNote });
    const second = await loadBackend("auto", { onNote });
    assert.equal(first.name, "cpu");
    assert.equal(second.name, "cpu");
    assert.equal(notes.length, 1, notes.join("\n"));
    assert.match(notes[0], /^Using the CPU backend \(device auto\): Cannot load the CUDA backend/);
    if (nvcc) {
      assert.match(
        notes[0],
        /no CUDA device|Cannot open cu(DNN|BLAS)|Cannot use (cu(DNN|BLAS) |\S+ as cu(DNN|BLAS))/,
      );
    }
  },
});

Deno.test({
  name: 'loadBackend("auto") picks CUDA where a device is present',
  ignore: skipped,
  async fn() {
    assert.equal((await loadBackend("auto")).name, "cuda");
  },
});

// ---- the library itself ------------------------------------------------------------------

/** The function names native/include/fbp.h declares. */
async function abiFunctions(): Promise<string[]> {
  const header = await Deno.readTextFile(`${REPO_ROOT}native/include/fbp.h`);
  const names = new Set<string>();
  for (const m of header.matchAll(/^[a-z][\w ]*?\**\b([a-z_0-9]+)\s*\(/gm)) names.add(m[1]);
  return [...names].sort();
}

Deno.test("the CUDA binding declares every function of fbp.h", async () => {
  assert.deepEqual(Object.keys(FBP_ABI_SYMBOLS).sort(), await abiFunctions());
});

// Not where a device is in use: tasks/gpu_check.sh has just built the library once (and
// reports a failed build); a forced second build there only costs time.
Deno.test({
  name: `the CUDA library builds with nvcc${
    !nvcc ? " (skipped: nvcc not found)" : skipped ? "" : " (skipped: a device is in use)"
  }`,
  ignore: !nvcc || !skipped,
  async fn() {
    const r = await buildCudaLibrary({ quiet: true, force: true });
    assert.ok(r !== null && r.built, "nvcc was found, so the library must build");
    assert.equal(r.path, CUDA_LIBRARY_PATH);
  },
});

// Not where a device is in use: opening a second copy of the library (a rebuilt file is a
// new inode) next to a running CUDA context gains nothing there.
Deno.test({
  name: `the CUDA library loads without a GPU driver and exports every function of fbp.h${
    !nvcc ? " (skipped: nvcc not found)" : skipped ? "" : " (skipped: a device is in use)"
  }`,
  ignore: !nvcc || !skipped,
  async fn() {
    const symbols: Record<string, Deno.ForeignFunction> = {};
    for (const name of await abiFunctions()) symbols[name] = { parameters: [], result: "void" };
    const lib = Deno.dlopen(CUDA_LIBRARY_PATH, symbols); // throws on a missing symbol
    lib.close();
    // Before a successful fbp_init every call fails cleanly, naming the reason.
    const raw = Deno.dlopen(CUDA_LIBRARY_PATH, {
      fbp_init: FBP_ABI_SYMBOLS.fbp_init,
      fbp_alloc: FBP_ABI_SYMBOLS.fbp_alloc,
      fbp_last_error: FBP_ABI_SYMBOLS.fbp_last_error,
      fbp_backend_info: FBP_ABI_SYMBOLS.fbp_backend_info,
      fill_forward: FBP_ABI_SYMBOLS.fill_forward,
    });
    const text = (p: Deno.PointerValue) => p === null ? "" : Deno.UnsafePointerView.getCString(p);
    assert.equal(raw.symbols.fbp_init(), 1);
    const why = text(raw.symbols.fbp_last_error());
    assert.match(why, /^runtime\.cu:\d+: /);
    assert.equal(raw.symbols.fbp_alloc(4n), null);
    assert.match(
      text(raw.symbols.fbp_last_error()),
      /fbp_alloc: the CUDA backend is not initialised/,
    );
    const buf = new Float32Array(4);
    assert.equal(raw.symbols.fill_forward(Deno.UnsafePointer.of(buf), 1, 4n), 1);
    assert.match(text(raw.symbols.fbp_last_error()), /fill_forward: .*not initialised/);
    assert.match(text(raw.symbols.fbp_backend_info()), /^cuda: unavailable \(runtime\.cu:\d+: /);
    raw.close();
  },
});

if (skipped) {
  // Shows the full reason next to the skipped cases above.
  Deno.test({ name: `cuda backend unavailable here: ${reason}`, ignore: true, fn() {} });
}
