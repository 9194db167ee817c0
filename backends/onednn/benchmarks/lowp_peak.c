/* lowp_peak.c: one core's bf16 and int8 peaks, fma_peak.c's sibling: the widest dot-product
 * instruction this CPU has for each, picked at run time, 16 independent chains on 512-bit
 * registers (the latency hidden behind the throughput), the best of 5 timed loops.
 *
 *     lowp_peak [vnni|avx512bw|avx2]
 *
 * The optional argument caps the int8 instruction (avx2 measures AVX2's even on an AVX-512 CPU).
 * Prints two lines, "bf16 <GFLOP/s> <instruction>" and "int8 <GOP/s> <instruction>" (2
 * operations per multiply-add), then the accumulators' sum (printing it keeps the loops):
 * - bf16: AVX512_BF16's vdpbf16ps (16 fp32 lanes, 2 bf16 products each); "none" without
 *   avx512_bf16 (oneDNN then computes bf16 with fp32 FMAs: fma_peak.c's figure is the ceiling);
 * - int8: AVX512_VNNI's vpdpbusd (16 s32 lanes, 4 u8 x s8 products each), else AVX-512BW's
 *   vpmaddubsw + vpmaddwd + vpaddd (the same 64 products in three instructions, as oneDNN's
 *   avx512_core int8 kernels do), else AVX2's, on 256-bit registers;
 * - AMX (amx_bf16, amx_int8): a third line "amx present, not measured" where the CPU has it (no
 *   tile kernel here: it could not be run on the machines this was written on), else "amx none".
 * Each kernel carries its own __attribute__((target)), so the file is built without -m flags
 * (cc -O2 lowp_peak.c) and runs on any x86-64 CPU. */
#include <immintrin.h> /* the intrinsics; each kernel's target attribute enables its own */
#include <stdio.h>     /* printf, fprintf */
#include <string.h>    /* strcmp */
#include <time.h>      /* clock_gettime */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { ROUNDS = 5, CHAINS = 16 };
static const long ITERATIONS = 20000000;

#define EACH16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* The best of ROUNDS timed loops of 16 chains, each step STEP(k) doing OPS operations per chain:
 * G operations per second, and the accumulators' sum (by SUM) in *sink. */
#define PEAK_KERNEL(OPS, STEP, SUM)                                                    \
  double best = 0;                                                                     \
  for (int round = 0; round < ROUNDS; ++round) {                                       \
    const double start = now();                                                        \
    for (long i = 0; i < ITERATIONS; ++i) {                                            \
      EACH16(STEP)                                                                     \
    }                                                                                  \
    const double g = ITERATIONS * (double)CHAINS * (OPS) / (now() - start) / 1e9;      \
    if (g > best) best = g;                                                            \
  }                                                                                    \
  double total = 0;                                                                    \
  EACH16(SUM)                                                                          \
  *sink += total;                                                                      \
  return best;

/* 16 fp32 lanes x 2 bf16 products x 2 operations per instruction */
__attribute__((target("avx512f,avx512bf16"))) static double peak_bf16_avx512(double* sink) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, ~6e-8 */
#define DECLARE(k) __m512 acc##k = _mm512_set1_ps((float)k);
  EACH16(DECLARE)
