/*
 * conv_plan_harness.cu — runs native/cuda/conv.cu's plan logic against a fake cuDNN, on the
 * host, without a GPU (tests/backend/cuda_host_test.ts builds and runs it).
 *
 * The fake counts live descriptors, can fail its k-th call (fault injection), returns a
 * chosen list of algorithm results from Find and from the heuristic, and records the
 * algorithm and the descriptor's math type each convolution runs with. Each case prints
 * "ok <name>" or "FAIL <name>: why"; the exit status is the number of failures.
 *
 * Build: nvcc -std=c++17 -arch=sm_75 -I native/include -I native/common -I native/cuda
 *        native/cuda/test/conv_plan_harness.cu -o conv_plan_harness
 */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "../conv.cu"

/* ---- the runtime functions conv.cu uses (runtime.cu's, faked) ---------------------------- */

static char g_error[1024];
static int g_harness_tf32, g_harness_det;
static size_t g_scratch_live;   /* bytes handed out and not yet freed or released */
static int g_released;          /* fbp_scratch_release calls (to the device) */
static int g_cached_frees;      /* fbp_scratch_free calls (to the allocator's cache) */
static uintptr_t g_next_ptr = 0x10000;

struct fbp_dl_table fbp_dl;

int fbp_set_error(const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  int n = snprintf(g_error, sizeof g_error, "%s:%d: ", base, line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error + n, sizeof g_error - (size_t)n, fmt, ap);
  va_end(ap);
  return 1;
}
int fbp_cudnn_error(const char *file, int line, const char *call, cudnnStatus_t status) {
  const char *name = strncmp(call, "fbp_dl.", 7) == 0 ? call + 7 : call;
  return fbp_set_error(file, line, "%.*s failed: status %d", (int)strcspn(name, "("), name,
                       (int)status);
}
int fbp_cuda_error(const char *file, int line, const char *call, cudaError_t err) {
  return fbp_set_error(file, line, "%s failed: %d", call, (int)err);
}
cudaStream_t fbp_stream(void) { return 0; }
cudnnHandle_t fbp_cudnn(void) { return (cudnnHandle_t)0x1; }
int fbp_tf32(void) { return g_harness_tf32; }
int fbp_deterministic(void) { return g_harness_det; }
int fbp_sm_count(void) { return 1; }
/* Fake device memory: unique addresses, nothing allocated. */
static std::vector<std::pair<void *, size_t>> g_blocks;
void *fbp_scratch(size_t bytes, const char *) {
  void *p = (void *)g_next_ptr;
  g_next_ptr += bytes + 256;
  g_blocks.push_back({p, bytes});
  g_scratch_live += bytes;
  return p;
}
static void forget(void *p) {
  for (size_t i = 0; i < g_blocks.size(); i++)
    if (g_blocks[i].first == p) {
      g_scratch_live -= g_blocks[i].second;
      g_blocks.erase(g_blocks.begin() + (long)i);
      return;
    }
}
void fbp_scratch_free(void *p) {
  if (p) g_cached_frees++;
  forget(p);
}
void fbp_scratch_release(void *p) {
  if (p) g_released++;
  forget(p);
}
int fbp_sum_to(float *, const float *, const int *, const int *) { return 0; }

/* ---- the fake cuDNN ------------------------------------------------------------------------ */

static int g_calls, g_fail_at; /* the g_fail_at-th call (1-based) fails; 0: none */
static int g_live_desc, g_find_calls, g_get_calls;
static std::vector<cudnnConvolutionAlgoPerf_t> g_find_results, g_get_results;
static int g_ran_algo = -1, g_ran_math = -1, g_ran_groups = -1, g_ran_filter_c = -1;

struct FakeConv {
  int math;
  int groups;
};

struct FakeFilter {
  int k, c;
};

static cudnnStatus_t step(void) { return ++g_calls == g_fail_at ? 3 /* BAD_PARAM */ : 0; }

