/*
 * memory.cu — fill_forward and copy_forward on device memory.
 *
 * A plain copy is cudaMemcpyAsync (device to device, on the stream). Overlapping ranges of
 * one buffer get the cpu backend's results (memmove for a copy, an in-order loop for +=,
 * as fbp.h says) from a one-thread kernel, a rare and slow path that keeps the backends
 * interchangeable.
 */
#include "internal.cuh"

static __global__ void fill_kernel(float *out, float value, int64_t n) {
  GRID_STRIDE(i, n) out[i] = value;
}

static __global__ void add_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                  int64_t n) {
  GRID_STRIDE(i, n) out[i] += inp[i];
}

/* One thread, in order: memmove semantics for a copy, sequential `+=` for accumulate. */
static __global__ void overlap_kernel(float *out, const float *inp, int64_t n, int accumulate) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  if (accumulate) {
    for (int64_t i = 0; i < n; i++) out[i] += inp[i];
  } else if (out < inp) {
    for (int64_t i = 0; i < n; i++) out[i] = inp[i];
  } else {
    for (int64_t i = n - 1; i >= 0; i--) out[i] = inp[i];
  }
}

int impl_fill_forward(float *out, float value, int64_t n) {
  fill_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, value, n);
  LAUNCH_CHECK("fill_kernel");
  return 0;
}

int impl_copy_forward(float *out, int64_t out_off, const float *inp, int64_t in_off, int64_t n,
                      int accumulate) {
  float *o = out + out_off;
  const float *x = inp + in_off;
  int disjoint = o + n <= x || x + n <= o;
  if (!disjoint) {
    if (o == x && !accumulate) return 0;
    overlap_kernel<<<1, 1, 0, fbp_stream()>>>(o, x, n, accumulate);
    LAUNCH_CHECK("overlap_kernel");
  } else if (accumulate) {
    add_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(o, x, n);
    LAUNCH_CHECK("add_kernel");
  } else {
    CUDA_CHECK(cudaMemcpyAsync(o, x, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice,
                               fbp_stream()));
  }
  return 0;
}
