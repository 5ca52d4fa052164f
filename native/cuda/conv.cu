/*
 * conv.cu — 2-D convolution forward / backward-data / backward-weights through cuDNN.
 *
 * Why this way: the first call for a shape creates cuDNN's descriptors and picks the
 * algorithm (a "plan", cached per kind and shape for the life of the process). By default
 * the pick is cudnnFind…AlgorithmEx, which times the candidates on the caller's buffers
 * (their outputs are overwritten anyway) — what torch.backends.cudnn.benchmark does; with
 * FBP_CUDNN_FIND=0 it is cuDNN's heuristic (cudnnGet…_v7), which needs no timing and picks
 * the same algorithm every run. All plans share one workspace buffer, grown to the largest
 * need (single stream: the calls never overlap); the search may use up to
 * FBP_CUDNN_WORKSPACE_MIB (default 1024, and at most a quarter of free memory).
 * Float32 math stays float32 (CUDNN_FMA_MATH) unless FBP_TF32=1 allows tensor-core TF32.
 * Bias is added by a small kernel; its gradient is a per-channel sum (fbp_sum_to).
 */
#include <stdlib.h>
#include <string.h>

#include <array>
#include <map>
#include <mutex>

#include "internal.cuh"

enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 };
static const char *const KIND_NAMES[] = {"forward", "backward data", "backward filter"};

/* kind, N, C, H, W, K, R, S, stride, pad */
typedef std::array<int, 10> ConvKey;

struct ConvPlan {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  int algo;
};

static std::mutex g_conv_mu;
static std::map<ConvKey, ConvPlan> g_plans;
static void *g_ws;
static size_t g_ws_bytes;

/* Makes the shared workspace at least `bytes` long (0 on success). It never shrinks, and
 * the old buffer is kept when a larger one cannot be had: existing plans rely on it. */
static int ensure_workspace(size_t bytes, const char *fn) {
  if (bytes <= g_ws_bytes) return 0;
  void *p = fbp_scratch(bytes, fn);
  if (!p) return 1;
  fbp_scratch_free(g_ws);
  g_ws = p;
  g_ws_bytes = bytes;
  return 0;
}

/* The workspace the algorithm search may use: the limit, or less when memory is short. */
static size_t search_workspace(const char *fn) {
  const char *env = getenv("FBP_CUDNN_WORKSPACE_MIB");
  size_t limit = (size_t)(env && *env ? atoll(env) : 1024) << 20;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && limit > free_b / 4) limit = free_b / 4;
  while (limit > 0 && ensure_workspace(limit, fn)) limit /= 2;
  return g_ws_bytes; /* at least the limit unless memory was short */
}

static int use_find(void) {
  const char *env = getenv("FBP_CUDNN_FIND");
  return !(env && strcmp(env, "0") == 0);
}

/* Picks the fastest successful result that fits the workspace; -1 when none does. */
static int pick(const cudnnConvolutionAlgoPerf_t *perf, int count, size_t ws, size_t *need,
                int *math) {
  for (int i = 0; i < count; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws) continue;
    if (!fbp_tf32() && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
    *need = perf[i].memory;
    *math = perf[i].mathType;
    return perf[i].algo;
  }
  return -1;
}

/* Builds the plan of `key` (descriptors + algorithm); the pointers are the call's buffers,
 * used by the timed search. Called under g_conv_mu. */
