/*
 * batchnorm.c — batch normalization (training forward with batch statistics, inference
 * forward with given statistics, backward) over oneDNN primitives on plain NCHW.
 *
 * Why: oneDNN's batch norm computes the statistics and the normalisation in one fused
 * pass per channel and is cached per shape like the convolutions. The ABI's var is the
 * biased variance, which is what oneDNN reports and uses. Scale and shift are separate
 * 1-D tensors (the 2.x `dnnl_use_scale | dnnl_use_shift` flags), matching the ABI's
 * weight/bias pointers without packing them. The backward primitive in oneDNN 2.6 fails
 * with dnnl_invalid_arguments unless DNNL_ARG_SHIFT is passed even though the gradient
 * does not depend on it; the ABI has no bias there, so the cache entry owns a zero shift.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { BN_TRAIN = 200, BN_INFER, BN_BWD };

/* key: kind, N, C, H, W, eps (float bits) */
static float key_eps(const int64_t *key) {
  uint32_t bits = (uint32_t)key[5];
  float eps;
  memcpy(&eps, &bits, sizeof eps);
  return eps;
}

static int bn_fwd_pd(dnnl_primitive_desc_t *pd, const dnnl_memory_desc_t *data, float eps,
                     int train, dnnl_engine_t eng) {
  dnnl_batch_normalization_desc_t d;
  unsigned flags = dnnl_use_scale | dnnl_use_shift | (train ? 0u : dnnl_use_global_stats);
  CHECK(dnnl_batch_normalization_forward_desc_init(
      &d, train ? dnnl_forward_training : dnnl_forward_inference, data, eps, flags));
  CHECK(dnnl_primitive_desc_create(pd, &d, NULL, eng, NULL));
  return 0;
}

static int finish(fbp_prim *p, dnnl_primitive_desc_t pd, int rc) {
  dnnl_status_t st = rc ? dnnl_success : dnnl_primitive_create(&p->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (rc) return 1;
  CHECK(st);
  return 0;
}

static int build_fwd(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  dnnl_memory_desc_t data, vec;
  dnnl_primitive_desc_t pd;
  int train = key[0] == BN_TRAIN;
  if (fbp_md_nchw(&data, key[1], key[2], key[3], key[4], dnnl_nchw) ||
      fbp_md_1d(&vec, key[2]) || bn_fwd_pd(&pd, &data, key_eps(key), train, eng))
    return 1;
  /* Argument order = the pointer order of the callers below. */
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DST, &data, 1);
  if (train)
    rc = rc || fbp_prim_add_arg(p, pd, eng, DNNL_ARG_MEAN, &vec, 1) ||
         fbp_prim_add_arg(p, pd, eng, DNNL_ARG_VARIANCE, &vec, 1);
  rc = rc || fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &data, 0) ||
       fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SCALE, &vec, 0) ||
       fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SHIFT, &vec, 0);
  if (!train)
    rc = rc || fbp_prim_add_arg(p, pd, eng, DNNL_ARG_MEAN, &vec, 0) ||
         fbp_prim_add_arg(p, pd, eng, DNNL_ARG_VARIANCE, &vec, 0);
  return finish(p, pd, rc);
}

static int build_bwd(fbp_prim *p, const int64_t *key, dnnl_engine_t eng) {
  dnnl_memory_desc_t data, vec;
  dnnl_primitive_desc_t hint, pd;
  dnnl_batch_normalization_desc_t d;
  float eps = key_eps(key);
  if (fbp_md_nchw(&data, key[1], key[2], key[3], key[4], dnnl_nchw) ||
      fbp_md_1d(&vec, key[2]) || bn_fwd_pd(&hint, &data, eps, 1, eng))
    return 1;
  dnnl_status_t st = dnnl_batch_normalization_backward_desc_init(
      &d, dnnl_backward, &data, &data, eps, dnnl_use_scale | dnnl_use_shift);
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &d, NULL, eng, hint);
  dnnl_primitive_desc_destroy(hint);
  CHECK(st);
  p->owned = calloc((size_t)key[2], sizeof(float)); /* the zero shift (see above) */
  if (p->owned == NULL) {
    dnnl_primitive_desc_destroy(pd);
    FAIL("out of memory allocating the batch-norm shift");
  }
  int rc = fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_SRC, &data, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_SCALE, &vec, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_SHIFT, &vec, 1) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_DIFF_DST, &data, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SRC, &data, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_MEAN, &vec, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_VARIANCE, &vec, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SCALE, &vec, 0) ||
           fbp_prim_add_arg(p, pd, eng, DNNL_ARG_SHIFT, &vec, 0);
  return finish(p, pd, rc);
}

