/*
 * linear.c — fully connected layer forward/backward as GEMMs through dnnl_sgemm.
 *
 * Why: oneDNN's sgemm is a JIT-dispatched, threaded row-major GEMM that ships with the
 * library we already link, so no BLAS dependency is needed. Bias is written into `out`
 * first and the GEMM then accumulates (beta = 1); bias gradients are column sums with
 * double accumulators, because the batch dimension can be long.
 */
#include "internal.h"

int impl_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int I, int O) {
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
  /* dinp (N,I) = dout (N,O) · weight (O,I) */
  if (dinp) CHECK(dnnl_sgemm('N', 'N', N, I, O, 1.0f, dout, O, weight, I, 0.0f, dinp, I));
  /* dweight (O,I) = dout (N,O)^T · inp (N,I) */
  CHECK(dnnl_sgemm('T', 'N', O, I, N, 1.0f, dout, O, inp, I, 0.0f, dweight, I));
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
