/*
 * aff.c — the fusion arithmetic of AFF (DESIGN.md §3) as one forward and one backward
 * pass over the block's activations.
 *
 * Why: composed from tensor ops, `relu(s·(F + sigmoid(L + G)⊙(S − F)))` is 7 elementwise
 * kernels forward and about 12 backward, each streaming full (N,C,H,W) tensors through
 * memory and each keeping an intermediate alive for backward. Fused, forward reads S, F,
 * L, G once and writes `out`; backward recomputes w and the ReLU mask from the same
 * inputs (nothing else is saved) and writes the four gradients in one pass per plane.
 * One (n, c) plane per iteration: G and dG are per plane, so dG needs no atomics.
 */
#include <math.h>

#include "internal.h"

/* sigmoid(x) = 1/(1 + e^−x) with e^x from 2^n · p(r) (n = round(x·log2 e), |r| <= ln2/2,
 * p the degree-6 Taylor polynomial: relative error < 2e-7). Why not expf: glibc's expf is
 * not vectorised without -ffast-math, and at ~5 ns per element it made this memory-bound
 * kernel compute-bound (3× slower). Written so `omp simd` vectorises it. */
static inline float sigmoidf_fast(float x) {
  float z = -x;
  z = z < -87.0f ? -87.0f : (z > 88.0f ? 88.0f : z);
  float n = __builtin_rintf(z * 1.44269504f);
  float r = z - n * 0.693147182f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
                   r * (0.00833333377f + r * 0.00138888892f)))));
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return 1.0f / (1.0f + p * scale);
}

int impl_aff_fuse_forward(float *out, const float *S, const float *F, const float *L,
                          const float *G, float scale, int N, int C, int H, int W) {
  int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  FBP_PAR_FOR(planes * HW > FBP_PAR_MIN,
    for (int64_t nc = 0; nc < planes; nc++) {
      const float *s = S + nc * HW, *f = F + nc * HW, *l = L + nc * HW;
      float *o = out + nc * HW, g = G[nc];
      _Pragma("omp simd")
      for (int64_t i = 0; i < HW; i++) {
        float w = sigmoidf_fast(l[i] + g);
        float v = scale * (f[i] + w * (s[i] - f[i]));
        o[i] = v > 0.0f ? v : (v == v ? 0.0f : v); /* ReLU; NaN propagates */
      }
    });
  return 0;
}

int impl_aff_fuse_backward(float *dS, float *dF, float *dL, float *dG, const float *dout,
                           const float *S, const float *F, const float *L, const float *G,
                           float scale, int N, int C, int H, int W) {
  int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  FBP_PAR_FOR(planes * HW > FBP_PAR_MIN,
    for (int64_t nc = 0; nc < planes; nc++) {
      const float *s = S + nc * HW, *f = F + nc * HW, *l = L + nc * HW, *dy = dout + nc * HW;
      float *ds = dS + nc * HW, *df = dF + nc * HW, *dl = dL + nc * HW, g = G[nc];
      float sum = 0.0f;
      _Pragma("omp simd reduction(+ : sum)")
      for (int64_t i = 0; i < HW; i++) {
        float w = sigmoidf_fast(l[i] + g);
        float diff = s[i] - f[i];
        float v = scale * (f[i] + w * diff);
        float d = v > 0.0f ? scale * dy[i] : 0.0f; /* through ReLU and the scale */
        ds[i] = d * w;
        df[i] = d - d * w;
        float gl = d * diff * w * (1.0f - w);
        dl[i] = gl;
        sum += gl;
      }
      dG[nc] = sum;
    });
  return 0;
}
