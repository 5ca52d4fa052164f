#!/usr/bin/env bash
# tasks/gpu_check.sh — checks the CUDA backend on a machine with an NVIDIA GPU, in one run
# of at most ~8 minutes, and prints one JSON summary (also $OUT/gpu_check.json):
#   1. every CUDA kernel against the reference backend, the CUDA-only checks (batch-norm
#      statistics vs the CPU convention, determinism, fp32 math, memory figures), the
#      network and op fixtures (tests/models/network_fixture_test.ts,
#      tests/ops/torch_fixtures_test.ts), with FBP_TEST_BACKENDS=cuda FBP_REQUIRE_CUDA=1;
#   2. a short real training on the synthetic set (loss falls, both tasks above chance),
#      the same run interrupted after one epoch and resumed, and two --deterministic runs
#      whose histories and weights must be identical (tasks/gpu_check.ts train);
#   3. the benchmark side by side with PyTorch + cuDNN on the same GPU, fp32 and tf32:
#      ResNet18 train and inference images/s at batch 32 and 128, the full method, peak
#      GPU memory (tasks/gpu_check.ts bench, tasks/gpu_torch_bench.py), against the
#      targets (ResNet18 ≥ 1.0× PyTorch, full method ≥ 1.5×, peak memory ≤ PyTorch's).
#
# The GPU machine needs no network and no Deno: prepare .gpu/ with `deno task gpu-bundle`
# (a compressed Deno, the npm cache subset with its cut-down lockfile, a prebuilt
# libfbp_cuda.so; ≤ 60 MiB) and bring it with the working tree. They are unpacked outside
# .gpu/ (into $TMPDIR), so the carried folder stays as small as bundled.
#
# The CUDA library: the bundled .gpu/libfbp_cuda.so when its source digest matches the
# tree's (no build at all); else, or when the driver is too old for its CUDA 13 runtime, one
# stamp-checked build with the machine's nvcc; a stale bundled library is said so. cuDNN 9 and cuBLAS 12/13: the library's own fixed search (native/cuda/
# libfind.h); when unset, FBP_CUDNN_LIB / FBP_CUBLAS_LIB are pointed at PyTorch's
# nvidia-* wheels if python3 can import them (one import, no file-system search).
#
# Usage: bash tasks/gpu_check.sh       (needs bash, tar, xz or python3, python3 with torch)
# Exit status: 0 when the tests, training, resume and determinism checks passed (the speed
# and memory targets are in the summary, not in the status), 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
GPU="$ROOT/.gpu"
DIR=${OUT:-$ROOT/runs/gpu-check}
LOGS="$DIR/logs"
WORK="${TMPDIR:-/tmp}/fbp-gpu-$(id -u)"
mkdir -p "$DIR" "$LOGS" "$WORK"
rm -f "$DIR"/{fbp_bench,torch_bench,train,gpu_check}.json
export NO_COLOR=1
START=$(date +%s)
STEPS=""

say() { printf '[%3ds] %s\n' "$(($(date +%s) - START))" "$*" | tee -a "$LOGS/steps.txt" >&2; }

# Runs a step with a time limit, logging to $LOGS/<name>.txt; records "name=rc:seconds".
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  say "$name (limit ${limit}s)"
  if command -v timeout >/dev/null 2>&1; then
    timeout --signal=INT --kill-after=10 "$limit" "$@" >"$LOGS/$name.txt" 2>&1
  else
    "$@" >"$LOGS/$name.txt" 2>&1
  fi
  rc=$?
  STEPS="$STEPS $name=$rc:$(($(date +%s) - t0))"
  say "$name: exit $rc"
  return $rc
}

# Decompresses $1 to stdout with xz, or with python3's lzma where xz is missing.
unxz_to_stdout() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}
unpack_to_stdout() { case "$1" in *.xz) unxz_to_stdout "$1" ;; *) gzip -dc "$1" ;; esac; }

# ---- Deno and its npm cache (unpacked again when the bundle is newer) ---------------------
DENO=""
for packed in "$GPU/deno.xz" "$GPU/deno.gz"; do
  [ -f "$packed" ] || continue
  if [ ! -x "$WORK/deno" ] || [ "$packed" -nt "$WORK/deno" ]; then
    say "unpacking $(basename "$packed")"
    unpack_to_stdout "$packed" >"$WORK/deno.part" && chmod +x "$WORK/deno.part" &&
      mv "$WORK/deno.part" "$WORK/deno"
  fi
  [ -x "$WORK/deno" ] && DENO="$WORK/deno"
  break
done
[ -z "$DENO" ] && command -v deno >/dev/null 2>&1 && DENO=$(command -v deno)
if [ -z "$DENO" ]; then
  say "gpu_check: no Deno: run \`deno task gpu-bundle\` where Deno is, and bring .gpu/"
  exit 1
fi
for packed in "$GPU/deno_dir.tar.xz" "$GPU/deno_dir.tar.gz"; do
  [ -f "$packed" ] || continue
  if [ ! -f "$WORK/deno_dir.stamp" ] || [ "$packed" -nt "$WORK/deno_dir.stamp" ]; then
    say "unpacking $(basename "$packed")"
    rm -rf "$WORK/deno_dir"
    unpack_to_stdout "$packed" | tar -C "$WORK" -xf - && touch "$WORK/deno_dir.stamp"
  fi
  export DENO_DIR="$WORK/deno_dir"
  break
