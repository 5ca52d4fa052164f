/*
 * loss.cu — softmax cross-entropy forward/backward.
 *
 * As in the cpu backend: the loss comes from the log-sum-exp of the logits (confident rows
 * do not underflow to log 0), per-sample terms and their mean are in double, summed in
 * sample order by one thread so the loss repeats bit for bit, and every target is checked
 * before anything is written. The targets live in device memory, so the check is a small
 * kernel whose verdict (the first bad sample) is read back: one synchronisation per call.
 * It costs little where it sits: a training step reads its loss right after the forward,
 * and the backward starts from an idle stream.
 */
#include <limits.h>
#include <math.h>

#include "internal.cuh"

static __global__ void check_targets_kernel(int *__restrict__ bad,
                                            const float *__restrict__ targets, int N, int K) {
  GRID_STRIDE(n, N) {
    float t = targets[n];
    if (!(t >= 0.0f && t < (float)K && t == floorf(t))) atomicMin(bad, (int)n);
  }
}

/* Fails with the cpu backend's message when a target is not an integer in 0..K-1. */
static int check_targets(const char *fn, const float *targets, int N, int K) {
  int *bad = (int *)fbp_scratch(sizeof(int), fn);
  if (!bad) return 1;
  cudaStream_t s = fbp_stream();
  int first = INT_MAX;
  float value = 0.0f;
  cudaError_t e = cudaMemcpyAsync(bad, &first, sizeof first, cudaMemcpyHostToDevice, s);
  if (e == cudaSuccess) {
    check_targets_kernel<<<fbp_grid(N, FBP_BLOCK), FBP_BLOCK, 0, s>>>(bad, targets, N, K);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(&first, bad, sizeof first, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e == cudaSuccess && first != INT_MAX) {
    e = cudaMemcpyAsync(&value, targets + first, sizeof value, cudaMemcpyDeviceToHost, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  }
  fbp_scratch_free(bad);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "checking the targets", e);
  if (first != INT_MAX)
    FAIL("%s: target of sample %d is %g, expected an integer in 0..%d", fn, first,
         (double)value, K - 1);
  return 0;
}

/* One warp per sample: probs = softmax(logits), term = w·(log z + max − logit[target]). */
static __global__ void ce_forward_kernel(float *__restrict__ probs, double *__restrict__ terms,
                                         const float *__restrict__ logits,
                                         const float *__restrict__ targets,
                                         const float *__restrict__ weights, int N, int K) {
  WARP_ROW_STRIDE(n, N) {
    const float *x = logits + n * K;
    float mx;
    double z = warp_softmax_row(probs + n * K, x, K, &mx);
    if ((threadIdx.x & 31) == 0) {
      int t = (int)targets[n];
      double w = weights ? weights[n] : 1.0;
      terms[n] = w * (log(z) + (double)mx - (double)x[t]);
    }
  }
}

static __global__ void ce_mean_kernel(float *__restrict__ loss, const double *__restrict__ terms,
                                      int N) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double total = 0;
  for (int n = 0; n < N; n++) total += terms[n];
  loss[0] = (float)(total / N);
}

static __global__ void ce_backward_kernel(float *__restrict__ dlogits,
                                          const float *__restrict__ dloss,
                                          const float *__restrict__ probs,
                                          const float *__restrict__ targets,
                                          const float *__restrict__ weights, int N, int K) {
  float g = dloss[0];
  GRID_STRIDE(i, (int64_t)N * K) {
    int64_t n = i / K;
    int k = (int)(i % K), t = (int)targets[n];
    float s = (float)((double)g * (weights ? weights[n] : 1.0) / N);
    dlogits[i] = s * (probs[i] - (k == t ? 1.0f : 0.0f));
  }
}

int impl_cross_entropy_forward(float *loss, float *probs, const float *logits,
                               const float *targets, const float *weights, int N, int K) {
  const char *fn = "cross_entropy_forward";
  if (check_targets(fn, targets, N, K)) return 1;
  double *terms = (double *)fbp_scratch((size_t)N * sizeof(double), fn);
  if (!terms) return 1;
  cudaStream_t s = fbp_stream();
  ce_forward_kernel<<<fbp_grid(N, WARP_ROWS), FBP_BLOCK, 0, s>>>(probs, terms, logits,
                                                                       targets, weights, N, K);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    ce_mean_kernel<<<1, 32, 0, s>>>(loss, terms, N);
    e = cudaGetLastError();
  }
  fbp_scratch_free(terms);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "ce_forward_kernel", e);
  return 0;
}

int impl_cross_entropy_backward(float *dlogits, const float *dloss, const float *probs,
                                const float *targets, const float *weights, int N, int K) {
  if (check_targets("cross_entropy_backward", targets, N, K)) return 1;
  int64_t numel = (int64_t)N * K;
  ce_backward_kernel<<<fbp_grid(numel, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
      dlogits, dloss, probs, targets, weights, N, K);
  LAUNCH_CHECK("ce_backward_kernel");
  return 0;
}
