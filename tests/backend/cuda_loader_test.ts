/**
 * How the CUDA backend finds cuDNN and cuBLAS (native/cuda/libfind.h), tested on the host
 * without a GPU: native/cuda/test/loader_harness.cpp runs the library's own search and
 * version checks against stub libraries built here with the C compiler — a pip-wheel
 * folder whose libcudnn.so.9 needs a sibling (libcudnn_graph.so.9) that is not on the
 * loader's path, FBP_CUDNN_LIB as a file or a folder, wrong values, a cuDNN 8 and a
 * cuBLAS 11 (refused with the versions supported), a cuBLAS without cublasGetProperty, a
 * sibling that exists but cannot load (its reason kept), siblings closed again when the
 * library fails, a found-but-broken library named as such, and cuBLAS 13 giving way to 12
 * when its cublasCreate fails (a driver older than CUDA 13).
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

Deno.test("FBP_CUDNN_LIB may name the library or its folder; siblings come from it", async () => {
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

Deno.test("cuBLAS 12 and 13 load with cublasLt beside them; 11 and bare ones do not", async () => {
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
      `cublasGetProperty; then Cannot open cuBLAS: FBP_CUBLAS_LIB=${bare} is a folder ` +
      "without libcublas.so.12",
  );
});

/** A cuBLAS stub of version major.minor whose cublasCreate_v2 returns `create`. */
function cublasStub(major: number, minor: number, create: number): string {
  return `int fbp_stub_lt(void);\nint cublasGetProperty(int type, int *value) {\n` +
    `  *value = type == 0 ? ${major} : type == 1 ? ${minor} : 0; return fbp_stub_lt();\n}\n` +
    `int cublasCreate_v2(void **h) { *h = 0; return ${create}; }`;
}

Deno.test("cuBLAS 13 whose cublasCreate fails (old driver) gives way to cuBLAS 12", async () => {
  const both = join(tmp, "cublas-both");
  for (const [major, create] of [[13, 1], [12, 0]]) {
    await stub(both, `libcublasLt.so.${major}`, "int fbp_stub_lt(void) { return 0; }");
    await stub(both, `libcublas.so.${major}`, cublasStub(major, 4, create), [
      `libcublasLt.so.${major}`,
    ]);
  }
  assert.equal(
    await harnessRun(["open", "cublas"], { FBP_CUBLAS_LIB: both }),
    `opened ${join(both, "libcublas.so.12")} version 12.4`,
  );
  const only13 = join(tmp, "cublas-only13");
  await stub(only13, "libcublasLt.so.13", "int fbp_stub_lt(void) { return 0; }");
  await stub(only13, "libcublas.so.13", cublasStub(13, 0, 1), ["libcublasLt.so.13"]);
  assert.equal(
    await harnessRun(["open", "cublas"], { FBP_CUBLAS_LIB: only13 }),
    `error Cannot use ${join(only13, "libcublas.so.13")} as cuBLAS: cublasCreate failed ` +
      `(status 1); then Cannot open cuBLAS: FBP_CUBLAS_LIB=${only13} is a folder without ` +
      "libcublas.so.12",
  );
});

/** Builds libmissing.so.1 in `dir`, links `soname` to it, then deletes it. */
async function brokenStub(dir: string, soname: string, source: string) {
  await stub(dir, "libmissing.so.1", "int fbp_stub_missing(void) { return 1; }");
  await stub(dir, soname, `int fbp_stub_missing(void);\n${source}`, ["libmissing.so.1"]);
  await Deno.remove(join(dir, "libmissing.so.1"));
}

Deno.test("a sibling that exists but cannot load is named with the loader's reason", async () => {
  const dir = join(tmp, "cudnn-bad-sibling");
  await brokenStub(dir, "libcudnn_graph.so.9", "int fbp_stub_graph(void) { return 90100; }");
  await stub(
    dir,
    "libcudnn.so.9",
    "int fbp_stub_graph(void);\nsize_t cudnnGetVersion(void) { return (size_t)fbp_stub_graph(); }",
    ["libcudnn_graph.so.9"],
  );
  const r = await harnessRun(["open", "cudnn"], { FBP_CUDNN_LIB: dir });
  assert.match(r, new RegExp(`^error Cannot open cuDNN from FBP_CUDNN_LIB=${dir}: `));
  assert.match(r, /libcudnn_graph\.so\.9: cannot open shared object file/);
  assert.match(r, /before it, a library beside it failed: libmissing\.so\.1: cannot open/);
});

Deno.test("siblings opened for a library that then fails are closed again", async () => {
  const dir = join(tmp, "cudnn-bad-main");
  await stub(dir, "libcudnn_graph.so.9", "int fbp_stub_graph(void) { return 90100; }");
  await stub(dir, "libcudnn_ops.so.9", "int fbp_stub_ops(void) { return 0; }");
  await brokenStub(dir, "libcudnn.so.9", "size_t cudnnGetVersion(void) { return 90100; }");
  const r = await harnessRun(["open-closed", "cudnn"], { FBP_CUDNN_LIB: dir });
  // One line: the error, and no "still loaded libcudnn_graph.so.9" after it.
  assert.match(r, /^error Cannot open cuDNN from FBP_CUDNN_LIB=.*libmissing\.so\.1[^\n]*$/);
});

Deno.test({
  name: `a candidate found but not loadable is named as such, not as "not found"${
    systemCudnn ? " (skipped: a system cuDNN comes first here)" : ""
  }`,
  ignore: systemCudnn,
  async fn() {
    const venv = join(tmp, "venv-broken");
    const dir = join(venv, "lib/python3.12/site-packages/nvidia/cudnn/lib");
    await brokenStub(dir, "libcudnn.so.9", "size_t cudnnGetVersion(void) { return 90100; }");
    const r = await harnessRun(["open", "cudnn"], { VIRTUAL_ENV: venv });
    assert.equal(
      r,
      `error Cannot open cuDNN: found ${join(dir, "libcudnn.so.9")} but cannot load it: ` +
        "libmissing.so.1: cannot open shared object file: No such file or directory; set " +
        "FBP_CUDNN_LIB to a working copy or its folder",
    );
  },
});

Deno.test("candidate folders: a fixed list, newest python first, no recursion", async () => {
  const conda = join(tmp, "conda");
  for (const py of ["python3.9", "python3.10", "python3.12"]) {
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
    join(conda, "lib/python3.9/site-packages/nvidia/cudnn/lib"),
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
      new RegExp(
        "^error Cannot open cuDNN: libcudnn\\.so\\.9 is not on the loader's path nor in any " +
          "of \\d+ candidate folders .*set FBP_CUDNN_LIB to the library or its folder$",
      ),
    );
  },
});

Deno.test("loader test cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
