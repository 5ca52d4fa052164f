/**
 * Every kernel of the native CPU backend against the pure-TypeScript reference backend:
 * the shared cases of tests/backend/_kernel_cases.ts (awkward shapes; tolerances stated
 * there per kernel), plus what is particular to the CPU library — its oneDNN description,
 * the plain-layout convolution path, and the error paths (a C failure surfaces as an Error
 * with the C message).
 * @module
 */
import assert from "node:assert/strict";
import { loadCpuBackend, openCpuBackend } from "../../src/backend/cpu.ts";
import { convCases, convTests, CPU_TOLERANCES, kernelTests, rand } from "./_kernel_cases.ts";
import { assertBadSizesRefused } from "./_bad_calls.ts";

const cpu = await loadCpuBackend();

for (const t of kernelTests(() => cpu)) Deno.test(t.name, t.fn);

Deno.test("backend info names oneDNN", () => {
  assert.equal(cpu.name, "cpu");
  assert.match(cpu.info, /^cpu: oneDNN \d+\.\d+\.\d+/);
});

Deno.test("conv2d kernels match reference with FBP_CONV_LAYOUT=plain", () => {
  const before = Deno.env.get("FBP_CONV_LAYOUT");
  Deno.env.set("FBP_CONV_LAYOUT", "plain");
  try {
    for (const [, s, bias] of convCases.slice(1, 4)) {
      const t = convTests(() => cpu, s, bias, 99);
      t.forward();
      t.backwardData();
      t.backwardWeights();
    }
  } finally {
    if (before === undefined) Deno.env.delete("FBP_CONV_LAYOUT");
    else Deno.env.set("FBP_CONV_LAYOUT", before);
  }
});

Deno.test("grouped and depthwise conv2d kernels match reference in both layouts", () => {
  // The rule runs depthwise blocked (oneDNN's jit_dw) and most small grouped shapes plain:
  // each layout forced in turn covers the other path of every grouped case.
  const before = Deno.env.get("FBP_CONV_LAYOUT");
  try {
    for (const layout of ["plain", "blocked"]) {
      Deno.env.set("FBP_CONV_LAYOUT", layout);
      for (const [, s, bias] of convCases.filter(([, s]) => s.G > 1)) {
        const t = convTests(() => cpu, s, bias, 77);
        t.forward();
        t.backwardData();
        t.backwardWeights();
      }
    }
  } finally {
    if (before === undefined) Deno.env.delete("FBP_CONV_LAYOUT");
    else Deno.env.set("FBP_CONV_LAYOUT", before);
  }
});

Deno.test("conv2d kernels meet the direct-convolution tolerance with FBP_CONV_ALGO=direct", () => {
  // The default runs 3×3 stride-1 forward/backward-data as Winograd (CPU_TOLERANCES.conv
  // allows for its rounding); direct convolution must meet the tighter bound.
  const before = Deno.env.get("FBP_CONV_ALGO");
  Deno.env.set("FBP_CONV_ALGO", "direct");
  try {
    const [, s, bias] = convCases.find(([name]) => name === "64 channels 3x3")!;
    const t = convTests(() => cpu, s, bias, 7, {
      ...CPU_TOLERANCES,
      conv: { atol: 2e-5, rtol: 1e-4 },
    });
    t.forward();
    t.backwardData();
  } finally {
    if (before === undefined) Deno.env.delete("FBP_CONV_ALGO");
    else Deno.env.set("FBP_CONV_ALGO", before);
  }
});

Deno.test({
  name: "releaseCache() gives cached blocks back to the system",
  // AddressSanitizer quarantines freed memory instead of returning it (test:asan).
  ignore: (Deno.env.get("LD_PRELOAD") ?? "").includes("asan"),
}, () => {
  const rssMiB = () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) / 1024;
  const n = 64 << 18; // 64 MiB of floats
  const s = cpu.alloc(n);
  cpu.fillForward({ out: s, value: 1, n }); // touch every page
  cpu.free(s); // kept by the allocator for the next request of this size
  const cached = rssMiB();
  cpu.releaseCache();
  assert.ok(rssMiB() < cached - 48, `RSS ${rssMiB()} MiB after release, ${cached} MiB before`);
  const again = cpu.alloc(n); // the allocator still works after a release
  cpu.fillForward({ out: again, value: 2, n });
  assert.equal(cpu.copyOut(again)[n - 1], 2);
  cpu.free(again);
});

// ---- errors ------------------------------------------------------------------------------

Deno.test("cross_entropy target out of range throws the C message", () => {
  const t = {
    loss: cpu.alloc(1),
    probs: cpu.alloc(6),
    logits: cpu.alloc(6),
    targets: cpu.alloc(2),
  };
  cpu.copyIn(t.logits, rand(6, 1));
  cpu.copyIn(t.targets, Float32Array.of(1, 3));
  const ce = { targets: t.targets, weights: null, N: 2, K: 3 };
  assert.throws(
    () => cpu.crossEntropyForward({ ...ce, loss: t.loss, probs: t.probs, logits: t.logits }),
    /^Error: Cannot run kernel "cross_entropy_forward": loss\.c:\d+: .*target of sample 1 is 3, expected an integer in 0\.\.2/,
  );
  cpu.copyIn(t.targets, Float32Array.of(0.5, 1));
  assert.throws(
    () => cpu.crossEntropyBackward({ ...ce, dlogits: t.probs, dloss: t.loss, probs: t.probs }),
    /cross_entropy_backward.*target of sample 0 is 0\.5/,
  );
  for (const s of Object.values(t)) cpu.free(s);
});

Deno.test("a bad size throws the C message instead of crashing", () => {
  assertBadSizesRefused(cpu);
});

Deno.test("a freed storage is rejected with a message naming the argument", () => {
  const s = cpu.alloc(4);
  cpu.free(s);
  cpu.free(s); // freeing twice is harmless
  assert.throws(
    () => cpu.fillForward({ out: s, value: 1, n: 4 }),
    /fill_forward: argument 'out' is NULL/,
  );
});

Deno.test("opening a missing library throws a clear message", () => {
  assert.throws(
    () => openCpuBackend("/nonexistent/dir/libfbp_cpu.so"),
    (err: Error) => {
      assert.match(err.message, /Cannot load the CPU backend library .*libfbp_cpu\.so/);
      assert.match(err.message, /does not exist/);
      assert.match(err.message, /deno task build/);
      return true;
    },
  );
});
