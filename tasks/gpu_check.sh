#!/usr/bin/env bash
# tasks/gpu_check.sh — checks the CUDA backend on a machine with an NVIDIA GPU in one run that
# ends within FBP_CHECK_BUDGET seconds (default 470, unpacking included), and prints one JSON
# summary (also $OUT/gpu_check.json, rewritten after every step so a run cut short keeps it):
#   1. every CUDA kernel against the reference backend, the CUDA-only checks (batch-norm
#      statistics vs the CPU convention, determinism, fp32 math in cuDNN and cuBLAS, memory
#      figures), the network and op fixtures (tests/models/network_fixture_test.ts,
#      tests/ops/torch_fixtures_test.ts), with FBP_TEST_BACKENDS=cuda FBP_REQUIRE_CUDA=1;
#   2. a short real training on the synthetic set (loss falls, both tasks beat their largest
#      class), the same run interrupted after its first epoch and resumed, and two
#      --deterministic runs whose epoch logs and tensors must be identical
#      (tasks/gpu_check.ts train; the runs live under $WORK, only their log.jsonl and
#      metrics.json are copied to $OUT/train_runs/);
#   3. the benchmark side by side with PyTorch + cuDNN on the same GPU, fp32 and tf32:
#      ResNet18 train and inference images/s at batch 32 and 128, the full method, peak
#      GPU memory (tasks/gpu_check.ts bench, tasks/gpu_torch_bench.py), against the
#      targets (ResNet18 ≥ 1.0× PyTorch, full method ≥ 1.5×, peak memory ≤ PyTorch's).
#
# Time: one deadline for the whole run. Each step gets what is left of it, at most its own
# cap, and is skipped with a note when less than its minimum is left; tasks/gpu_check.ts and
# tasks/gpu_torch_bench.py are told their end (FBP_CHECK_DEADLINE, --seconds) and shorten
# their repetitions or skip what no longer fits rather than overrun. A rebuild of the CUDA
# library happens only when it fits and leaves the tests and the training their minimum.
#
# The GPU machine needs no network and no Deno: prepare .gpu/ with `deno task gpu-bundle`
# (a compressed Deno, the npm cache subset with its cut-down lockfile, a prebuilt
# libfbp_cuda.so; ≤ 60 MiB) and bring it with the working tree. They are unpacked outside
# .gpu/ (into $TMPDIR), so the carried folder stays as small as bundled. Deno runs with
# --cached-only --no-check (the bundle was type-checked when it was made) and
# DENO_NO_UPDATE_CHECK=1.
#
# The CUDA library: the bundled .gpu/libfbp_cuda.so when its source digest matches the
# tree's (no build at all); else, or when the driver is too old for its CUDA 13 runtime, one
# stamp-checked build with the machine's nvcc (when it fits the deadline); a stale bundled
# library is said so. cuDNN 9 and cuBLAS 12/13: the library's own fixed search
# (native/cuda/libfind.h); when unset, FBP_CUDNN_LIB / FBP_CUBLAS_LIB are pointed at
# PyTorch's nvidia-* wheels if python3 can import them and the folder holds the library.
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
START=$(date +%s)
DEADLINE=$((START + ${FBP_CHECK_BUDGET:-470}))
RESERVE=12 # seconds kept for the last summary
mkdir -p "$DIR" "$LOGS" "$WORK"
rm -rf "$DIR"/{fbp_bench,torch_bench,train,gpu_check}.json "$DIR/train_runs"
: >"$LOGS/steps.txt"
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
STEPS=""
NOTES=""

say() { printf '[%3ds] %s\n' "$(($(date +%s) - START))" "$*" | tee -a "$LOGS/steps.txt" >&2; }
note() {
  NOTES="${NOTES:+$NOTES; }$*"
  say "NOTE: $*"
}
# Seconds left before the deadline, less the summary's reserve.
left() { echo $((DEADLINE - $(date +%s) - RESERVE)); }

