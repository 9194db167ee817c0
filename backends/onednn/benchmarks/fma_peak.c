/* fma_peak.c: one core's fp32 peak, measured with the widest multiply-add this CPU has, picked
 * at run time: AVX-512F FMA (16 chains on 16-float registers), else AVX2 FMA (12 chains on
 * 8-float registers: 16 registers hold 12 accumulators and the two constants), else SSE
 * multiply then add (12 chains on 4-float registers; no FMA). Independent chains hide the
 * latency behind the throughput. Each kernel carries its own __attribute__((target)), so the
 * file is built without -m flags (cc -O2 fma_peak.c) and runs on any x86-64 CPU.
 *
 *     fma_peak [avx512f|avx2|sse]
 *
 * The optional argument caps the ISA (avx2 measures AVX2 FMA even on an AVX-512 CPU). Prints
 * GFLOP/s (2 flops per lane per multiply-add) on the first line, the ISA used on the second,
 * and the sum of the accumulators on the third (printing it keeps the loop). Built and run by
 * benchmarks/run_onednn; a -m flag such as -mavx512f would let the compiler use AVX-512 in any
 * function, so the file must be built without one. */
#include <immintrin.h> /* the intrinsics; each kernel's target attribute enables its own */
#include <stdio.h>     /* printf, fprintf */
#include <string.h>    /* strcmp */
#include <time.h>      /* clock_gettime */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { ROUNDS = 5 };
static const long ITERATIONS = 50000000;

/* named accumulators: an array would live in memory */
#define EACH12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define EACH16(X) EACH12(X) X(12) X(13) X(14) X(15)

/* The best of ROUNDS timed loops of EACH's chains, each step acc = acc * a + b on LANES floats:
 * GFLOP/s, and the accumulators' sum in *sink. */
#define PEAK_KERNEL(EACH, VEC, LANES, SET1, STEP, SUM)                                      \
  EACH(DECLARE)                                                                             \
  const VEC a = SET1(0.999999f), b = SET1(1e-7f);                                           \
  double best = 0;                                                                          \
  for (int round = 0; round < ROUNDS; ++round) {                                            \
    const double start = now();                                                             \
    for (long i = 0; i < ITERATIONS; ++i) {                                                 \
      EACH(STEP)                                                                            \
    }                                                                                       \
    const double gflops = ITERATIONS * (0 EACH(ONE)) * LANES * 2.0 / (now() - start) / 1e9; \
    if (gflops > best) best = gflops;                                                       \
  }                                                                                         \
  float total = 0;                                                                          \
  EACH(SUM)                                                                                 \
  *sink = total;                                                                            \
  return best;
#define ONE(k) +1

__attribute__((target("avx512f"))) static double peak_avx512f(float* sink) {
#define DECLARE(k) __m512 acc##k = _mm512_set1_ps((float)k);
#define STEP(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
#define SUM(k) total += _mm512_reduce_add_ps(acc##k);
  PEAK_KERNEL(EACH16, __m512, 16, _mm512_set1_ps, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

__attribute__((target("avx2"))) static float sum_m256(__m256 v) {
  float lanes[8], total = 0;
  _mm256_storeu_ps(lanes, v);
  for (int i = 0; i < 8; ++i) total += lanes[i];
  return total;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(float* sink) {
#define DECLARE(k) __m256 acc##k = _mm256_set1_ps((float)k);
#define STEP(k) acc##k = _mm256_fmadd_ps(acc##k, a, b);
#define SUM(k) total += sum_m256(acc##k);
  PEAK_KERNEL(EACH12, __m256, 8, _mm256_set1_ps, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

static float sum_m128(__m128 v) {
  float lanes[4];
  _mm_storeu_ps(lanes, v);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

/* SSE is x86-64's baseline: no target attribute needed, and none that allows FMA */
static double peak_sse(float* sink) {
#define DECLARE(k) __m128 acc##k = _mm_set1_ps((float)k);
#define STEP(k) acc##k = _mm_add_ps(_mm_mul_ps(acc##k, a), b);
#define SUM(k) total += sum_m128(acc##k);
  PEAK_KERNEL(EACH12, __m128, 4, _mm_set1_ps, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

/* widest first: a cap skips those before it */
static const char* const isa_names[] = {"avx512f", "avx2", "sse"};
enum { ISAS = sizeof isa_names / sizeof isa_names[0] };

static int isa_index(const char* name) {
  for (int i = 0; i < ISAS; ++i)
    if (strcmp(name, isa_names[i]) == 0) return i;
  return -1;
}

int main(int argc, char** argv) {
  const int cap = argc == 2 ? isa_index(argv[1]) : argc == 1 ? 0 : -1;
  if (cap < 0) {
    fprintf(stderr, "usage: %s [avx512f|avx2|sse]  (the widest ISA to measure; default: the CPU's widest)\n",
            argv[0]);
    return 2;
  }
  __builtin_cpu_init();
  const int has[ISAS] = {__builtin_cpu_supports("avx512f"),
                         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), 1};
  int isa = cap;
  while (!has[isa]) ++isa;
  float sink = 0;
  const double gflops = isa == 0 ? peak_avx512f(&sink) : isa == 1 ? peak_avx2(&sink) : peak_sse(&sink);
  printf("%.1f\n%s\n%g\n", gflops, isa_names[isa], sink);
  return 0;
}
