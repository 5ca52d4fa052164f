/*
 * pool.c — max pooling (forward over oneDNN, backward in C) and global average pooling.
 *
 * Why: the max-pool forward is a cached oneDNN primitive like the convolutions. Its
 * backward recomputes each window's argmax from the input instead of keeping a oneDNN
 * workspace, because the ABI carries no workspace and the rule "first maximum wins,
 * padding is -inf" must match every backend bit for bit; it is one pass over the input.
 * oneDNN initialises a window with the lowest finite float, not -inf, so a window made
 * only of padding (possible only when pad >= kernel) goes through the C loop, which
 * gives -inf. Global average pooling is a plain reduction with double accumulators.
 *
 * Ceil mode (PyTorch's ceil_mode): the output size comes from fbp_out_size_ceil, and the
 * oneDNN primitive gets a larger right padding, padding_r = (P − 1)·stride + kernel − H −
 * pad, so its output size comes out the same; oneDNN's max skips padding, so the windows
 * that extend past the input take the max of their in-bounds elements, as PyTorch does. The
 * ceil rule never starts a window in the right padding, so with pad < kernel no window is
 * all padding. The C loops need no change beyond the size: they skip out-of-bounds taps.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

enum { POOL_MAX_FWD = 300 };

/* key: kind, N, C, H, W, kernel, stride, pad, ceil */
static int build_max_fwd(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  int64_t N = key[1], C = key[2], H = key[3], W = key[4], k = key[5], s = key[6], pad = key[7];
  int ceil = (int)key[8];
  int64_t P = fbp_out_size_ceil(H, k, s, pad, ceil), Q = fbp_out_size_ceil(W, k, s, pad, ceil);
  dnnl_memory_desc_t src, dst;
  if (fbp_md_nchw(&src, N, C, H, W, dnnl_nchw) || fbp_md_nchw(&dst, N, C, P, Q, dnnl_nchw))
    return 1;
  /* Floor mode keeps the symmetric padding; ceil mode pads the right and bottom so that
   * the last window fits (see the top of this file). */
  int64_t pad_h = ceil ? (P - 1) * s + k - H - pad : pad;
  int64_t pad_w = ceil ? (Q - 1) * s + k - W - pad : pad;
  dnnl_dims_t strides = {s, s}, kernel = {k, k}, padding = {pad, pad}, padding_r = {pad_h, pad_w};
  dnnl_pooling_desc_t d;
  dnnl_primitive_desc_t pd;
  CHECK(dnnl_pooling_forward_desc_init(&d, dnnl_forward_inference, dnnl_pooling_max, &src,
                                       &dst, strides, kernel, padding, padding_r));
  CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, eng, NULL));
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DST, &dst, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &src, 0);
  dnnl_status_t st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

/* Index (within the plane) of the first maximum of window (p, q); -1 if all padding. */
static inline int64_t window_argmax(const float *x, int64_t H, int64_t W, int64_t p, int64_t q,
                                    int kernel, int stride, int pad) {
  int64_t arg = -1;
  float best = -INFINITY;
  for (int r = 0; r < kernel; r++) {
    int64_t h = p * stride - pad + r;
    if (h < 0 || h >= H) continue;
    for (int t = 0; t < kernel; t++) {
      int64_t w = q * stride - pad + t;
      if (w < 0 || w >= W) continue;
      int64_t j = h * W + w;
      if (arg < 0 || x[j] > best) {
        best = x[j];
        arg = j;
      }
    }
  }
  return arg;
}

int impl_maxpool2d_forward(float *out, const float *inp, int N, int C, int H, int W, int kernel,
                           int stride, int pad, int ceil) {
  if (pad >= kernel) {
    int64_t P = fbp_out_size_ceil(H, kernel, stride, pad, ceil);
    int64_t Q = fbp_out_size_ceil(W, kernel, stride, pad, ceil);
    int64_t planes = (int64_t)N * C;
    FBP_PAR_FOR(planes * P * Q > FBP_PAR_MIN,
      for (int64_t nc = 0; nc < planes; nc++) {
        const float *x = inp + nc * H * W;
        for (int64_t p = 0; p < P; p++)
          for (int64_t q = 0; q < Q; q++) {
            int64_t j = window_argmax(x, H, W, p, q, kernel, stride, pad);
            out[(nc * P + p) * Q + q] = j < 0 ? -INFINITY : x[j];
          }
      });
    return 0;
  }
  int64_t key[FBP_KEY_LEN] = {POOL_MAX_FWD, N, C, H, W, kernel, stride, pad, ceil != 0};
  void *ptrs[] = {out, (void *)inp};
  return fbp_prim_call(key, build_max_fwd, ptrs);
}