done
RUN_FLAGS=(--cached-only)
if [ -n "${DENO_DIR:-}" ] && [ -f "$DENO_DIR/deno.lock" ]; then
  export FBP_DENO_LOCK="$DENO_DIR/deno.lock"
  RUN_FLAGS+=("--lock=$FBP_DENO_LOCK")
fi
export FBP_CHECK_DENO="$("$DENO" --version | head -1)"
say "deno: $FBP_CHECK_DENO (DENO_DIR=${DENO_DIR:-default})"

# ---- the GPU and its libraries ---------------------------------------------------------------
export FBP_CHECK_GPU=$( (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
  echo "nvidia-smi not available") 2>/dev/null | head -1)
say "gpu: $FBP_CHECK_GPU"
# PyTorch's own cuDNN / cuBLAS wheels, where python3 has them (the library's fixed list
# also covers the usual site-packages folders; this catches any other python prefix).
wheel_lib() {
  python3 -c "import importlib, os, sys
m = importlib.import_module(sys.argv[1]); d = os.path.join(list(m.__path__)[0], 'lib')
print(d if os.path.isdir(d) else '')" "$1" 2>/dev/null
}
if [ -z "${FBP_CUDNN_LIB:-}" ]; then
  d=$(wheel_lib nvidia.cudnn)
  [ -n "$d" ] && export FBP_CUDNN_LIB="$d" && say "cuDNN from PyTorch's wheel: $d"
fi
if [ -z "${FBP_CUBLAS_LIB:-}" ]; then
  d=$(wheel_lib nvidia.cublas)
  [ -n "$d" ] && export FBP_CUBLAS_LIB="$d" && say "cuBLAS from PyTorch's wheel: $d"
fi

# ---- the CUDA library: the bundled one when current, else one build -------------------------
probe() {
  "$DENO" eval "${RUN_FLAGS[@]}" "
    import { loadCudaBackend } from './src/backend/cuda.ts';
    try { console.log((await loadCudaBackend()).info.replace(/;.*$/, '')); }
    catch (e) { console.log('UNAVAILABLE: ' + e.message); }" 2>&1 | tail -1
}
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
FBP_CHECK_BUILD="MISSING: no nvcc and no .gpu/libfbp_cuda.so"
FBP_CHECK_BACKEND=""
if [ -f "$GPU/libfbp_cuda.so" ]; then
  want=$("$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_bundle.ts --digest 2>/dev/null)
  if [ -n "$want" ] && [ "$want" = "$(cat "$GPU/libfbp_cuda.digest" 2>/dev/null)" ]; then
    export FBP_CUDA_LIB="$GPU/libfbp_cuda.so"
    FBP_CHECK_BUILD="prebuilt .gpu/libfbp_cuda.so, built from these sources"
    FBP_CHECK_BACKEND=$(probe)
    # Built with CUDA 13 elsewhere: a driver older than that needs a build here.
    if [ -n "$NVCC" ] && [[ "$FBP_CHECK_BACKEND" == *"insufficient"* ]]; then
      unset FBP_CUDA_LIB
      FBP_CHECK_BACKEND=""
    fi
  else
    FBP_CHECK_BUILD="STALE prebuilt .gpu/libfbp_cuda.so: the CUDA sources changed since \`deno task gpu-bundle\`"
  fi
fi
if [ -z "${FBP_CUDA_LIB:-}" ] && [ -n "$NVCC" ]; then
  export NVCC
  if step build 300 "$DENO" eval "${RUN_FLAGS[@]}" "
      import { buildCudaLibrary } from './tasks/_build/native_build.ts';
      const r = await buildCudaLibrary({});
      if (!r) throw new Error('nvcc not found');
      console.log((r.built ? 'built' : 'up to date') + ' in ' + r.seconds.toFixed(0) + ' s');"; then
    FBP_CHECK_BUILD="nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'): $(tail -1 "$LOGS/build.txt")"
  else
    FBP_CHECK_BUILD="BUILD FAILED (see $LOGS/build.txt)"
  fi
  FBP_CHECK_BACKEND=$(probe)
elif [ -z "${FBP_CUDA_LIB:-}" ] && [ -f "$GPU/libfbp_cuda.so" ]; then
  export FBP_CUDA_LIB="$GPU/libfbp_cuda.so" # stale, but the only one: the tests will tell
  FBP_CHECK_BACKEND=$(probe)
fi
export FBP_CHECK_BUILD FBP_CHECK_BACKEND
say "cuda library: $FBP_CHECK_BUILD"
say "backend: $FBP_CHECK_BACKEND"

# ---- 1. tests ---------------------------------------------------------------------------------
FBP_REQUIRE_CUDA=1 FBP_TEST_BACKENDS=cuda step tests 120 "$DENO" test -A "${RUN_FLAGS[@]}" \
  tests/backend/cuda_test.ts tests/backend/cuda_gpu_test.ts \
  tests/models/network_fixture_test.ts tests/ops/torch_fixtures_test.ts

# ---- 2. training, resume, determinism -----------------------------------------------------------
rm -rf "$DIR/runs"
step train 180 "$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts train "$DIR/runs" "$DIR/train.json"

# ---- 3. benchmark: fbp, then PyTorch on the same GPU --------------------------------------------
step bench_fbp 100 "$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts bench "$DIR/fbp_bench.json"
step bench_torch 80 python3 tasks/gpu_torch_bench.py "$DIR/torch_bench.json"

# ---- summary ---------------------------------------------------------------------------------------
export FBP_CHECK_STEPS="${STEPS# }" FBP_CHECK_SECONDS=$(($(date +%s) - START))
"$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts summary "$DIR"
