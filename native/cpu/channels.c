/*
 * channels.c — kernels over the channel dimension of (N, C, HW) tensors: the strided
 * channel copy behind channel concat, split and shuffle, and LayerNorm over the channels
 * of each position (ConvNeXt's LayerNorm2d), as plain C loops.
 *
 * channel_copy moves whole rows of HW floats, one (n, j) row per iteration.
 *
 * LayerNorm normalises the C values of each position (n, i), which lie HW apart. The
 * loops take a block of LN_BLOCK consecutive positions at a time and walk the channels
 * outside, so the inner loop runs over contiguous positions and vectorises. The
 * statistics are float and two-pass (the mean, then the mean of the squared deviations),
 * so the variance has no cancellation. The weight and bias gradients are sums over N·HW
 * terms: one channel per iteration, accumulated in double in a fixed order, so they do not
 * depend on the thread count and need no atomics.
 */
#include <string.h>
#include <math.h>

#include "internal.h"

/* Positions a layernorm iteration works on (its accumulators stay in L1). */
#define LN_BLOCK 128

int impl_channel_copy(float *out, const float *inp, int N, int Co, int Ci, int HW,
                      int64_t out_off, int out_step, int64_t in_off, int in_step,
                      int64_t cn, int accumulate) {
  int64_t rows = (int64_t)N * cn, hw = HW;
  FBP_PAR_FOR(rows * hw > FBP_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
      int64_t n = r / cn, j = r % cn;
      float *o = out + (n * Co + out_off + j * out_step) * hw;
      const float *x = inp + (n * Ci + in_off + j * in_step) * hw;
      if (accumulate) {
        _Pragma("omp simd")
        for (int64_t i = 0; i < hw; i++) o[i] += x[i];
      } else {
        memcpy(o, x, (size_t)hw * sizeof(float));
      }
    });
  return 0;
}

int impl_layernorm_channels_forward(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, int N, int C,
                                    int HW, float eps) {
  int64_t hw = HW, CHW = (int64_t)C * hw;
  int64_t blocks = (hw + LN_BLOCK - 1) / LN_BLOCK, items = (int64_t)N * blocks;
  float invC = 1.0f / (float)C;
  FBP_PAR_FOR((int64_t)N * CHW > FBP_PAR_MIN,
    for (int64_t it = 0; it < items; it++) {
      int64_t n = it / blocks, i0 = (it % blocks) * LN_BLOCK;
      int64_t len = hw - i0 < LN_BLOCK ? hw - i0 : LN_BLOCK;
      const float *x = inp + n * CHW + i0;
      float *o = out + n * CHW + i0;
      float mu[LN_BLOCK], acc[LN_BLOCK];
      for (int64_t i = 0; i < len; i++) acc[i] = 0.0f;
      for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * hw;
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++) acc[i] += xc[i];
      }
      for (int64_t i = 0; i < len; i++) {
        mu[i] = acc[i] * invC;
        acc[i] = 0.0f;
      }
      for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * hw;
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++) {
          float d = xc[i] - mu[i];
          acc[i] += d * d;
        }
      }
      float *m = mean + n * hw + i0, *r = rstd + n * hw + i0;
      for (int64_t i = 0; i < len; i++) {
        m[i] = mu[i];
        r[i] = acc[i] = 1.0f / sqrtf(acc[i] * invC + eps);
      }
      for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * hw;
        float *oc = o + c * hw, w = weight[c], b = bias[c];
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++) oc[i] = (xc[i] - mu[i]) * acc[i] * w + b;
      }
    });
  return 0;
}

int impl_layernorm_channels_backward(float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *mean,
                                     const float *rstd, const float *weight, int N, int C,
                                     int HW) {
  int64_t hw = HW, CHW = (int64_t)C * hw;
  int64_t blocks = (hw + LN_BLOCK - 1) / LN_BLOCK, items = (int64_t)N * blocks;
  float invC = 1.0f / (float)C;
  int par = (int64_t)N * CHW > FBP_PAR_MIN;
  /* dinp = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)), g = dout·weight, per position. */
  FBP_PAR_FOR(par,
    for (int64_t it = 0; it < items; it++) {
      int64_t n = it / blocks, i0 = (it % blocks) * LN_BLOCK;
      int64_t len = hw - i0 < LN_BLOCK ? hw - i0 : LN_BLOCK;
      const float *x = inp + n * CHW + i0, *dy = dout + n * CHW + i0;
      const float *m = mean + n * hw + i0, *r = rstd + n * hw + i0;
      float *dx = dinp + n * CHW + i0;
      float sg[LN_BLOCK], sgx[LN_BLOCK];
      for (int64_t i = 0; i < len; i++) sg[i] = sgx[i] = 0.0f;
      for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * hw, *dyc = dy + c * hw;
        float w = weight[c];
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++) {
          float g = dyc[i] * w;
          sg[i] += g;
          sgx[i] += g * ((xc[i] - m[i]) * r[i]);
        }
      }
      for (int64_t i = 0; i < len; i++) {
        sg[i] *= invC;
        sgx[i] *= invC;
      }
      for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * hw, *dyc = dy + c * hw;
        float *dxc = dx + c * hw, w = weight[c];
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++) {
          float xhat = (xc[i] - m[i]) * r[i];
          dxc[i] = r[i] * (dyc[i] * w - sg[i] - xhat * sgx[i]);
        }
      }
    });
  /* dweight[c] = Σ dout·x̂, dbias[c] = Σ dout over n and positions. */
  FBP_PAR_FOR(par,
    for (int64_t c = 0; c < C; c++) {
      double sw = 0.0, sb = 0.0;
      for (int64_t n = 0; n < N; n++) {
        const float *xc = inp + n * CHW + c * hw, *dyc = dout + n * CHW + c * hw;
        const float *m = mean + n * hw, *r = rstd + n * hw;
        _Pragma("omp simd reduction(+ : sw, sb)")
        for (int64_t i = 0; i < hw; i++) {
          sw += (double)dyc[i] * (double)((xc[i] - m[i]) * r[i]);
          sb += dyc[i];
        }
      }
      dweight[c] = (float)sw;
      dbias[c] = (float)sb;
    });
  return 0;
}