static cudnnStatus_t create_tensor(cudnnTensorDescriptor_t *d) {
  if (cudnnStatus_t s = step()) return s;
  *d = (cudnnTensorDescriptor_t) new int(0);
  g_live_desc++;
  return 0;
}
static cudnnStatus_t destroy_tensor(cudnnTensorDescriptor_t d) {
  delete (int *)d;
  g_live_desc--;
  return 0;
}
static cudnnStatus_t create_filter(cudnnFilterDescriptor_t *d) {
  if (cudnnStatus_t s = step()) return s;
  *d = (cudnnFilterDescriptor_t) new FakeFilter{-1, -1};
  g_live_desc++;
  return 0;
}
static cudnnStatus_t destroy_filter(cudnnFilterDescriptor_t d) {
  delete (FakeFilter *)d;
  g_live_desc--;
  return 0;
}
static cudnnStatus_t create_conv(cudnnConvolutionDescriptor_t *d) {
  if (cudnnStatus_t s = step()) return s;
  *d = (cudnnConvolutionDescriptor_t) new FakeConv{-1, -1};
  g_live_desc++;
  return 0;
}
static cudnnStatus_t destroy_conv(cudnnConvolutionDescriptor_t d) {
  delete (FakeConv *)d;
  g_live_desc--;
  return 0;
}
static cudnnStatus_t set_tensor(cudnnTensorDescriptor_t, int, int, int, int, int, int) {
  return step();
}
static cudnnStatus_t set_filter(cudnnFilterDescriptor_t d, int, int, int k, int c, int, int) {
  if (cudnnStatus_t s = step()) return s;
  *(FakeFilter *)d = FakeFilter{k, c};
  return 0;
}
static cudnnStatus_t set_conv(cudnnConvolutionDescriptor_t, int, int, int, int, int, int, int,
                              int) {
  return step();
}
static cudnnStatus_t set_groups(cudnnConvolutionDescriptor_t d, int groups) {
  if (cudnnStatus_t s = step()) return s;
  ((FakeConv *)d)->groups = groups;
  return 0;
}
static cudnnStatus_t set_math(cudnnConvolutionDescriptor_t d, int math) {
  if (cudnnStatus_t s = step()) return s;
  ((FakeConv *)d)->math = math;
  return 0;
}
static cudnnStatus_t results(const std::vector<cudnnConvolutionAlgoPerf_t> &r, int requested,
                             int *returned, cudnnConvolutionAlgoPerf_t *perf) {
  int n = (int)r.size() < requested ? (int)r.size() : requested;
  for (int i = 0; i < n; i++) perf[i] = r[i];
  *returned = n;
  return 0;
}
static cudnnStatus_t find_fwd(cudnnHandle_t, cudnnTensorDescriptor_t, const void *,
                              cudnnFilterDescriptor_t, const void *,
                              cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *,
                              int requested, int *returned, cudnnConvolutionAlgoPerf_t *perf,
                              void *, size_t) {
  if (cudnnStatus_t s = step()) return s;
  g_find_calls++;
  return results(g_find_results, requested, returned, perf);
}
static cudnnStatus_t get_fwd(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                             cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                             int requested, int *returned, cudnnConvolutionAlgoPerf_t *perf) {
  if (cudnnStatus_t s = step()) return s;
  g_get_calls++;
  return results(g_get_results, requested, returned, perf);
}
static cudnnStatus_t run_fwd(cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *,
                             cudnnFilterDescriptor_t w, const void *,
                             cudnnConvolutionDescriptor_t conv, int algo, void *, size_t ws,
                             const void *, cudnnTensorDescriptor_t, void *) {
  if (cudnnStatus_t s = step()) return s;
  g_ran_algo = algo;
  g_ran_math = ((FakeConv *)conv)->math;
  g_ran_groups = ((FakeConv *)conv)->groups;
  g_ran_filter_c = ((FakeFilter *)w)->c;
  (void)ws;
  return 0;
}
static const char *error_string(cudnnStatus_t) { return "CUDNN_STATUS_BAD_PARAM"; }

static void install_fake(void) {
  memset(&fbp_dl, 0, sizeof fbp_dl);
  fbp_dl.cudnnGetErrorString = error_string;
  fbp_dl.cudnnCreateTensorDescriptor = create_tensor;
  fbp_dl.cudnnDestroyTensorDescriptor = destroy_tensor;
  fbp_dl.cudnnCreateFilterDescriptor = create_filter;
  fbp_dl.cudnnDestroyFilterDescriptor = destroy_filter;
  fbp_dl.cudnnCreateConvolutionDescriptor = create_conv;
  fbp_dl.cudnnDestroyConvolutionDescriptor = destroy_conv;
  fbp_dl.cudnnSetTensor4dDescriptor = set_tensor;
  fbp_dl.cudnnSetFilter4dDescriptor = set_filter;
  fbp_dl.cudnnSetConvolution2dDescriptor = set_conv;
  fbp_dl.cudnnSetConvolutionGroupCount = set_groups;
  fbp_dl.cudnnSetConvolutionMathType = set_math;
  fbp_dl.cudnnFindConvolutionForwardAlgorithmEx = find_fwd;
  fbp_dl.cudnnGetConvolutionForwardAlgorithm_v7 = get_fwd;
  fbp_dl.cudnnConvolutionForward = run_fwd;
}