# Writes $DIR/gpu_check.json from what is there so far (quietly); after every step.
summarize() {
  [ -n "${DENO:-}" ] || return 1
  FBP_CHECK_STEPS="${STEPS# }" FBP_CHECK_NOTES="$NOTES" \
    FBP_CHECK_SECONDS=$(($(date +%s) - START)) \
    "$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts summary "$DIR" "$@"
}

# step NAME CAP MIN CMD…: runs CMD with a limit of min(CAP, what is left), logging to
# $LOGS/NAME.txt with FBP_CHECK_DEADLINE set to its end; skipped (status 125, with a note)
# when less than MIN seconds are left. Records "NAME=rc:seconds" or "NAME=skipped".
step() {
  local name=$1 cap=$2 min=$3 t0 rc limit
  shift 3
  limit=$(left)
  [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt "$min" ]; then
    STEPS="$STEPS $name=skipped"
    note "$name skipped: ${limit}s left before the deadline, it needs at least ${min}s"
    return 125
  fi
  t0=$(date +%s)
  say "$name (limit ${limit}s)"
  export FBP_CHECK_DEADLINE=$((t0 + limit))
  if command -v timeout >/dev/null 2>&1; then
    timeout --signal=INT --kill-after=10 "$limit" "$@" >"$LOGS/$name.txt" 2>&1
  else
    "$@" >"$LOGS/$name.txt" 2>&1
  fi
  rc=$?
  unset FBP_CHECK_DEADLINE
  STEPS="$STEPS $name=$rc:$(($(date +%s) - t0))"
  say "$name: exit $rc"
  return $rc
}

