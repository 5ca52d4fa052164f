/*
 * conv.cu — 2-D convolution forward / backward-data / backward-weights through cuDNN.
 *
 * Why this way: the first call for a shape creates cuDNN's descriptors and picks the
 * algorithm (a "plan", cached for the life of the process per kind, shape and math
 * settings, so switching fbp_set_math never reuses a plan chosen under other rules).
 *
 * Math (fbp_set_math), matching PyTorch's switches:
 * - fp32: the descriptor's math type is CUDNN_FMA_MATH and stays so; results whose math
 *   is a tensor-op mode are skipped. = torch.backends.cudnn.allow_tf32 = False.
 * - tf32: the search runs under CUDNN_DEFAULT_MATH and the descriptor then takes the math
 *   type of the chosen result (CUDNN_TENSOR_OP_MATH: TF32 tensor cores on sm_80+), as
 *   PyTorch does; CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (down-conversion to fp16) is never
 *   taken. = allow_tf32 = True (PyTorch's default for convolutions).
 * - deterministic: only results cuDNN marks CUDNN_DETERMINISTIC, picked by cuDNN's
 *   heuristic (cudnnGet…_v7), whose choice depends on the shapes, GPU and cuDNN version
 *   only — a timed search could pick another algorithm next run. = cudnn.deterministic =
 *   True with cudnn.benchmark = False.
 * Otherwise the pick is cudnnFind…AlgorithmEx, which times the candidates on the caller's
 * buffers (their outputs are overwritten anyway) — torch.backends.cudnn.benchmark = True;
 * FBP_CUDNN_FIND=0 asks for the heuristic instead.
 *
 * Workspace: all plans share one buffer, as large as the largest chosen algorithm needs
 * (single stream: the calls never overlap); when it must grow, the old one goes back to
 * the device first. The timed search may use up to FBP_CUDNN_WORKSPACE_MIB (default 1024,
 * at most a quarter of free memory; another value than a whole number >= 0 is an error);
 * that buffer is returned to the device after the search, so it does not stay in the
 * footprint. fbp_release_cache drops the workspace too (fbp_conv_release_workspace): the
 * next convolution takes the size its plan needs again, inside the new peak.
 *
 * Errors: a plan that fails half-way destroys the descriptors it created (make_plan).
 * native/cuda/test/conv_plan_harness.cu runs this file against a fake cuDNN that fails each
 * step in turn and checks that, and the math and determinism rules, without a GPU.
 * Bias is added by a small kernel; its gradient is a per-channel sum (fbp_sum_to).
 *
 * Groups: the filter descriptor is (K, C/G, R, S) and cudnnSetConvolutionGroupCount(G) is
 * set on every plan (G = 1 too, as PyTorch does); G is part of the plan's key. G = C = K is
 * a depthwise convolution; the algorithm is picked as for any other shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <array>
#include <map>
#include <mutex>

#include "internal.cuh"

enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 };
static const char *const KIND_NAMES[] = {"forward", "backward data", "backward filter"};

/* kind, N, C, H, W, K, R, S, G, stride, pad, tf32, deterministic */
typedef std::array<int, 13> ConvKey;

struct ConvPlan {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  int algo;
  size_t need; /* workspace bytes of algo */
};

static std::mutex g_conv_mu;
static std::map<ConvKey, ConvPlan> g_plans;
static void *g_ws;
static size_t g_ws_bytes, g_ws_need; /* the buffer; the largest need of a cached plan */

/* Makes the shared workspace at least `bytes` long (0 on success). The old buffer goes
 * back to the device first (fbp_scratch_release: after the queued work that uses it), so
 * sizes never pile up in the allocator's cache nor count twice in its peak; when the
 * larger one cannot be had, one of the old size is taken again (existing plans need no
 * more) and the allocation error stays the reported one. */
static int ensure_workspace(size_t bytes, const char *fn) {
  if (bytes <= g_ws_bytes) return 0;
  size_t old = g_ws_bytes;
  fbp_scratch_release(g_ws);
  g_ws = fbp_scratch(bytes, fn);
  g_ws_bytes = g_ws ? bytes : 0;
  if (g_ws) return 0;
  if (old) {
    g_ws = fbp_scratch(old, fn);
    g_ws_bytes = g_ws ? old : 0;
  }
  return 1;
}

