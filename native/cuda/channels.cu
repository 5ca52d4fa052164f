/*
 * channels.cu — kernels over the channel dimension of (N, C, HW) tensors as CUDA kernels:
 * the strided channel copy behind channel concat, split and shuffle, and LayerNorm over
 * the channels of each position (ConvNeXt's LayerNorm2d).
 *
 * channel_copy is one grid-stride pass over the N·cn·HW copied elements.
 *
 * LayerNorm: one thread per position (n, i) walks its C values, which lie HW apart, so the
 * threads of a warp read consecutive positions of one channel (coalesced). The statistics
 * are float and two-pass (the mean, then the mean of the squared deviations), in channel
 * order, as the cpu loops compute them. The weight and bias gradients are sums over N·HW
 * terms: one block per channel reduces them in double with block_sum, in an order fixed by
 * the sizes, so they repeat bit for bit without atomics. Indices are int when
 * fbp_index32_ok says every index formed fits, else int64_t.
 */
#include <math.h>

#include "internal.cuh"

/* ---- channel_copy --------------------------------------------------------------------- */

template <typename I, bool ACC>
static __global__ void channel_copy_kernel(float *__restrict__ out,
                                           const float *__restrict__ inp, I total, I Co, I Ci,
                                           I HW, I out_off, I out_step, I in_off, I in_step,
                                           I cn) {
  for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < total;
       t += (I)gridDim.x * blockDim.x) {
    I i = t % HW, r = t / HW;
    I j = r % cn, n = r / cn;
    I o = (n * Co + out_off + j * out_step) * HW + i;
    float v = inp[(n * Ci + in_off + j * in_step) * HW + i];
    if (ACC) out[o] += v;
    else out[o] = v;
  }
}

template <typename I>
static void launch_channel_copy(unsigned g, float *out, const float *inp, int64_t total,
                                int Co, int Ci, int HW, int64_t out_off, int out_step,
                                int64_t in_off, int in_step, int64_t cn, int accumulate) {
  cudaStream_t s = fbp_stream();
  if (accumulate)
    channel_copy_kernel<I, true><<<g, FBP_BLOCK, 0, s>>>(out, inp, (I)total, (I)Co, (I)Ci,
                                                         (I)HW, (I)out_off, (I)out_step,
                                                         (I)in_off, (I)in_step, (I)cn);
  else
    channel_copy_kernel<I, false><<<g, FBP_BLOCK, 0, s>>>(out, inp, (I)total, (I)Co, (I)Ci,
                                                          (I)HW, (I)out_off, (I)out_step,
                                                          (I)in_off, (I)in_step, (I)cn);
}

int impl_channel_copy(float *out, const float *inp, int N, int Co, int Ci, int HW,
                      int64_t out_off, int out_step, int64_t in_off, int in_step,
                      int64_t cn, int accumulate) {
  int64_t total = (int64_t)N * cn * HW;
  int64_t nout = (int64_t)N * Co * HW, ninp = (int64_t)N * Ci * HW;
  int64_t largest = nout > ninp ? nout : ninp;
  unsigned g = fbp_grid(total, FBP_BLOCK);
  if (fbp_index32_ok(largest, g, FBP_BLOCK))
    launch_channel_copy<int>(g, out, inp, total, Co, Ci, HW, out_off, out_step, in_off,
                             in_step, cn, accumulate);
  else
    launch_channel_copy<int64_t>(g, out, inp, total, Co, Ci, HW, out_off, out_step, in_off,
                                 in_step, cn, accumulate);
  LAUNCH_CHECK("channel_copy_kernel");
  return 0;
}

/* ---- layernorm over channels ---------------------------------------------------------- */

template <typename I>
static __global__ void ln_forward_kernel(float *__restrict__ out, float *__restrict__ mean,
                                         float *__restrict__ rstd,
                                         const float *__restrict__ inp,
                                         const float *__restrict__ weight,
                                         const float *__restrict__ bias, I P, I C, I HW,
                                         float eps) {
  float invC = 1.0f / (float)C;
  for (I p = (I)blockIdx.x * blockDim.x + threadIdx.x; p < P; p += (I)gridDim.x * blockDim.x) {
    I n = p / HW, i = p - n * HW;
    const float *x = inp + n * C * HW + i;
    float *o = out + n * C * HW + i;
    float acc = 0.0f;
    for (I c = 0; c < C; c++) acc += x[c * HW];
    float mu = acc * invC;
    acc = 0.0f;
    for (I c = 0; c < C; c++) {
      float d = x[c * HW] - mu;
      acc += d * d;
    }
    float r = 1.0f / sqrtf(acc * invC + eps);
    mean[p] = mu;
    rstd[p] = r;
    for (I c = 0; c < C; c++) o[c * HW] = (x[c * HW] - mu) * r * weight[c] + bias[c];
  }
}

