#!/usr/bin/env bash
# tasks/gpu_check.sh — checks the CUDA backend on a machine with an NVIDIA GPU: builds the
# CUDA library, runs the CUDA test cases (every kernel against the reference backend, the
# whole network and the ops against their PyTorch fixtures) and the network benchmark,
# then prints a short summary (tests passed/failed, training images/s at batch 32,
# 224×224) and writes it to $OUT/gpu_check.txt when OUT is set (the logs next to it).
#
# The GPU machine needs no network and no Deno: the script uses a Deno binary and the npm
# package cache from .gpu/ (ignored by git). Prepare that folder once, on a machine with
# network and Deno, in the repository root:
#
#   mkdir -p .gpu
#   xz -6 -T0 -c "$(command -v deno)" > .gpu/deno.xz    # ~31 MB (or: cp "$(command -v deno)" .gpu/deno)
#   DENO_DIR=.gpu/deno_dir deno cache --frozen tasks/build.ts tasks/bench.ts \
#     tests/backend/cuda_test.ts tests/models/network_fixture_test.ts tests/ops/torch_fixtures_test.ts
#   tar -C .gpu -cJf .gpu/deno_dir.tar.xz deno_dir && rm -rf .gpu/deno_dir   # ~8 MB
#
# and bring .gpu/ along with the working tree. If the GPU machine has no nvcc, also bring
# a library built elsewhere (`deno task build` → native/build/libfbp_cuda.so); the script
# then uses it through FBP_CUDA_LIB. cuDNN 9 and cuBLAS 13 (or 12) are found through the
# loader's path, FBP_CUDNN_LIB / FBP_CUBLAS_LIB, or a search of /usr, /opt and the home
# folder (pip's nvidia-* wheels included). The CPU backend is not used here (the GPU host
# need not have oneDNN): the parametrised tests run with FBP_TEST_BACKENDS=cuda, and
# FBP_REQUIRE_CUDA=1 turns "no CUDA device" into a failure instead of a skip.
#
# Usage: bash tasks/gpu_check.sh        (needs bash, tar, and xz or python3 for .xz files)
# Exit status: 0 when every test passed and the benchmark ran, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
GPU="$ROOT/.gpu"
REPORT_DIR=${OUT:-$GPU}
LOGS="$REPORT_DIR/gpu_check_logs"
mkdir -p "$GPU" "$LOGS"
export NO_COLOR=1

say() { printf '%s\n' "$*" | tee -a "$LOGS/steps.txt" >&2; }