/* After a timed search: gives the search's large buffer back to the device and keeps one
 * of g_ws_need bytes (allocated again by the next call when this fails). */
static void shrink_workspace(void) {
  if (g_ws_bytes <= g_ws_need) return;
  fbp_scratch_release(g_ws);
  g_ws = NULL;
  g_ws_bytes = 0;
  (void)ensure_workspace(g_ws_need, "conv2d workspace"); /* get_plan retries and reports */
}

void fbp_conv_release_workspace(void) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  fbp_scratch_release(g_ws);
  g_ws = NULL;
  g_ws_bytes = 0;
}

/* The workspace the timed search may use in *bytes: FBP_CUDNN_WORKSPACE_MIB (default
 * 1024), at most a quarter of free memory, less when even that cannot be had. Fails on a
 * value that is not a whole number of MiB >= 0. */
static int search_workspace(const char *fn, size_t *bytes) {
  const char *env = getenv("FBP_CUDNN_WORKSPACE_MIB");
  long long mib = 1024;
  if (env && *env) {
    char *end = NULL;
    mib = strtoll(env, &end, 10);
    if (end == env || *end != '\0' || mib < 0 || (unsigned long long)mib > (SIZE_MAX >> 21))
      FAIL("%s: FBP_CUDNN_WORKSPACE_MIB is \"%s\", expected a whole number of MiB >= 0 (the "
           "workspace cuDNN's algorithm search may use; default 1024)",
           fn, env);
  }
  size_t limit = (size_t)mib << 20;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && limit > free_b / 4) limit = free_b / 4;
  while (limit > 0 && ensure_workspace(limit, fn)) limit /= 2;
  *bytes = g_ws_bytes; /* at least the limit unless memory was short */
  return 0;
}

static int use_find(int deterministic) {
  const char *env = getenv("FBP_CUDNN_FIND");
  return !deterministic && !(env && strcmp(env, "0") == 0);
}

