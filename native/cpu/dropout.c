/*
 * dropout.c — inverted dropout with a counter-based hash instead of a stateful RNG.
 *
 * Why: the keep decision for element i is a pure function of (seed, i), spelled out in
 * fbp.h, so every backend (and the TypeScript reference) draws the same mask for the
 * same seed, runs reproduce across devices, and the loop parallelises with no RNG state.
 */
#include <math.h>

#include "internal.h"

static inline float hash_uniform(uint32_t seed, int64_t i) {
  uint32_t h = (uint32_t)i * 0x9E3779B9u + seed;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return (float)(h >> 8) / 16777216.0f;
}

int impl_dropout_forward(float *out, float *mask, const float *inp, int64_t n, float p,
                         uint32_t seed) {
  /* Rounded once from double: the exact 1/(1-p) of the float p, so every backend that
   * follows this rule gets the same float. p == 1 gives an infinite scale, but then no
   * element is kept (u < 1 always). */
  float keep_scale = (float)(1.0 / (1.0 - (double)p));
  FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
    for (int64_t i = 0; i < n; i++) {
      float m = hash_uniform(seed, i) >= p ? keep_scale : 0.0f;
      mask[i] = m;
      out[i] = inp[i] * m;
    });
  return 0;
}