# Decompresses $1 to stdout with xz, or with python3's lzma where xz is missing.
unxz_to_stdout() {
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1"
  else
    python3 -c 'import lzma, shutil, sys
shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
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
RUN_FLAGS=(--cached-only --no-check)
if [ -n "${DENO_DIR:-}" ] && [ -f "$DENO_DIR/deno.lock" ]; then
  export FBP_DENO_LOCK="$DENO_DIR/deno.lock"
  RUN_FLAGS+=("--lock=$FBP_DENO_LOCK")
fi
FBP_CHECK_DENO="$("$DENO" --version | head -1)"
export FBP_CHECK_DENO FBP_CHECK_BUDGET="${FBP_CHECK_BUDGET:-470}"
say "deno: $FBP_CHECK_DENO (DENO_DIR=${DENO_DIR:-default})"

# ---- the GPU and its libraries ---------------------------------------------------------------
FBP_CHECK_GPU=$( (nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader || echo "nvidia-smi not available") 2>/dev/null | head -1)
export FBP_CHECK_GPU
say "gpu: $FBP_CHECK_GPU"
# PyTorch's own cuDNN / cuBLAS wheels, where python3 has them (the library's fixed list
# also covers the usual site-packages folders; this catches any other python prefix).
wheel_lib() {
  python3 -c "import importlib, os, sys
m = importlib.import_module(sys.argv[1]); d = os.path.join(list(m.__path__)[0], 'lib')
print(d if os.path.isdir(d) else '')" "$1" 2>/dev/null
}
# use_wheel VAR MODULE FILE…: VAR=the wheel's lib folder when it holds one of the files.
use_wheel() {
  local var=$1 module=$2 d f
  shift 2
  [ -z "${!var:-}" ] || return 0
  d=$(wheel_lib "$module")
  [ -n "$d" ] || return 0
  for f in "$@"; do
    if [ -f "$d/$f" ]; then
      export "$var=$d"
      say "$var from PyTorch's wheel: $d"
      return 0
    fi
  done
  say "PyTorch's $module wheel ($d) has no $*: $var left unset"
}
use_wheel FBP_CUDNN_LIB nvidia.cudnn libcudnn.so.9
use_wheel FBP_CUBLAS_LIB nvidia.cublas libcublas.so.13 libcublas.so.12

# ---- the CUDA library: the bundled one when current, else one build -------------------------
probe() {
  "$DENO" eval "${RUN_FLAGS[@]}" "
    import { loadCudaBackend } from './src/backend/cuda.ts';
    try { console.log((await loadCudaBackend()).info.replace(/;.*$/, '')); }
    catch (e) { console.log('UNAVAILABLE: ' + e.message); }" 2>&1 | tail -1
}
NVCC=$(command -v nvcc ||
  { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
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
    FBP_CHECK_BUILD="STALE prebuilt .gpu/libfbp_cuda.so: the CUDA sources changed since"
    FBP_CHECK_BUILD="$FBP_CHECK_BUILD \`deno task gpu-bundle\`"
  fi
fi
# A build may take what is left after the tests (45 s) and a training (120 s) need.
BUILD_CAP=300
BUILD_MIN=90
if [ -z "${FBP_CUDA_LIB:-}" ] && [ -n "$NVCC" ]; then
  export NVCC
  for_build=$(($(left) - 165))
  [ "$for_build" -gt "$BUILD_CAP" ] && for_build=$BUILD_CAP
  if [ "$for_build" -lt "$BUILD_MIN" ]; then
    STEPS="$STEPS build=skipped"
    note "rebuild skipped: ${for_build}s would be left for it (it needs ${BUILD_MIN}s+)"
    FBP_CHECK_BUILD="$FBP_CHECK_BUILD; REBUILD SKIPPED: no time left for it"
  elif step build "$for_build" "$BUILD_MIN" "$DENO" eval "${RUN_FLAGS[@]}" "
      import { buildCudaLibrary } from './tasks/_build/native_build.ts';
      const r = await buildCudaLibrary({});
      if (!r) throw new Error('nvcc not found');
      console.log((r.built ? 'built' : 'up to date') + ' in ' + r.seconds.toFixed(0) + ' s');"
  then
    release=$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
    FBP_CHECK_BUILD="nvcc $release: $(tail -1 "$LOGS/build.txt")"
  else
    FBP_CHECK_BUILD="BUILD FAILED OR TIMED OUT (see $LOGS/build.txt)"
  fi
  FBP_CHECK_BACKEND=$(probe)
fi
if [ -z "${FBP_CUDA_LIB:-}" ] && [ -f "$GPU/libfbp_cuda.so" ] &&
  [[ "$FBP_CHECK_BACKEND" != cuda:* ]]; then
  # No library built here: the bundled one, stale or not, is the only one (the tests tell).
  export FBP_CUDA_LIB="$GPU/libfbp_cuda.so"
  FBP_CHECK_BACKEND=$(probe)
fi
export FBP_CHECK_BUILD FBP_CHECK_BACKEND
say "cuda library: $FBP_CHECK_BUILD"
say "backend: $FBP_CHECK_BACKEND"
summarize --quiet

# ---- 1. tests ---------------------------------------------------------------------------------
FBP_REQUIRE_CUDA=1 FBP_TEST_BACKENDS=cuda step tests 120 45 \
  "$DENO" test -A "${RUN_FLAGS[@]}" \
  tests/backend/cuda_test.ts tests/backend/cuda_gpu_test.ts \
  tests/models/network_fixture_test.ts tests/ops/torch_fixtures_test.ts
summarize --quiet

# ---- 2. training, resume, determinism (runs under $WORK, their logs copied to $OUT) -----------
rm -rf "$WORK/runs"
step train 180 60 "$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts train "$WORK/runs" \
  "$DIR/train.json" "$DIR/train_runs"
for run in "$WORK"/runs/*/; do # also after a timeout (the TS side copies as it goes)
  [ -d "$run" ] || continue
  mkdir -p "$DIR/train_runs/$(basename "$run")"
  cp -f "$run"/log.jsonl "$run"/metrics.json "$DIR/train_runs/$(basename "$run")/" 2>/dev/null
done
summarize --quiet

# ---- 3. benchmark: fbp, then PyTorch on the same GPU, half of what is left each ---------------
half=$(($(left) / 2))
step bench_fbp "$half" 25 "$DENO" run -A "${RUN_FLAGS[@]}" tasks/gpu_check.ts bench \
  "$DIR/fbp_bench.json"
summarize --quiet
rest=$(left)
step bench_torch "$rest" 25 python3 tasks/gpu_torch_bench.py "$DIR/torch_bench.json" \
  --seconds "$((rest - 5))"

# ---- summary ---------------------------------------------------------------------------------
summarize