/* Whether a search result may run under the math settings (see the top of this file). */
static int allowed(const cudnnConvolutionAlgoPerf_t *r, int tf32, int deterministic) {
  if (r->status != CUDNN_STATUS_SUCCESS) return 0;
  if (deterministic && r->determinism != CUDNN_DETERMINISTIC) return 0;
  if (r->mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return 0;
  if (!tf32 && r->mathType == CUDNN_TENSOR_OP_MATH) return 0;
  return 1;
}

static void destroy_plan(ConvPlan *p) {
  if (p->x) fbp_dl.cudnnDestroyTensorDescriptor(p->x);
  if (p->y) fbp_dl.cudnnDestroyTensorDescriptor(p->y);
  if (p->w) fbp_dl.cudnnDestroyFilterDescriptor(p->w);
  if (p->conv) fbp_dl.cudnnDestroyConvolutionDescriptor(p->conv);
  *p = ConvPlan{};
}

/* Creates the descriptors of `key` and picks its algorithm; on failure the caller
 * destroys what was created (p starts zeroed). */
static int build_plan(ConvPlan *p, const ConvKey &key, const void *a, const void *b, void *c,
                      const char *fn) {
  int kind = key[0], N = key[1], C = key[2], H = key[3], W = key[4], K = key[5], R = key[6],
      S = key[7], G = key[8], stride = key[9], pad = key[10], tf32 = key[11], det = key[12];
  int P = (int)fbp_out_size(H, R, stride, pad), Q = (int)fbp_out_size(W, S, stride, pad);
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(fbp_dl.cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(fbp_dl.cudnnCreateConvolutionDescriptor(&p->conv));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C,
                                                H, W));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, K,
                                                P, Q));
  CUDNN_CHECK(fbp_dl.cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, K,
                                                C / G, R, S));
  CUDNN_CHECK(fbp_dl.cudnnSetConvolution2dDescriptor(p->conv, pad, pad, stride, stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION,
                                                     CUDNN_DATA_FLOAT));
  CUDNN_CHECK(fbp_dl.cudnnSetConvolutionGroupCount(p->conv, G));
  CUDNN_CHECK(fbp_dl.cudnnSetConvolutionMathType(p->conv,
                                                 tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

  cudnnConvolutionAlgoPerf_t perf[16];
  int count = 0, find = use_find(det);
  size_t ws = (size_t)1 << 62; /* heuristic: the workspace grows to fit the pick */
  if (find && search_workspace(fn, &ws)) return 1;
  cudnnHandle_t h = fbp_cudnn();
  if (find) {
    if (kind == CONV_FWD)
      CUDNN_CHECK(fbp_dl.cudnnFindConvolutionForwardAlgorithmEx(
          h, p->x, a, p->w, b, p->conv, p->y, c, 16, &count, perf, g_ws, ws));
    else if (kind == CONV_BWD_DATA)
      CUDNN_CHECK(fbp_dl.cudnnFindConvolutionBackwardDataAlgorithmEx(
          h, p->w, a, p->y, b, p->conv, p->x, c, 16, &count, perf, g_ws, ws));
    else
      CUDNN_CHECK(fbp_dl.cudnnFindConvolutionBackwardFilterAlgorithmEx(
          h, p->x, a, p->y, b, p->conv, p->w, c, 16, &count, perf, g_ws, ws));
  } else {
    if (kind == CONV_FWD)
      CUDNN_CHECK(fbp_dl.cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, 16,
                                                                &count, perf));
    else if (kind == CONV_BWD_DATA)
      CUDNN_CHECK(fbp_dl.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv,
                                                                     p->x, 16, &count, perf));
    else
      CUDNN_CHECK(fbp_dl.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv,
                                                                       p->w, 16, &count, perf));
  }
  /* Results come fastest (Find) or most promising (heuristic) first: take the first that
   * the settings allow and whose workspace can be had. */
  int allowed_count = 0, unallocated = 0;
  for (int i = 0; i < count && i < 16; i++) {
    if (!allowed(&perf[i], tf32, det)) continue;
    allowed_count++;
    if (perf[i].memory > ws) continue; /* Find: over the search's workspace */
    if (perf[i].memory > g_ws_bytes && ensure_workspace(perf[i].memory, fn)) {
      unallocated++;
      continue;
    }
    p->algo = perf[i].algo;
    p->need = perf[i].memory;
    /* fp32 keeps CUDNN_FMA_MATH whatever the result says; tf32 runs the result's math. */
    if (tf32) CUDNN_CHECK(fbp_dl.cudnnSetConvolutionMathType(p->conv, perf[i].mathType));
    return 0;
  }
  char within[96] = "";
  if (find)
    snprintf(within, sizeof within, " within the search's %.0f MiB of workspace",
             (double)ws / (1 << 20));
  char unalloc[64] = "";
  if (unallocated)
    snprintf(unalloc, sizeof unalloc, ", %d whose workspace could not be allocated",
             unallocated);
  FAIL("%s: cuDNN has no %s%s algorithm for N=%d C=%d H=%d W=%d K=%d R=%d S=%d G=%d "
       "stride=%d pad=%d in %s math%s (%s: %d candidates, %d allowed%s)",
       fn, det ? "deterministic " : "", KIND_NAMES[kind], N, C, H, W, K, R, S, G, stride, pad,
       tf32 ? "tf32" : "fp32", within, find ? "timed search" : "heuristic", count,
       allowed_count, unalloc);
}

/* Builds the plan of `key`; the pointers are the call's buffers, used by the timed
 * search. Destroys every descriptor it created when a step fails. Called under
 * g_conv_mu. */
static int make_plan(ConvPlan *p, const ConvKey &key, const void *a, const void *b, void *c,
                     const char *fn) {
  *p = ConvPlan{};
  int rc = build_plan(p, key, a, b, c, fn);
  if (use_find(key[12])) {
    if (rc == 0 && p->need > g_ws_need) g_ws_need = p->need;
    shrink_workspace();
  } else if (rc == 0 && p->need > g_ws_need) {
    g_ws_need = p->need;
  }
  if (rc) destroy_plan(p);
  return rc;
}