/* dinp = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)), g = dout·weight, per position. */
template <typename I>
static __global__ void ln_backward_data_kernel(float *__restrict__ dinp,
                                               const float *__restrict__ dout,
                                               const float *__restrict__ inp,
                                               const float *__restrict__ mean,
                                               const float *__restrict__ rstd,
                                               const float *__restrict__ weight, I P, I C,
                                               I HW) {
  float invC = 1.0f / (float)C;
  for (I p = (I)blockIdx.x * blockDim.x + threadIdx.x; p < P; p += (I)gridDim.x * blockDim.x) {
    I n = p / HW, i = p - n * HW, base = n * C * HW + i;
    const float *x = inp + base, *dy = dout + base;
    float *dx = dinp + base;
    float m = mean[p], r = rstd[p];
    float sg = 0.0f, sgx = 0.0f;
    for (I c = 0; c < C; c++) {
      float g = dy[c * HW] * weight[c];
      sg += g;
      sgx += g * ((x[c * HW] - m) * r);
    }
    sg *= invC;
    sgx *= invC;
    for (I c = 0; c < C; c++) {
      float xhat = (x[c * HW] - m) * r;
      dx[c * HW] = r * (dy[c * HW] * weight[c] - sg - xhat * sgx);
    }
  }
}

/* Block c: dweight[c] = Σ dout·x̂ and dbias[c] = Σ dout over the N·HW positions. */
template <typename I>
static __global__ void ln_backward_params_kernel(float *__restrict__ dweight,
                                                 float *__restrict__ dbias,
                                                 const float *__restrict__ dout,
                                                 const float *__restrict__ inp,
                                                 const float *__restrict__ mean,
                                                 const float *__restrict__ rstd, I C, I HW,
                                                 I P) {
  for (I c = blockIdx.x; c < C; c += gridDim.x) {
    double sw = 0.0, sb = 0.0;
    for (I p = threadIdx.x; p < P; p += (I)blockDim.x) {
      I n = p / HW, off = (n * C + c) * HW + (p - n * HW);
      float g = dout[off];
      sw += (double)g * (double)((inp[off] - mean[p]) * rstd[p]);
      sb += g;
    }
    sw = block_sum(sw);
    sb = block_sum(sb);
    if (threadIdx.x == 0) {
      dweight[c] = (float)sw;
      dbias[c] = (float)sb;
    }
  }
}

int impl_layernorm_channels_forward(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, int N, int C,
                                    int HW, float eps) {
  int64_t P = (int64_t)N * HW, total = P * C;
  unsigned g = fbp_grid(P, FBP_BLOCK);
  cudaStream_t s = fbp_stream();
  if (fbp_index32_ok(total, g, FBP_BLOCK))
    ln_forward_kernel<int><<<g, FBP_BLOCK, 0, s>>>(out, mean, rstd, inp, weight, bias, (int)P,
                                                   C, HW, eps);
  else
    ln_forward_kernel<int64_t><<<g, FBP_BLOCK, 0, s>>>(out, mean, rstd, inp, weight, bias, P,
                                                       C, HW, eps);
  LAUNCH_CHECK("ln_forward_kernel");
  return 0;
}

int impl_layernorm_channels_backward(float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *mean,
                                     const float *rstd, const float *weight, int N, int C,
                                     int HW) {
  int64_t P = (int64_t)N * HW, total = P * C;
  unsigned g = fbp_grid(P, FBP_BLOCK);
  unsigned gc = (unsigned)(C < FBP_MAX_GRID ? C : FBP_MAX_GRID);
  cudaStream_t s = fbp_stream();
  /* int when the data pass's indices and the reduction's (offsets below N·C·HW, one
   * block stride past N·HW, one grid stride past C) fit. */
  if (fbp_index32_ok(total, g, FBP_BLOCK) && fbp_index32_ok(total, 1, FBP_BLOCK) &&
      fbp_index32_ok(C, gc, 1)) {
    ln_backward_data_kernel<int><<<g, FBP_BLOCK, 0, s>>>(dinp, dout, inp, mean, rstd, weight,
                                                         (int)P, C, HW);
    ln_backward_params_kernel<int><<<gc, FBP_BLOCK, 0, s>>>(dweight, dbias, dout, inp, mean,
                                                            rstd, C, HW, (int)P);
  } else {
    ln_backward_data_kernel<int64_t><<<g, FBP_BLOCK, 0, s>>>(dinp, dout, inp, mean, rstd,
                                                             weight, P, C, HW);
    ln_backward_params_kernel<int64_t><<<gc, FBP_BLOCK, 0, s>>>(dweight, dbias, dout, inp,
                                                                mean, rstd, C, HW, P);
  }
  LAUNCH_CHECK("ln_backward_kernel");
  return 0;
}
