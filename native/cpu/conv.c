/*
 * conv.c — 2-D convolution forward, backward-data and backward-weights over oneDNN.
 *
 * Why: convolutions are nearly all of a ResNet's time, and oneDNN's JIT kernels run
 * fastest on its blocked layouts (nChw16c on AVX-512). The ABI stays plain NCHW, so a
 * "blocked" primitive is created with format `any` and its cache entry converts at the
 * boundary (input reorders before, output reorder after, into buffers the entry owns).
 * Measured on the 2-core target (conv 3×3 64→64, 32×64×56×56) that is 1.4–2× faster
 * than plain NCHW primitives even counting the reorders. It is not always: the reorders
 * move every activation twice, so cheap convolutions (1×1 with few channels) run faster
 * as oneDNN's plain-layout GEMM convolution, and the blocked backward-data kernel for
 * C < 8 (the RGB stem) is 3× slower than the GEMM one. The choice per shape and kind is
 * a fixed rule (deterministic, so a run's numbers do not depend on timing noise):
 * plain when the flops per reordered activation element are below 128, or for
 * backward-data with C < 8; blocked otherwise. FBP_CONV_LAYOUT=plain|blocked (read when
 * a shape's primitive is first created) overrides the rule, for measurements.
 *
 * Algorithm: 3×3 stride-1 convolutions in the blocked layout run forward and backward-data
 * as Winograd F(4×4, 3×3) (oneDNN's jit_wino_4x3), which does 4× fewer multiplications;
 * measured on 32×64×56×56 it takes the forward from 16.6 to 12.3 ms and backward-data from
 * 15.4 to 10.5 ms. Its rounding differs from direct convolution by a few float32 ulps of
 * the largest partial sums (tests/backend pins the tolerance). Backward-weights stays
 * direct: oneDNN's Winograd one measured slower (19.6 vs 17.2 ms). Where oneDNN has no
 * Winograd kernel for a shape or CPU, the direct one is used. FBP_CONV_ALGO=direct turns
 * Winograd off (read when a shape's primitive is first created).
 *
 * Precision: when fbp_precision() is FBP_BF16 the primitives read their multiplied inputs
 * (src, weights, diff_dst) as bf16 and write float32 (dst, diff_src, diff_weights,
 * diff_bias): oneDNN's jit_bf16 kernels on avx512_core_bf16 (x64:gemm for the plain
 * layout), float32 accumulation. The ABI's buffers stay float32: a blocked shape's input
 * reorder converts layout and type in one pass (round to nearest even), so there bf16 costs
 * no extra pass; a plain shape gains the conversions that fp32 skips. oneDNN 2.6 has no bf16 Winograd: bf16 runs direct. The
 * input type is part of the cache key, so fp32 and bf16 entries of a shape coexist.
 * Measured (ResNet18 training step, batch 32 @224, 1 thread, loaded machine): the bf16
 * convolution primitives take 0.66× the time of fp32's (forward 0.66×, backward-weights
 * 0.55×, backward-data 0.88× — fp32's is Winograd), but the float32↔blocked reorders at
 * the ABI boundary stay (≈ 0.8 s of a 3.7 s step) and cap the step at ≈ 1.2× fp32.
 *
 * Groups: with G > 1 the weight is oneDNN's 5-D grouped weight (G, K/G, C/G, R, S), whose
 * plain layout goihw is the ABI's (K, C/G, R, S) buffer as it is; G = 1 keeps the 4-D oihw
 * descriptors. The flops of the layout rule count C/G input channels per output.
 * Depthwise (G = C = K) always runs blocked: oneDNN's jit depthwise kernels (jit_uni_dw,
 * fp32 and bf16) take the blocked (or channels-last) layouts, not NCHW, where oneDNN runs
 * its GEMM convolution, one small GEMM per channel. Measured (32×64×56×56, 3×3 stride 1,
 * 1 thread, reorders counted), blocked vs plain: forward 5.8 vs 22.5 ms, backward-data 7.2
 * vs 40 ms, backward-weights 6.2 vs 42 ms; the 2×2 stride-2 average pool of DenseNet's
 * transitions (src/ops/pool.ts, 32×128×56×56) 7.4 vs 33 ms forward. A channel multiplier
 * (G = C, K = 2C) is no jit_dw case: GEMM either way, and the general rule picks plain,
 * which measured faster there. Winograd is for G = 1 only.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { CONV_FWD = 100, CONV_FWD_BIAS, CONV_BWD_DATA, CONV_BWD_W, CONV_BWD_W_BIAS };
enum { LAYOUT_BLOCKED = 0, LAYOUT_PLAIN = 1 };

/* The layout rule described above. */
static int conv_layout(int kind, dnnl_data_type_t type, int64_t C, int64_t H, int64_t W,
                       int64_t K, int64_t R, int64_t S, int64_t G, int64_t P, int64_t Q) {
  (void)type; /* the rule below was measured on fp32; bf16 keeps it until re-measured */
  const char *v = getenv("FBP_CONV_LAYOUT");
  if (v && strcmp(v, "plain") == 0) return LAYOUT_PLAIN;
  if (v && strcmp(v, "blocked") == 0) return LAYOUT_BLOCKED;
  if (G > 1 && G == C && G == K) return LAYOUT_BLOCKED; /* depthwise: jit_uni_dw */
  if (kind == CONV_BWD_DATA && C < 8) return LAYOUT_PLAIN;
  double flops = 2.0 * (double)(C / G) * K * R * S * P * Q;
  double reordered = (double)C * H * W + (double)K * P * Q;
  return flops < 128.0 * reordered ? LAYOUT_PLAIN : LAYOUT_BLOCKED;
}

