/*
 * batchnorm.cu — batch normalization (training forward with batch statistics, inference
 * forward with given statistics, backward) on NCHW as own kernels.
 *
 * Why not cuDNN's batch norm: the statistics must be the cpu backend's (native/cpu/
 * batchnorm.c) exactly in convention — mean and the biased variance of the batch, which
 * the TS op turns into PyTorch's running estimates (momentum 0.1, unbiased variance) for
 * every per-database slice — and cuDNN only hands back 1/sqrt(var + eps), whose inverse
 * loses precision for small variances, and does not promise a reduction order. Here:
 * - statistics: each channel's N·H·W values are summed, shifted by the channel's first
 *   value, in double (as the cpu loops do, so the one-pass variance does not cancel), by
 *   `splits` blocks per channel (fbp_reduce_splits: ~4 blocks per SM when channels are
 *   few) whose partials a second kernel adds in order. No atomics anywhere, and the order
 *   depends only on the sizes and the SM count: results repeat bit for bit on one GPU,
 *   with or without --deterministic.
 * - normalisation: out = (x − mean)·(w·invstd) + b, the cpu backend's float expression.
 * - backward: Σdy and Σdy·(x − mean) the same way, then
 *   dx = k1·dy + k2·(x − mean) + k3 with k1 = w·inv, k2 = −k1·inv²·Σdy(x−mean)/M,
 *   k3 = −k1·Σdy/M (M = N·H·W), as the cpu backend computes them.
 * Passes over memory: forward 2 reads + 1 write, backward 2×2 reads + 1 write (what the
 * cpu backend does; cuDNN's fused kernels move the same bytes). Indices are int when
 * fbp_index32_ok says the loop fits, else int64_t.
 */
#include <math.h>

#include "internal.cuh"

/* Per-channel constants of the elementwise pass. */
struct BnCoef {
  float mu, k1, k2, k3; /* forward/infer: out = (x − mu)·k1 + k3; backward: see above */
};

/* Block w = (c, part) sums channel c's share of its M = N·HW values: t → plane n = t / HW,
 * offset j = t − n·HW, element (n·C + c)·HW + j. With `dy`, the sums are Σdy and
 * Σdy·(x − mean[c]); else Σ(x − x0) and Σ(x − x0)² with x0 the channel's first value. */
template <typename I>
static __global__ void bn_partial_kernel(double2 *__restrict__ part, const float *__restrict__ x,
                                         const float *__restrict__ dy,
                                         const float *__restrict__ mean, I C, I HW, I M,
                                         int splits) {
  I per = (M + splits - 1) / splits;
  for (I w = blockIdx.x; w < C * splits; w += gridDim.x) {
    I c = w / splits, s = w - c * splits;
    I lo = s * per, hi = lo + per < M ? lo + per : M;
    const float *xc = x + c * HW;
    const float *gc = dy ? dy + c * HW : NULL;
    double shift = dy ? (double)mean[c] : (double)xc[0];
    double a = 0.0, b = 0.0;
    for (I t = lo + (I)threadIdx.x; t < hi; t += (I)blockDim.x) {
      I n = t / HW;
      I off = n * C * HW + (t - n * HW);
      double d = (double)xc[off] - shift;
      if (gc) {
        double g = gc[off];
        a += g;
        b += g * d;
      } else {
        a += d;
        b += d * d;
      }
    }
    a = block_sum(a);
    b = block_sum(b);
    if (threadIdx.x == 0) part[w] = make_double2(a, b);
  }
}

/* Forward: adds channel c's partials in order → mean, biased var and the coefficients. */
static __global__ void bn_stats_kernel(float *__restrict__ mean, float *__restrict__ var,
                                       BnCoef *__restrict__ coef,
                                       const double2 *__restrict__ part,
                                       const float *__restrict__ x,
                                       const float *__restrict__ weight,
                                       const float *__restrict__ bias, int C, int64_t HW,
                                       int64_t M, int splits, float eps) {
  GRID_STRIDE(c, C) {
    double s = 0.0, ss = 0.0;
    for (int k = 0; k < splits; k++) {
      s += part[c * splits + k].x;
      ss += part[c * splits + k].y;
    }
    double dm = s / (double)M, v = ss / (double)M - dm * dm;
    if (v < 0.0) v = 0.0; /* rounding; NaN stays NaN */
    double mu = (double)x[c * HW] + dm, inv = 1.0 / sqrt(v + (double)eps);
    mean[c] = (float)mu;
    var[c] = (float)v;
    coef[c] = BnCoef{(float)mu, (float)((double)weight[c] * inv), 0.0f, bias[c]};
  }
}