/* The plan of a `kind` call of shape N..pad (checked by abi.inc) under the current math
 * settings, built on first use on the call's buffers a, b, c, with the workspace its
 * algorithm needs; fails when a tensor is too large for cuDNN's 4-D descriptors, which
 * count elements in int. Called under g_conv_mu. */
static int get_plan(ConvPlan *out, int kind, const char *fn, const void *a, const void *b,
                    void *c, int N, int C, int H, int W, int K, int R, int S, int G,
                    int stride, int pad) {
  int64_t P = fbp_out_size(H, R, stride, pad), Q = fbp_out_size(W, S, stride, pad);
  if ((int64_t)N * C * H * W > INT32_MAX || (int64_t)K * (C / G) * R * S > INT32_MAX ||
      (int64_t)N * K * P * Q > INT32_MAX)
    FAIL("%s: a tensor has more than %d elements, the most cuDNN's 4-D descriptors take", fn,
         INT32_MAX);
  ConvKey key = {kind, N, C, H, W, K, R, S, G, stride, pad, fbp_tf32(), fbp_deterministic()};
  auto it = g_plans.find(key);
  if (it != g_plans.end()) {
    *out = it->second;
  } else {
    if (make_plan(out, key, a, b, c, fn)) return 1;
    g_plans[key] = *out;
  }
  return ensure_workspace(out->need, fn);
}

static __global__ void add_bias_kernel(float *__restrict__ out, const float *__restrict__ bias,
                                       int64_t n, int64_t PQ, int K) {
  GRID_STRIDE(i, n) out[i] += bias[(i / PQ) % K];
}

int impl_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int H, int W, int K, int R, int S, int G, int stride,
                        int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_FWD, "conv2d_forward", inp, weight, out, N, C, H, W, K, R, S, G, stride,
               pad))
    return 1;
  float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(fbp_dl.cudnnConvolutionForward(fbp_cudnn(), &one, p.x, inp, p.w, weight, p.conv,
                                             p.algo, g_ws, g_ws_bytes, &zero, p.y, out));
  if (bias) {
    int64_t PQ = fbp_out_size(H, R, stride, pad) * fbp_out_size(W, S, stride, pad);
    int64_t n = (int64_t)N * K * PQ;
    add_bias_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, bias, n, PQ, K);
    LAUNCH_CHECK("add_bias_kernel");
  }
  return 0;
}

int impl_conv2d_backward_data(float *dinp, const float *dout, const float *weight, int N, int C,
                              int H, int W, int K, int R, int S, int G, int stride, int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_BWD_DATA, "conv2d_backward_data", weight, dout, dinp, N, C, H, W, K, R,
               S, G, stride, pad))
    return 1;
  float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(fbp_dl.cudnnConvolutionBackwardData(fbp_cudnn(), &one, p.w, weight, p.y, dout,
                                                  p.conv, p.algo, g_ws, g_ws_bytes, &zero, p.x,
                                                  dinp));
  return 0;
}

int impl_conv2d_backward_weights(float *dweight, float *dbias, const float *dout,
                                 const float *inp, int N, int C, int H, int W, int K, int R,
                                 int S, int G, int stride, int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_BWD_FILTER, "conv2d_backward_weights", inp, dout, dweight, N, C, H, W,
               K, R, S, G, stride, pad))
    return 1;
  float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(fbp_dl.cudnnConvolutionBackwardFilter(fbp_cudnn(), &one, p.x, inp, p.y, dout,
                                                    p.conv, p.algo, g_ws, g_ws_bytes, &zero,
                                                    p.w, dweight));
  if (dbias) {
    int is[4] = {N, K, (int)fbp_out_size(H, R, stride, pad), (int)fbp_out_size(W, S, stride, pad)};
    int os[4] = {1, K, 1, 1};
    return fbp_sum_to(dbias, dout, is, os);
  }
  return 0;
}
