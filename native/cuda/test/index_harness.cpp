/*
 * index_harness.cpp — checks native/cuda/launch.h's launch sizes and index-width rule on
 * the host (tests/backend/cuda_host_test.ts builds and runs it). For each case it walks
 * the indices a grid-stride loop forms — the first index of every block's last step and
 * that step's successor, in 64-bit — and checks that when fbp_index32_ok says "int",
 * none of them leaves int, and that it says "int64" only when one would (or nearly).
 * Prints "ok <case>" / "FAIL <case>: why"; the exit status is the number of failures.
 *
 * Build: c++ -I native/cuda native/cuda/test/index_harness.cpp -o index_harness
 */
#include <stdint.h>
#include <stdio.h>

#include "launch.h"

static int failures;

static void check(int ok, const char *name, const char *why) {
  if (ok) printf("ok %s\n", name);
  else {
    printf("FAIL %s: %s\n", name, why);
    failures++;
  }
}

/* The largest index a grid-stride loop over n items forms, the loop's final `i += stride`
 * included: last item of the last step, plus one stride. */
static int64_t largest_index(int64_t n, unsigned grid, int block) {
  int64_t stride = (int64_t)grid * block;
  if (n <= 0) return stride; /* the first i (< stride) plus one stride */
  int64_t steps = (n + stride - 1) / stride;
  int64_t last_start = (steps - 1) * stride;
  int64_t last = last_start + stride - 1; /* the step's last thread */
  return last + stride;                   /* its next i, compared against n and discarded */
}

static void loop_case(const char *name, int64_t n, int expect32) {
  unsigned g = fbp_grid(n, FBP_BLOCK);
  int ok32 = fbp_index32_ok(n, g, FBP_BLOCK);
  int64_t big = largest_index(n, g, FBP_BLOCK);
  char why[200];
  snprintf(why, sizeof why, "n %lld, grid %u: index32_ok %d, largest index %lld", (long long)n,
           g, ok32, (long long)big);
  int safe = !ok32 || big <= INT32_MAX; /* int only when nothing wraps */
  check(safe && ok32 == expect32, name, why);
}

int main(void) {
  const int64_t MAX = INT32_MAX;
  /* ResNet18 activations from the issue: batch 128 and 256 of 64×112×112. */
  loop_case("128x64x112x112 (~1e8) counts in int", 128LL * 64 * 112 * 112, 1);
  loop_case("256x64x112x112 counts in int", 256LL * 64 * 112 * 112, 1);
  loop_case("2^31 - 1 elements count in int64", MAX, 0);
  loop_case("2^31 elements count in int64", MAX + 1, 0);
  loop_case("2^33 elements count in int64", 1LL << 33, 0);
  loop_case("just under the limit counts in int", MAX - (int64_t)FBP_MAX_GRID * FBP_BLOCK, 1);
  loop_case("one past the limit counts in int64", MAX - (int64_t)FBP_MAX_GRID * FBP_BLOCK + 1, 0);
  loop_case("an empty tensor", 0, 1);
  loop_case("one element", 1, 1);

  check(fbp_grid(0, 256) == 1 && fbp_grid(1, 256) == 1 && fbp_grid(257, 256) == 2 &&
            fbp_grid(1LL << 40, 256) == FBP_MAX_GRID,
        "fbp_grid: at least 1 block, rounds up, capped", "");

  /* Split counts: bounded, 1 with many outputs, growing with the work otherwise. */
  int s_many = fbp_reduce_splits(1024, 1 << 20, 256, 132);
  int s_stem = fbp_reduce_splits(64, 128LL * 112 * 112, 256, 132);
  int s_small = fbp_reduce_splits(64, 100, 128, 132);
  int s_huge = fbp_reduce_splits(1, 1LL << 40, 256, 132);
  char why[200];
  snprintf(why, sizeof why, "many %d, stem %d, small %d, huge %d", s_many, s_stem, s_small,
           s_huge);
  check(s_many == 1 && s_stem == 9 && s_small == 1 && s_huge == 528,
        "fbp_reduce_splits: ~4 blocks per SM, only for few outputs with enough work", why);
  check(fbp_reduce_splits(2, 1LL << 40, 256, 100000) == 1024 && fbp_reduce_splits(0, 5, 32, 1) == 1,
        "fbp_reduce_splits: at most 1024, 1 for nothing", "");
  return failures;
}