/* Inference: the coefficients from the given statistics. */
static __global__ void bn_infer_coef_kernel(BnCoef *__restrict__ coef,
                                            const float *__restrict__ mean,
                                            const float *__restrict__ var,
                                            const float *__restrict__ weight,
                                            const float *__restrict__ bias, int C, float eps) {
  GRID_STRIDE(c, C) {
    double a = (double)weight[c] / sqrt((double)var[c] + (double)eps);
    coef[c] = BnCoef{mean[c], (float)a, 0.0f, bias[c]};
  }
}

/* Backward: Σdy, Σdy·(x − mean) → dbias, dweight and the dx coefficients. */
static __global__ void bn_grad_stats_kernel(float *__restrict__ dweight, float *__restrict__ dbias,
                                            BnCoef *__restrict__ coef,
                                            const double2 *__restrict__ part,
                                            const float *__restrict__ mean,
                                            const float *__restrict__ var,
                                            const float *__restrict__ weight, int C, int64_t M,
                                            int splits, float eps) {
  GRID_STRIDE(c, C) {
    double sdy = 0.0, sdyx = 0.0;
    for (int k = 0; k < splits; k++) {
      sdy += part[c * splits + k].x;
      sdyx += part[c * splits + k].y;
    }
    double inv = 1.0 / sqrt((double)var[c] + (double)eps);
    dbias[c] = (float)sdy;
    dweight[c] = (float)(sdyx * inv);
    double k1 = (double)weight[c] * inv;
    double k2 = -k1 * inv * inv * sdyx / (double)M;
    double k3 = -k1 * sdy / (double)M;
    coef[c] = BnCoef{mean[c], (float)k1, (float)k2, (float)k3};
  }
}

/* out = (x − mu)·k1 + k3 (forward, inference). */
template <typename I>
static __global__ void bn_apply_kernel(float *__restrict__ out, const float *__restrict__ x,
                                       const BnCoef *__restrict__ coef, I n, I HW, I C) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    BnCoef k = coef[(i / HW) % C];
    out[i] = (x[i] - k.mu) * k.k1 + k.k3;
  }
}

/* dx = k1·dy + k2·(x − mu) + k3. */
template <typename I>
static __global__ void bn_backward_apply_kernel(float *__restrict__ dx,
                                                const float *__restrict__ dy,
                                                const float *__restrict__ x,
                                                const BnCoef *__restrict__ coef, I n, I HW,
                                                I C) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    BnCoef k = coef[(i / HW) % C];
    dx[i] = k.k1 * dy[i] + k.k2 * (x[i] - k.mu) + k.k3;
  }
}

/* Launch sizes of the per-channel sums. */
struct BnShape {
  int64_t C, HW, M, total;
  int threads, splits;
  unsigned blocks;
  int index32; /* every loop of the three passes fits in int */
};

static BnShape bn_shape(int N, int C, int H, int W) {
  BnShape s;
  s.C = C;
  s.HW = (int64_t)H * W;
  s.M = (int64_t)N * s.HW;
  s.total = s.M * C;
  s.threads = s.M >= FBP_BLOCK ? FBP_BLOCK : (int)((s.M + 31) / 32 * 32);
  s.splits = fbp_reduce_splits(C, s.M, s.threads, fbp_sm_count());
  int64_t blocks = s.C * s.splits;
  s.blocks = (unsigned)(blocks < FBP_MAX_GRID ? blocks : FBP_MAX_GRID);
  s.index32 = fbp_index32_ok(s.total, FBP_MAX_GRID, FBP_BLOCK);
  return s;
}

