/*
 * fma_peak.c — the FMA ceiling of this CPU: every thread of an OpenMP team runs
 * independent chains of fused multiply-adds on vector registers for a fixed time, and the
 * program prints the fp32 GFLOP/s of the whole team (2 flops per FMA lane).
 *
 * Why: "fraction of the machine's limit" needs the limit measured, not taken from a data
 * sheet (clock, turbo and SMT differ between cloud machines). 16 independent accumulators
 * hide the FMA latency (4 cycles × 2 pipes needs >= 8 in flight).
 * The widest vector ISA the compiler targets is used (-march=native): AVX-512 where the
 * cores have it, else AVX2.
 *
 * Build and run (tasks/bench.ts does this in its `ceiling` section):
 *   cc -O3 -march=native -fopenmp native/dev/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak 2
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
#endif

#define ACC 16

static double chain(long iters) {
  vec a[ACC];
  for (int i = 0; i < ACC; i++) a[i] = SET1(1.0f + i * 1e-3f);
  vec m = SET1(0.999999f), c = SET1(1e-7f);
  for (long it = 0; it < iters; it++) {
    /* Unrolled so the accumulators stay in registers (a loop through memory would
     * measure store-to-load forwarding instead). */
#pragma GCC unroll 16
    for (int i = 0; i < ACC; i++) a[i] = FMA(a[i], m, c);
  }
  vec s = a[0];
  for (int i = 1; i < ACC; i++) s = ADD(s, a[i]);
  float out[LANES];
  STORE(out, s);
  return out[0];
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
  long iters = 200000000L / ACC;
  double sink = 0, best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chain(iters);
    double dt = omp_get_wtime() - t0;
    double gflops = 2.0 * LANES * ACC * (double)iters * threads / dt / 1e9;
    if (gflops > best) best = gflops;
  }
  printf("{\"gflops\": %.1f, \"threads\": %d, \"lanes\": %d, \"sink\": %g}\n", best, threads,
         LANES, sink);
  return 0;
}
