/*
 * linear.cu — fully connected layer forward/backward as cublasSgemm calls.
 *
 * cuBLAS is column-major; a row-major (R, C) matrix is the column-major (C, R) matrix, so
 * each row-major product below is written as the transposed column-major one:
 *   out  (N,O) = inp (N,I) · W (O,I)^T  ⇔  out^T  = W · inp^T       → gemm(T, N, O, N, I)
 *   dinp (N,I) = dout (N,O) · W (O,I)   ⇔  dinp^T = W^T · dout^T    → gemm(N, N, I, N, O)
 *   dW   (O,I) = dout^T (O,N) · inp (N,I) ⇔ dW^T  = inp^T · dout    → gemm(N, T, I, O, N)
 * Bias is written into `out` first and the GEMM accumulates (beta = 1); the bias gradient
 * is a column sum of dout in double (fbp_sum_to). TF32 tensor cores are used only under
 * --precision tf32 (the handle's math mode, which fbp_set_math in runtime.cu sets).
 */
#include "internal.cuh"

static __global__ void bias_rows_kernel(float *__restrict__ out, const float *__restrict__ bias,
                                        int64_t n, int O) {
  GRID_STRIDE(i, n) out[i] = bias[i % O];
}

int impl_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int I, int O) {
  float one = 1.0f, beta = 0.0f;
  if (bias) {
    int64_t numel = (int64_t)N * O;
    bias_rows_kernel<<<fbp_grid(numel, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, bias,
                                                                                  numel, O);
    LAUNCH_CHECK("bias_rows_kernel");
    beta = 1.0f;
  }
  CUBLAS_CHECK(fbp_dl.cublasSgemm(fbp_cublas(), CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, &one, weight,
                                  I, inp, I, &beta, out, O));
  return 0;
}

int impl_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int I, int O) {
  float one = 1.0f, zero = 0.0f;
  cublasHandle_t h = fbp_cublas();
  if (dinp)
    CUBLAS_CHECK(fbp_dl.cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, &one, weight, I, dout,
                                    O, &zero, dinp, I));
  CUBLAS_CHECK(fbp_dl.cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, &one, inp, I, dout, O,
                                  &zero, dweight, I));
  if (dbias) {
    int is[4] = {1, 1, N, O}, os[4] = {1, 1, 1, O};
    return fbp_sum_to(dbias, dout, is, os);
  }
  return 0;
}