static int make_plan(ConvPlan *p, const ConvKey &key, const void *a, const void *b, void *c,
                     const char *fn) {
  int kind = key[0], N = key[1], C = key[2], H = key[3], W = key[4], K = key[5], R = key[6],
      S = key[7], stride = key[8], pad = key[9];
  int P = (int)fbp_out_size(H, R, stride, pad), Q = (int)fbp_out_size(W, S, stride, pad);
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(fbp_dl.cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(fbp_dl.cudnnCreateConvolutionDescriptor(&p->conv));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C,
                                                H, W));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, K,
                                                P, Q));
  CUDNN_CHECK(fbp_dl.cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, K, C,
                                                R, S));
  CUDNN_CHECK(fbp_dl.cudnnSetConvolution2dDescriptor(p->conv, pad, pad, stride, stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION,
                                                     CUDNN_DATA_FLOAT));
  CUDNN_CHECK(fbp_dl.cudnnSetConvolutionMathType(
      p->conv, fbp_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

  cudnnConvolutionAlgoPerf_t perf[16];
  int count = 0;
  size_t ws = use_find() ? search_workspace(fn) : g_ws_bytes;
  cudnnHandle_t h = fbp_cudnn();
  if (use_find()) {
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
    ws = (size_t)1 << 62; /* heuristics: take the best, then grow the workspace to fit */
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
  size_t need = 0;
  int math = 0;
  p->algo = pick(perf, count, ws, &need, &math);
  if (p->algo < 0)
    FAIL("%s: cuDNN has no %s algorithm for N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d "
         "pad=%d within %.0f MiB of workspace (%d candidates)",
         fn, KIND_NAMES[kind], N, C, H, W, K, R, S, stride, pad, (double)ws / (1 << 20), count);
  if (fbp_tf32()) CUDNN_CHECK(fbp_dl.cudnnSetConvolutionMathType(p->conv, math));
  return ensure_workspace(need, fn);
}

/* The plan of a `kind` call of shape N..pad (checked by abi.inc), built on first use on
 * the call's buffers a, b, c; fails when a tensor is too large for cuDNN's 4-D
 * descriptors, which count elements in int. Called under g_conv_mu. */
static int get_plan(ConvPlan *out, int kind, const char *fn, const void *a, const void *b,
                    void *c, int N, int C, int H, int W, int K, int R, int S, int stride,
                    int pad) {
  int64_t P = fbp_out_size(H, R, stride, pad), Q = fbp_out_size(W, S, stride, pad);
  if ((int64_t)N * C * H * W > INT32_MAX || (int64_t)K * C * R * S > INT32_MAX ||
      (int64_t)N * K * P * Q > INT32_MAX)
    FAIL("%s: a tensor has more than %d elements, the most cuDNN's 4-D descriptors take", fn,
         INT32_MAX);
  ConvKey key = {kind, N, C, H, W, K, R, S, stride, pad};
  auto it = g_plans.find(key);
  if (it != g_plans.end()) {
    *out = it->second;
    return 0;
  }
  ConvPlan p;
  if (make_plan(&p, key, a, b, c, fn)) return 1;
  g_plans[key] = p;
  *out = p;
  return 0;
}

static __global__ void add_bias_kernel(float *__restrict__ out, const float *__restrict__ bias,
                                       int64_t n, int64_t PQ, int K) {
  GRID_STRIDE(i, n) out[i] += bias[(i / PQ) % K];
}

int impl_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_FWD, "conv2d_forward", inp, weight, out, N, C, H, W, K, R, S, stride,
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
                              int H, int W, int K, int R, int S, int stride, int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_BWD_DATA, "conv2d_backward_data", weight, dout, dinp, N, C, H, W, K, R,
               S, stride, pad))
    return 1;
  float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(fbp_dl.cudnnConvolutionBackwardData(fbp_cudnn(), &one, p.w, weight, p.y, dout,
                                                  p.conv, p.algo, g_ws, g_ws_bytes, &zero, p.x,
                                                  dinp));
  return 0;
}

int impl_conv2d_backward_weights(float *dweight, float *dbias, const float *dout,
                                 const float *inp, int N, int C, int H, int W, int K, int R,
                                 int S, int stride, int pad) {
  std::lock_guard<std::mutex> lock(g_conv_mu);
  ConvPlan p;
  if (get_plan(&p, CONV_BWD_FILTER, "conv2d_backward_weights", inp, dout, dweight, N, C, H, W,
               K, R, S, stride, pad))
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
