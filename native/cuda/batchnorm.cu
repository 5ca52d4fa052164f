/*
 * batchnorm.cu — batch normalization (training forward with batch statistics, inference
 * forward with given statistics, backward) through cuDNN's spatial batch norm on NCHW.
 *
 * Why this way: cuDNN computes the statistics and the normalisation in fused passes per
 * channel. Its training forward saves the batch mean and the inverse standard deviation
 * 1/sqrt(var + eps); the ABI wants the biased variance itself, so a small kernel converts
 * (var = 1/invstd² − eps, clamped at 0; relative error ~1e-7 of var + eps). The running
 * statistics are the caller's business (the TS op updates them), so cuDNN's are NULL.
 * The backward takes the ABI's mean and var and passes cuDNN the inverse standard
 * deviation it expects as its saved statistic. Descriptors are cached per shape.
 */
#include <math.h>

#include <map>
#include <mutex>
#include <tuple>

#include "internal.cuh"

struct BnDesc {
  cudnnTensorDescriptor_t x, bn;
};

static std::mutex g_bn_mu;
static std::map<std::tuple<int, int, int, int>, BnDesc> g_bn_cache;

/* The descriptors of shape (N, C, H, W); `fn` names the caller in the error of a tensor
 * too large for cuDNN's 4-D descriptors, which count elements in int. */
static int bn_desc(BnDesc *out, const char *fn, int N, int C, int H, int W) {
  int64_t numel = (int64_t)N * C * H * W;
  if (numel > INT32_MAX)
    FAIL("%s: inp has %lld elements; cuDNN's 4-D descriptors take at most %d", fn,
         (long long)numel, INT32_MAX);
  std::lock_guard<std::mutex> lock(g_bn_mu);
  auto key = std::make_tuple(N, C, H, W);
  auto it = g_bn_cache.find(key);
  if (it != g_bn_cache.end()) {
    *out = it->second;
    return 0;
  }
  BnDesc d;
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&d.x));
  CUDNN_CHECK(fbp_dl.cudnnCreateTensorDescriptor(&d.bn));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C,
                                                H, W));
  CUDNN_CHECK(fbp_dl.cudnnSetTensor4dDescriptor(d.bn, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, C,
                                                1, 1));
  g_bn_cache[key] = d;
  *out = d;
  return 0;
}

/* var[c] = max(0, 1/invstd[c]² − eps) */
static __global__ void var_from_invstd_kernel(float *__restrict__ var,
                                              const float *__restrict__ invstd, int C,
                                              float eps) {
  GRID_STRIDE(c, C) {
    float s = invstd[c];
    float v = 1.0f / (s * s) - eps;
    var[c] = v > 0.0f ? v : 0.0f;
  }
}

/* invstd[c] = 1/sqrt(var[c] + eps) */
static __global__ void invstd_kernel(float *__restrict__ invstd, const float *__restrict__ var,
                                     int C, float eps) {
  GRID_STRIDE(c, C) invstd[c] = 1.0f / sqrtf(var[c] + eps);
}

int impl_batchnorm_forward_train(float *out, float *mean, float *var, const float *inp,
                                 const float *weight, const float *bias, int N, int C, int H,
                                 int W, float eps) {
  BnDesc d;
  if (bn_desc(&d, "batchnorm_forward_train", N, C, H, W)) return 1;
  float *invstd = (float *)fbp_scratch((size_t)C * sizeof(float), "batchnorm_forward_train");
  if (!invstd) return 1;
  float one = 1.0f, zero = 0.0f;
  cudnnStatus_t st = fbp_dl.cudnnBatchNormalizationForwardTraining(
      fbp_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, inp, d.x, out, d.bn, weight, bias,
      1.0, NULL, NULL, (double)eps, mean, invstd);
  cudaError_t e = cudaSuccess;
  if (st == CUDNN_STATUS_SUCCESS) {
    var_from_invstd_kernel<<<fbp_grid(C, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(var, invstd,
                                                                                    C, eps);
    e = cudaGetLastError();
  }
  fbp_scratch_free(invstd);
  if (st != CUDNN_STATUS_SUCCESS)
    return fbp_cudnn_error(__FILE__, __LINE__, "cudnnBatchNormalizationForwardTraining", st);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "var_from_invstd_kernel", e);
  return 0;
}

int impl_batchnorm_forward_infer(float *out, const float *inp, const float *weight,
                                 const float *bias, const float *mean, const float *var, int N,
                                 int C, int H, int W, float eps) {
  BnDesc d;
  if (bn_desc(&d, "batchnorm_forward_infer", N, C, H, W)) return 1;
  float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(fbp_dl.cudnnBatchNormalizationForwardInference(
      fbp_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, inp, d.x, out, d.bn, weight, bias,
      mean, var, (double)eps));
  return 0;
}

int impl_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *mean, const float *var,
                            const float *weight, int N, int C, int H, int W, float eps) {
  BnDesc d;
  if (bn_desc(&d, "batchnorm_backward", N, C, H, W)) return 1;
  float *invstd = (float *)fbp_scratch((size_t)C * sizeof(float), "batchnorm_backward");
  if (!invstd) return 1;
  invstd_kernel<<<fbp_grid(C, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(invstd, var, C, eps);
  cudaError_t e = cudaGetLastError();
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  float one = 1.0f, zero = 0.0f;
  if (e == cudaSuccess)
    st = fbp_dl.cudnnBatchNormalizationBackward(fbp_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one,
                                                &zero, &one, &zero, d.x, inp, d.x, dout, d.x,
                                                dinp, d.bn, weight, dweight, dbias, (double)eps,
                                                mean, invstd);
  fbp_scratch_free(invstd);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "invstd_kernel", e);
  if (st != CUDNN_STATUS_SUCCESS)
    return fbp_cudnn_error(__FILE__, __LINE__, "cudnnBatchNormalizationBackward", st);
  return 0;
}