/* ---- cases --------------------------------------------------------------------------------- */

static cudnnConvolutionAlgoPerf_t perf(int algo, int math, int det, size_t memory) {
  cudnnConvolutionAlgoPerf_t r;
  memset(&r, 0, sizeof r);
  r.algo = algo;
  r.status = 0;
  r.mathType = math;
  r.determinism = det;
  r.memory = memory;
  return r;
}

/* Forgets every cached plan (destroying its descriptors) and the workspace. */
static void reset(void) {
  for (auto &kv : g_plans) destroy_plan(&kv.second);
  g_plans.clear();
  fbp_scratch_free(g_ws);
  g_ws = NULL;
  g_ws_bytes = g_ws_need = 0;
  g_calls = g_fail_at = g_find_calls = g_get_calls = g_released = g_cached_frees = 0;
  g_ran_algo = g_ran_math = g_ran_groups = g_ran_filter_c = -1;
  g_harness_tf32 = g_harness_det = 0;
  g_error[0] = '\0';
}

static int g_failures;
static void check(bool ok, const char *name, const std::string &why) {
  if (ok) {
    printf("ok %s\n", name);
  } else {
    printf("FAIL %s: %s\n", name, why.c_str());
    g_failures++;
  }
}

/* One forward of a fixed 3×3 shape, 4 → 4 channels in G groups (fake buffers: the fake
 * cuDNN never reads them). */
static int forward(int N = 2, int G = 1) {
  static float dummy[1];
  return impl_conv2d_forward(dummy, dummy, dummy, NULL, N, 4, 8, 8, 4, 3, 3, G, 1, 1);
}

static std::string state(int rc) {
  char b[1400];
  snprintf(b, sizeof b, "rc %d, %d live descriptors, algo %d, math %d, error \"%s\"", rc,
           g_live_desc, g_ran_algo, g_ran_math, g_error);
  return b;
}