#define STEP(k) acc##k = _mm512_dpbf16_ps(acc##k, a, b);
#define SUM(k) total += _mm512_reduce_add_ps(acc##k);
  PEAK_KERNEL(16 * 2 * 2, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

/* 16 s32 lanes x 4 u8 x s8 products x 2 operations per instruction */
__attribute__((target("avx512f,avx512vnni"))) static double peak_int8_vnni(double* sink) {
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
#define DECLARE(k) __m512i acc##k = _mm512_set1_epi32(k);
  EACH16(DECLARE)
#define STEP(k) acc##k = _mm512_dpbusd_epi32(acc##k, a, b);
#define SUM(k) total += _mm512_reduce_add_epi32(acc##k);
  PEAK_KERNEL(16 * 4 * 2, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

/* the same 64 products in three instructions: u8 x s8 pairs to s16, pairs of s16 to s32, add; the
 * accumulator's bytes are the u8 operand, or the compiler would hoist the products out of the loop */
__attribute__((target("avx512f,avx512bw"))) static double peak_int8_avx512bw(double* sink) {
  const __m512i b = _mm512_set1_epi8(1), ones = _mm512_set1_epi16(1);
#define DECLARE(k) __m512i acc##k = _mm512_set1_epi32(k);
  EACH16(DECLARE)
#define STEP(k) acc##k = _mm512_add_epi32(acc##k, _mm512_madd_epi16(_mm512_maddubs_epi16(acc##k, b), ones));
#define SUM(k) total += _mm512_reduce_add_epi32(acc##k);
  PEAK_KERNEL(16 * 4 * 2, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

__attribute__((target("avx2"))) static long sum_m256i(__m256i v) {
  int lanes[8];
  long total = 0;
  _mm256_storeu_si256((__m256i*)lanes, v);
  for (int i = 0; i < 8; ++i) total += lanes[i];
  return total;
}

/* 8 s32 lanes: AVX2's vpmaddubsw + vpmaddwd + vpaddd */
__attribute__((target("avx2"))) static double peak_int8_avx2(double* sink) {
  const __m256i b = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
#define DECLARE(k) __m256i acc##k = _mm256_set1_epi32(k);
  EACH16(DECLARE)
#define STEP(k) acc##k = _mm256_add_epi32(acc##k, _mm256_madd_epi16(_mm256_maddubs_epi16(acc##k, b), ones));
#define SUM(k) total += (double)sum_m256i(acc##k);
  PEAK_KERNEL(8 * 4 * 2, STEP, SUM)
#undef DECLARE
#undef STEP
#undef SUM
}

/* AMX: CPUID leaf 7, EDX bits 22 (amx_bf16) and 25 (amx_int8) */
static int has_amx(void) {
  unsigned eax = 7, ebx, ecx = 0, edx;
  __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  return (edx >> 22 & 1) && (edx >> 25 & 1);
}

/* widest first: a cap skips those before it */
static const char* const int8_names[] = {"vnni", "avx512bw", "avx2"};
enum { INT8_KINDS = sizeof int8_names / sizeof int8_names[0] };

int main(int argc, char** argv) {
  int cap = argc == 1 ? 0 : -1;
  for (int i = 0; argc == 2 && i < INT8_KINDS; ++i)
    if (strcmp(argv[1], int8_names[i]) == 0) cap = i;
  if (cap < 0) {
    fprintf(stderr, "usage: %s [vnni|avx512bw|avx2]  (the widest int8 instruction to measure)\n", argv[0]);
    return 2;
  }
  __builtin_cpu_init();
  double sink = 0;
  if (__builtin_cpu_supports("avx512bf16")) {
    printf("bf16 %.1f vdpbf16ps\n", peak_bf16_avx512(&sink));
  } else {
    printf("bf16 none\n");
  }
  const int has[INT8_KINDS] = {__builtin_cpu_supports("avx512vnni"), __builtin_cpu_supports("avx512bw"),
                               __builtin_cpu_supports("avx2")};
  int kind = cap;
  while (kind < INT8_KINDS && !has[kind]) ++kind;
  if (kind == 0) {
    printf("int8 %.1f vpdpbusd\n", peak_int8_vnni(&sink));
  } else if (kind == 1) {
    printf("int8 %.1f vpmaddubsw+vpmaddwd+vpaddd(zmm)\n", peak_int8_avx512bw(&sink));
  } else if (kind == 2) {
    printf("int8 %.1f vpmaddubsw+vpmaddwd+vpaddd(ymm)\n", peak_int8_avx2(&sink));
  } else {
    printf("int8 none\n");
  }
  printf(has_amx() ? "amx present, not measured\n" : "amx none\n");
  printf("%g\n", sink);
  return 0;
}
