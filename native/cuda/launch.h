/*
 * launch.h — launch sizes and the index-width rule of the cuda kernels, as plain host C++
 * (no CUDA types) so native/cuda/test/index_harness.cpp checks them without a GPU.
 *
 * Why: kernels loop grid-stride (i += gridDim·blockDim). A 32-bit loop index is faster
 * (64-bit division costs several times more on the GPU) but it must never wrap: a
 * 128×64×112×112 activation has ~10^8 elements, and the last index plus one stride of a
 * tensor near 2^31 elements would. Kernels count in int64_t unless fbp_index32_ok says
 * the whole loop, stride included, fits in int.
 */
#ifndef FBP_CUDA_LAUNCH_H
#define FBP_CUDA_LAUNCH_H

#include <stdint.h>

#define FBP_BLOCK 256
#define FBP_MAX_GRID 65536

/* Blocks for `n` work items of `block` threads, capped (kernels use grid-stride loops). */
static inline unsigned fbp_grid(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > FBP_MAX_GRID) g = FBP_MAX_GRID;
  return (unsigned)g;
}

/* 1 when a grid-stride loop over n items with `grid` blocks of `block` threads may count
 * in int: every index it forms (up to n − 1 + grid·block) stays below 2^31. */
static inline int fbp_index32_ok(int64_t n, unsigned grid, int block) {
  return n >= 0 && n + (int64_t)grid * block <= (int64_t)INT32_MAX;
}

/*
 * How many blocks share each of `nout` reductions of `R` items (per-channel statistics,
 * sums over a dimension), so the device gets about 4 blocks per SM when outputs are few:
 * at least 1, each share at least 64 items per thread of a `threads`-thread block, at
 * most 1024, and nout·splits within FBP_MAX_GRID·1024 (their partials are indexed in
 * int64_t). The split count depends only on the sizes and the SM count, so results
 * repeat bit for bit on one GPU.
 */
static inline int fbp_reduce_splits(int64_t nout, int64_t R, int threads, int sms) {
  int64_t want = 4 * (int64_t)(sms > 0 ? sms : 1);
  if (nout <= 0 || nout >= want) return 1;
  int64_t by_work = R / ((int64_t)threads * 64), by_fill = (want + nout - 1) / nout;
  int64_t k = by_work < by_fill ? by_work : by_fill;
  return (int)(k < 1 ? 1 : k > 1024 ? 1024 : k);
}

#endif /* FBP_CUDA_LAUNCH_H */
