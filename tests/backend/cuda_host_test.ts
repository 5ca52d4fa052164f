/**
 * Parts of the CUDA backend checked on the host, without a GPU:
 * - native/cuda/launch.h (index_harness.cpp, any C++ compiler): when a grid-stride loop may
 *   count in int and when it must use int64_t (tensors of 10^8 to past 2^31 elements),
 *   launch sizes and the reduction split counts;
 * - native/cuda/conv.cu's plans (conv_plan_harness.cu, nvcc): the file itself against a
 *   fake cuDNN that fails each call in turn (fault injection: no descriptor may leak), and
 *   the fp32 / tf32 / deterministic algorithm and math-type rules, plans keyed by them and
 *   by the groups (the filter's C/G and the group count),
 *   the shared workspace (grown by replacing, dropped by fbp_release_cache's hook) and a
 *   bad FBP_CUDNN_WORKSPACE_MIB.
 * Each harness prints "ok <case>" or "FAIL <case>: why" per case; a case missing from
 * the output fails as well.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findNvcc, REPO_ROOT } from "../../tasks/_build/native_build.ts";

const nvcc = await findNvcc();

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, cwd: REPO_ROOT }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: (dec.decode(out.stdout) + dec.decode(out.stderr)).trim() };
}

/**
 * What a compiler printed, less the notices every build of a given toolkit prints that are
 * not about the code: nvcc's deprecation notes on GPU targets ("nvcc warning : Support for
 * offline compilation for architectures prior to … will be removed", "… architectures are
 * deprecated …", with its "(Use -Wno-deprecated-gpu-targets …)" hint). Any other line —
 * a compiler warning about the code — is kept, so it still fails the build check.
 */
function compilerWarnings(text: string): string {
  const known = [
    /^nvcc warning : .*(deprecated|will be removed)/i,
    /^\(?Use -Wno-deprecated-gpu-targets/i,
  ];
  return text.split("\n").filter((l) => l.trim() && !known.some((k) => k.test(l.trim())))
    .join("\n");
}

Deno.test("compilerWarnings drops nvcc's target deprecations and keeps real warnings", () => {
  const deprecation = "nvcc warning : Support for offline compilation for architectures " +
    "prior to '<compute/sm/lto>_75' will be removed in a future release (Use " +
    "-Wno-deprecated-gpu-targets to suppress warning).";
  assert.equal(compilerWarnings(deprecation), "");
  const real = 'conv.cu(12): warning #177-D: variable "x" was declared but never referenced';
  assert.equal(compilerWarnings(`${deprecation}\n${real}`), real);
});

/** Builds a harness with `compiler`, runs it, and checks every expected case is "ok". */
async function harness(compiler: string, args: string[], expected: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "fbp_harness_" });
  try {
    const exe = join(dir, "harness");
    const build = await run(compiler, [...args, "-o", exe]);
    assert.equal(build.code, 0, `Cannot build the harness: ${build.text}`);
    const warnings = compilerWarnings(build.text);
    assert.equal(warnings, "", `the harness builds without warnings: ${warnings}`);
    const r = await run(exe, []);
    const lines = r.text.split("\n");
    const failed = lines.filter((l) => l.startsWith("FAIL"));
    assert.deepEqual(failed, [], failed.join("\n"));
    for (const name of expected) assert.ok(lines.includes(`ok ${name}`), `missing: ${name}`);
    assert.equal(r.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("launch.h: grid-stride loops count in int only when no index can wrap", async () => {
  await harness(Deno.env.get("CXX") || "c++", [
    "-Wall",
    "-Wextra",
    "-I",
    "native/cuda",
    "native/cuda/test/index_harness.cpp",
  ], [
    "128x64x112x112 (~1e8) counts in int",
    "256x64x112x112 counts in int",
    "2^31 - 1 elements count in int64",
    "2^31 elements count in int64",
    "2^33 elements count in int64",
    "just under the limit counts in int",
    "one past the limit counts in int64",
    "fbp_grid: at least 1 block, rounds up, capped",
    "fbp_reduce_splits: ~4 blocks per SM, only for few outputs with enough work",
    "fbp_reduce_splits: at most 1024, 1 for nothing",
  ]);
});

Deno.test({
  name: `conv.cu plans against a fake cuDNN: no leak on any failing step, math and ` +
    `determinism rules${nvcc ? "" : " (skipped: nvcc not found)"}`,
  ignore: !nvcc,
  async fn() {
    await harness(nvcc!, [
      "-std=c++17",
      "-arch=sm_75",
      "-Xcompiler",
      "-Wall",
      "-I",
      "native/include",
      "-I",
      "native/common",
      "-I",
      "native/cuda",
      "native/cuda/test/conv_plan_harness.cu",
      "-ldl",
    ], [
      "every cuDNN call of a first forward is a fault point",
      "a failed plan destroys the descriptors it created",
      "a failed step is reported by name and status",
      "a successful plan keeps its 4 descriptors",
      "fp32 runs the fastest non-tensor-op algorithm under CUDNN_FMA_MATH",
      "fp32 (not deterministic) uses the timed search",
      "tf32 runs a tensor-op algorithm under CUDNN_TENSOR_OP_MATH, never ALLOW_CONVERSION",
      "plans are cached per math setting (tf32, fp32, tf32 again: 2 plans, 2 searches)",
      "groups: filter (K, C/G, R, S), group count set, one plan per G",
      "deterministic fp32 takes the heuristic's first deterministic FMA algorithm and its " +
      "workspace",
      "leaving deterministic mode builds a timed plan",
      "no allowed algorithm fails with the reason and destroys the descriptors",
      "the search workspace is released and the plan's workspace kept",
      "a growing workspace replaces the old one (released to the device, not cached)",
      "releasing the workspace frees it; the next call takes its plan's size, no search",
      "a negative or malformed FBP_CUDNN_WORKSPACE_MIB is refused by name",
      "a tensor past 2^31 elements is refused before cuDNN is called",
    ]);
  },
});
