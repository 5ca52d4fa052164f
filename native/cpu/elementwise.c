/*
 * elementwise.c — unary functions (relu, sigmoid, log, abs, exp, silu, hardswish,
 * hardsigmoid, gelu, relu6), affine scale, 4-D broadcasting binary ops, sum_to,
 * broadcast_to and row softmax, as plain C loops.
 *
 * Why plain C: these are memory-bound and simple; oneDNN's eltwise/binary primitives
 * would need a cached primitive per shape for no speed gain. Loops keep the innermost
 * dimension contiguous so the compiler vectorises them, and split across the OpenMP team
 * (the same libgomp team oneDNN uses) only when the work exceeds FBP_PAR_MIN elements,
 * where the team's start-up cost pays off. Reductions (sum_to, softmax sums) accumulate
 * in double, so results do not depend on the reduction length or thread split.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define SUM_TILE 256
#define GELU_INV_SQRT_2PI 0.3989422804014327f /* 1/√(2π) */

/* e^x to 1.4 ulp, in straight-line float code the compiler vectorises (libm's expf is a call
 * per element: SiLU, EfficientNet's activation, spent most of an inference in it).
 * Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2, n rounded by adding 1.5·2^23 (floorf
 * would not vectorise without -fno-trapping-math), Cephes' degree-6 polynomial for e^r,
 * then 2^n through the exponent bits. x is clamped to where e^x is a normal float (so ±inf
 * give 1.6e38 / 1.6e-38); NaN is restored at the end. */
static inline float fbp_expf(float x) {
  float t = x < -87.0f ? -87.0f : x;
  t = t > 88.0f ? 88.0f : t;
  const float magic = 12582912.0f;
  float shifted = t * 1.44269504088896341f + magic;
  float n = shifted - magic;
  float r = t - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t shifted_bits, magic_bits;
  __builtin_memcpy(&shifted_bits, &shifted, sizeof shifted);
  __builtin_memcpy(&magic_bits, &magic, sizeof magic);
  int32_t bits = (shifted_bits - magic_bits + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return x != x ? x : e * scale;
}

/* min(max(x + 3, 0), 6)/6, with NaN propagating (comparisons, not fminf/fmaxf). */
static inline float hard01(float x) {
  float t = x + 3.0f;
  t = t < 0.0f ? 0.0f : t;
  t = t > 6.0f ? 6.0f : t;
  return t * (1.0f / 6.0f);
}

int impl_unary_forward(float *out, const float *inp, int64_t n, int op) {
  switch (op) {
  case FBP_RELU:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];);
    break;
  case FBP_SIGMOID:
    FBP_PAR_FOR(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i])););
    break;
  case FBP_LOG:
    FBP_PAR_FOR(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = logf(inp[i]););
    break;
  case FBP_ABS:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = fabsf(inp[i]););
    break;
  case FBP_EXP:
    FBP_PAR_FOR(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = expf(inp[i]););
    break;
  case FBP_SILU:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = inp[i] / (1.0f + fbp_expf(-inp[i])););
    break;
  case FBP_HARDSWISH:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = inp[i] * hard01(inp[i]););
    break;
  case FBP_HARDSIGMOID:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) out[i] = hard01(inp[i]););
    break;
  case FBP_GELU:
    /* x·Φ(x) with Φ(x) = erfc(−x/√2)/2: erfc keeps Φ's relative accuracy in the left tail,
     * where 1 + erf(x/√2) would cancel (same value as PyTorch's erf form elsewhere). */
    FBP_PAR_FOR(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++)
        out[i] = 0.5f * inp[i] * erfcf(-inp[i] * (float)M_SQRT1_2););
    break;
  case FBP_RELU6:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) {
        float x = inp[i] < 0.0f ? 0.0f : inp[i]; /* NaN propagates */
        out[i] = x > 6.0f ? 6.0f : x;
      });
    break;
  }
  return 0;
}

