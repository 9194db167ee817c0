// bench_add_sub.cpp: (a + b, a - b) on float tensors of several sizes, in one run:
//   1 aten             at::add and at::sub called from C++
//   2 scripted         the plain scripted module, not lowered
//   3 handwritten      the naive kernel (clone, add_, sub_) in a hand-written backend, native lowering
//   4 tbk_naive        the naive kernel behind tbk's policies, native lowering
//   5 tbk_naive_fast   the naive kernel behind tbk's policies, fast lowering path
//   6 tbk_aten_fast    the scripted module's kernel (a + b, a - b) behind tbk, fast lowering path
//   7 tbk_native       the add/sub backend's fused kernel, native lowering
//   8 tbk_fast         the add/sub backend's fused kernel, fast lowering path
//   9 tbk_recycle      the fused kernel with the recycle_outputs option, native lowering
//   triad              STREAM triad x = y + s * z with non-temporal stores on every thread: the
//                      machine's memory bandwidth, from which benchmarks/run computes a floor
// Cases 3, 4 and 5 share one kernel, 2 and 6 another, 7 and 8 a third, so their ratios are the
// paths' costs; 4 against 7 is the kernel's gain, 7 against 9 recycling's.
#include <benchmark/benchmark.h>
#include <torch/script.h>

#include <tbk/lower.hpp>
#include <tbk/register.hpp>

#include "add_sub.hpp"
#include "handwritten_add_sub.hpp"
#include "naive_add_sub.hpp"

#include <ATen/Parallel.h>  // at::parallel_for, at::get_num_threads

#if defined(__SSE__)
#include <xmmintrin.h>  // _mm_stream_ps
#endif

namespace {

torch::jit::Module scripted() {
  torch::jit::Module m("AddSub");
  m.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
  return m;
}

void register_backends() {
  static const bool done = [] {
    handwritten::register_backend("handwritten_backend");
    tbk::register_backend<naive_add_sub_backend>("tbk_naive_backend");
    tbk::register_backend<aten_add_sub_backend>("tbk_aten_backend");
    tbk::register_backend<add_sub_backend>("tbk_add_sub_backend");
    return true;
  }();
  (void)done;
}

torch::jit::Module model(const std::string& which) {
  register_backends();
  if (which == "scripted") return scripted();
  const c10::impl::GenericDict spec = tbk::spec().method("forward").dict();
  const auto fast = tbk::lowering_path::fast;
  if (which == "handwritten") {
    return torch::jit::detail::codegen_backend_module(
        "handwritten_backend", scripted(), spec,
        c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
  }
  if (which == "tbk_naive") return tbk::lower(scripted(), "tbk_naive_backend", spec);
  if (which == "tbk_naive_fast") return tbk::lower(scripted(), "tbk_naive_backend", spec, fast);
  if (which == "tbk_aten_fast") return tbk::lower(scripted(), "tbk_aten_backend", spec, fast);
  if (which == "tbk_native") return tbk::lower(scripted(), "tbk_add_sub_backend", spec);
  if (which == "tbk_fast") return tbk::lower(scripted(), "tbk_add_sub_backend", spec, fast);
  return tbk::lower(scripted(), "tbk_add_sub_backend",
                    tbk::spec().method("forward", {{"recycle_outputs", true}}));
}

void bench_module(benchmark::State& state, const std::string& which) {
  auto m = model(which);
  auto a = torch::randn({state.range(0)}), b = torch::randn({state.range(0)});
  for (auto _ : state) {
    auto out = m.forward({a, b});
    benchmark::DoNotOptimize(out);
  }
}

void bench_aten(benchmark::State& state) {
  auto a = torch::randn({state.range(0)}), b = torch::randn({state.range(0)});
  for (auto _ : state) {
    auto sum = at::add(a, b);
    auto difference = at::sub(a, b);
    benchmark::DoNotOptimize(sum);
    benchmark::DoNotOptimize(difference);
  }
}

// x = y + 3 * z over warm arrays, split over all of ATen's threads as the kernel is; 12 bytes
// move per element (two loads, one store that does not read its line first).
void bench_triad(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto x = torch::zeros({n}), y = torch::randn({n}), z = torch::randn({n});
  float* px = x.data_ptr<float>();
  const float* py = y.data_ptr<float>();
  const float* pz = z.data_ptr<float>();
  for (auto _ : state) {
    at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
      int64_t i = begin;
#if defined(__SSE__)
      for (; i < end && (reinterpret_cast<std::uintptr_t>(px + i) & 15) != 0; ++i) px[i] = py[i] + 3.0f * pz[i];
      const __m128 three = _mm_set1_ps(3.0f);
      for (; i + 4 <= end; i += 4) {
        _mm_stream_ps(px + i, _mm_add_ps(_mm_loadu_ps(py + i), _mm_mul_ps(three, _mm_loadu_ps(pz + i))));
      }
      _mm_sfence();
#endif
      for (; i < end; ++i) px[i] = py[i] + 3.0f * pz[i];
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
  state.counters["threads"] = at::get_num_threads();
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {4, 4096, 1048576, 16777216}) b->Arg(n);
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(bench_aten)->Name("1_aten")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, scripted, "scripted")->Name("2_scripted")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, handwritten, "handwritten")->Name("3_handwritten")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_naive, "tbk_naive")->Name("4_tbk_naive")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_naive_fast, "tbk_naive_fast")->Name("5_tbk_naive_fast")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_aten_fast, "tbk_aten_fast")->Name("6_tbk_aten_fast")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_native, "tbk_native")->Name("7_tbk_native")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_fast, "tbk_fast")->Name("8_tbk_fast")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_recycle, "tbk_recycle")->Name("9_tbk_recycle")->Apply(sizes);
BENCHMARK(bench_triad)->Name("triad")->Arg(16777216)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
