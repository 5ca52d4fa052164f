/*
 * pool.cu — max pooling and global average pooling as CUDA kernels.
 *
 * Why own kernels rather than cuDNN pooling: the ABI fixes rules cuDNN does not promise —
 * padding counts as -inf (a window of only padding gives -inf) and the gradient goes to the
 * first maximum of its window — and it carries no workspace. Pooling is memory-bound, so a
 * direct kernel costs what cuDNN's would. The backward pass is deterministic without
 * atomics: one kernel records each window's first maximum (recomputed from inp, like the
 * cpu backend), then each input element gathers dout from the windows that chose it, in
 * window order, which is also the order in which the cpu loop adds them.
 */
#include <math.h>

#include "internal.cuh"

struct PoolDims {
  int64_t H, W, P, Q;
  int k, stride, pad;
};

/* Ceil mode (PyTorch's ceil_mode) only changes P and Q: the windows past the input are cut
 * by the bounds checks of window_argmax, and the gather clamps its window range to P, Q. */
static PoolDims pool_dims(int H, int W, int kernel, int stride, int pad, int ceil) {
  return PoolDims{H,      W,      fbp_out_size_ceil(H, kernel, stride, pad, ceil),
                  fbp_out_size_ceil(W, kernel, stride, pad, ceil), kernel, stride, pad};
}

/* In-plane index of the first maximum of window (p, q), -1 when it is all padding. */
static __device__ __forceinline__ int64_t window_argmax(const float *x, const PoolDims &d,
                                                        int64_t p, int64_t q, float *best) {
  int64_t arg = -1;
  float m = -INFINITY;
  for (int r = 0; r < d.k; r++) {
    int64_t h = p * d.stride - d.pad + r;
    if (h < 0 || h >= d.H) continue;
    for (int t = 0; t < d.k; t++) {
      int64_t w = q * d.stride - d.pad + t;
      if (w < 0 || w >= d.W) continue;
      float v = x[h * d.W + w];
      if (arg < 0 || v > m) {
        m = v;
        arg = h * d.W + w;
      }
    }
  }
  *best = m;
  return arg;
}

static __global__ void maxpool_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                      int64_t n, PoolDims d) {
  GRID_STRIDE(i, n) {
    int64_t q = i % d.Q, t = i / d.Q, p = t % d.P, nc = t / d.P;
    float best;
    window_argmax(inp + nc * d.H * d.W, d, p, q, &best);
    out[i] = best;
  }
}

static __global__ void argmax_kernel(int64_t *__restrict__ arg, const float *__restrict__ inp,
                                     int64_t n, PoolDims d) {
  GRID_STRIDE(i, n) {
    int64_t q = i % d.Q, t = i / d.Q, p = t % d.P, nc = t / d.P;
    float best;
    arg[i] = window_argmax(inp + nc * d.H * d.W, d, p, q, &best);
  }
}

/* dinp[nc, h, w] = Σ dout[nc, p, q] over the windows (p, q) whose first maximum is (h, w). */
static __global__ void maxpool_gather_kernel(float *__restrict__ dinp,
                                             const float *__restrict__ dout,
                                             const int64_t *__restrict__ arg, int64_t n,
                                             PoolDims d) {
  GRID_STRIDE(i, n) {
    int64_t w = i % d.W, t = i / d.W, h = t % d.H, nc = t / d.H;
    /* Windows p with p·stride − pad <= h <= p·stride − pad + k − 1. */
    int64_t p0 = h + d.pad - d.k + 1, q0 = w + d.pad - d.k + 1;
    p0 = p0 <= 0 ? 0 : (p0 + d.stride - 1) / d.stride;
    q0 = q0 <= 0 ? 0 : (q0 + d.stride - 1) / d.stride;
    int64_t p1 = (h + d.pad) / d.stride, q1 = (w + d.pad) / d.stride;
    if (p1 > d.P - 1) p1 = d.P - 1;
    if (q1 > d.Q - 1) q1 = d.Q - 1;
    const int64_t *a = arg + nc * d.P * d.Q;
    const float *g = dout + nc * d.P * d.Q;
    int64_t self = h * d.W + w;
    float acc = 0.0f;
    for (int64_t p = p0; p <= p1; p++)
      for (int64_t q = q0; q <= q1; q++)
        if (a[p * d.Q + q] == self) acc += g[p * d.Q + q];
    dinp[i] = acc;
  }
}

int impl_maxpool2d_forward(float *out, const float *inp, int N, int C, int H, int W, int kernel,
                           int stride, int pad, int ceil) {
  PoolDims d = pool_dims(H, W, kernel, stride, pad, ceil);
  int64_t n = (int64_t)N * C * d.P * d.Q;
  maxpool_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, inp, n, d);
  LAUNCH_CHECK("maxpool_kernel");
  return 0;
}

int impl_maxpool2d_backward(float *dinp, const float *dout, const float *inp, int N, int C,
                            int H, int W, int kernel, int stride, int pad, int ceil) {
  PoolDims d = pool_dims(H, W, kernel, stride, pad, ceil);
  int64_t nout = (int64_t)N * C * d.P * d.Q, nin = (int64_t)N * C * H * W;
  int64_t *arg = (int64_t *)fbp_scratch((size_t)nout * sizeof(int64_t), "maxpool2d_backward");
  if (!arg) return 1;
  cudaStream_t s = fbp_stream();
  argmax_kernel<<<fbp_grid(nout, FBP_BLOCK), FBP_BLOCK, 0, s>>>(arg, inp, nout, d);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    maxpool_gather_kernel<<<fbp_grid(nin, FBP_BLOCK), FBP_BLOCK, 0, s>>>(dinp, dout, arg, nin,
                                                                         d);
    e = cudaGetLastError();
  }
  fbp_scratch_free(arg);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "maxpool backward kernels", e);
  return 0;
}

/* One warp per (n, c) plane: the mean of H×W values in double. */
static __global__ void avgpool_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                      int64_t planes, int64_t HW) {
  int lane = threadIdx.x & 31;
  for (int64_t nc = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); nc < planes;
       nc += (int64_t)gridDim.x * (blockDim.x >> 5)) {
    const float *x = inp + nc * HW;
    double s = 0;
    for (int64_t i = lane; i < HW; i += 32) s += x[i];
    s = warp_sum(s);
    if (lane == 0) out[nc] = (float)(s / (double)HW);
  }
}

static __global__ void avgpool_backward_kernel(float *__restrict__ dinp,
                                               const float *__restrict__ dout, int64_t n,
                                               int64_t HW) {
  GRID_STRIDE(i, n) dinp[i] = dout[i / HW] / (float)HW;
}

int impl_avgpool_global_forward(float *out, const float *inp, int N, int C, int H, int W) {
  int64_t planes = (int64_t)N * C;
  avgpool_kernel<<<fbp_grid(planes, FBP_BLOCK / 32), FBP_BLOCK, 0, fbp_stream()>>>(
      out, inp, planes, (int64_t)H * W);
  LAUNCH_CHECK("avgpool_kernel");
  return 0;
}

int impl_avgpool_global_backward(float *dinp, const float *dout, int N, int C, int H, int W) {
  int64_t numel = (int64_t)N * C * H * W;
  avgpool_backward_kernel<<<fbp_grid(numel, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
      dinp, dout, numel, (int64_t)H * W);
  LAUNCH_CHECK("avgpool_backward_kernel");
  return 0;
}