static int bn_key(int64_t key[FBP_KEY_LEN], int kind, const char *fn, int N, int C, int H,
                  int W, float eps) {
  const char *names[] = {"N", "C", "H", "W"};
  int vals[] = {N, C, H, W};
  for (int i = 0; i < 4; i++)
    if (vals[i] < 1) FAIL("%s: size '%s' must be >= 1, got %d", fn, names[i], vals[i]);
  if (!(eps >= 0.0f)) FAIL("%s: eps must be >= 0, got %g", fn, (double)eps);
  int64_t numel;
  REQUIRE_NUMEL(fn, "inp", numel, N, C, H, W);
  uint32_t bits;
  memcpy(&bits, &eps, sizeof bits);
  memset(key, 0, FBP_KEY_LEN * sizeof key[0]);
  int64_t k[] = {kind, N, C, H, W, bits};
  memcpy(key, k, sizeof k);
  return 0;
}

int batchnorm_forward_train(float *out, float *mean, float *var, const float *inp,
                            const float *weight, const float *bias, int N, int C, int H,
                            int W, float eps) {
  REQUIRE_PTR(out);
  REQUIRE_PTR(mean);
  REQUIRE_PTR(var);
  REQUIRE_PTR(inp);
  REQUIRE_PTR(weight);
  REQUIRE_PTR(bias);
  int64_t key[FBP_KEY_LEN];
  if (bn_key(key, BN_TRAIN, __func__, N, C, H, W, eps)) return 1;
  void *ptrs[] = {out, mean, var, (void *)inp, (void *)weight, (void *)bias};
  return fbp_prim_call(key, build_fwd, ptrs);
}

int batchnorm_forward_infer(float *out, const float *inp, const float *weight,
                            const float *bias, const float *mean, const float *var, int N,
                            int C, int H, int W, float eps) {
  REQUIRE_PTR(out);
  REQUIRE_PTR(inp);
  REQUIRE_PTR(weight);
  REQUIRE_PTR(bias);
  REQUIRE_PTR(mean);
  REQUIRE_PTR(var);
  int64_t key[FBP_KEY_LEN];
  if (bn_key(key, BN_INFER, __func__, N, C, H, W, eps)) return 1;
  void *ptrs[] = {out,          (void *)inp,  (void *)weight,
                  (void *)bias, (void *)mean, (void *)var};
  return fbp_prim_call(key, build_fwd, ptrs);
}

int batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                       const float *inp, const float *mean, const float *var,
                       const float *weight, int N, int C, int H, int W, float eps) {
  REQUIRE_PTR(dinp);
  REQUIRE_PTR(dweight);
  REQUIRE_PTR(dbias);
  REQUIRE_PTR(dout);
  REQUIRE_PTR(inp);
  REQUIRE_PTR(mean);
  REQUIRE_PTR(var);
  REQUIRE_PTR(weight);
  int64_t key[FBP_KEY_LEN];
  if (bn_key(key, BN_BWD, __func__, N, C, H, W, eps)) return 1;
  fbp_lock();
  fbp_prim *p;
  int rc = fbp_prim_get(key, build_bwd, &p);
  if (rc == 0) {
    void *ptrs[] = {dinp,         dweight,     dbias,          (void *)dout, (void *)inp,
                    (void *)mean, (void *)var, (void *)weight, p->owned};
    rc = fbp_prim_run(p, ptrs);
  }
  fbp_unlock();
  return rc;
}
