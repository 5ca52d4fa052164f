/*
 * dropout.cu — inverted dropout with the counter-based hash of fbp.h.
 *
 * The keep decision for element i is a pure function of (seed, i), the same in every
 * backend, so the mask here equals the cpu backend's and the reference's bit for bit, and
 * each thread computes its elements with no RNG state.
 */
#include "internal.cuh"

static __device__ __forceinline__ float hash_uniform(uint32_t seed, int64_t i) {
  uint32_t h = (uint32_t)i * 0x9E3779B9u + seed;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return (float)(h >> 8) / 16777216.0f;
}

static __global__ void dropout_kernel(float *__restrict__ out, float *__restrict__ mask,
                                      const float *__restrict__ inp, int64_t n, float p,
                                      float keep_scale, uint32_t seed) {
  GRID_STRIDE(i, n) {
    float m = hash_uniform(seed, i) >= p ? keep_scale : 0.0f;
    mask[i] = m;
    out[i] = inp[i] * m;
  }
}

int impl_dropout_forward(float *out, float *mask, const float *inp, int64_t n, float p,
                         uint32_t seed) {
  /* 1/(1-p) of the float p rounded once from double, as every backend does. */
  float keep_scale = (float)(1.0 / (1.0 - (double)p));
  dropout_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, mask, inp, n, p,
                                                                          keep_scale, seed);
  LAUNCH_CHECK("dropout_kernel");
  return 0;
}
