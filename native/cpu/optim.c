/*
 * optim.c — the AdamW update (decoupled weight decay, PyTorch semantics).
 *
 * Why a fused kernel: one pass over param, m, v and grad per tensor instead of a chain
 * of elementwise ops, since the optimizer touches every parameter every step. The bias
 * corrections are computed once in double; the per-element arithmetic stays float32.
 */
#include <math.h>

#include "internal.h"

int impl_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int step) {
  float decay = (float)(1.0 - (double)lr * weight_decay);
  float inv_c1 = (float)(1.0 / (1.0 - pow(beta1, step)));
  float inv_c2 = (float)(1.0 / (1.0 - pow(beta2, step)));
  float b1c = 1.0f - beta1, b2c = 1.0f - beta2;
  FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
    for (int64_t i = 0; i < n; i++) {
      float g = grad[i];
      float mi = beta1 * m[i] + b1c * g;
      float vi = beta2 * v[i] + b2c * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] * decay - lr * (mi * inv_c1) / (sqrtf(vi * inv_c2) + eps);
    });
  return 0;
}