int impl_unary_backward(float *dinp, const float *dout, const float *inp, const float *out,
                        int64_t n, int op) {
  switch (op) {
  case FBP_RELU:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;);
    break;
  case FBP_SIGMOID:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) dinp[i] = dout[i] * out[i] * (1.0f - out[i]););
    break;
  case FBP_LOG:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) dinp[i] = dout[i] / inp[i];);
    break;
  case FBP_ABS:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++)
        dinp[i] = inp[i] > 0.0f ? dout[i] : inp[i] < 0.0f ? -dout[i] : 0.0f;);
    break;
  case FBP_EXP:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) dinp[i] = dout[i] * out[i];);
    break;
  case FBP_SILU: /* s·(1 + x·(1 − s)), s = sigmoid(x) */
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) {
        float x = inp[i], s = 1.0f / (1.0f + fbp_expf(-x));
        dinp[i] = dout[i] * (s * (1.0f + x * (1.0f - s)));
      });
    break;
  case FBP_HARDSWISH: /* (2x + 3)/6 on [−3, 3) (−0.5 at −3, as PyTorch), 0 below, 1 from 3 */
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        dinp[i] = x < -3.0f ? 0.0f : x < 3.0f ? dout[i] * (x / 3.0f + 0.5f) : dout[i];
      });
    break;
  case FBP_HARDSIGMOID:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++)
        dinp[i] = inp[i] > -3.0f && inp[i] < 3.0f ? dout[i] * (1.0f / 6.0f) : 0.0f;);
    break;
  case FBP_GELU: /* Φ(x) + x·φ(x) */
    FBP_PAR_FOR(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * erfcf(-x * (float)M_SQRT1_2);
        float pdf = expf(-0.5f * x * x) * GELU_INV_SQRT_2PI;
        dinp[i] = dout[i] * (cdf + x * pdf);
      });
    break;
  case FBP_RELU6:
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++)
        dinp[i] = inp[i] > 0.0f && inp[i] < 6.0f ? dout[i] : 0.0f;);
    break;
  }
  return 0;
}

int impl_scale_forward(float *out, const float *inp, float alpha, float beta, int64_t n) {
  FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
    for (int64_t i = 0; i < n; i++) out[i] = alpha * inp[i] + beta;);
  return 0;
}

/* ---- broadcasting --------------------------------------------------------------------- */

/* Row-major strides of a 4-D shape with 0 for broadcast (size-1) dims of a larger shape. */
static void bstrides(const int *s, const int *full, int64_t *st) {
  int64_t acc = 1;
  for (int k = 3; k >= 0; k--) {
    st[k] = s[k] == 1 && full[k] != 1 ? 0 : acc;
    acc *= s[k];
  }
}

#define BIN_LOOP(EXPR)                                                                  \
  do {                                                                                  \
    if (sa == 1 && sb == 1) {                                                           \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                           \
        float u = x[i], v = y[i];                                                       \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else if (sa == 1) {                                                               \
      float v = y[0];                                                                   \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                           \
        float u = x[i];                                                                 \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else if (sb == 1) {                                                               \
      float u = x[0];                                                                   \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                           \
        float v = y[i];                                                                 \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else {                                                                            \
      float u = x[0], v = y[0], r = (EXPR);                                             \
      for (int64_t i = 0; i < len; i++) o[i] = r;                                       \
    }                                                                                   \
  } while (0)

/* o[0..len) = x op y where x/y advance by 1 (sa/sb == 1) or stay (== 0). */
static inline void bin_row(float *o, const float *x, const float *y, int64_t len, int sa,
                           int sb, int op) {
  switch (op) {
  case FBP_ADD: BIN_LOOP(u + v); break;
  case FBP_SUB: BIN_LOOP(u - v); break;
  case FBP_MUL: BIN_LOOP(u * v); break;
  default: BIN_LOOP(u / v); break;
  }
}

int impl_binary_forward(float *out, const float *a, const float *b, int a0, int a1, int a2,
                        int a3, int b0, int b1, int b2, int b3, int op) {
  int as[4] = {a0, a1, a2, a3}, bs[4] = {b0, b1, b2, b3}, os[4];
  for (int k = 0; k < 4; k++) os[k] = as[k] > bs[k] ? as[k] : bs[k];
  int64_t na = (int64_t)a0 * a1 * a2 * a3, nb = (int64_t)b0 * b1 * b2 * b3;
  int64_t total = (int64_t)os[0] * os[1] * os[2] * os[3];
  /* Flat fast paths: same shapes, or one side a single value. */
  if ((na == total && nb == total) || nb == 1 || na == 1) {
    int sa = na == total ? 1 : 0, sb = nb == total ? 1 : 0;
    int64_t chunk = 4096, chunks = (total + chunk - 1) / chunk;
    FBP_PAR_FOR(total > FBP_PAR_MIN,
      for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * chunk, len = total - lo < chunk ? total - lo : chunk;
        bin_row(out + lo, a + lo * sa, b + lo * sb, len, sa, sb, op);
      });
    return 0;
  }
  int64_t sta[4], stb[4];
  bstrides(as, os, sta);
  bstrides(bs, os, stb);
  int64_t rows = (int64_t)os[0] * os[1] * os[2], len = os[3];
  FBP_PAR_FOR(total > FBP_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
      int64_t i2 = r % os[2], i1 = (r / os[2]) % os[1], i0 = r / ((int64_t)os[2] * os[1]);
      const float *x = a + i0 * sta[0] + i1 * sta[1] + i2 * sta[2];
      const float *y = b + i0 * stb[0] + i1 * stb[1] + i2 * stb[2];
      bin_row(out + r * len, x, y, len, (int)sta[3], (int)stb[3], op);
    });
  return 0;
}

int impl_sum_to_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                        int o1, int o2, int o3) {
  int is[4] = {i0, i1, i2, i3}, os[4] = {o0, o1, o2, o3};
  int64_t total = (int64_t)i0 * i1 * i2 * i3, nout = (int64_t)o0 * o1 * o2 * o3;
  if (nout == 1) {
    double sum = 0;
    if (total > FBP_PAR_MIN) {
#pragma omp parallel for reduction(+ : sum) schedule(static)
      for (int64_t i = 0; i < total; i++) sum += inp[i];
    } else {
      for (int64_t i = 0; i < total; i++) sum += inp[i];
    }
    out[0] = (float)sum;
    return 0;
  }
  /* Input strides; a reduced dim k iterates 0..is[k), a kept one is fixed by the output. */
  int64_t st[4] = {(int64_t)i1 * i2 * i3, (int64_t)i2 * i3, i3, 1};
  int64_t red[3];
  for (int k = 0; k < 3; k++) red[k] = os[k] == 1 ? is[k] : 1;
  int64_t orows = (int64_t)o0 * o1 * o2;
  int keep_last = o3 == i3;
  FBP_PAR_FOR(total > FBP_PAR_MIN,
    for (int64_t r = 0; r < orows; r++) {
      int64_t q2 = r % o2, q1 = (r / o2) % o1, q0 = r / ((int64_t)o2 * o1);
      const float *base = inp + q0 * st[0] * (os[0] != 1) + q1 * st[1] * (os[1] != 1) +
                          q2 * st[2] * (os[2] != 1);
      if (keep_last) {
        /* The last dim is kept: sum whole rows, SUM_TILE columns of doubles at a time. */
        for (int64_t j0 = 0; j0 < i3; j0 += SUM_TILE) {
          int64_t len = i3 - j0 < SUM_TILE ? i3 - j0 : SUM_TILE;
          double sums[SUM_TILE] = {0};
          for (int64_t r0 = 0; r0 < red[0]; r0++)
            for (int64_t r1 = 0; r1 < red[1]; r1++)
              for (int64_t r2 = 0; r2 < red[2]; r2++) {
                const float *x = base + r0 * st[0] + r1 * st[1] + r2 * st[2] + j0;
                for (int64_t j = 0; j < len; j++) sums[j] += x[j];
              }
          for (int64_t j = 0; j < len; j++) out[r * o3 + j0 + j] = (float)sums[j];
        }
      } else {
        double sum = 0;
        for (int64_t r0 = 0; r0 < red[0]; r0++)
          for (int64_t r1 = 0; r1 < red[1]; r1++)
            for (int64_t r2 = 0; r2 < red[2]; r2++) {
              const float *x = base + r0 * st[0] + r1 * st[1] + r2 * st[2];
              for (int64_t j = 0; j < i3; j++) sum += x[j];
            }
        out[r] = (float)sum;
      }
    });
  return 0;
}