int main(void) {
  install_fake();
  const size_t MiB = (size_t)1 << 20;

  /* Fault injection: fail each cuDNN call of a first forward in turn. */
  {
    int steps = 0, leaks = 0, unnamed = 0;
    std::string detail;
    for (int k = 1; k < 64; k++) {
      reset();
      g_find_results = {perf(1, CUDNN_FMA_MATH, 1, MiB)};
      g_fail_at = k;
      int rc = forward();
      if (rc == 0) break;
      steps++;
      /* A failed run keeps its (valid, cached) plan; a failed plan keeps nothing. */
      int expected = strstr(g_error, "cudnnConvolutionForward failed") ? 4 : 0;
      if (g_live_desc != expected) {
        leaks++;
        detail += "step " + std::to_string(k) + ": " + state(rc) + "; ";
      }
      if (!strstr(g_error, "failed: status 3")) {
        unnamed++;
        detail += "step " + std::to_string(k) + ": " + state(rc) + "; ";
      }
    }
    /* 4 creates, 3 shape sets, the conv set, the group count, the math type, the search
     * and the run. */
    check(steps == 12, "every cuDNN call of a first forward is a fault point",
          std::to_string(steps) + " failing steps");
    check(leaks == 0, "a failed plan destroys the descriptors it created", detail);
    check(unnamed == 0, "a failed step is reported by name and status", detail);
    reset();
    g_find_results = {perf(1, CUDNN_FMA_MATH, 1, MiB)};
    int rc = forward();
    check(rc == 0 && g_live_desc == 4, "a successful plan keeps its 4 descriptors", state(rc));
  }

  /* fp32: tensor-op results are skipped, the descriptor stays FMA. */
  {
    reset();
    g_find_results = {perf(1, CUDNN_TENSOR_OP_MATH, 1, MiB), perf(2, CUDNN_DEFAULT_MATH, 1, MiB),
                      perf(3, CUDNN_FMA_MATH, 1, MiB)};
    int rc = forward();
    check(rc == 0 && g_ran_algo == 2 && g_ran_math == CUDNN_FMA_MATH,
          "fp32 runs the fastest non-tensor-op algorithm under CUDNN_FMA_MATH", state(rc));
    check(g_find_calls == 1 && g_get_calls == 0, "fp32 (not deterministic) uses the timed search",
          std::to_string(g_find_calls) + " finds, " + std::to_string(g_get_calls) + " gets");
  }

  /* tf32: the fastest result with its math type; never down-conversion to fp16. */
  {
    reset();
    g_harness_tf32 = 1;
    g_find_results = {perf(7, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 1, MiB),
                      perf(1, CUDNN_TENSOR_OP_MATH, 1, MiB), perf(3, CUDNN_FMA_MATH, 1, MiB)};
    int rc = forward();
    check(rc == 0 && g_ran_algo == 1 && g_ran_math == CUDNN_TENSOR_OP_MATH,
          "tf32 runs a tensor-op algorithm under CUDNN_TENSOR_OP_MATH, never ALLOW_CONVERSION",
          state(rc));
  }

  /* Plans are keyed by the math settings: switching precision builds another plan. */
  {
    reset();
    g_find_results = {perf(1, CUDNN_TENSOR_OP_MATH, 1, MiB), perf(3, CUDNN_FMA_MATH, 1, MiB)};
    g_harness_tf32 = 1;
    int rc1 = forward();
    int a1 = g_ran_algo, m1 = g_ran_math;
    g_harness_tf32 = 0;
    int rc2 = forward();
    int a2 = g_ran_algo, m2 = g_ran_math;
    g_harness_tf32 = 1;
    int rc3 = forward();
    check(rc1 == 0 && rc2 == 0 && rc3 == 0 && a1 == 1 && m1 == CUDNN_TENSOR_OP_MATH && a2 == 3 &&
              m2 == CUDNN_FMA_MATH && g_ran_algo == 1 && g_plans.size() == 2 &&
              g_find_calls == 2 && g_live_desc == 8,
          "plans are cached per math setting (tf32, fp32, tf32 again: 2 plans, 2 searches)",
          state(rc3) + ", plans " + std::to_string(g_plans.size()) + ", finds " +
              std::to_string(g_find_calls));
  }

  /* Groups: the filter holds C/G input channels, the descriptor G groups, and plans are
   * keyed by G. */
  {
    reset();
    g_find_results = {perf(1, CUDNN_FMA_MATH, 1, MiB)};
    int rc1 = forward(2, 1);
    int g1 = g_ran_groups, c1 = g_ran_filter_c;
    int rc2 = forward(2, 4);
    int g4 = g_ran_groups, c4 = g_ran_filter_c;
    int rc3 = forward(2, 2);
    check(rc1 == 0 && rc2 == 0 && rc3 == 0 && g1 == 1 && c1 == 4 && g4 == 4 && c4 == 1 &&
              g_ran_groups == 2 && g_ran_filter_c == 2 && g_plans.size() == 3 &&
              g_find_calls == 3,
          "groups: filter (K, C/G, R, S), group count set, one plan per G",
          state(rc3) + ", groups " + std::to_string(g1) + "/" + std::to_string(g4) +
              ", filter C " + std::to_string(c1) + "/" + std::to_string(c4) + ", plans " +
              std::to_string(g_plans.size()));
  }

  /* Deterministic: the heuristic, deterministic results only. */
  {
    reset();
    g_harness_det = 1;
    g_find_results = {perf(9, CUDNN_FMA_MATH, 1, MiB)};
    g_get_results = {perf(0, CUDNN_FMA_MATH, CUDNN_NON_DETERMINISTIC, 0),
                     perf(1, CUDNN_TENSOR_OP_MATH, CUDNN_DETERMINISTIC, 0),
                     perf(5, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC, 2 * MiB)};
    int rc = forward();
    check(rc == 0 && g_ran_algo == 5 && g_ran_math == CUDNN_FMA_MATH && g_find_calls == 0 &&
              g_get_calls == 1 && g_ws_bytes >= 2 * MiB,
          "deterministic fp32 takes the heuristic's first deterministic FMA algorithm and its "
          "workspace",
          state(rc) + ", finds " + std::to_string(g_find_calls));
    g_harness_det = 0;
    forward();
    check(g_find_calls == 1 && g_ran_algo == 9, "leaving deterministic mode builds a timed plan",
          state(0));
  }

  /* Nothing allowed: a clear error and no leak. */
  {
    reset();
    g_harness_det = 1;
    g_get_results = {perf(0, CUDNN_FMA_MATH, CUDNN_NON_DETERMINISTIC, 0)};
    int rc = forward();
    check(rc == 1 && g_live_desc == 0 &&
              strstr(g_error, "cuDNN has no deterministic forward algorithm") &&
              strstr(g_error, "in fp32 math (heuristic: 1 candidates, 0 allowed)"),
          "no allowed algorithm fails with the reason and destroys the descriptors", state(rc));
  }

  /* The timed search's workspace goes back to the device; the chosen need stays. */
  {
    reset();
    g_find_results = {perf(1, CUDNN_FMA_MATH, 1, 3 * MiB)};
    int rc = forward();
    check(rc == 0 && g_released == 1 && g_ws_bytes == 3 * MiB && g_scratch_live == 3 * MiB,
          "the search workspace is released and the plan's workspace kept",
          state(rc) + ", released " + std::to_string(g_released) + ", workspace " +
              std::to_string(g_ws_bytes) + ", live scratch " + std::to_string(g_scratch_live));
  }

  /* A growing workspace: the old buffer goes back to the device, not to the cache. */
  {
    reset();
    g_harness_det = 1;
    g_get_results = {perf(5, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC, 1 * MiB)};
    int rc1 = forward(2);
    g_get_results = {perf(5, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC, 4 * MiB)};
    int rc2 = forward(3);
    check(rc1 == 0 && rc2 == 0 && g_ws_bytes == 4 * MiB && g_scratch_live == 4 * MiB &&
              g_released == 1 && g_cached_frees == 0,
          "a growing workspace replaces the old one (released to the device, not cached)",
          state(rc2) + ", released " + std::to_string(g_released) + ", cached frees " +
              std::to_string(g_cached_frees) + ", live scratch " +
              std::to_string(g_scratch_live));
  }

  /* fbp_release_cache's hook: the workspace goes; the next call takes its plan's size. */
  {
    reset();
    g_find_results = {perf(1, CUDNN_FMA_MATH, 1, 3 * MiB)};
    int rc1 = forward();
    int searches = g_find_calls;
    fbp_conv_release_workspace();
    size_t after_release = g_scratch_live;
    int rc2 = forward();
    check(rc1 == 0 && rc2 == 0 && after_release == 0 && g_ws_bytes == 3 * MiB &&
              g_scratch_live == 3 * MiB && g_find_calls == searches,
          "releasing the workspace frees it; the next call takes its plan's size, no search",
          state(rc2) + ", live after release " + std::to_string(after_release) +
              ", workspace " + std::to_string(g_ws_bytes));
  }

  /* A bad FBP_CUDNN_WORKSPACE_MIB is an error naming it, before the search; no leak. */
  {
    int all = 1;
    std::string detail;
    for (const char *bad : {"-5", "lots", "12x"}) {
      reset();
      setenv("FBP_CUDNN_WORKSPACE_MIB", bad, 1);
      g_find_results = {perf(1, CUDNN_FMA_MATH, 1, MiB)};
      int rc = forward();
      int ok = rc == 1 && g_find_calls == 0 && g_live_desc == 0 &&
               strstr(g_error, "FBP_CUDNN_WORKSPACE_MIB is \"") &&
               strstr(g_error, "expected a whole number of MiB >= 0");
      if (!ok) detail += std::string(bad) + ": " + state(rc) + "; ";
      all &= ok;
    }
    unsetenv("FBP_CUDNN_WORKSPACE_MIB");
    check(all, "a negative or malformed FBP_CUDNN_WORKSPACE_MIB is refused by name", detail);
  }

  /* Tensors past cuDNN's int element counts are refused before any descriptor. */
  {
    reset();
    int rc = forward(1 << 26); /* 2^26 · 4 · 8 · 8 = 2^34 elements */
    check(rc == 1 && g_calls == 0 && strstr(g_error, "more than 2147483647 elements"),
          "a tensor past 2^31 elements is refused before cuDNN is called", state(rc));
  }

  reset();
  return g_failures;
}
