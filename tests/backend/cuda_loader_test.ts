/**
 * How the CUDA backend finds cuDNN and cuBLAS (native/cuda/libfind.h), tested on the host
 * without a GPU: native/cuda/test/loader_harness.cpp runs the library's own search and
 * version checks against stub libraries built here with the C compiler — a pip-wheel
 * folder whose libcudnn.so.9 needs a sibling (libcudnn_graph.so.9) that is not on the
 * loader's path, FBP_CUDNN_LIB as a file or a folder, wrong values, a cuDNN 8 and a
 * cuBLAS 11 (refused with the versions supported), a cuBLAS without cublasGetProperty.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/backend/library_paths.ts";

const CC = Deno.env.get("CC") || "cc";
const CXX = Deno.env.get("CXX") || "c++";

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, clearEnv: true, cwd: REPO_ROOT })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Cannot run ${cmd} ${args.join(" ")}: ${text}`);
  return text.trim();
}

/** Builds a shared library `soname` in `dir` from C source, linked to `needs` (in dir). */
async function stub(dir: string, soname: string, source: string, needs: string[] = []) {
  await Deno.mkdir(dir, { recursive: true });
  const src = join(dir, `${soname}.c`);
  await Deno.writeTextFile(src, `#include <stddef.h>\n${source}\n`);
  await run(CC, [
    "-shared",
    "-fPIC",
    `-Wl,-soname,${soname}`,
    "-Wl,--no-as-needed",
    src,
    "-o",
    join(dir, soname),
    `-L${dir}`,
    ...needs.map((n) => `-l:${n}`),
  ], { PATH: Deno.env.get("PATH") ?? "" });
  await Deno.remove(src);
}

const tmp = await Deno.makeTempDir({ prefix: "fbp_loader_" });
const harness = join(tmp, "loader_harness");
await run(CXX, [
  "-Wall",
  "-Wextra",
  "-Werror",
  "-I",
  "native/cuda",
  "native/cuda/test/loader_harness.cpp",
  "-o",
  harness,
  "-ldl",
], { PATH: Deno.env.get("PATH") ?? "" });

/** Runs the harness with only the given environment (no host CUDA_HOME, CONDA_PREFIX…). */
function harnessRun(args: string[], env: Record<string, string> = {}) {
  return run(harness, args, { HOME: join(tmp, "home"), ...env });
}

// A pip-wheel layout: nvidia/cudnn/lib with libcudnn.so.9 needing libcudnn_graph.so.9.
const wheel = join(tmp, "venv/lib/python3.11/site-packages/nvidia/cudnn/lib");
await stub(wheel, "libcudnn_graph.so.9", "int fbp_stub_graph(void) { return 90100; }");
await stub(
  wheel,
  "libcudnn.so.9",
  "int fbp_stub_graph(void);\nsize_t cudnnGetVersion(void) { return (size_t)fbp_stub_graph(); }",
  ["libcudnn_graph.so.9"],
);
/** True when this machine's loader finds a real libcudnn.so.9 / libcublas by soname. */
const systemCudnn = (await harnessRun(["plain", "libcudnn.so.9"])).startsWith("opened");

Deno.test("the stub cuDNN cannot open alone: its sibling is not on the loader's path", async () => {
  const r = await harnessRun(["plain", join(wheel, "libcudnn.so.9")]);
  assert.match(r, /^error .*libcudnn_graph\.so\.9/);
});

Deno.test({
  name: `cuDNN is found in a pip wheel of $VIRTUAL_ENV, its sibling opened first${
    systemCudnn ? " (skipped: a system cuDNN comes first here)" : ""
  }`,
  ignore: systemCudnn,
  async fn() {
    const r = await harnessRun(["open", "cudnn"], { VIRTUAL_ENV: join(tmp, "venv") });
    assert.equal(r, `opened ${join(wheel, "libcudnn.so.9")} version 90100`);
  },
});

Deno.test("FBP_CUDNN_LIB may name the library or its folder; siblings come from there", async () => {
  for (const value of [join(wheel, "libcudnn.so.9"), wheel]) {
    const r = await harnessRun(["open", "cudnn"], { FBP_CUDNN_LIB: value });
    assert.equal(r, `opened ${join(wheel, "libcudnn.so.9")} version 90100`);
  }
});