int impl_broadcast_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                           int o1, int o2, int o3) {
  int is[4] = {i0, i1, i2, i3}, os[4] = {o0, o1, o2, o3};
  int64_t total = (int64_t)o0 * o1 * o2 * o3;
  int64_t st[4];
  bstrides(is, os, st);
  int64_t rows = (int64_t)o0 * o1 * o2, len = o3;
  FBP_PAR_FOR(total > FBP_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
      int64_t q2 = r % o2, q1 = (r / o2) % o1, q0 = r / ((int64_t)o2 * o1);
      const float *x = inp + q0 * st[0] + q1 * st[1] + q2 * st[2];
      float *o = out + r * len;
      if (st[3]) memcpy(o, x, (size_t)len * sizeof(float));
      else
        for (int64_t j = 0; j < len; j++) o[j] = x[0];
    });
  return 0;
}

/* ---- softmax -------------------------------------------------------------------------- */

int impl_softmax_forward(float *out, const float *inp, int rows, int cols) {
  FBP_PAR_FOR((int64_t)rows * cols > FBP_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
      const float *x = inp + r * cols;
      float *o = out + r * cols;
      float mx = -INFINITY;
      for (int c = 0; c < cols; c++) mx = x[c] > mx ? x[c] : mx;
      double sum = 0;
      for (int c = 0; c < cols; c++) {
        float e = expf(x[c] - mx);
        o[c] = e;
        sum += e;
      }
      float inv = (float)(1.0 / sum);
      for (int c = 0; c < cols; c++) o[c] *= inv;
    });
  return 0;
}

int impl_softmax_backward(float *dinp, const float *dout, const float *out, int rows, int cols) {
  FBP_PAR_FOR((int64_t)rows * cols > FBP_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
      const float *dy = dout + r * cols, *y = out + r * cols;
      float *dx = dinp + r * cols;
      double dot = 0;
      for (int c = 0; c < cols; c++) dot += (double)dy[c] * y[c];
      float d = (float)dot;
      for (int c = 0; c < cols; c++) dx[c] = y[c] * (dy[c] - d);
    });
  return 0;
}