/* First maximum of a window that lies wholly inside the plane, top-left (h0, w0): no
 * bounds checks, and a select instead of a branch (the comparisons of ReLU outputs are
 * unpredictable). Same scan order and strict > as window_argmax, so the same winner. */
static inline int64_t interior_argmax(const float *x, int64_t W, int64_t h0, int64_t w0,
                                      int kernel) {
  int64_t arg = h0 * W + w0;
  float best = x[arg];
  for (int r = 0; r < kernel; r++) {
    int64_t row = (h0 + r) * W + w0;
    for (int t = 0; t < kernel; t++) {
      float v = x[row + t];
      int better = v > best;
      best = better ? v : best;
      arg = better ? row + t : arg;
    }
  }
  return arg;
}

/* First and one-past-last output index whose window lies inside [0, X). */
static inline void interior_range(int64_t X, int64_t out, int kernel, int stride, int pad,
                                  int64_t *lo, int64_t *hi) {
  *lo = (pad + stride - 1) / stride;
  int64_t last = X - kernel + pad; /* window start must be <= X − kernel */
  *hi = last < 0 ? 0 : last / stride + 1;
  if (*hi > out) *hi = out;
  if (*lo > *hi) *lo = *hi;
}

int impl_maxpool2d_backward(float *dinp, const float *dout, const float *inp, int N, int C,
                            int H, int W, int kernel, int stride, int pad, int ceil) {
  int64_t P = fbp_out_size_ceil(H, kernel, stride, pad, ceil);
  int64_t Q = fbp_out_size_ceil(W, kernel, stride, pad, ceil);
  int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  int64_t p_lo, p_hi, q_lo, q_hi;
  interior_range(H, P, kernel, stride, pad, &p_lo, &p_hi);
  interior_range(W, Q, kernel, stride, pad, &q_lo, &q_hi);
  /* Windows overlap within a plane, never across planes: one plane per iteration. */
  FBP_PAR_FOR(planes * HW > FBP_PAR_MIN,
    for (int64_t nc = 0; nc < planes; nc++) {
      const float *x = inp + nc * HW;
      const float *dy = dout + nc * P * Q;
      float *dx = dinp + nc * HW;
      memset(dx, 0, (size_t)HW * sizeof(float));
      for (int64_t p = 0; p < P; p++) {
        int inner_row = p >= p_lo && p < p_hi;
        for (int64_t q = 0; q < Q; q++) {
          int64_t j = inner_row && q >= q_lo && q < q_hi
                          ? interior_argmax(x, W, p * stride - pad, q * stride - pad, kernel)
                          : window_argmax(x, H, W, p, q, kernel, stride, pad);
          if (j >= 0) dx[j] += dy[p * Q + q];
        }
      }
    });
  return 0;
}

int impl_avgpool_global_forward(float *out, const float *inp, int N, int C, int H, int W) {
  int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  FBP_PAR_FOR(planes * HW > FBP_PAR_MIN,
    for (int64_t nc = 0; nc < planes; nc++) {
      const float *x = inp + nc * HW;
      double sum = 0;
      for (int64_t i = 0; i < HW; i++) sum += x[i];
      out[nc] = (float)(sum / (double)HW);
    });
  return 0;
}

int impl_avgpool_global_backward(float *dinp, const float *dout, int N, int C, int H, int W) {
  int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  FBP_PAR_FOR(planes * HW > FBP_PAR_MIN,
    for (int64_t nc = 0; nc < planes; nc++) {
      float g = dout[nc] / (float)HW;
      for (int64_t i = 0; i < HW; i++) dinp[nc * HW + i] = g;
    });
  return 0;
}