/* Σ per channel: part (C·splits) from x (and dy, mean for the backward). */
static void launch_partials(double2 *part, const float *x, const float *dy, const float *mean,
                            const BnShape &s) {
  cudaStream_t st = fbp_stream();
  if (s.index32)
    bn_partial_kernel<int><<<s.blocks, s.threads, 0, st>>>(part, x, dy, mean, (int)s.C,
                                                           (int)s.HW, (int)s.M, s.splits);
  else
    bn_partial_kernel<int64_t><<<s.blocks, s.threads, 0, st>>>(part, x, dy, mean, s.C, s.HW, s.M,
                                                               s.splits);
}

static void launch_apply(float *out, const float *x, const float *dy, const BnCoef *coef,
                         const BnShape &s) {
  cudaStream_t st = fbp_stream();
  unsigned g = fbp_grid(s.total, FBP_BLOCK);
  if (dy && s.index32)
    bn_backward_apply_kernel<int><<<g, FBP_BLOCK, 0, st>>>(out, dy, x, coef, (int)s.total,
                                                           (int)s.HW, (int)s.C);
  else if (dy)
    bn_backward_apply_kernel<int64_t><<<g, FBP_BLOCK, 0, st>>>(out, dy, x, coef, s.total, s.HW,
                                                               s.C);
  else if (s.index32)
    bn_apply_kernel<int><<<g, FBP_BLOCK, 0, st>>>(out, x, coef, (int)s.total, (int)s.HW,
                                                  (int)s.C);
  else
    bn_apply_kernel<int64_t><<<g, FBP_BLOCK, 0, st>>>(out, x, coef, s.total, s.HW, s.C);
}

/* Scratch for the partials (C·splits double2) followed by the coefficients (C BnCoef). */
static void *bn_scratch(const BnShape &s, double2 **part, BnCoef **coef, const char *fn) {
  size_t part_bytes = (size_t)(s.C * s.splits) * sizeof(double2);
  char *p = (char *)fbp_scratch(part_bytes + (size_t)s.C * sizeof(BnCoef), fn);
  if (!p) return NULL;
  *part = (double2 *)p;
  *coef = (BnCoef *)(p + part_bytes);
  return p;
}

int impl_batchnorm_forward_train(float *out, float *mean, float *var, const float *inp,
                                 const float *weight, const float *bias, int N, int C, int H,
                                 int W, float eps) {
  BnShape s = bn_shape(N, C, H, W);
  double2 *part;
  BnCoef *coef;
  void *scratch = bn_scratch(s, &part, &coef, "batchnorm_forward_train");
  if (!scratch) return 1;
  launch_partials(part, inp, NULL, NULL, s);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    bn_stats_kernel<<<fbp_grid(C, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
        mean, var, coef, part, inp, weight, bias, C, s.HW, s.M, s.splits, eps);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) {
    launch_apply(out, inp, NULL, coef, s);
    e = cudaGetLastError();
  }
  fbp_scratch_free(scratch); /* stream order: reused only by later work */
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "batch-norm kernels", e);
  return 0;
}

int impl_batchnorm_forward_infer(float *out, const float *inp, const float *weight,
                                 const float *bias, const float *mean, const float *var, int N,
                                 int C, int H, int W, float eps) {
  BnShape s = bn_shape(N, C, H, W);
  BnCoef *coef = (BnCoef *)fbp_scratch((size_t)C * sizeof(BnCoef), "batchnorm_forward_infer");
  if (!coef) return 1;
  bn_infer_coef_kernel<<<fbp_grid(C, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
      coef, mean, var, weight, bias, C, eps);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    launch_apply(out, inp, NULL, coef, s);
    e = cudaGetLastError();
  }
  fbp_scratch_free(coef);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "batch-norm kernels", e);
  return 0;
}

int impl_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *mean, const float *var,
                            const float *weight, int N, int C, int H, int W, float eps) {
  BnShape s = bn_shape(N, C, H, W);
  double2 *part;
  BnCoef *coef;
  void *scratch = bn_scratch(s, &part, &coef, "batchnorm_backward");
  if (!scratch) return 1;
  launch_partials(part, inp, dout, mean, s);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    bn_grad_stats_kernel<<<fbp_grid(C, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
        dweight, dbias, coef, part, mean, var, weight, C, s.M, s.splits, eps);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) {
    launch_apply(dinp, inp, dout, coef, s);
    e = cudaGetLastError();
  }
  fbp_scratch_free(scratch);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "batch-norm kernels", e);
  return 0;
}