# Decompresses an .xz file to stdout with xz, or with python3's lzma where xz is missing.
unxz_to_stdout() {
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# ---- Deno and its npm cache --------------------------------------------------------------
DENO=""
if [ -x "$GPU/deno" ]; then
  DENO="$GPU/deno"
elif [ -f "$GPU/deno.xz" ]; then
  say "unpacking .gpu/deno.xz"
  unxz_to_stdout "$GPU/deno.xz" >"$GPU/deno.part" && chmod +x "$GPU/deno.part" &&
    mv "$GPU/deno.part" "$GPU/deno" && DENO="$GPU/deno"
elif [ -f "$GPU/deno.gz" ]; then
  gzip -dc "$GPU/deno.gz" >"$GPU/deno.part" && chmod +x "$GPU/deno.part" &&
    mv "$GPU/deno.part" "$GPU/deno" && DENO="$GPU/deno"
elif command -v deno >/dev/null 2>&1; then
  DENO=$(command -v deno)
fi
if [ -z "$DENO" ]; then
  say "gpu_check: no Deno: put it in .gpu/ (see this script's header)"
  exit 1
fi
if [ ! -d "$GPU/deno_dir" ]; then
  if [ -f "$GPU/deno_dir.tar.xz" ]; then
    say "unpacking .gpu/deno_dir.tar.xz"
    unxz_to_stdout "$GPU/deno_dir.tar.xz" | tar -C "$GPU" -xf -
  elif [ -f "$GPU/deno_dir.tar.gz" ]; then
    tar -C "$GPU" -xzf "$GPU/deno_dir.tar.gz"
  fi
fi
[ -d "$GPU/deno_dir" ] && export DENO_DIR="$GPU/deno_dir"
say "deno: $("$DENO" --version | head -1) (DENO_DIR=${DENO_DIR:-default})"

# ---- the GPU and its libraries -------------------------------------------------------------
GPU_NAME=$( (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
  echo "nvidia-smi not available") 2>/dev/null | head -1)
say "gpu: $GPU_NAME"

# Sets FBP_<VAR>_LIB to the first file named $2 under the usual roots, unless the loader
# finds the name by itself; its folder joins LD_LIBRARY_PATH (cuDNN 9 loads its
# sub-libraries, cuBLAS its cublasLt, from there).
find_library() {
  local var=$1 name=$2 found
  if [ -n "${!var:-}" ]; then return; fi
  if ldconfig -p 2>/dev/null | grep -q "$name "; then return; fi
  found=$(find /usr /opt "${HOME:-/root}" /root -name "$name" \( -type f -o -type l \) 2>/dev/null | head -1)
  if [ -n "$found" ]; then
    export "$var=$found"
    export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "found $name: $found"
  else
    say "$name: not on the loader's path and not found under /usr /opt \$HOME"
  fi
}
find_library FBP_CUDNN_LIB libcudnn.so.9
if ! ldconfig -p 2>/dev/null | grep -q "libcublas.so.13 " && [ -z "${FBP_CUBLAS_LIB:-}" ]; then
  find_library FBP_CUBLAS_LIB libcublas.so.13
  [ -z "${FBP_CUBLAS_LIB:-}" ] && find_library FBP_CUBLAS_LIB libcublas.so.12
fi

# ---- the CUDA library ------------------------------------------------------------------------
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
BUILD="not built"
if [ -n "$NVCC" ]; then
  export NVCC
  say "building the CUDA library with $NVCC"
  start=$(date +%s)
  if "$DENO" eval --cached-only "
      import { buildCudaLibrary } from './tasks/_build/native_build.ts';
      const r = await buildCudaLibrary({ force: true });
      if (!r) throw new Error('nvcc not found');" >"$LOGS/build.txt" 2>&1; then
    BUILD="built with nvcc $("$NVCC" --version | sed -n "s/.*release \([0-9.]*\).*/\1/p") in $(($(date +%s) - start)) s"
  else
    BUILD="BUILD FAILED (see $LOGS/build.txt)"
  fi
elif [ -f native/build/libfbp_cuda.so ]; then
  export FBP_CUDA_LIB="$ROOT/native/build/libfbp_cuda.so"
  BUILD="prebuilt native/build/libfbp_cuda.so (no nvcc here)"
else
  BUILD="MISSING: no nvcc and no native/build/libfbp_cuda.so"
fi
say "cuda library: $BUILD"

INFO=$("$DENO" eval --cached-only "
  import { loadCudaBackend } from './src/backend/cuda.ts';
  try { console.log((await loadCudaBackend()).info); }
  catch (e) { console.log('UNAVAILABLE: ' + e.message); }" 2>&1 | tail -1)
say "backend: $INFO"

# ---- tests -----------------------------------------------------------------------------------
say "running the CUDA tests"
FBP_REQUIRE_CUDA=1 FBP_TEST_BACKENDS=cuda "$DENO" test -A --cached-only \
  tests/backend/cuda_test.ts tests/models/network_fixture_test.ts tests/ops/torch_fixtures_test.ts \
  >"$LOGS/tests.txt" 2>&1
TEST_RC=$?
TESTS=$(grep -E '^(ok|FAILED) \| ' "$LOGS/tests.txt" | tail -1)
[ -z "$TESTS" ] && TESTS="no test summary (exit $TEST_RC; see $LOGS/tests.txt)"
FAILED_NAMES=$(grep -E ' \.\.\. FAILED' "$LOGS/tests.txt" | sed 's/ \.\.\. FAILED.*//' | head -20)
FIRST_ERROR=$(grep -m1 -E '^error:' "$LOGS/tests.txt")

# ---- benchmark ---------------------------------------------------------------------------------
say "running the network benchmark on cuda"
"$DENO" run -A --cached-only tasks/bench.ts --only network --device cuda --json --reps 5 \
  >"$LOGS/bench.txt" 2>"$LOGS/bench_stderr.txt"
BENCH_RC=$?
BENCH=$(grep -E '^network batch 32' "$LOGS/bench.txt" | tail -1)
TRAIN=$(tail -1 "$LOGS/bench.txt" | "$DENO" eval --cached-only "
  const text = await new Response(Deno.stdin.readable).text();
  try {
    const n = JSON.parse(text).sections.network;
    console.log(n.batch32_trainImagesPerSecond.toFixed(1) + ' images/s training (forward+backward), ' +
      n.batch32_forwardImagesPerSecond.toFixed(1) + ' images/s eval forward');
  } catch { console.log('no result (see the bench log)'); }" 2>&1 | tail -1)

# ---- summary -----------------------------------------------------------------------------------
SUMMARY="$REPORT_DIR/gpu_check.txt"
{
  echo "fbp GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "gpu:           $GPU_NAME"
  echo "backend:       $INFO"
  echo "cuda library:  $BUILD"
  echo "tests:         $TESTS"
  if [ -n "$FAILED_NAMES" ]; then
    echo "failed tests:"
    printf '%s\n' "$FAILED_NAMES" | sed 's/^/  /'
  fi
  [ $TEST_RC -ne 0 ] && [ -n "$FIRST_ERROR" ] && echo "first error:   $FIRST_ERROR"
  echo "network bench: multi-task net (2 tasks, 2 databases, AFF, DAB), batch 32 per database"
  echo "               (64 images per step), 224x224: $TRAIN"
  [ -n "$BENCH" ] && echo "               $BENCH"
  [ $BENCH_RC -ne 0 ] && echo "               BENCH FAILED (exit $BENCH_RC; see $LOGS/bench_stderr.txt)"
  echo "logs:          $LOGS"
} | tee "$SUMMARY"

[ $TEST_RC -eq 0 ] && [ $BENCH_RC -eq 0 ] && exit 0
exit 1
