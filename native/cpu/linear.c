/*
 * linear.c — fully connected layer forward/backward as GEMMs.
 *
 * fp32: dnnl_sgemm, oneDNN's JIT-dispatched, threaded row-major GEMM that ships with the
 * library we already link, so no BLAS dependency is needed. Bias is written into `out`
 * first and the GEMM then accumulates (beta = 1).
 *
 * bf16 (fbp_precision() == FBP_BF16): oneDNN 2.6 exports no bf16 GEMM function, so each
 * product is a cached matmul primitive (prim.c) whose inputs are bf16 — the cache entry's
 * reorders convert (and transpose) the caller's float32 buffers — with float32
 * accumulation and a float32 output, as for the convolutions (conv.c).
 *
 * Bias gradients are column sums of the float32 dout with double accumulators, because
 * the batch dimension can be long.
 */
#include <string.h>

#include "internal.h"

enum { LIN_FWD = 200, LIN_FWD_BIAS, LIN_BWD_DATA, LIN_BWD_W };

static int md2(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, dnnl_data_type_t type,
               dnnl_format_tag_t tag) {
  dnnl_dims_t dims = {rows, cols};
  CHECK(dnnl_memory_desc_init_by_tag(md, 2, dims, type, tag));
  return 0;
}

/* key: kind, N, I, O, input data type. Builds dst (M,Nc) = src (M,Kc) · wei (Kc,Nc) with
 * the caller's layouts per kind (row-major buffers; `ba` reads one transposed). */
static int build_matmul(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  int kind = (int)key[0];
  int64_t N = key[1], I = key[2], O = key[3];
  dnnl_data_type_t in = (dnnl_data_type_t)key[4], f32 = dnnl_f32;
  dnnl_memory_desc_t usrc, uwei, udst, ubias, src, wei, dst;
  int64_t M, Kc, Nc;
  dnnl_format_tag_t src_tag = dnnl_ab, wei_tag = dnnl_ab;
  if (kind == LIN_FWD || kind == LIN_FWD_BIAS) { /* out (N,O) = inp (N,I) · weight (O,I)^T */
    M = N, Kc = I, Nc = O, wei_tag = dnnl_ba;
  } else if (kind == LIN_BWD_DATA) { /* dinp (N,I) = dout (N,O) · weight (O,I) */
    M = N, Kc = O, Nc = I;
  } else { /* dweight (O,I) = dout (N,O)^T · inp (N,I) */
    M = O, Kc = N, Nc = I, src_tag = dnnl_ba;
  }
  if (md2(&usrc, M, Kc, f32, src_tag) || md2(&uwei, Kc, Nc, f32, wei_tag) ||
      md2(&udst, M, Nc, f32, dnnl_ab) || md2(&ubias, 1, Nc, f32, dnnl_ab) ||
      md2(&src, M, Kc, in, dnnl_ab) || md2(&wei, Kc, Nc, in, dnnl_format_tag_any) ||
      md2(&dst, M, Nc, f32, dnnl_ab))
    return 1;
  int bias = kind == LIN_FWD_BIAS;
  dnnl_matmul_desc_t d;
  dnnl_primitive_desc_t pd;
  CHECK(dnnl_matmul_desc_init(&d, &src, &wei, bias ? &ubias : NULL, &dst));
  CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, eng, NULL));
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DST, &udst, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &usrc, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_WEIGHTS, &uwei, 0) ||
           (bias && fbp_prim_add_arg(p, pd, eng, DNNL_ARG_BIAS, &ubias, 0));
  dnnl_status_t st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

/* Runs the cached matmul of `kind`: ptrs are dst, src, weights[, bias] as build_matmul adds them. */
static int matmul_call(int kind, int N, int I, int O, void *const *ptrs) {
  int64_t key[FBP_KEY_LEN];
  memset(key, 0, sizeof key);
  int64_t k[] = {kind, N, I, O, fbp_compute_type()};
  memcpy(key, k, sizeof k);
  return fbp_prim_call(key, build_matmul, ptrs);
}

int impl_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int I, int O) {
  if (fbp_precision() == FBP_BF16) {
    void *ptrs[] = {out, (void *)inp, (void *)weight, (void *)bias};
    return matmul_call(bias ? LIN_FWD_BIAS : LIN_FWD, N, I, O, ptrs);
  }
  float beta = 0.0f;
  if (bias) {
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < O; o++) out[n * O + o] = bias[o];
    beta = 1.0f;
  }
  /* out (N,O) = inp (N,I) · weight (O,I)^T */
  CHECK(dnnl_sgemm('N', 'T', N, O, I, 1.0f, inp, I, weight, I, beta, out, O));
  return 0;
}

int impl_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int I, int O) {
  if (fbp_precision() == FBP_BF16) {
    void *data[] = {dinp, (void *)dout, (void *)weight};
    void *weights[] = {dweight, (void *)dout, (void *)inp};
    if (dinp && matmul_call(LIN_BWD_DATA, N, I, O, data)) return 1;
    if (matmul_call(LIN_BWD_W, N, I, O, weights)) return 1;
  } else {
    /* dinp (N,I) = dout (N,O) · weight (O,I) */
    if (dinp) CHECK(dnnl_sgemm('N', 'N', N, I, O, 1.0f, dout, O, weight, I, 0.0f, dinp, I));
    /* dweight (O,I) = dout (N,O)^T · inp (N,I) */
    CHECK(dnnl_sgemm('T', 'N', O, I, N, 1.0f, dout, O, inp, I, 0.0f, dweight, I));
  }
  if (dbias) {
    FBP_PAR_FOR((int64_t)N * O > FBP_PAR_MIN,
      for (int64_t o = 0; o < O; o++) {
        double sum = 0;
        for (int64_t n = 0; n < N; n++) sum += dout[n * O + o];
        dbias[o] = (float)sum;
      });
  }
  return 0;
}