Deno.test("a wrong FBP_CUDNN_LIB is an error naming it, not a fallback", async () => {
  const missing = join(tmp, "nowhere/libcudnn.so.9");
  assert.equal(
    await harnessRun(["open", "cudnn"], { FBP_CUDNN_LIB: missing }),
    `error Cannot open cuDNN: FBP_CUDNN_LIB=${missing} does not exist`,
  );
  const empty = join(tmp, "empty");
  await Deno.mkdir(empty);
  assert.equal(
    await harnessRun(["open", "cudnn"], { FBP_CUDNN_LIB: empty }),
    `error Cannot open cuDNN: FBP_CUDNN_LIB=${empty} is a folder without libcudnn.so.9`,
  );
});

Deno.test("a cuDNN other than 9.x is refused with the version found", async () => {
  const old = join(tmp, "cudnn8");
  await stub(old, "libcudnn.so.9", "size_t cudnnGetVersion(void) { return 8902; }");
  assert.equal(
    await harnessRun(["open", "cudnn"], { FBP_CUDNN_LIB: old }),
    `error Cannot use cuDNN 8.9.2 from ${join(old, "libcudnn.so.9")}: expected cuDNN 9.x`,
  );
});

Deno.test("cuBLAS 12 and 13 load with cublasLt beside them; 11 and unversioned ones do not", async () => {
  const property = (major: number, minor: number) =>
    `int fbp_stub_lt(void);\nint cublasGetProperty(int type, int *value) {\n` +
    `  *value = type == 0 ? ${major} : type == 1 ? ${minor} : 0; return fbp_stub_lt();\n}`;
  for (const [major, soname] of [[12, "libcublas.so.12"], [13, "libcublas.so.13"]] as const) {
    const dir = join(tmp, `cublas${major}`);
    await stub(dir, `libcublasLt.so.${major}`, "int fbp_stub_lt(void) { return 0; }");
    await stub(dir, soname, property(major, 4), [`libcublasLt.so.${major}`]);
    assert.equal(
      await harnessRun(["open", "cublas"], { FBP_CUBLAS_LIB: dir }),
      `opened ${join(dir, soname)} version ${major}.4`,
    );
  }
  const old = join(tmp, "cublas11");
  await stub(old, "libcublasLt.so.12", "int fbp_stub_lt(void) { return 0; }");
  await stub(old, "libcublas.so.12", property(11, 8), ["libcublasLt.so.12"]);
  assert.equal(
    await harnessRun(["open", "cublas"], { FBP_CUBLAS_LIB: old }),
    `error Cannot use cuBLAS 11.8 from ${
      join(old, "libcublas.so.12")
    }: expected cuBLAS 12.x or 13.x`,
  );
  const bare = join(tmp, "cublas-bare");
  await stub(bare, "libcublas.so.13", "int cublasCreate_v2(void **h) { return 0; }");
  assert.equal(
    await harnessRun(["open", "cublas"], { FBP_CUBLAS_LIB: bare }),
    `error Cannot use ${join(bare, "libcublas.so.13")} as cuBLAS: it has no working ` +
      "cublasGetProperty",
  );
});

Deno.test("the candidate folders: a fixed list, newest python first, no recursion", async () => {
  const conda = join(tmp, "conda");
  for (const py of ["python3.10", "python3.12"]) {
    await Deno.mkdir(join(conda, `lib/${py}/site-packages/nvidia/cudnn/lib`), { recursive: true });
  }
  // Deeper than the one wildcard level: never looked at.
  await Deno.mkdir(join(conda, "lib/python3.12/site-packages/other/nvidia/cudnn/lib"), {
    recursive: true,
  });
  const dirs = (await harnessRun(["dirs", "cudnn"], {
    CUDA_HOME: join(tmp, "cuda"),
    CONDA_PREFIX: conda,
    VIRTUAL_ENV: join(tmp, "venv"),
  })).split("\n");
  assert.deepEqual(dirs.slice(0, 3), [
    join(tmp, "cuda/lib64"),
    join(conda, "lib"),
    "/usr/local/cuda/lib64",
  ]);
  const wheels = dirs.filter((d) => d.startsWith(tmp) && d.includes("nvidia"));
  assert.deepEqual(wheels, [
    wheel,
    join(conda, "lib/python3.12/site-packages/nvidia/cudnn/lib"),
    join(conda, "lib/python3.10/site-packages/nvidia/cudnn/lib"),
  ]);
});

Deno.test({
  name: `without any candidate the error says what was tried and which variable to set${
    systemCudnn ? " (skipped: a system cuDNN is found here)" : ""
  }`,
  ignore: systemCudnn,
  async fn() {
    const r = await harnessRun(["open", "cudnn"]);
    assert.match(
      r,
      /^error Cannot open cuDNN: libcudnn\.so\.9 is not on the loader's path nor in any of \d+ candidate folders .*set FBP_CUDNN_LIB to the library or its folder$/,
    );
  },
});

Deno.test("loader test cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
