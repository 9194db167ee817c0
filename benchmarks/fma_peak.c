/* fma_peak.c: one core's fp32 peak with AVX-512 FMA, measured: 16 independent chains of
 * vfmadd on 16-float registers, so that latency hides behind throughput. Prints GFLOP/s
 * (2 flops per lane per FMA). Built and run by benchmarks/run_onednn. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  /* sixteen named accumulators: an array would live in memory */
#define EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define DECLARE(k) __m512 acc##k = _mm512_set1_ps((float)k);
#define STEP(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
#define SUM(k) sink += _mm512_reduce_add_ps(acc##k);
  EACH(DECLARE)
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  const long iterations = 50000000;
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    const double start = now();
    for (long i = 0; i < iterations; ++i) {
      EACH(STEP)
    }
    const double gflops = iterations * 16.0 * 16 * 2 / (now() - start) / 1e9;
    if (gflops > best) best = gflops;
  }
  float sink = 0;
  EACH(SUM)
  printf("%.1f\n%g\n", best, sink);  /* the sink keeps the loop */
  return 0;
}