/* The algorithm rule described above. */
static dnnl_alg_kind_t conv_algo(int kind, dnnl_data_type_t type, int layout, int64_t R,
                                 int64_t S, int64_t G, int64_t stride) {
  const char *v = getenv("FBP_CONV_ALGO");
  if ((v && strcmp(v, "direct") == 0) || type != dnnl_f32) return dnnl_convolution_direct;
  int eligible = (kind == CONV_FWD || kind == CONV_FWD_BIAS || kind == CONV_BWD_DATA) &&
                 layout == LAYOUT_BLOCKED && R == 3 && S == 3 && stride == 1 && G == 1;
  return eligible ? dnnl_convolution_winograd : dnnl_convolution_direct;
}

/* key: kind, layout, N, C, H, W, K, R, S, G, stride, pad, algorithm, input data type */
typedef struct {
  /* What the primitive is asked for. Inputs (src, wei, ddst) are in the key's input type
   * (bf16 or f32); outputs (dst, dsrc, dwei) and the bias are f32. */
  dnnl_memory_desc_t src, wei, bias, dst, ddst, dsrc, dwei;
  dnnl_memory_desc_t usrc, uwei, ubias, udst;      /* the caller's plain f32 layouts */
  dnnl_dims_t strides, pad;
  dnnl_alg_kind_t algo;
} conv_mds;

static int md4(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w,
               dnnl_data_type_t type, dnnl_format_tag_t tag) {
  dnnl_dims_t dims = {n, c, h, w};
  CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, type, tag));
  return 0;
}

/* A weight descriptor (K, C/G, R, S): 4-D oihw when G = 1, else 5-D goihw (G, K/G, C/G, R,
 * S), the same plain buffer. `any` leaves the layout to the primitive. */
static int md_wei(dnnl_memory_desc_t *md, int64_t K, int64_t C, int64_t R, int64_t S,
                  int64_t G, dnnl_data_type_t type, int any) {
  if (G == 1) return md4(md, K, C, R, S, type, any ? dnnl_format_tag_any : dnnl_oihw);
  dnnl_dims_t dims = {G, K / G, C / G, R, S};
  CHECK(dnnl_memory_desc_init_by_tag(md, 5, dims, type, any ? dnnl_format_tag_any : dnnl_goihw));
  return 0;
}

static int conv_make_mds(conv_mds *m, const int64_t *key) {
  int64_t N = key[2], C = key[3], H = key[4], W = key[5], K = key[6], R = key[7], S = key[8];
  int64_t G = key[9], stride = key[10], pad = key[11];
  int64_t P = fbp_out_size(H, R, stride, pad), Q = fbp_out_size(W, S, stride, pad);
  dnnl_data_type_t in = (dnnl_data_type_t)key[13], f32 = dnnl_f32;
  int plain = key[1] == LAYOUT_PLAIN;
  dnnl_format_tag_t act = plain ? dnnl_nchw : dnnl_format_tag_any;
  if (fbp_md_nchw(&m->usrc, N, C, H, W, dnnl_nchw) || md_wei(&m->uwei, K, C, R, S, G, f32, 0) ||
      fbp_md_1d(&m->ubias, K) || fbp_md_nchw(&m->udst, N, K, P, Q, dnnl_nchw) ||
      md4(&m->src, N, C, H, W, in, act) || md_wei(&m->wei, K, C, R, S, G, in, !plain) ||
      md4(&m->ddst, N, K, P, Q, in, act) || md4(&m->dst, N, K, P, Q, f32, act) ||
      md4(&m->dsrc, N, C, H, W, f32, act) || md_wei(&m->dwei, K, C, R, S, G, f32, !plain))
    return 1;
  m->bias = m->ubias;
  m->strides[0] = m->strides[1] = stride;
  m->pad[0] = m->pad[1] = pad;
  m->algo = (dnnl_alg_kind_t)key[12];
  return 0;
}

/* The forward primitive descriptor (also the hint the backward ones need) with the
 * key's algorithm; a Winograd request oneDNN cannot serve falls back to direct. */
static int conv_fwd_pd(dnnl_primitive_desc_t *pd, conv_mds *m, int bias, dnnl_engine_t eng) {
  for (;;) {
    dnnl_convolution_desc_t d;
    CHECK(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, m->algo, &m->src,
                                             &m->wei, bias ? &m->bias : NULL, &m->dst,
                                             m->strides, m->pad, m->pad));
    dnnl_status_t st = dnnl_primitive_desc_create(pd, &d, NULL, eng, NULL);
    if (st == dnnl_unimplemented && m->algo == dnnl_convolution_winograd) {
      m->algo = dnnl_convolution_direct;
      continue;
    }
    CHECK(st);
    return 0;
  }
}

