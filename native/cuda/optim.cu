/*
 * optim.cu — the AdamW update (decoupled weight decay, PyTorch semantics) as one fused
 * pass over param, m, v and grad. The bias corrections are computed once on the host in
 * double and the per-element arithmetic is the cpu backend's float expression.
 */
#include <math.h>

#include "internal.cuh"

static __global__ void adamw_kernel(float *__restrict__ param, float *__restrict__ m,
                                    float *__restrict__ v, const float *__restrict__ grad,
                                    int64_t n, float lr, float beta1, float beta2, float eps,
                                    float decay, float inv_c1, float inv_c2) {
  float b1c = 1.0f - beta1, b2c = 1.0f - beta2;
  GRID_STRIDE(i, n) {
    float g = grad[i];
    float mi = beta1 * m[i] + b1c * g;
    float vi = beta2 * v[i] + b2c * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - lr * (mi * inv_c1) / (sqrtf(vi * inv_c2) + eps);
  }
}

int impl_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int step) {
  float decay = (float)(1.0 - (double)lr * weight_decay);
  float inv_c1 = (float)(1.0 / (1.0 - pow(beta1, step)));
  float inv_c2 = (float)(1.0 / (1.0 - pow(beta2, step)));
  adamw_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(
      param, m, v, grad, n, lr, beta1, beta2, eps, decay, inv_c1, inv_c2);
  LAUNCH_CHECK("adamw_kernel");
  return 0;
}