static int build_fwd(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  conv_mds m;
  dnnl_primitive_desc_t pd;
  int bias = key[0] == CONV_FWD_BIAS;
  if (conv_make_mds(&m, key) || conv_fwd_pd(&pd, &m, bias, eng)) return 1;
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DST, &m.udst, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &m.usrc, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_WEIGHTS, &m.uwei, 0) ||
           (bias && fbp_prim_add_arg(p, pd, eng, DNNL_ARG_BIAS, &m.ubias, 0));
  dnnl_status_t st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

static int build_bwd_data(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  conv_mds m;
  dnnl_primitive_desc_t hint, pd;
  dnnl_convolution_desc_t d;
  if (conv_make_mds(&m, key)) return 1;
  dnnl_status_t st;
  for (;;) { /* m.algo is what the forward hint settled on; Winograd may still fall back */
    if (conv_fwd_pd(&hint, &m, 0, eng)) return 1;
    st = dnnl_convolution_backward_data_desc_init(&d, m.algo, &m.dsrc, &m.wei, &m.ddst,
                                                  m.strides, m.pad, m.pad);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &d, NULL, eng, hint);
    dnnl_primitive_desc_destroy(hint);
    if (st != dnnl_unimplemented || m.algo == dnnl_convolution_direct) break;
    m.algo = dnnl_convolution_direct;
  }
  CHECK(st);
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_SRC, &m.usrc, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_DST, &m.udst, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_WEIGHTS, &m.uwei, 0);
  st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

static int build_bwd_weights(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  conv_mds m;
  dnnl_primitive_desc_t hint, pd;
  dnnl_convolution_desc_t d;
  int bias = key[0] == CONV_BWD_W_BIAS;
  if (conv_make_mds(&m, key) || conv_fwd_pd(&hint, &m, bias, eng)) return 1;
  dnnl_status_t st = dnnl_convolution_backward_weights_desc_init(
      &d, dnnl_convolution_direct, &m.src, &m.dwei, bias ? &m.bias : NULL, &m.ddst, m.strides,
      m.pad, m.pad);
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &d, NULL, eng, hint);
  dnnl_primitive_desc_destroy(hint);
  CHECK(st);
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_WEIGHTS, &m.uwei, 1) ||
           (bias && fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_BIAS, &m.ubias, 1)) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_DST, &m.udst, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &m.usrc, 0);
  st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

/* Fills the cache key of a convolution (sizes already checked by abi.inc). */
static void conv_key(int64_t key[FBP_KEY_LEN], int kind, int N, int C, int H, int W, int K,
                     int R, int S, int G, int stride, int pad) {
  int64_t P = fbp_out_size(H, R, stride, pad), Q = fbp_out_size(W, S, stride, pad);
  memset(key, 0, FBP_KEY_LEN * sizeof key[0]);
  dnnl_data_type_t type = fbp_compute_type();
  int layout = conv_layout(kind, type, C, H, W, K, R, S, G, P, Q);
  int64_t k[] = {kind, layout, N, C, H, W, K, R, S, G, stride, pad,
                 conv_algo(kind, type, layout, R, S, G, stride), type};
  _Static_assert(sizeof k / sizeof k[0] <= FBP_KEY_LEN, "conv key longer than FBP_KEY_LEN");
  memcpy(key, k, sizeof k);
}

int impl_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int H, int W, int K, int R, int S, int G, int stride,
                        int pad) {
  int64_t key[FBP_KEY_LEN];
  conv_key(key, bias ? CONV_FWD_BIAS : CONV_FWD, N, C, H, W, K, R, S, G, stride, pad);
  void *ptrs[] = {out, (void *)inp, (void *)weight, (void *)bias};
  return fbp_prim_call(key, build_fwd, ptrs);
}

int impl_conv2d_backward_data(float *dinp, const float *dout, const float *weight, int N, int C,
                              int H, int W, int K, int R, int S, int G, int stride, int pad) {
  int64_t key[FBP_KEY_LEN];
  conv_key(key, CONV_BWD_DATA, N, C, H, W, K, R, S, G, stride, pad);
  void *ptrs[] = {dinp, (void *)dout, (void *)weight};
  return fbp_prim_call(key, build_bwd_data, ptrs);
}

int impl_conv2d_backward_weights(float *dweight, float *dbias, const float *dout,
                                 const float *inp, int N, int C, int H, int W, int K, int R,
                                 int S, int G, int stride, int pad) {
  int64_t key[FBP_KEY_LEN];
  conv_key(key, dbias ? CONV_BWD_W_BIAS : CONV_BWD_W, N, C, H, W, K, R, S, G, stride, pad);
  void *with_bias[] = {dweight, dbias, (void *)dout, (void *)inp};
  void *no_bias[] = {dweight, (void *)dout, (void *)inp};
  return fbp_prim_call(key, build_bwd_weights, dbias ? with_bias : no_bias);
}
